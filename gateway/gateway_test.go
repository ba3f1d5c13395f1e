package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func start(t *testing.T) (*Gateway, *http.Client) {
	t.Helper()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"api":"`+r.URL.Path+`"}`)
	})
	g, err := Listen(Config{Addr: "127.0.0.1:0", StateDir: t.TempDir(), TenantID: "00000000-0000-0000-0000-000000000000", API: api})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return g, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.Certs.Pool()}}}
}

func getJSON(t *testing.T, c *http.Client, req *http.Request) (int, any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: not JSON: %q", req.URL, b)
	}
	return resp.StatusCode, v
}

func TestMetadataAsAzureStack(t *testing.T) {
	g, c := start(t)
	req, _ := http.NewRequest("GET", g.URL()+"metadata/endpoints?api-version=2015-01-01", nil)
	code, v := getJSON(t, c, req)
	m := v.(map[string]any)
	auth, _ := m["authentication"].(map[string]any)
	if code != 200 || auth["loginEndpoint"] != g.URL()+"adfs" || auth["audiences"].([]any)[0] != Audience || m["graphEndpoint"] == nil {
		t.Errorf("legacy metadata %d %v", code, v)
	}
	req, _ = http.NewRequest("GET", g.URL()+"metadata/endpoints?api-version=2022-09-01", nil)
	code, v = getJSON(t, c, req)
	list, ok := v.([]any)
	if code != 200 || !ok || len(list) != 1 || list[0].(map[string]any)["resourceManager"] != g.URL() || list[0].(map[string]any)["suffixes"] == nil {
		t.Errorf("cloud list %d %v", code, v)
	}
	req, _ = http.NewRequest("GET", g.URL()+strings.TrimPrefix(AliasDocPath, "/"), nil)
	code, v = getJSON(t, c, req)
	ubuntu := v.(map[string]any)["outputs"].(map[string]any)["aliases"].(map[string]any)["value"].(map[string]any)["Linux"].(map[string]any)["Ubuntu2204"].(map[string]any)
	if code != 200 || ubuntu["offer"] != "0001-com-ubuntu-server-jammy" || ubuntu["version"] != "latest" {
		t.Errorf("alias doc %d %v", code, ubuntu)
	}
}

// The whole client-credentials flow over TLS: discover the token endpoint,
// get a token, call ARM with and without it.
func TestTokenThenARM(t *testing.T) {
	g, c := start(t)
	req, _ := http.NewRequest("GET", g.URL()+"subscriptions?api-version=2022-12-01", nil)
	code, v := getJSON(t, c, req)
	if code != 401 || v.(map[string]any)["error"].(map[string]any)["code"] != "AuthenticationFailed" {
		t.Fatalf("no token: %d %v", code, v)
	}
	req, _ = http.NewRequest("GET", g.URL()+"adfs/.well-known/openid-configuration", nil)
	_, v = getJSON(t, c, req)
	tokenURL := v.(map[string]any)["token_endpoint"].(string)
	cr := g.Authority.Credentials()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cr.ClientID}, "client_secret": {cr.ClientSecret}, "scope": {Audience + "/.default"}}
	req, _ = http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, v = getJSON(t, c, req)
	if code != 200 {
		t.Fatalf("token: %d %v", code, v)
	}
	tok := v.(map[string]any)["access_token"].(string)
	req, _ = http.NewRequest("GET", g.URL()+"subscriptions?api-version=2022-12-01", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	code, v = getJSON(t, c, req)
	if code != 200 || v.(map[string]any)["api"] != "/subscriptions" || !strings.HasPrefix(g.URL(), "https://127.0.0.1:") || g.Addr.Port() == 0 {
		t.Fatalf("with a token: %d %v", code, v)
	}
}

func TestAddrMustBeLoopback(t *testing.T) {
	for _, a := range []string{"0.0.0.0:8443", "10.1.2.3:8443", ":8443", "example.com:8443"} {
		if _, err := ParseAddr(a); err == nil {
			t.Errorf("%s accepted", a)
		}
	}
	for _, a := range []string{"127.0.0.1:8443", "localhost:8443", "[::1]:8443", "127.5.6.7:1"} {
		if _, err := ParseAddr(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := Listen(Config{Addr: "0.0.0.0:0", StateDir: t.TempDir(), API: http.NotFoundHandler()}); err == nil {
		t.Error("Listen on a non-loopback address succeeded")
	}
}
