package dns

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// Record gives an instance's computer name its private address.
type Record struct {
	// Name is the computer name (host name), a single DNS label of
	// letters, digits and hyphens, e.g. "web000002"; case does not matter.
	Name string
	// IP is the instance's private IPv4 address.
	IP netip.Addr
}

// zone is an immutable snapshot of the records; a change builds a new one.
type zone struct {
	serial uint32
	byName map[string]netip.Addr // lower-case name -> address
	byIP   map[netip.Addr]string // address -> lower-case name
}

func emptyZone() *zone {
	return &zone{serial: 1, byName: map[string]netip.Addr{}, byIP: map[netip.Addr]string{}}
}

// checkLabel reports whether name is a host name label.
func checkLabel(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("name %q: want 1 to 63 characters", name)
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("name %q: must not start or end with '-'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("name %q: only letters, digits and '-' are allowed", name)
		}
	}
	return nil
}

// check validates one record against the server's address space.
func (s *Server) check(r Record) error {
	if err := checkLabel(r.Name); err != nil {
		return err
	}
	if !r.IP.Is4() {
		return fmt.Errorf("record %s: address %v: want IPv4", r.Name, r.IP)
	}
	if len(s.prefixes) > 0 && !slices.ContainsFunc(s.prefixes, func(p netip.Prefix) bool { return p.Contains(r.IP) }) {
		return fmt.Errorf("record %s: address %v is outside the VNET's address space %v", r.Name, r.IP, s.prefixes)
	}
	return nil
}

// with returns a copy of z with the given serial, records put (replacing
// same names) and names removed. It fails, changing nothing, on an invalid
// record or when two names would share an address.
func (s *Server) with(z *zone, serial uint32, put []Record, remove []string) (*zone, error) {
	n := &zone{
		serial: serial,
		byName: make(map[string]netip.Addr, len(z.byName)+len(put)),
		byIP:   make(map[netip.Addr]string, len(z.byIP)+len(put)),
	}
	for k, v := range z.byName {
		n.byName[k] = v
	}
	for k, v := range z.byIP {
		n.byIP[k] = v
	}
	for _, name := range remove {
		key := strings.ToLower(name)
		if ip, ok := n.byName[key]; ok {
			delete(n.byName, key)
			delete(n.byIP, ip)
		}
	}
	var errs []error
	for _, r := range put {
		if err := s.check(r); err != nil {
			errs = append(errs, err)
			continue
		}
		key := strings.ToLower(r.Name)
		if old, ok := n.byName[key]; ok {
			delete(n.byIP, old)
		}
		if other, ok := n.byIP[r.IP]; ok && other != key {
			errs = append(errs, fmt.Errorf("record %s: address %v already belongs to %s", r.Name, r.IP, other))
			continue
		}
		n.byName[key] = r.IP
		n.byIP[r.IP] = key
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return n, nil
}

// SuffixFor returns an internal DNS suffix in Azure's shape,
// "<26 letters and digits>.<2 letters>.internal.cloudapp.net", derived
// from seed (for example a VNET's resource id): the same seed always gives
// the same suffix.
func SuffixFor(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	s := new(big.Int).SetBytes(sum[:]).Text(36)
	for len(s) < 28 {
		s = "0" + s
	}
	region := []byte{'a' + sum[30]%26, 'a' + sum[31]%26}
	return s[:26] + "." + string(region) + ".internal.cloudapp.net"
}

// maxSuffix keeps "hostmaster.<suffix>." within DNS's 255-byte names.
const maxSuffix = 240

// checkSuffix validates and canonicalizes (lower case, with the final dot)
// a DNS suffix.
func checkSuffix(suffix string) (string, error) {
	s := strings.ToLower(strings.TrimSuffix(suffix, "."))
	if len(s) > maxSuffix {
		return "", fmt.Errorf("DNS suffix %q: longer than %d characters", suffix, maxSuffix)
	}
	if s == "" || strings.HasPrefix(s, ".") {
		return "", fmt.Errorf("DNS suffix %q: want a domain such as %s", suffix, SuffixFor("example"))
	}
	if _, ok := mdns.IsDomainName(s); !ok {
		return "", fmt.Errorf("DNS suffix %q: not a domain name", suffix)
	}
	for _, label := range strings.Split(s, ".") {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("DNS suffix %q: %w", suffix, err)
		}
	}
	return mdns.Fqdn(s), nil
}
