package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vmss-emulator/vmss/tlsca"
)

// Files written to the public directory (mode 0644, no secret in them).
const (
	EndpointFile = "endpoint.json"
	// CAFile is the emulator's CA alone (Go: a cert pool).
	CAFile = "ca.pem"
	// BundleFile is the system's trusted roots followed by the emulator's CA,
	// for REQUESTS_CA_BUNDLE and SSL_CERT_FILE: a client given it still
	// reaches Azure.
	BundleFile = "ca-bundle.pem"
)

// SystemRoots is the system's CA bundle on Debian and Ubuntu.
var SystemRoots = "/etc/ssl/certs/ca-certificates.crt"

// Endpoint is what `vmss az-config` needs to know about a running gateway.
type Endpoint struct {
	Cloud           string `json:"cloud"`
	ResourceManager string `json:"resourceManager"`
	Authority       string `json:"authority"`
	Audience        string `json:"audience"`
	VMImageAliasDoc string `json:"vmImageAliasDoc"`
	CAFile          string `json:"caFile"`
	CABundle        string `json:"caBundle"`
}

func endpointFor(dir string, ap netip.AddrPort) Endpoint {
	u := URL(ap)
	return Endpoint{
		Cloud: CloudName, ResourceManager: u, Authority: u + "adfs", Audience: Audience,
		VMImageAliasDoc: u + AliasDocPath[1:],
		CAFile:          filepath.Join(dir, CAFile), CABundle: filepath.Join(dir, BundleFile),
	}
}

func writePublic(dir string, ap netip.AddrPort, certs *tlsca.Bundle) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("make %s readable: %w", dir, err)
	}
	ep := endpointFor(dir, ap)
	bundle, err := os.ReadFile(SystemRoots)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the system's CA bundle: %w", err)
	}
	if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
		bundle = append(bundle, '\n')
	}
	bundle = append(bundle, certs.CAPEM...)
	data, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{CAFile: certs.CAPEM, BundleFile: bundle, EndpointFile: append(data, '\n')} {
		p := filepath.Join(dir, name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(tmp, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// ReadEndpoint reads what a running gateway wrote to dir.
func ReadEndpoint(dir string) (Endpoint, error) {
	var ep Endpoint
	data, err := os.ReadFile(filepath.Join(dir, EndpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return ep, fmt.Errorf("no HTTPS endpoint in %s: start the daemon (sudo vmss serve) with the HTTPS API on (--https-addr), and give az-config the same --runtime-dir", dir)
	}
	if err != nil {
		return ep, err
	}
	if err := json.Unmarshal(data, &ep); err != nil {
		return ep, fmt.Errorf("%s: %w", filepath.Join(dir, EndpointFile), err)
	}
	return ep, nil
}

// PublicDir is the public directory under a runtime directory.
func PublicDir(runtimeDir string) string { return filepath.Join(runtimeDir, "https") }
