package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside the directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 397 * 24 * time.Hour
	// renewBefore is how long before expiry a server certificate is replaced.
	renewBefore = 30 * 24 * time.Hour
)

// Bundle is a loaded CA and server certificate.
type Bundle struct {
	Dir    string
	CA     *x509.Certificate
	CAPEM  []byte
	Server tls.Certificate
	// Issued reports whether Ensure made a new server certificate.
	Issued bool
}

// CAPath is the file clients trust (REQUESTS_CA_BUNDLE, SSL_CERT_FILE).
func (b *Bundle) CAPath() string { return filepath.Join(b.Dir, CAFile) }

// Pool is a certificate pool holding only the CA.
func (b *Bundle) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(b.CA)
	return p
}

// TLSConfig is a server configuration presenting the server certificate.
func (b *Bundle) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{b.Server}, MinVersion: tls.VersionTLS12}
}

// Ensure loads the CA and server certificate from dir, creating what is
// missing. The server certificate covers localhost, 127.0.0.1, ::1 and the
// given hosts (names or IP addresses); it is issued again when it does not
// cover them or expires within 30 days. A CA whose files are unreadable or
// do not match is an error that names the files to remove.
func Ensure(dir string, hosts []string, now time.Time) (*Bundle, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create certificate directory %s: %w", dir, err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, now)
	if err != nil {
		return nil, err
	}
	names, ips := split(append([]string{"localhost", "127.0.0.1", "::1"}, hosts...))
	b := &Bundle{Dir: dir, CA: caCert, CAPEM: pemCert(caCert.Raw)}
	srv, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
	if err == nil && covers(srv, caCert, names, ips, now) {
		b.Server = srv
		return b, nil
	}
	// A missing, unreadable, expiring or too narrow server certificate is
	// replaced: the CA vouches for the new one.
	srv, err = issueServer(dir, caCert, caKey, names, ips, now)
	if err != nil {
		return nil, err
	}
	b.Server, b.Issued = srv, true
	return b, nil
}

func split(hosts []string) (names []string, ips []net.IP) {
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return names, ips
}

// covers reports whether srv is signed by ca, valid for 30 more days and
// names every host.
func covers(srv tls.Certificate, ca *x509.Certificate, names []string, ips []net.IP, now time.Time) bool {
	if len(srv.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(srv.Certificate[0])
	if err != nil {
		return false
	}
	if leaf.CheckSignatureFrom(ca) != nil || now.Before(leaf.NotBefore) || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil:
		ca, perr := x509.ParseCertificate(pair.Certificate[0])
		if perr != nil || !ca.IsCA {
			return nil, nil, fmt.Errorf("%s is not a CA certificate: remove %s and %s to make a new CA (clients must then trust the new %s)", certPath, certPath, keyPath, CAFile)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, nil, fmt.Errorf("%s: unsupported key type", keyPath)
		}
		return ca, signer, nil
	case errors.Is(err, os.ErrNotExist):
		if _, e1 := os.Stat(certPath); e1 == nil {
			return nil, nil, fmt.Errorf("%s exists but its key %s does not: remove %s to make a new CA", certPath, keyPath, certPath)
		}
	default:
		return nil, nil, fmt.Errorf("load the CA from %s and %s: %w (remove both to make a new CA; clients must then trust the new %s)", certPath, keyPath, err, CAFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"vmss emulator"}, CommonName: "vmss emulator CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writeFile(certPath, pemCert(der), 0o644); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

func issueServer(dir string, ca *x509.Certificate, caKey crypto.Signer, names []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"vmss emulator"}, CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	keyPath, certPath := filepath.Join(dir, ServerKeyFile), filepath.Join(dir, ServerFile)
	if err := writeKey(keyPath, key); err != nil {
		return tls.Certificate{}, err
	}
	// The chain holds the CA too, so clients that only trust it verify at once.
	if err := writeFile(certPath, append(pemCert(der), pemCert(ca.Raw)...), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile writes atomically with mode perm (a key never exists with a
// wider mode, not even for a moment).
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
