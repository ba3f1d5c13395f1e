// Package tlsca keeps the emulator's own certificate authority and the server
// certificate it issues for the HTTPS listener. Both are created on first use
// in a directory (private keys mode 0600) and reused afterwards, so a client
// that trusts the CA once keeps trusting the daemon across restarts. The
// server certificate is issued again when it no longer covers the listening
// address or is about to expire; the CA stays.
package tlsca
