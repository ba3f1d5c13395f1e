package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/model"
)

// BenchmarkListener compares one ARM request (GET of the resource group
// list) through the root-only unix socket and through the HTTPS listener
// with a bearer token, on kept-alive connections and on a new connection
// per request (what a fresh az process pays once).
//
//	go test ./gateway -run - -bench Listener -benchtime 2000x
func BenchmarkListener(b *testing.B) {
	dir := b.TempDir()
	st, err := model.Open(filepath.Join(dir, "state"), model.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := &api.Server{Store: st, Runtime: api.StaticRuntime{}}
	sock := filepath.Join(dir, "vmss.sock")
	ln, err := api.ListenUnix(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	g, err := Listen(Config{Addr: "127.0.0.1:0", StateDir: dir, TenantID: api.TenantID, API: srv})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(ctx) }()

	cr := g.Authority.Credentials()
	tok, terr := g.Authority.Issue(cr.ClientID, cr.ClientSecret, Audience)
	if terr != nil {
		b.Fatal(terr)
	}
	const path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?api-version=2021-04-01"
	unixTransport := func(keep bool) *http.Transport {
		return &http.Transport{DisableKeepAlives: !keep, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
	}
	tlsTransport := func(keep bool) *http.Transport {
		return &http.Transport{DisableKeepAlives: !keep, TLSClientConfig: &tls.Config{RootCAs: g.Certs.Pool()}}
	}
	run := func(b *testing.B, tr *http.Transport, base string, auth bool) {
		c := &http.Client{Transport: tr}
		u, _ := url.Parse(base + path)
		req := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "value") {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	}
	b.Run("unix/keepalive", func(b *testing.B) { run(b, unixTransport(true), "http://vmss", false) })
	b.Run("https/keepalive", func(b *testing.B) { run(b, tlsTransport(true), g.URL()[:len(g.URL())-1], true) })
	b.Run("unix/newconn", func(b *testing.B) { run(b, unixTransport(false), "http://vmss", false) })
	b.Run("https/newconn", func(b *testing.B) { run(b, tlsTransport(false), g.URL()[:len(g.URL())-1], true) })
}
