package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/vmss-emulator/vmss/identity"
	"github.com/vmss-emulator/vmss/tlsca"
)

// DefaultAddr is where the HTTPS listener listens unless told otherwise.
const DefaultAddr = "127.0.0.1:8443"

// Audience is the resource ARM tokens are granted for (the emulator's
// equivalent of https://management.core.windows.net/).
const Audience = "https://management.vmss.local/"

// CloudName is the name `vmss az-config` registers the emulator under in az.
const CloudName = "vmss"

// Config configures the gateway.
type Config struct {
	// Addr is a loopback address:port; DefaultAddr when empty.
	Addr string
	// StateDir holds tls/ (CA, server certificate) and identity/ (service
	// principal credentials, token signing key).
	StateDir string
	// TenantID is the tenant of the service principal and the subscription.
	TenantID string
	// PublicDir receives, readable by everyone, what clients need to find
	// and trust the listener (see Endpoint); empty writes nothing.
	PublicDir string
	// API serves ARM requests that carry a valid token.
	API    http.Handler
	Logger *slog.Logger
	Now    func() time.Time
}

// Gateway is a bound HTTPS listener and what it presents.
type Gateway struct {
	Addr      netip.AddrPort
	Certs     *tlsca.Bundle
	Authority *identity.Authority
	logger    *slog.Logger
	api       http.Handler
	ln        net.Listener
}

// TLSDir and IdentityDir are the directories under the state directory.
func TLSDir(stateDir string) string      { return filepath.Join(stateDir, "tls") }
func IdentityDir(stateDir string) string { return filepath.Join(stateDir, "identity") }

// ParseAddr checks that addr is a loopback address:port ("localhost" is
// 127.0.0.1).
func ParseAddr(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		host, port, serr := net.SplitHostPort(addr)
		if serr != nil || host != "localhost" {
			return ap, fmt.Errorf("--https-addr %q: give a loopback address:port such as %s", addr, DefaultAddr)
		}
		if ap, err = netip.ParseAddrPort("127.0.0.1:" + port); err != nil {
			return ap, fmt.Errorf("--https-addr %q: %w", addr, err)
		}
	}
	if !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("--https-addr %s is not a loopback address: the HTTPS API is served on loopback only", addr)
	}
	return ap, nil
}

// URL is the ARM endpoint for addr, e.g. https://127.0.0.1:8443/.
func URL(addr netip.AddrPort) string { return "https://" + addr.String() + "/" }

// Listen prepares the certificates and the authority and binds the address.
func Listen(cfg Config) (*Gateway, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.API == nil || cfg.StateDir == "" {
		return nil, errors.New("gateway: API and StateDir are required")
	}
	ap, err := ParseAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s for the HTTPS API (use --https-addr to pick another port, or off): %w", ap, err)
	}
	// The port, when :0 asked for any.
	ap = netip.AddrPortFrom(ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(), ln.Addr().(*net.TCPAddr).AddrPort().Port())
	certs, err := tlsca.Ensure(TLSDir(cfg.StateDir), []string{ap.Addr().String()}, cfg.Now())
	if err != nil {
		ln.Close()
		return nil, err
	}
	auth, err := identity.Open(identity.Config{
		Dir: IdentityDir(cfg.StateDir), TenantID: cfg.TenantID,
		Issuer: "https://" + ap.String() + identity.PathPrefix, Audiences: []string{Audience}, Now: cfg.Now,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	if cfg.PublicDir != "" {
		if err := writePublic(cfg.PublicDir, ap, certs); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return &Gateway{Addr: ap, Certs: certs, Authority: auth, logger: cfg.Logger, api: cfg.API, ln: ln}, nil
}

// URL is the ARM endpoint.
func (g *Gateway) URL() string { return URL(g.Addr) }

// Handler routes the cloud metadata and the authority, and passes every
// other request with a valid token to the API.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata/endpoints", g.metadata)
	mux.HandleFunc("GET "+AliasDocPath, serveAliasDoc)
	mux.Handle(identity.PathPrefix+"/", g.Authority.Handler())
	mux.Handle("/", g.Authority.Require(g.api))
	return mux
}

// Serve answers on the listener until ctx ends.
func (g *Gateway) Serve(ctx context.Context) error {
	hs := &http.Server{
		Handler:           g.Handler(),
		TLSConfig:         g.Certs.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(g.logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(g.ln, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Close releases the listener of a gateway that is not served.
func (g *Gateway) Close() error { return g.ln.Close() }
