package sshservice

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmss-emulator/vmss/instance"
)

// fakeDNS answers A queries from a table on a loopback UDP port and records
// the names asked.
func fakeDNS(t *testing.T, records map[string]string) (addr string, asked func() []string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var names []string
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		mu.Lock()
		names = append(names, q.Name)
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		if ip, ok := records[strings.TrimSuffix(q.Name, ".")]; ok {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func TestInstanceResolver(t *testing.T) {
	const suffix = "abc.bx.internal.cloudapp.net"
	srvAddr, asked := fakeDNS(t, map[string]string{
		"web000002." + suffix: "10.0.0.6",
		"other.example":       "10.9.9.9",
	})
	r := &instanceResolver{
		// Every dial goes to the fake server, whatever address is asked.
		dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srvAddr)
		},
		hosts: hostsTable(instance.Spec{Hostname: "web000000", PrivateIP: netip.MustParseAddr("10.0.0.4"),
			ExtraHosts: []instance.HostEntry{{Addr: netip.MustParseAddr("10.1.2.3"), Names: []string{"extra"}}}}),
		search: suffix,
		server: netip.MustParseAddr("168.63.129.16"),
	}
	tests := []struct {
		name    string
		want    []string
		queries []string // names sent to the DNS server, in order
		wantErr bool
	}{
		{name: "localhost", want: []string{"127.0.0.1", "::1"}},
		{name: "LOCALHOST.", want: []string{"127.0.0.1", "::1"}},
		{name: "ip6-localhost", want: []string{"::1"}},
		{name: "web000000", want: []string{"10.0.0.4"}},
		{name: "extra", want: []string{"10.1.2.3"}},
		{name: "web000002", want: []string{"10.0.0.6"}, queries: []string{"web000002." + suffix + "."}},
		{name: "WEB000002", want: []string{"10.0.0.6"}, queries: []string{"web000002." + suffix + "."}},
		{name: "web000002." + suffix, want: []string{"10.0.0.6"}, queries: []string{"web000002." + suffix + "."}},
		{name: "other.example", want: []string{"10.9.9.9"}, queries: []string{"other.example."}},
		{name: "nosuch", wantErr: true, queries: []string{"nosuch." + suffix + ".", "nosuch."}},
		{name: "nosuch.", wantErr: true, queries: []string{"nosuch."}},
		{name: "a.b", wantErr: true, queries: []string{"a.b.", "a.b." + suffix + "."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(asked())
			ips, err := r.lookup(context.Background(), tc.name)
			if (err != nil) != tc.wantErr {
				t.Fatalf("lookup(%q) = %v, %v; want error %v", tc.name, ips, err, tc.wantErr)
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("lookup(%q) = %v, want %v", tc.name, got, tc.want)
			}
			if q := asked()[before:]; !slices.Equal(q, tc.queries) {
				t.Errorf("lookup(%q) asked %v, want %v", tc.name, q, tc.queries)
			}
		})
	}
}
