package instance

import (
	"errors"
	"fmt"
	"github.com/vmss-emulator/vmss/internal/defaults"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strings"
)

// Defaults applied to a zero Spec field.
const (
	// DefaultDNSServer is Azure's platform DNS address (the wireserver).
	DefaultDNSServer = "168.63.129.16"
	// DefaultPrefix is the name prefix of everything a zero Manager creates.
	DefaultPrefix = defaults.Prefix
)

// Spec describes an instance. Zero fields take the documented defaults; the
// normalized Spec is recorded with the instance (see Manager.Lookup).
type Spec struct {
	// Name of the instance and of its network namespace; must start with the
	// Manager's Prefix; letters, digits, '.', '_' and '-', at most 64 bytes.
	Name string
	// Hostname is the computer name shown by `hostname` inside the instance:
	// an RFC 1123 host name of at most 64 bytes. Required.
	Hostname string
	// AdminUser is the admin account name (lower case letters, digits, '_'
	// and '-', at most 32 bytes, not "root"). Required.
	AdminUser string
	// AdminUID and AdminGID are the account's host uid and gid: there is no
	// user namespace, so these are real host ids. Zero AdminUID means one
	// allocated for the instance from AdminUIDBase on, that no other
	// instance of the host has (see Manager.UIDDir); it is recorded and kept
	// for the instance's life. Zero AdminGID means AdminGID = AdminUID. An
	// explicit AdminUID is the caller's to keep unique: instances sharing a
	// uid can signal each other's admin processes.
	AdminUID, AdminGID int
	// AllowHostUID permits an AdminUID or AdminGID that a host account or
	// group already has (the host account then gets the instance's admin
	// rights over its files and processes, and vice versa). Without it Create
	// refuses such ids.
	AllowHostUID bool
	// Shell is the admin's login shell; zero means /bin/bash when present,
	// else /bin/sh.
	Shell string
	// PrivateIP is the instance's address; /etc/hosts maps Hostname to it.
	// Zero maps Hostname to 127.0.1.1 instead.
	PrivateIP netip.Addr
	// DNSServer is the nameserver in /etc/resolv.conf; zero means
	// DefaultDNSServer.
	DNSServer netip.Addr
	// SearchDomain is the resolv.conf search suffix; empty means no search line.
	SearchDomain string
	// ExtraHosts are appended to /etc/hosts.
	ExtraHosts []HostEntry
}

// HostEntry is one /etc/hosts line.
type HostEntry struct {
	Addr  netip.Addr
	Names []string
}

// Home returns the admin's home directory inside the instance.
func (s Spec) Home() string { return "/home/" + s.AdminUser }

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	userRE   = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	labelRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)
	domainRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)
)

func validName(what, s string, max int) error {
	if s == "" || len(s) > max || !nameRE.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("invalid %s %q: use 1-%d letters, digits, '.', '_' or '-'", what, s, max)
	}
	return nil
}

func validHostname(what, s string, labels *regexp.Regexp) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("invalid %s %q: must be 1-64 bytes", what, s)
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || !labels.MatchString(l) {
			return fmt.Errorf("invalid %s %q: each dot-separated label needs letters, digits and inner hyphens", what, s)
		}
	}
	return nil
}

// normalize validates s against prefix and fills in defaults. fileExists is
// a seam for the shell default.
func normalize(s Spec, prefix string, fileExists func(string) bool) (Spec, error) {
	var errs []error
	if err := validName("instance name", s.Name, 64); err != nil {
		errs = append(errs, err)
	} else if !strings.HasPrefix(s.Name, prefix) || s.Name == prefix {
		errs = append(errs, fmt.Errorf("instance name %q must start with the prefix %q and add to it", s.Name, prefix))
	}
	if err := validHostname("hostname", s.Hostname, labelRE); err != nil {
		errs = append(errs, err)
	}
	if s.AdminUser == "" || len(s.AdminUser) > 32 || !userRE.MatchString(s.AdminUser) || s.AdminUser == "root" {
		errs = append(errs, fmt.Errorf("invalid admin user %q: use 1-32 lower case letters, digits, '_' or '-', starting with a letter or '_', not root", s.AdminUser))
	}
	if s.AdminGID == 0 {
		s.AdminGID = s.AdminUID
	}
	for _, id := range []struct {
		what string
		v    int
	}{{"admin uid", s.AdminUID}, {"admin gid", s.AdminGID}} {
		if id.v == 0 {
			continue // allocated by Create
		}
		if id.v < 1 || id.v >= 1<<31-1 || id.v == 65534 {
			errs = append(errs, fmt.Errorf("invalid %s %d: use 1 to 2147483646, not 65534 (nobody)", id.what, id.v))
		}
	}
	switch {
	case s.Shell == "" && fileExists("/bin/bash"):
		s.Shell = "/bin/bash"
	case s.Shell == "":
		s.Shell = "/bin/sh"
	case !path.IsAbs(s.Shell) || strings.ContainsAny(s.Shell, ":\n"):
		errs = append(errs, fmt.Errorf("invalid shell %q: need an absolute path", s.Shell))
	}
	if !s.DNSServer.IsValid() {
		s.DNSServer = netip.MustParseAddr(DefaultDNSServer)
	}
	if s.SearchDomain != "" {
		if err := validHostname("search domain", s.SearchDomain, domainRE); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range s.ExtraHosts {
		if !h.Addr.IsValid() || len(h.Names) == 0 {
			errs = append(errs, fmt.Errorf("invalid extra hosts entry %v %v: need an address and a name", h.Addr, h.Names))
			continue
		}
		for _, n := range h.Names {
			if err := validHostname("extra hosts name", n, domainRE); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return Spec{}, errors.Join(errs...)
	}
	s.ExtraHosts = append([]HostEntry(nil), s.ExtraHosts...)
	return s, nil
}

// sameIdentity reports whether a and b have the same admin account; that
// cannot change on a live instance.
func sameIdentity(a, b Spec) bool {
	return a.AdminUser == b.AdminUser && a.AdminUID == b.AdminUID && a.AdminGID == b.AdminGID
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
