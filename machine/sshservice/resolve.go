package sshservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/sshd"
)

// dnsQueryTimeout bounds one query to a VNET's DNS server.
const dnsQueryTimeout = 2 * time.Second

// instanceDialer returns the dialer of an instance's direct-tcpip channels
// (ssh -L, ssh -J). Connections are made from inside the instance, and host
// names are resolved as the instance's own resolver would: first the names
// of its /etc/hosts (localhost, its computer name), then its DNS server (the
// VNET's, at 168.63.129.16) queried from inside the instance, with the
// VNET's suffix as search domain. So `ssh -J jumpbox web000002` and
// `ssh -L 8080:localhost:80` work as on an Azure VM.
func instanceDialer(dial nsnet.DialFunc, spec instance.Spec) sshd.DialFunc {
	r := &instanceResolver{dial: dial, hosts: hostsTable(spec), search: spec.SearchDomain, server: spec.DNSServer}
	if !r.server.IsValid() {
		r.server = netip.MustParseAddr(instance.DefaultDNSServer)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return dial(ctx, network, addr)
		}
		ips, err := r.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := dial(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}

// instanceResolver resolves names the way an instance's resolver does.
type instanceResolver struct {
	dial   nsnet.DialFunc
	hosts  map[string][]netip.Addr
	search string
	server netip.Addr
}

// hostsTable is the name table of an instance's /etc/hosts (see the
// instance package, which writes the file from the same Spec).
func hostsTable(s instance.Spec) map[string][]netip.Addr {
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	t := map[string][]netip.Addr{
		"localhost":     {v4, v6},
		"ip6-localhost": {v6},
		"ip6-loopback":  {v6},
	}
	self := netip.MustParseAddr("127.0.1.1")
	if s.PrivateIP.IsValid() {
		self = s.PrivateIP
	}
	add := func(name string, a netip.Addr) {
		name = strings.ToLower(name)
		t[name] = append(t[name], a)
	}
	if s.Hostname != "" {
		add(s.Hostname, self)
		if short, _, ok := strings.Cut(s.Hostname, "."); ok {
			add(short, self)
		}
	}
	for _, h := range s.ExtraHosts {
		for _, n := range h.Names {
			add(n, h.Addr)
		}
	}
	return t
}

// lookup returns the IPv4 addresses of name (VNETs are IPv4 only in DNS).
// Like a resolver with ndots:1, a name without a dot is tried with the
// search domain first, a name with dots as given first.
func (r *instanceResolver) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	lower := strings.ToLower(name)
	absolute := strings.HasSuffix(lower, ".")
	lower = strings.TrimSuffix(lower, ".")
	if ips := r.hosts[lower]; len(ips) > 0 {
		return ips, nil
	}
	var candidates []string
	switch {
	case absolute || r.search == "":
		candidates = []string{lower}
	case !strings.Contains(lower, "."):
		candidates = []string{lower + "." + r.search, lower}
	default:
		candidates = []string{lower, lower + "." + r.search}
	}
	for _, c := range candidates {
		ips, err := r.query(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("resolve %s inside the instance (DNS server %s): %w", name, r.server, err)
		}
		if len(ips) > 0 {
			return ips, nil
		}
	}
	return nil, fmt.Errorf("resolve %s inside the instance: no such host (DNS server %s knows the VNET's computer names)", name, r.server)
}

// query asks the DNS server for A records of fqdn, from inside the
// instance. A name the server does not know (or will not answer) gives no
// addresses and no error.
func (r *instanceResolver) query(ctx context.Context, fqdn string) ([]netip.Addr, error) {
	qctx, cancel := context.WithTimeout(ctx, dnsQueryTimeout)
	defer cancel()
	conn, err := r.dial(qctx, "udp", netip.AddrPortFrom(r.server, 53).String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(fqdn), dns.TypeA)
	cl := &dns.Client{Net: "udp", Timeout: dnsQueryTimeout}
	resp, _, err := cl.ExchangeWithConnContext(qctx, m, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				ips = append(ips, ip)
			}
		}
	}
	return ips, nil
}
