package identity

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside the directory.
const (
	CredentialsFile = "credentials.json"
	KeyFile         = "signing-key.pem"
)

// DefaultLifetime is how long a token is valid (Azure AD's usual hour).
const DefaultLifetime = time.Hour

// Credentials are the service principal's: what `az login
// --service-principal` and azidentity's client-secret credential take.
type Credentials struct {
	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	ObjectID     string `json:"objectId"`
}

// Config names the authority.
type Config struct {
	// Dir keeps the credentials and the signing key (created mode 0700).
	Dir string
	// TenantID is the tenant the service principal belongs to (used when the
	// credentials are first made).
	TenantID string
	// Issuer is the authority URL put into tokens and required back, e.g.
	// https://127.0.0.1:8443/adfs.
	Issuer string
	// Audiences are the resources tokens are granted for and accepted for
	// (compared without a trailing slash). The first is the ARM audience.
	Audiences []string
	Lifetime  time.Duration    // default DefaultLifetime
	Now       func() time.Time // default time.Now
}

// Authority grants and checks tokens.
type Authority struct {
	cfg   Config
	creds Credentials
	key   *rsa.PrivateKey
	kid   string
}

// Open loads the credentials and signing key from cfg.Dir, creating them on
// first use.
func Open(cfg Config) (*Authority, error) {
	if cfg.Dir == "" || cfg.Issuer == "" || len(cfg.Audiences) == 0 {
		return nil, errors.New("identity: Dir, Issuer and Audiences are required")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TenantID == "" {
		cfg.TenantID = newUUID()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create identity directory %s: %w", cfg.Dir, err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, KeyFile))
	if err != nil {
		return nil, err
	}
	creds, err := loadOrCreateCredentials(filepath.Join(cfg.Dir, CredentialsFile), cfg.TenantID)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Authority{cfg: cfg, creds: creds, key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:15])}, nil
}

// Credentials returns the service principal's credentials.
func (a *Authority) Credentials() Credentials { return a.creds }

// Issuer is the authority URL.
func (a *Authority) Issuer() string { return a.cfg.Issuer }

// Audience is the ARM audience (the first configured).
func (a *Authority) Audience() string { return a.cfg.Audiences[0] }

// TokenError is an OAuth2 error answer of the token endpoint.
type TokenError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

// Token is a granted access token.
type Token struct {
	AccessToken string
	Resource    string
	ExpiresOn   time.Time
}

// Issue grants a client-credentials token for resource (a resource id, or an
// OAuth2 v2 scope such as https://management.example//.default).
func (a *Authority) Issue(clientID, secret, resource string) (Token, *TokenError) {
	if clientID == "" {
		return Token{}, &TokenError{400, "invalid_request", "MSIS9622: client_id is missing: give the service principal's application id."}
	}
	if !strings.EqualFold(clientID, a.creds.ClientID) {
		return Token{}, &TokenError{400, "unauthorized_client", fmt.Sprintf("MSIS9607: The client '%s' is not registered with this authority. `sudo vmss az-config` shows the service principal's id.", clientID)}
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(a.creds.ClientSecret)) != 1 {
		return Token{}, &TokenError{401, "invalid_client", "MSIS9659: Invalid client secret for '" + clientID + "'. `sudo vmss az-config` shows the current secret."}
	}
	aud, ok := a.audience(resource)
	if !ok {
		return Token{}, &TokenError{400, "invalid_resource", fmt.Sprintf("MSIS9602: The resource or scope '%s' is not served by this authority; ask for one of: %s.", resource, strings.Join(a.cfg.Audiences, ", "))}
	}
	now := a.cfg.Now()
	exp := now.Add(a.cfg.Lifetime)
	tok, err := sign(a.key, a.kid, Claims{
		Audience: aud, Issuer: a.cfg.Issuer,
		IssuedAt: now.Unix(), NotBefore: now.Add(-5 * time.Minute).Unix(), Expires: exp.Unix(),
		AppID: a.creds.ClientID, AppIDACR: "1", ObjectID: a.creds.ObjectID, Subject: a.creds.ObjectID,
		TenantID: a.creds.TenantID, IDType: "app", Version: "1.0", TokenID: newUUID(),
	})
	if err != nil {
		return Token{}, &TokenError{500, "server_error", err.Error()}
	}
	return Token{AccessToken: tok, Resource: aud, ExpiresOn: exp}, nil
}

// audience maps a resource or a scope (resource + "/.default") to the
// configured audience it names.
func (a *Authority) audience(resource string) (string, bool) {
	r := strings.TrimSuffix(resource, "/.default")
	r = strings.TrimSuffix(r, "/")
	for _, aud := range a.cfg.Audiences {
		if strings.EqualFold(r, strings.TrimSuffix(aud, "/")) {
			return aud, true
		}
	}
	return "", false
}

// VerifyError says why a token was refused, with ARM's error code.
type VerifyError struct {
	Code    string
	Message string
}

func (e *VerifyError) Error() string { return e.Code + ": " + e.Message }

// Verify checks a bearer token: signature, issuer, audience and lifetime.
func (a *Authority) Verify(token string) (Claims, *VerifyError) {
	c, err := parse(&a.key.PublicKey, a.kid, token)
	if err != nil {
		return c, &VerifyError{"InvalidAuthenticationToken", "The access token is invalid: " + err.Error() + ". Get a token from this emulator's authority " + a.cfg.Issuer + "."}
	}
	if c.Issuer != a.cfg.Issuer {
		return c, &VerifyError{"InvalidAuthenticationTokenTenant", fmt.Sprintf("The access token is from the wrong issuer '%s'. It must match the authority '%s' of this emulator.", c.Issuer, a.cfg.Issuer)}
	}
	if _, ok := a.audience(c.Audience); !ok {
		return c, &VerifyError{"InvalidAuthenticationTokenAudience", fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.", c.Audience, strings.Join(a.cfg.Audiences, "', '"))}
	}
	now := a.cfg.Now()
	if now.Unix() >= c.Expires {
		return c, &VerifyError{"ExpiredAuthenticationToken", fmt.Sprintf("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			time.Unix(c.Expires, 0).UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123))}
	}
	if now.Unix() < c.NotBefore {
		return c, &VerifyError{"InvalidAuthenticationToken", "The access token is not valid yet (nbf is in the future)."}
	}
	return c, nil
}

func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%s holds no PEM key: remove it to make a new signing key (tokens already given out stop working)", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (remove it to make a new signing key)", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is not an RSA key: remove it to make a new signing key", path)
		}
		return rk, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return key, nil
}

func loadOrCreateCredentials(path, tenant string) (Credentials, error) {
	var c Credentials
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &c); err != nil || c.ClientID == "" || c.ClientSecret == "" || c.TenantID == "" {
			return c, fmt.Errorf("%s is not valid service principal credentials: remove it to make new ones", path)
		}
		if c.ObjectID == "" {
			c.ObjectID = c.ClientID
		}
		return c, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("read credentials: %w", err)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return c, err
	}
	c = Credentials{TenantID: tenant, ClientID: newUUID(), ClientSecret: base64.RawURLEncoding.EncodeToString(secret[:]), ObjectID: newUUID()}
	data, err = json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, err
	}
	return c, writeFile(path, append(data, '\n'))
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// writeFile writes data mode 0600, atomically.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadCredentials reads the service principal's credentials from dir
// without creating any.
func ReadCredentials(dir string) (Credentials, error) {
	var c Credentials
	path := filepath.Join(dir, CredentialsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("no service principal in %s: start the daemon once (sudo vmss serve) with the HTTPS API on, and give the same --state-dir", dir)
	}
	if err != nil {
		return c, fmt.Errorf("read credentials (run as root: sudo): %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil || c.ClientID == "" {
		return c, fmt.Errorf("%s is not valid service principal credentials: remove it and restart the daemon to make new ones", path)
	}
	return c, nil
}
