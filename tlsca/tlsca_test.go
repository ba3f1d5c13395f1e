package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnsureCreatesAndReuses(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	b1, err := Ensure(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if !b1.Issued {
		t.Error("first Ensure did not report a new server certificate")
	}
	for _, f := range []string{CAKeyFile, ServerKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	b2, err := Ensure(dir, nil, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if b2.Issued {
		t.Error("second Ensure issued a new server certificate although the old one covers everything")
	}
	if !b1.CA.Equal(b2.CA) {
		t.Error("second Ensure made a new CA")
	}
	if string(b1.Server.Certificate[0]) != string(b2.Server.Certificate[0]) {
		t.Error("server certificate changed")
	}
}

func TestReissuesForNewHostAndExpiry(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	b1, err := Ensure(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Ensure(dir, []string{"127.0.0.9", "vmss.test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !b2.Issued || !b1.CA.Equal(b2.CA) {
		t.Fatalf("a new host: issued=%v, same CA=%v; want a new server certificate from the same CA", b2.Issued, b1.CA.Equal(b2.CA))
	}
	leaf, _ := x509.ParseCertificate(b2.Server.Certificate[0])
	if err := leaf.VerifyHostname("127.0.0.9"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("vmss.test"); err != nil {
		t.Error(err)
	}
	b3, err := Ensure(dir, []string{"127.0.0.9", "vmss.test"}, leaf.NotAfter.Add(-renewBefore+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !b3.Issued {
		t.Error("a certificate expiring within 30 days was kept")
	}
}

// A real TLS client that trusts only the CA file verifies the server.
func TestClientTrustingCAConnects(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = b.TLSConfig()
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	caPEM, err := os.ReadFile(b.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("%s: body %q", host, body)
		}
	}
	// Positive control for the check above: a client with the system roots refuses.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if _, err := c.Get("https://127.0.0.1:" + port + "/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client not trusting the CA connected: %v", err)
	}
}

func TestBrokenCAIsAnActionableError(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, CAFile))
	_, err := Ensure(dir, nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("err = %v, want an error saying what to remove", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CAFile))
	if string(before) != string(after) {
		t.Error("a failed Ensure changed the CA certificate")
	}
}
