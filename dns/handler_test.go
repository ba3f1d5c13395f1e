package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// fakeWriter records the reply; no socket involved.
type fakeWriter struct {
	remote net.Addr
	msg    *mdns.Msg
}

func (w *fakeWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(168, 63, 129, 16), Port: 53}
}
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *mdns.Msg) error {
	w.msg = m
	return nil
}
func (w *fakeWriter) Write([]byte) (int, error) { panic("not used") }
func (w *fakeWriter) Close() error              { return nil }
func (w *fakeWriter) TsigStatus() error         { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)       {}
func (w *fakeWriter) Hijack()                   {}

const suffix = "abcdefgh.bx.internal.cloudapp.net"

func testServer(t testing.TB) *Server {
	t.Helper()
	s, err := New(Config{Suffix: suffix, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetRecords([]Record{
		{Name: "web000002", IP: netip.MustParseAddr("10.0.0.4")},
		{Name: "WEB00000A", IP: netip.MustParseAddr("10.0.1.5")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ask(s *Server, name string, qtype uint16, mod ...func(*mdns.Msg)) *mdns.Msg {
	r := new(mdns.Msg)
	r.SetQuestion(name, qtype)
	for _, f := range mod {
		f(r)
	}
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 5353}}
	s.ServeDNS(w, r)
	return w.msg
}

// summary renders a reply compactly: rcode, aa, answers, authority owners.
func summary(m *mdns.Msg) string {
	var b strings.Builder
	b.WriteString(mdns.RcodeToString[m.Rcode])
	if m.Authoritative {
		b.WriteString(" aa")
	}
	if m.RecursionAvailable {
		b.WriteString(" ra")
	}
	for _, rr := range m.Answer {
		b.WriteString(" | " + strings.ReplaceAll(rr.String(), "\t", " "))
	}
	for _, rr := range m.Ns {
		b.WriteString(" || " + mdns.TypeToString[rr.Header().Rrtype] + " " + rr.Header().Name)
	}
	return b.String()
}

func TestAnswers(t *testing.T) {
	s := testServer(t)
	soa := " || SOA " + suffix + "."
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web000002.", mdns.TypeA, "NOERROR aa | web000002. 10 IN A 10.0.0.4"},
		{"Web000002.", mdns.TypeA, "NOERROR aa | Web000002. 10 IN A 10.0.0.4"},
		{"web00000a.", mdns.TypeA, "NOERROR aa | web00000a. 10 IN A 10.0.1.5"},
		{"web000002." + suffix + ".", mdns.TypeA, "NOERROR aa | web000002." + suffix + ". 10 IN A 10.0.0.4"},
		{"WEB000002.ABCDEFGH.BX.Internal.CloudApp.Net.", mdns.TypeA, "NOERROR aa | WEB000002.ABCDEFGH.BX.Internal.CloudApp.Net. 10 IN A 10.0.0.4"},
		{"web000002.", mdns.TypeANY, "NOERROR aa | web000002. 10 IN A 10.0.0.4"},
		{"web000002.", mdns.TypeAAAA, "NOERROR aa" + soa},
		{"web000002." + suffix + ".", mdns.TypeMX, "NOERROR aa" + soa},
		{"web000099.", mdns.TypeA, "NXDOMAIN aa" + soa},
		{"web000099." + suffix + ".", mdns.TypeA, "NXDOMAIN aa" + soa},
		{"x.web000002." + suffix + ".", mdns.TypeA, "NXDOMAIN aa" + soa},
		{suffix + ".", mdns.TypeSOA, "NOERROR aa | " + suffix + ". 10 IN SOA ns1." + suffix + ". hostmaster." + suffix + ". 2 3600 300 86400 10"},
		{suffix + ".", mdns.TypeA, "NOERROR aa" + soa},
		{"4.0.0.10.in-addr.arpa.", mdns.TypePTR, "NOERROR aa | 4.0.0.10.in-addr.arpa. 10 IN PTR web000002." + suffix + "."},
		{"5.1.0.10.in-addr.arpa.", mdns.TypePTR, "NOERROR aa | 5.1.0.10.in-addr.arpa. 10 IN PTR web00000a." + suffix + "."},
		{"4.0.0.10.in-addr.arpa.", mdns.TypeA, "NOERROR aa || SOA 0.10.in-addr.arpa."},
		{"9.9.0.10.in-addr.arpa.", mdns.TypePTR, "NXDOMAIN aa || SOA 0.10.in-addr.arpa."},
		{"0.0.10.in-addr.arpa.", mdns.TypePTR, "NOERROR aa || SOA 0.10.in-addr.arpa."},
		{"4.0.1.10.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"4.0.0.192.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"10.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"x.0.0.10.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"04.0.0.10.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"1.4.0.0.10.in-addr.arpa.", mdns.TypePTR, "REFUSED"},
		{"example.com.", mdns.TypeA, "REFUSED"},
		{"internal.cloudapp.net.", mdns.TypeA, "REFUSED"},
		{".", mdns.TypeNS, "REFUSED"},
	} {
		t.Run(tc.name+"/"+mdns.TypeToString[tc.qtype], func(t *testing.T) {
			if got := summary(ask(s, tc.name, tc.qtype)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	s := testServer(t)
	for _, tc := range []struct {
		name string
		mod  func(*mdns.Msg)
		want int
	}{
		{"notify", func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }, mdns.RcodeNotImplemented},
		{"update", func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }, mdns.RcodeNotImplemented},
		{"a response", func(m *mdns.Msg) { m.Response = true }, mdns.RcodeNotImplemented},
		{"no question", func(m *mdns.Msg) { m.Question = nil }, mdns.RcodeFormatError},
		{"two questions", func(m *mdns.Msg) { m.Question = append(m.Question, m.Question[0]) }, mdns.RcodeFormatError},
		{"chaos", func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }, mdns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ask(s, "web000002.", mdns.TypeA, tc.mod)
			if m.Rcode != tc.want || len(m.Answer) != 0 {
				t.Fatalf("got %s, want %s", summary(m), mdns.RcodeToString[tc.want])
			}
		})
	}
	// EDNS is echoed; the reply keeps the request id and the RD bit.
	m := ask(s, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(1232, false); m.Id = 4242 })
	if opt := m.IsEdns0(); opt == nil || opt.UDPSize() != 1232 || m.Id != 4242 || !m.RecursionDesired || m.RecursionAvailable {
		t.Fatalf("EDNS reply: %v", m)
	}
}

func TestRecords(t *testing.T) {
	s := testServer(t)
	ip := netip.MustParseAddr
	// Bad input changes nothing.
	before := s.Records()
	for _, tc := range []struct {
		name    string
		records []Record
		want    string
	}{
		{"bad label", []Record{{Name: "web_1", IP: ip("10.0.0.7")}}, "only letters"},
		{"dot", []Record{{Name: "a.b", IP: ip("10.0.0.7")}}, "only letters"},
		{"hyphen", []Record{{Name: "-a", IP: ip("10.0.0.7")}}, "must not start"},
		{"empty", []Record{{Name: "", IP: ip("10.0.0.7")}}, "1 to 63"},
		{"long", []Record{{Name: strings.Repeat("a", 64), IP: ip("10.0.0.7")}}, "1 to 63"},
		{"ipv6", []Record{{Name: "a", IP: ip("fd00::1")}}, "want IPv4"},
		{"outside", []Record{{Name: "a", IP: ip("10.1.0.7")}}, "outside the VNET"},
		{"name twice", []Record{{Name: "a", IP: ip("10.0.0.7")}, {Name: "A", IP: ip("10.0.0.8")}}, "given twice"},
		{"ip twice", []Record{{Name: "a", IP: ip("10.0.0.7")}, {Name: "b", IP: ip("10.0.0.7")}}, "already belongs to a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetRecords(tc.records)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetRecords = %v, want %q", err, tc.want)
			}
			if got := s.Records(); len(got) != len(before) || got[0] != before[0] || got[1] != before[1] {
				t.Fatalf("records changed to %v", got)
			}
		})
	}
	if err := s.Add(Record{Name: "db1", IP: ip("10.0.0.4")}); err == nil {
		t.Fatal("Add gave a second name to 10.0.0.4")
	}
	// Add replaces a name's address; the old PTR goes with it.
	if err := s.Add(Record{Name: "Web000002", IP: ip("10.0.0.6")}); err != nil {
		t.Fatal(err)
	}
	if got := summary(ask(s, "web000002.", mdns.TypeA)); !strings.HasSuffix(got, "A 10.0.0.6") {
		t.Fatalf("after Add: %s", got)
	}
	if m := ask(s, "4.0.0.10.in-addr.arpa.", mdns.TypePTR); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("old PTR after Add: %s", summary(m))
	}
	s.Remove("WEB000002", "nonexistent")
	if m := ask(s, "web000002.", mdns.TypeA); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("after Remove: %s", summary(m))
	}
	if got := s.Records(); len(got) != 1 || got[0].Name != "web00000a" {
		t.Fatalf("records %v", got)
	}
	// The SOA serial counts changes.
	m := ask(s, suffix+".", mdns.TypeSOA)
	if serial := m.Answer[0].(*mdns.SOA).Serial; serial != 4 {
		t.Fatalf("serial %d after SetRecords, Add, Remove; want 4", serial)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "want a domain"},
		{Config{Suffix: ".x"}, "want a domain"},
		{Config{Suffix: "a..b"}, "not a domain"},
		{Config{Suffix: "a_b.net"}, "only letters"},
		{Config{Suffix: strings.Repeat("a.", 120) + "net"}, "longer than 240"},
		{Config{Suffix: "x.net", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/16")}}, "IPv4 networks"},
		{Config{Suffix: "x.net", TTL: 1}, "TTL"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	s, err := New(Config{Suffix: "ABC.Internal.CloudApp.Net."})
	if err != nil || s.Suffix() != "abc.internal.cloudapp.net." {
		t.Fatalf("New: %v, suffix %q", err, s.Suffix())
	}
	// Without prefixes: any record, PTR for known addresses only.
	if err := s.SetRecords([]Record{{Name: "a", IP: netip.MustParseAddr("192.168.5.5")}}); err != nil {
		t.Fatal(err)
	}
	if got := summary(ask(s, "5.5.168.192.in-addr.arpa.", mdns.TypePTR)); !strings.HasSuffix(got, "PTR a.abc.internal.cloudapp.net.") {
		t.Fatalf("PTR without prefixes: %s", got)
	}
	if got := summary(ask(s, "6.5.168.192.in-addr.arpa.", mdns.TypePTR)); got != "REFUSED" {
		t.Fatalf("unknown PTR without prefixes: %s", got)
	}
}

func TestSuffixFor(t *testing.T) {
	a, b := SuffixFor("vnet-a"), SuffixFor("vnet-b")
	if a == b || a != SuffixFor("vnet-a") {
		t.Fatalf("SuffixFor not deterministic and distinct: %s %s", a, b)
	}
	labels := strings.Split(a, ".")
	if len(labels) != 5 || len(labels[0]) != 26 || len(labels[1]) != 2 || strings.Join(labels[2:], ".") != "internal.cloudapp.net" {
		t.Fatalf("SuffixFor = %s", a)
	}
	if _, err := checkSuffix(a); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkServeDNS(b *testing.B) {
	s := testServer(b)
	r := new(mdns.Msg)
	r.SetQuestion("web000002."+suffix+".", mdns.TypeA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &fakeWriter{remote: &net.UDPAddr{}}
		for pb.Next() {
			s.ServeDNS(w, r)
		}
	})
}

// TestPublicNames: public IPs' names (label.location.cloudapp.azure.com)
// resolve besides the zone, in any case; other outside names stay REFUSED;
// a bad record changes nothing.
func TestPublicNames(t *testing.T) {
	s := testServer(t)
	const name = "vm0.myapp.eastus.cloudapp.azure.com."
	if got := summary(ask(s, name, mdns.TypeA)); !strings.HasPrefix(got, "REFUSED") {
		t.Errorf("before any public record: %s, want REFUSED", got)
	}
	if err := s.SetPublicRecords([]Record{{Name: "VM0.myapp.eastus.cloudapp.azure.com", IP: netip.MustParseAddr("127.77.0.2")}}); err != nil {
		t.Fatal(err)
	}
	if got := summary(ask(s, strings.ToUpper(name), mdns.TypeA)); !strings.Contains(got, "127.77.0.2") {
		t.Errorf("public name: %s, want 127.77.0.2", got)
	}
	if got := summary(ask(s, name, mdns.TypeAAAA)); strings.Contains(got, "127.77.0.2") || strings.HasPrefix(got, "REFUSED") {
		t.Errorf("AAAA of a public name: %s, want no data", got)
	}
	if got := summary(ask(s, "vm1.myapp.eastus.cloudapp.azure.com.", mdns.TypeA)); !strings.HasPrefix(got, "REFUSED") {
		t.Errorf("unknown public name: %s, want REFUSED", got)
	}
	if err := s.SetPublicRecords([]Record{{Name: "x.cloudapp.azure.com", IP: netip.MustParseAddr("::1")}}); err == nil {
		t.Error("an IPv6 public record was accepted")
	}
	if got := summary(ask(s, name, mdns.TypeA)); !strings.Contains(got, "127.77.0.2") {
		t.Errorf("after a refused update: %s, want the old record", got)
	}
}
