// Package identity is the emulator's token authority, shaped like the AD FS
// authority of an Azure Stack Hub: an OpenID configuration, a JWKS and an
// OAuth2 token endpoint under /adfs that grant client-credentials tokens to
// the service principal the emulator created, and a check of those tokens in
// front of the ARM API. Tokens are JWTs signed (RS256) by a key of the
// daemon's; the key and the credentials are created on first use and kept
// mode 0600. Nothing here talks to the internet.
package identity
