package identity

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// PathPrefix is where the authority is served; its URL is an AD FS
// authority (it ends in /adfs), which MSAL trusts without asking
// login.microsoftonline.com to validate it.
const PathPrefix = "/adfs"

// Handler serves the authority under PathPrefix:
//
//	GET  /adfs/.well-known/openid-configuration
//	GET  /adfs/discovery/keys
//	POST /adfs/oauth2/token        (grant_type=client_credentials)
//	     /adfs/oauth2/authorize    (refused: interactive sign-in is not offered)
func (a *Authority) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPrefix+"/.well-known/openid-configuration", a.openIDConfiguration)
	mux.HandleFunc("GET "+PathPrefix+"/discovery/keys", a.keys)
	mux.HandleFunc("POST "+PathPrefix+"/oauth2/token", a.token)
	mux.HandleFunc(PathPrefix+"/oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		writeOAuthErr(w, &TokenError{400, "unsupported_response_type", "Interactive sign-in is not offered by the vmss emulator: sign in as its service principal (az login --service-principal; `sudo vmss az-config` prints the command)."})
	})
	mux.HandleFunc(PathPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeOAuthErr(w, &TokenError{404, "invalid_request", fmt.Sprintf("No authority endpoint at %s %s.", r.Method, r.URL.Path)})
	})
	return mux
}

func base(r *http.Request) string {
	return "https://" + r.Host + PathPrefix
}

func (a *Authority) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	b := base(r)
	writeJSON(w, 200, map[string]any{
		"issuer":                                a.cfg.Issuer,
		"access_token_issuer":                   a.cfg.Issuer,
		"authorization_endpoint":                b + "/oauth2/authorize",
		"token_endpoint":                        b + "/oauth2/token",
		"jwks_uri":                              b + "/discovery/keys",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "form_post"},
		"grant_types_supported":                 []string{"client_credentials"},
		"subject_types_supported":               []string{"pairwise"},
		"scopes_supported":                      []string{"openid"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"aud", "iss", "iat", "nbf", "exp", "appid", "oid", "sub", "tid", "ver"},
	})
}

func (a *Authority) keys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"keys": []any{jwk(&a.key.PublicKey, a.kid)}})
}

func jwk(pub *rsa.PublicKey, kid string) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthErr(w, &TokenError{400, "invalid_request", "The token request is not a form: " + err.Error()})
		return
	}
	f := r.PostForm
	switch gt := f.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		writeOAuthErr(w, &TokenError{400, "invalid_request", "MSIS9611: grant_type is missing."})
		return
	default:
		writeOAuthErr(w, &TokenError{400, "unsupported_grant_type", fmt.Sprintf("MSIS9612: The grant type '%s' is not offered by the vmss emulator; sign in as its service principal (client_credentials).", gt)})
		return
	}
	if f.Get("client_assertion") != "" {
		writeOAuthErr(w, &TokenError{400, "invalid_client", "MSIS9658: Certificate (client_assertion) credentials are not offered by the vmss emulator; use the client secret `sudo vmss az-config` shows."})
		return
	}
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	resource := f.Get("resource")
	if resource == "" {
		for _, s := range strings.Fields(f.Get("scope")) {
			if strings.HasSuffix(s, "/.default") {
				resource = s
				break
			}
		}
	}
	if resource == "" {
		writeOAuthErr(w, &TokenError{400, "invalid_request", "MSIS9602: Neither a resource nor a scope ending in /.default was given."})
		return
	}
	tok, terr := a.Issue(id, secret, resource)
	if terr != nil {
		writeOAuthErr(w, terr)
		return
	}
	secs := int64(a.cfg.Lifetime.Seconds())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, 200, map[string]any{
		"token_type":     "Bearer",
		"access_token":   tok.AccessToken,
		"expires_in":     secs,
		"ext_expires_in": secs,
		"expires_on":     tok.ExpiresOn.Unix(),
		"resource":       tok.Resource,
	})
}

// Require answers 401 with an ARM error, as Azure Resource Manager does, to
// a request without a valid bearer token from this authority, and passes the
// others to next.
func (a *Authority) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			a.unauthorized(w, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing. Sign in with `az login --service-principal` as `sudo vmss az-config` shows, or send a bearer token from "+a.cfg.Issuer+".")
			return
		}
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			a.unauthorized(w, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format: use 'Bearer <token>'.")
			return
		}
		if _, verr := a.Verify(strings.TrimSpace(tok)); verr != nil {
			a.unauthorized(w, verr.Code, verr.Message)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Authority) unauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s", error="invalid_token", error_description="%s"`,
		a.cfg.Issuer, strings.ReplaceAll(msg, `"`, `'`)))
	writeJSON(w, http.StatusUnauthorized, arm.Body{Error: &arm.Error{Code: code, Message: msg}})
}

func writeOAuthErr(w http.ResponseWriter, e *TokenError) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
