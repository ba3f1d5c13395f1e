package identity

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testIssuer = "https://127.0.0.1:8443/adfs"
	testAud    = "https://management.vmss.local/"
)

func open(t *testing.T, dir string, now func() time.Time) *Authority {
	t.Helper()
	a, err := Open(Config{Dir: dir, TenantID: "00000000-0000-0000-0000-000000000000", Issuer: testIssuer, Audiences: []string{testAud}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOpenKeepsCredentialsAndKey(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	for _, f := range []string{CredentialsFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	c := a.Credentials()
	if c.ClientID == "" || len(c.ClientSecret) < 32 || c.TenantID != "00000000-0000-0000-0000-000000000000" {
		t.Fatalf("credentials %+v", c)
	}
	tok, terr := a.Issue(c.ClientID, c.ClientSecret, testAud)
	if terr != nil {
		t.Fatal(terr)
	}
	b := open(t, dir, nil)
	if b.Credentials() != c {
		t.Errorf("reopened credentials %+v, want %+v", b.Credentials(), c)
	}
	if _, verr := b.Verify(tok.AccessToken); verr != nil {
		t.Errorf("a token from before the restart is refused: %v", verr)
	}
	other := open(t, t.TempDir(), nil)
	if other.Credentials().ClientSecret == c.ClientSecret {
		t.Error("two authorities share a secret")
	}
	if _, verr := other.Verify(tok.AccessToken); verr == nil || verr.Code != "InvalidAuthenticationToken" {
		t.Errorf("another authority's token: %v, want InvalidAuthenticationToken", verr)
	}
}

func TestOpenRefusesBrokenCredentials(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, CredentialsFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir, Issuer: testIssuer, Audiences: []string{testAud}})
	if err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("err = %v, want one saying to remove the file", err)
	}
}

func postToken(t *testing.T, h http.Handler, form url.Values, basic []string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "https://127.0.0.1:8443/adfs/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("token answer is not JSON: %q", rec.Body)
	}
	return rec.Code, out
}

func TestTokenEndpoint(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	h := a.Handler()
	c := a.Credentials()
	ok := func(form url.Values, basic []string) {
		t.Helper()
		code, out := postToken(t, h, form, basic)
		if code != 200 {
			t.Fatalf("status %d: %v", code, out)
		}
		if out["token_type"] != "Bearer" || out["expires_in"] != float64(3600) {
			t.Errorf("answer %v", out)
		}
		claims, verr := a.Verify(out["access_token"].(string))
		if verr != nil {
			t.Fatal(verr)
		}
		if claims.Audience != testAud || claims.AppID != c.ClientID || claims.TenantID != c.TenantID || claims.Issuer != testIssuer {
			t.Errorf("claims %+v", claims)
		}
	}
	// MSAL (az) asks for the v2 scope of the resource.
	ok(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {testAud + "/.default"}}, nil)
	// ADAL-style resource, secret in a Basic header.
	ok(url.Values{"grant_type": {"client_credentials"}, "resource": {strings.TrimSuffix(testAud, "/")}}, []string{c.ClientID, c.ClientSecret})

	bad := []struct {
		name string
		form url.Values
		code int
		err  string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {"x"}, "scope": {testAud + ".default"}}, 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"someone"}, "client_secret": {c.ClientSecret}, "scope": {testAud + ".default"}}, 400, "unauthorized_client"},
		{"other resource", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}}, 400, "invalid_resource"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, 400, "unsupported_grant_type"},
		{"no resource", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}, 400, "invalid_request"},
	}
	for _, b := range bad {
		code, out := postToken(t, h, b.form, nil)
		if code != b.code || out["error"] != b.err || out["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d %s", b.name, code, out, b.code, b.err)
		}
	}
}

func TestOpenIDConfigurationAndKeys(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	h := a.Handler()
	get := func(path string) map[string]any {
		req := httptest.NewRequest("GET", "https://localhost:9443"+path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return out
	}
	oc := get("/adfs/.well-known/openid-configuration")
	if oc["token_endpoint"] != "https://localhost:9443/adfs/oauth2/token" || oc["authorization_endpoint"] == nil || oc["issuer"] != testIssuer {
		t.Errorf("openid configuration %v", oc)
	}
	keys := get("/adfs/discovery/keys")["keys"].([]any)
	k := keys[0].(map[string]any)
	nb, _ := base64.RawURLEncoding.DecodeString(k["n"].(string))
	eb, _ := base64.RawURLEncoding.DecodeString(k["e"].(string))
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	c := a.Credentials()
	tok, _ := a.Issue(c.ClientID, c.ClientSecret, testAud)
	parts := strings.Split(tok.AccessToken, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("the published key does not verify a token: %v", err)
	}
}

func TestRequire(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	a := open(t, t.TempDir(), clock)
	c := a.Credentials()
	tok, _ := a.Issue(c.ClientID, c.ClientSecret, testAud)
	h := a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	call := func(auth string) (int, string, http.Header) {
		req := httptest.NewRequest("GET", "https://127.0.0.1:8443/subscriptions?api-version=2022-12-01", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Error.Code, rec.Header()
	}
	// Positive control: a valid token passes.
	if code, _, _ := call("Bearer " + tok.AccessToken); code != 299 {
		t.Fatalf("a valid token: status %d", code)
	}
	parts := strings.Split(tok.AccessToken, ".")
	var claims Claims
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(pb, &claims)
	claims.Audience = "https://management.azure.com/"
	tampered, _ := json.Marshal(claims)
	wrongAud, _ := sign(a.key, a.kid, claims)
	claims.Audience, claims.Issuer = testAud, "https://login.microsoftonline.com/x/"
	wrongIss, _ := sign(a.key, a.kid, claims)

	for _, tc := range []struct{ name, auth, code string }{
		{"missing", "", "AuthenticationFailed"},
		{"basic", "Basic dTpw", "AuthenticationFailed"},
		{"garbage", "Bearer abc", "InvalidAuthenticationToken"},
		{"tampered", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + parts[2], "InvalidAuthenticationToken"},
		{"wrong audience", "Bearer " + wrongAud, "InvalidAuthenticationTokenAudience"},
		{"wrong issuer", "Bearer " + wrongIss, "InvalidAuthenticationTokenTenant"},
	} {
		code, ecode, hdr := call(tc.auth)
		if code != 401 || ecode != tc.code || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: %d %s (WWW-Authenticate %q), want 401 %s", tc.name, code, ecode, hdr.Get("WWW-Authenticate"), tc.code)
		}
	}
	now = now.Add(2 * time.Hour)
	if code, ecode, _ := call("Bearer " + tok.AccessToken); code != 401 || ecode != "ExpiredAuthenticationToken" {
		t.Errorf("expired token: %d %s", code, ecode)
	}
}
