package instance

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// etcFile is a file the instance sees instead of the host's.
type etcFile struct {
	name string // base name under /etc
	data []byte
}

// renderEtc returns the instance's /etc files for s, built from the host's
// passwd and group databases.
func renderEtc(s Spec, hostPasswd, hostGroup []byte) []etcFile {
	return []etcFile{
		{"hostname", []byte(s.Hostname + "\n")},
		{"hosts", renderHosts(s)},
		{"resolv.conf", renderResolv(s)},
		{"passwd", mergeAccounts(hostPasswd, s.AdminUser, s.AdminUID,
			fmt.Sprintf("%s:x:%d:%d::%s:%s", s.AdminUser, s.AdminUID, s.AdminGID, s.Home(), s.Shell))},
		{"group", mergeAccounts(hostGroup, s.AdminUser, s.AdminGID,
			fmt.Sprintf("%s:x:%d:", s.AdminUser, s.AdminGID))},
	}
}

func renderHosts(s Spec) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	addr := "127.0.1.1"
	if s.PrivateIP.IsValid() {
		addr = s.PrivateIP.String()
	}
	names := s.Hostname
	if short, _, ok := strings.Cut(s.Hostname, "."); ok {
		names += " " + short
	}
	fmt.Fprintf(&b, "%s\t%s\n", addr, names)
	for _, h := range s.ExtraHosts {
		fmt.Fprintf(&b, "%s\t%s\n", h.Addr, strings.Join(h.Names, " "))
	}
	return b.Bytes()
}

func renderResolv(s Spec) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "nameserver %s\n", s.DNSServer)
	if s.SearchDomain != "" {
		fmt.Fprintf(&b, "search %s\n", s.SearchDomain)
	}
	return b.Bytes()
}

// mergeAccounts copies a passwd or group database, drops the entries that
// clash with the admin's name or id (the admin must resolve to exactly one
// entry both ways) and appends the admin's line.
func mergeAccounts(host []byte, name string, id int, line string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(host), "\n") {
		if l == "" {
			continue
		}
		if n, i, ok := accountEntry(l); ok && (n == name || i == id) {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(line)
	b.WriteByte('\n')
	return b.Bytes()
}

// accountEntry returns the name and id (third field) of a passwd or group line.
func accountEntry(line string) (name string, id int, ok bool) {
	f := strings.SplitN(line, ":", 4)
	if len(f) < 3 || strings.HasPrefix(line, "#") {
		return "", 0, false
	}
	id, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 0, false
	}
	return f[0], id, true
}

// hostOwner returns the name of the account in a passwd or group database
// that has id.
func hostOwner(db []byte, id int) (string, bool) {
	for _, l := range strings.Split(string(db), "\n") {
		if n, i, ok := accountEntry(l); ok && i == id {
			return n, true
		}
	}
	return "", false
}

// checkHostIDs refuses admin ids that belong to host accounts, unless the
// spec allows it.
func checkHostIDs(s Spec, hostPasswd, hostGroup []byte) error {
	if s.AllowHostUID {
		return nil
	}
	if n, ok := hostOwner(hostPasswd, s.AdminUID); ok {
		return fmt.Errorf("admin uid %d of instance %s belongs to host user %q: choose another AdminUID "+
			"(or leave it zero to have one allocated) or set AllowHostUID to share the host account", s.AdminUID, s.Name, n)
	}
	if n, ok := hostOwner(hostGroup, s.AdminGID); ok {
		return fmt.Errorf("admin gid %d of instance %s belongs to host group %q: choose another AdminGID "+
			"or set AllowHostUID to share the host group", s.AdminGID, s.Name, n)
	}
	return nil
}
