package instance

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	base := Spec{Name: "vmss-web-0", Hostname: "web000000", AdminUser: "azureuser"}
	with := func(f func(*Spec)) Spec { s := base; f(&s); return s }
	bash := func(p string) bool { return p == "/bin/bash" }
	tests := []struct {
		name    string
		in      Spec
		exists  func(string) bool
		check   func(Spec) bool
		wantErr string
	}{
		{name: "defaults", in: base, exists: bash, check: func(s Spec) bool {
			return s.AdminUID == 0 && s.AdminGID == 0 && s.Shell == "/bin/bash" &&
				s.DNSServer.String() == DefaultDNSServer && s.Home() == "/home/azureuser"
		}},
		{name: "sh without bash", in: base, exists: func(string) bool { return false },
			check: func(s Spec) bool { return s.Shell == "/bin/sh" }},
		{name: "gid follows uid", in: with(func(s *Spec) { s.AdminUID = 60001 }),
			check: func(s Spec) bool { return s.AdminGID == 60001 }},
		{name: "explicit ids", in: with(func(s *Spec) { s.AdminUID, s.AdminGID = 60001, 60002 }),
			check: func(s Spec) bool { return s.AdminUID == 60001 && s.AdminGID == 60002 }},
		{name: "fqdn hostname", in: with(func(s *Spec) { s.Hostname = "web-0.internal" }),
			check: func(s Spec) bool { return true }},
		{name: "wrong prefix", in: with(func(s *Spec) { s.Name = "other-0" }), wantErr: "must start with the prefix"},
		{name: "prefix only", in: with(func(s *Spec) { s.Name = "vmss-" }), wantErr: "must start with the prefix"},
		{name: "slash in name", in: with(func(s *Spec) { s.Name = "vmss-a/b" }), wantErr: "invalid instance name"},
		{name: "long name", in: with(func(s *Spec) { s.Name = "vmss-" + strings.Repeat("a", 60) }), wantErr: "invalid instance name"},
		{name: "no hostname", in: with(func(s *Spec) { s.Hostname = "" }), wantErr: "invalid hostname"},
		{name: "bad hostname", in: with(func(s *Spec) { s.Hostname = "web_0" }), wantErr: "invalid hostname"},
		{name: "hyphen edge", in: with(func(s *Spec) { s.Hostname = "-web" }), wantErr: "invalid hostname"},
		{name: "root admin", in: with(func(s *Spec) { s.AdminUser = "root" }), wantErr: "invalid admin user"},
		{name: "upper admin", in: with(func(s *Spec) { s.AdminUser = "Azure" }), wantErr: "invalid admin user"},
		{name: "nobody uid", in: with(func(s *Spec) { s.AdminUID = 65534 }), wantErr: "invalid admin uid"},
		{name: "negative gid", in: with(func(s *Spec) { s.AdminGID = -1 }), wantErr: "invalid admin gid"},
		{name: "relative shell", in: with(func(s *Spec) { s.Shell = "bash" }), wantErr: "invalid shell"},
		{name: "bad search", in: with(func(s *Spec) { s.SearchDomain = "a b" }), wantErr: "invalid search domain"},
		{name: "bad extra host", in: with(func(s *Spec) { s.ExtraHosts = []HostEntry{{Names: []string{"x"}}} }), wantErr: "invalid extra hosts entry"},
		{name: "many errors", in: Spec{Name: "x"}, wantErr: "invalid admin user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exists := tc.exists
			if exists == nil {
				exists = bash
			}
			got, err := normalize(tc.in, "vmss-", exists)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(got) {
				t.Errorf("normalized spec %+v fails the check", got)
			}
		})
	}
}

func TestRenderEtc(t *testing.T) {
	s, err := normalize(Spec{
		Name: "vmss-web-0", Hostname: "web000000", AdminUser: "azureuser", AdminUID: 50001,
		PrivateIP: netip.MustParseAddr("10.0.0.4"), SearchDomain: "abc.internal.cloudapp.net",
		ExtraHosts: []HostEntry{{Addr: netip.MustParseAddr("10.0.0.9"), Names: []string{"db", "db.local"}}},
	}, "vmss-", func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/bash\n# comment\nazureuser:x:1000:1000::/home/azureuser:/bin/bash\nold:x:50001:50001::/home/old:/bin/sh\n"
	group := "root:x:0:\nazureuser:x:1000:\nstaff:x:50:\n"
	files := map[string]string{}
	for _, f := range renderEtc(s, []byte(passwd), []byte(group)) {
		files[f.name] = string(f.data)
	}
	want := map[string]string{
		"hostname": "web000000\n",
		"hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"10.0.0.4\tweb000000\n10.0.0.9\tdb db.local\n",
		"resolv.conf": "nameserver 168.63.129.16\nsearch abc.internal.cloudapp.net\n",
		"passwd":      "root:x:0:0:root:/root:/bin/bash\n# comment\nazureuser:x:50001:50001::/home/azureuser:/bin/bash\n",
		"group":       "root:x:0:\nstaff:x:50:\nazureuser:x:50001:\n",
	}
	for name, w := range want {
		if files[name] != w {
			t.Errorf("%s:\n got %q\nwant %q", name, files[name], w)
		}
	}
	s.PrivateIP = netip.Addr{}
	s.Hostname = "web-0.example"
	if h := string(renderHosts(s)); !strings.Contains(h, "127.0.1.1\tweb-0.example web-0\n") {
		t.Errorf("hosts without private IP = %q", h)
	}
}

func TestCheckHostIDs(t *testing.T) {
	passwd := []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
	group := []byte("root:x:0:\ndocker:x:999:\n")
	tests := []struct {
		uid, gid int
		allow    bool
		wantErr  string
	}{
		{50000, 50000, false, ""},
		{1000, 50000, false, `host user "alice"`},
		{50000, 999, false, `host group "docker"`},
		{1000, 999, true, ""},
	}
	for _, tc := range tests {
		err := checkHostIDs(Spec{Name: "vmss-x", AdminUID: tc.uid, AdminGID: tc.gid, AllowHostUID: tc.allow}, passwd, group)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("uid %d gid %d allow %v: err = %v, want %q", tc.uid, tc.gid, tc.allow, err, tc.wantErr)
		}
	}
}

// replaceFile replaces the content and mode, leaves no temporary file and
// keeps the old file when it cannot write.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	for _, content := range []string{"one\n", "two\n"} {
		if err := replaceFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("content = %q, %v; want %q", b, err, content)
		}
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v", st.Mode(), err)
	}
	if err := replaceFile(filepath.Join(dir, "missing", "x"), []byte("x"), 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
}
