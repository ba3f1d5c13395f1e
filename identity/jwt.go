package identity

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var b64 = base64.RawURLEncoding

// Claims are the claims of an access token. The names are those of Azure AD
// and AD FS access tokens, so clients that decode tokens find what they look
// for (tid, oid, appid).
type Claims struct {
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expires   int64  `json:"exp"`
	AppID     string `json:"appid"`
	AppIDACR  string `json:"appidacr,omitempty"`
	ObjectID  string `json:"oid"`
	Subject   string `json:"sub"`
	TenantID  string `json:"tid"`
	IDType    string `json:"idtyp,omitempty"`
	Version   string `json:"ver"`
	TokenID   string `json:"jti,omitempty"`
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

func sign(key *rsa.PrivateKey, kid string, c Claims) (string, error) {
	h, err := json.Marshal(header{Alg: "RS256", Typ: "JWT", Kid: kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

var errMalformed = errors.New("not a JWT signed by this emulator")

// parse checks the signature of a compact JWS and returns its claims; it
// checks no claim.
func parse(pub *rsa.PublicKey, kid, token string) (Claims, error) {
	var c Claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errMalformed
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return c, errMalformed
	}
	var h header
	if json.Unmarshal(hb, &h) != nil || h.Alg != "RS256" {
		return c, errMalformed
	}
	if h.Kid != kid {
		return c, fmt.Errorf("signed by key %q, not by this emulator's key %q", h.Kid, kid)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return c, errMalformed
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return c, errors.New("bad signature")
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return c, errMalformed
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return c, errMalformed
	}
	return c, nil
}
