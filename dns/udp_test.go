package dns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func pack(t *testing.T, m *mdns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func query(id uint16, name string, qtype uint16, mod ...func(*mdns.Msg)) *mdns.Msg {
	m := new(mdns.Msg).SetQuestion(name, qtype)
	m.Id = id
	for _, f := range mod {
		f(m)
	}
	return m
}

func edns(size uint16, do bool) func(*mdns.Msg) {
	return func(m *mdns.Msg) { m.SetEdns0(size, do) }
}

// requests covers the kinds of query the server answers differently.
func requests(t *testing.T) map[string][]byte {
	ptr := "4.0.0.10.in-addr.arpa."
	r := map[string][]byte{
		"A short":       pack(t, query(1, "web000002.", mdns.TypeA)),
		"A mixed case":  pack(t, query(2, "WeB000002.", mdns.TypeA)),
		"A fqdn":        pack(t, query(3, "web000002."+suffix+".", mdns.TypeA)),
		"A fqdn upper":  pack(t, query(4, "WEB000002.ABCDEFGH.bx.internal.cloudapp.net.", mdns.TypeA)),
		"AAAA nodata":   pack(t, query(5, "web000002.", mdns.TypeAAAA)),
		"nxdomain":      pack(t, query(6, "nosuch."+suffix+".", mdns.TypeA)),
		"refused":       pack(t, query(7, "example.com.", mdns.TypeA)),
		"SOA":           pack(t, query(8, suffix+".", mdns.TypeSOA)),
		"PTR":           pack(t, query(9, ptr, mdns.TypePTR)),
		"PTR nxdomain":  pack(t, query(10, "9.9.0.10.in-addr.arpa.", mdns.TypePTR)),
		"EDNS":          pack(t, query(11, "web000002.", mdns.TypeA, edns(1232, false))),
		"EDNS DO":       pack(t, query(12, "web000002.", mdns.TypeA, edns(4096, true))),
		"EDNS small":    pack(t, query(13, "web000002.", mdns.TypeA, edns(100, false))),
		"no RD":         pack(t, query(14, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = false })),
		"CD":            pack(t, query(15, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.CheckingDisabled = true })),
		"chaos":         pack(t, query(16, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS })),
		"notify":        pack(t, query(17, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify })),
		"update":        pack(t, query(18, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate })),
		"two questions": pack(t, query(19, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Question = append(m.Question, m.Question[0]) })),
		"no question":   pack(t, query(20, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Question = nil })),
		"with an answer": pack(t, query(21, "web000002.", mdns.TypeA, func(m *mdns.Msg) {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: "a.", Rrtype: mdns.TypeA, Class: mdns.ClassINET}, A: net.IPv4(1, 2, 3, 4)}}
		})),
		"cut short":       pack(t, query(22, "web000002.", mdns.TypeA))[:20],
		"EDNS + garbage":  append(pack(t, query(23, "web000002.", mdns.TypeA, edns(1232, false))), 0, 0, 0),
		"header only RD":  {0, 24, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"TC set in query": pack(t, query(25, "web000002.", mdns.TypeA, func(m *mdns.Msg) { m.Truncated = true })),
	}
	return r
}

// exchangeRaw sends req to addr over UDP and returns the reply's bytes,
// nil when none comes within wait.
func exchangeRaw(t *testing.T, addr string, req []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// TestUDPLoopMatchesMiekgServer sends the same datagrams to miekg/dns's
// UDP server with the same handler and to the read loop: the replies are
// the same bytes, from the full path and from the cache alike, and the
// cached reply carries each request's own ID.
func TestUDPLoopMatchesMiekgServer(t *testing.T) {
	s := testServer(t)
	ref, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	refSrv := &mdns.Server{PacketConn: ref, Handler: s, NotifyStartedFunc: func() { close(started) }}
	go refSrv.ActivateAndServe()
	<-started
	t.Cleanup(func() { refSrv.Shutdown() })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTest(t, s, pc, nil)

	for name, req := range requests(t) {
		t.Run(name, func(t *testing.T) {
			want := exchangeRaw(t, ref.LocalAddr().String(), req, time.Second)
			for i := range 3 { // full path, then cached
				r := bytes.Clone(req)
				if len(r) >= 2 {
					r[0], r[1] = byte(i), 0x77
				}
				w := bytes.Clone(want)
				if len(w) >= 2 {
					w[0], w[1] = byte(i), 0x77
				}
				if want != nil {
					// The reference answers with the original ID.
					w = exchangeRaw(t, ref.LocalAddr().String(), r, time.Second)
				}
				wait := time.Second
				if want == nil {
					wait = 200 * time.Millisecond
				}
				got := exchangeRaw(t, pc.LocalAddr().String(), r, wait)
				if !bytes.Equal(got, w) {
					t.Fatalf("query %d: reply\n%x\nwant (miekg/dns's server)\n%x", i, got, w)
				}
			}
		})
	}
	// Positive control: the comparison sees a difference in the answer.
	a := exchangeRaw(t, pc.LocalAddr().String(), requests(t)["A short"], time.Second)
	b := exchangeRaw(t, pc.LocalAddr().String(), requests(t)["AAAA nodata"], time.Second)
	if a == nil || bytes.Equal(a[2:], b[2:]) {
		t.Fatal("different questions gave the same reply")
	}
}

func unpack(t *testing.T, b []byte) *mdns.Msg {
	t.Helper()
	if b == nil {
		t.Fatal("no reply")
	}
	m := new(mdns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUDPCache checks what the cache keeps and forgets: a change of the
// records is seen by the next query; the ID and the question's case are
// the request's; EDNS requests are answered with their own OPT record.
func TestUDPCache(t *testing.T) {
	s := testServer(t)
	u := newUDPLoop(s)
	ask := func(m *mdns.Msg) *mdns.Msg { return unpack(t, bytes.Clone(u.handle(nil, pack(t, m)))) }

	if got := summary(ask(query(1, "web000002.", mdns.TypeA))); got != "NOERROR aa | web000002. 10 IN A 10.0.0.4" {
		t.Fatalf("first answer: %s", got)
	}
	if len(u.cache) != 1 {
		t.Fatalf("cache has %d entries after one query, want 1", len(u.cache))
	}
	// Cached: same answer, this request's ID.
	m := ask(query(0xbeef, "web000002.", mdns.TypeA))
	if m.Id != 0xbeef || summary(m) != "NOERROR aa | web000002. 10 IN A 10.0.0.4" || len(u.cache) != 1 {
		t.Fatalf("cached answer: id %x %s, %d entries", m.Id, summary(m), len(u.cache))
	}
	// Another case: its own question and owner name.
	m = ask(query(2, "WEB000002.", mdns.TypeA))
	if m.Question[0].Name != "WEB000002." || summary(m) != "NOERROR aa | WEB000002. 10 IN A 10.0.0.4" {
		t.Fatalf("mixed case: question %s, %s", m.Question[0].Name, summary(m))
	}
	m = ask(query(3, "web000002.", mdns.TypeA))
	if m.Question[0].Name != "web000002." || summary(m) != "NOERROR aa | web000002. 10 IN A 10.0.0.4" {
		t.Fatalf("lower case after mixed case: question %s, %s", m.Question[0].Name, summary(m))
	}

	// Changes invalidate: Add, Remove, SetRecords.
	ip := netip.MustParseAddr
	if err := s.Add(Record{Name: "web000002", IP: ip("10.0.0.6")}); err != nil {
		t.Fatal(err)
	}
	if got := summary(ask(query(4, "web000002.", mdns.TypeA))); got != "NOERROR aa | web000002. 10 IN A 10.0.0.6" {
		t.Fatalf("after Add: %s", got)
	}
	if m := ask(query(5, "6.0.0.10.in-addr.arpa.", mdns.TypePTR)); m.Rcode != mdns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("PTR after Add: %s", summary(m))
	}
	s.Remove("web000002")
	if m := ask(query(6, "web000002.", mdns.TypeA)); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("after Remove: %s", summary(m))
	}
	if m := ask(query(7, "6.0.0.10.in-addr.arpa.", mdns.TypePTR)); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("PTR after Remove: %s", summary(m))
	}
	if err := s.SetRecords([]Record{{Name: "web000002", IP: ip("10.0.0.9")}}); err != nil {
		t.Fatal(err)
	}
	if got := summary(ask(query(8, "web000002.", mdns.TypeA))); got != "NOERROR aa | web000002. 10 IN A 10.0.0.9" {
		t.Fatalf("after SetRecords: %s", got)
	}
	if got := ask(query(9, suffix+".", mdns.TypeSOA)).Answer[0].(*mdns.SOA).Serial; got != 5 {
		t.Fatalf("SOA serial %d after three more changes, want 5", got)
	}

	// EDNS: the OPT record follows each request, and a request without
	// EDNS gets none, whatever was asked before.
	for _, tc := range []struct {
		mod  func(*mdns.Msg)
		size uint16
		do   bool
	}{
		{edns(1232, false), 1232, false},
		{nil, 0, false},
		{edns(4096, true), 4096, false}, // DO is not echoed: no DNSSEC
		{edns(100, false), 512, false},  // at least 512
		{edns(1232, false), 1232, false},
	} {
		var mods []func(*mdns.Msg)
		if tc.mod != nil {
			mods = append(mods, tc.mod)
		}
		m := ask(query(10, "web000002.", mdns.TypeA, mods...))
		opt := m.IsEdns0()
		switch {
		case tc.size == 0 && opt != nil:
			t.Errorf("no EDNS asked, OPT %v answered", opt)
		case tc.size != 0 && (opt == nil || opt.UDPSize() != tc.size || opt.Do() != tc.do):
			t.Errorf("EDNS %d: answered OPT %v", tc.size, opt)
		case len(m.Answer) != 1:
			t.Errorf("EDNS %d: %s", tc.size, summary(m))
		}
	}
}

// TestUDPCacheBounded asks many distinct names: the cache stays within its
// bound and keeps answering correctly.
func TestUDPCacheBounded(t *testing.T) {
	s := testServer(t)
	u := newUDPLoop(s)
	peak := 0
	for i := range 30000 {
		m := unpack(t, u.handle(nil, pack(t, query(uint16(i), fmt.Sprintf("n%d.", i), mdns.TypeA))))
		if m.Rcode != mdns.RcodeNameError || m.Id != uint16(i) {
			t.Fatalf("query %d: %s", i, summary(m))
		}
		peak = max(peak, u.bytes)
	}
	if peak > maxCacheBytes || peak < maxCacheBytes/2 {
		t.Fatalf("cache peaked at %d bytes, want about %d at most", peak, maxCacheBytes)
	}
	if m := unpack(t, u.handle(nil, pack(t, query(1, "web000002.", mdns.TypeA)))); len(m.Answer) != 1 {
		t.Fatalf("after many names: %s", summary(m))
	}
}

// TestServeManySockets serves on several sockets at once and stops them all.
func TestServeManySockets(t *testing.T) {
	s := testServer(t)
	var pcs []net.PacketConn
	for range 3 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, pcs, nil) }()
	for _, pc := range pcs {
		m := unpack(t, exchangeRaw(t, pc.LocalAddr().String(), pack(t, query(7, "web000002.", mdns.TypeA)), 2*time.Second))
		if len(m.Answer) != 1 || m.Id != 7 {
			t.Fatalf("on %s: %s", pc.LocalAddr(), summary(m))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// BenchmarkUDPLoopHandle measures a cached answer: lookup, copy, ID patch.
func BenchmarkUDPLoopHandle(b *testing.B) {
	s := testServer(b)
	u := newUDPLoop(s)
	req, err := query(1, "web000002."+suffix+".", mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req[1] = byte(i)
		if dst = u.handle(dst[:0], req); dst == nil {
			b.Fatal("no reply")
		}
	}
}

// TestUDPRepliesInterleaved asks different questions in turn, cached and
// not, over a socket and through the loop directly: every reply is the
// one for its question (a reply buffer must never alias a cached reply).
func TestUDPRepliesInterleaved(t *testing.T) {
	s := testServer(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTest(t, s, pc, nil)
	names := []string{"web000002.", "web00000a.", "nosuch.", "example.com.", "4.0.0.10.in-addr.arpa."}
	want := map[string]string{}
	for _, n := range names {
		want[n] = summary(ask(s, n, mdns.TypeA))
	}
	u := newUDPLoop(s)
	var buf []byte
	for round := range 4 {
		for i, n := range names {
			id := uint16(round*100 + i)
			req := pack(t, query(id, n, mdns.TypeA))
			viaSocket := unpack(t, exchangeRaw(t, pc.LocalAddr().String(), req, 2*time.Second))
			buf = u.handle(buf[:0], req)
			direct := unpack(t, buf)
			for how, m := range map[string]*mdns.Msg{"socket": viaSocket, "loop": direct} {
				if got := summary(m); got != want[n] || m.Id != id {
					t.Fatalf("round %d, %s via %s: id %d %s, want id %d %s", round, n, how, m.Id, got, id, want[n])
				}
			}
		}
	}
}
