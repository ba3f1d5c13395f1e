package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Addr is where Azure's internal DNS listens inside a virtual network.
const Addr = "168.63.129.16:53"

// Config configures a Server.
type Config struct {
	// Suffix is the VNET's internal DNS suffix, e.g.
	// "rgqhwh5yvccutdxi1q5zmlxi2c.bx.internal.cloudapp.net" (see
	// SuffixFor). Required.
	Suffix string
	// Prefixes is the VNET's address space. Records must lie in it, and
	// the server answers PTR queries for it (NXDOMAIN for unknown
	// addresses). Empty: any IPv4 record is accepted and PTR queries are
	// answered for known addresses only.
	Prefixes []netip.Prefix
	// TTL of answers and of negative answers. Zero means 10 seconds, so
	// that instances that come and go are seen quickly.
	TTL time.Duration
}

// Server is the internal DNS of one VNET. Reads are lock-free: every query
// sees one consistent snapshot of the records; changes build a new
// snapshot and swap it in. Safe for concurrent use.
type Server struct {
	suffix   string // canonical: lower case, final dot
	prefixes []netip.Prefix
	ttl      uint32

	mu   sync.Mutex // serializes writers
	zone atomic.Pointer[zone]
	// public are the names of public IPs (label.location.cloudapp.azure.com):
	// Azure's resolver answers them from every VNET.
	public atomic.Pointer[map[string]netip.Addr]
}

// SetPublicRecords replaces the public IPs' names the server answers
// (fully qualified, any case) besides its zone. They must be IPv4.
func (s *Server) SetPublicRecords(records []Record) error {
	m := make(map[string]netip.Addr, len(records))
	for _, r := range records {
		if !r.IP.Is4() {
			return fmt.Errorf("set public DNS records: %s: want an IPv4 address, got %v", r.Name, r.IP)
		}
		name := strings.ToLower(mdns.Fqdn(r.Name))
		if _, ok := mdns.IsDomainName(name); !ok {
			return fmt.Errorf("set public DNS records: %q is not a domain name", r.Name)
		}
		m[name] = r.IP
	}
	s.public.Store(&m)
	return nil
}

// publicAddr is the address of a public IP's name.
func (s *Server) publicAddr(name string) (netip.Addr, bool) {
	m := s.public.Load()
	if m == nil {
		return netip.Addr{}, false
	}
	a, ok := (*m)[name]
	return a, ok
}

// New returns a Server with no records.
func New(cfg Config) (*Server, error) {
	suffix, err := checkSuffix(cfg.Suffix)
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.Prefixes {
		if !p.IsValid() || !p.Addr().Is4() || p != p.Masked() {
			return nil, fmt.Errorf("address space %v: want IPv4 networks such as 10.0.0.0/16", p)
		}
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	if ttl < time.Second || ttl > 24*time.Hour {
		return nil, fmt.Errorf("TTL %v: want 1s to 24h", ttl)
	}
	s := &Server{suffix: suffix, prefixes: slices.Clone(cfg.Prefixes), ttl: uint32(ttl / time.Second)}
	s.zone.Store(emptyZone())
	return s, nil
}

// Suffix returns the canonical DNS suffix, with the final dot.
func (s *Server) Suffix() string { return s.suffix }

// SetRecords replaces all records at once. Bad input (an invalid name or
// address, an address outside Prefixes, a name or address given twice)
// changes nothing.
func (s *Server) SetRecords(records []Record) error {
	names := map[string]bool{}
	for _, r := range records {
		k := strings.ToLower(r.Name)
		if names[k] {
			return fmt.Errorf("set DNS records: name %s given twice", r.Name)
		}
		names[k] = true
	}
	return s.update(emptyZone(), records, nil, "set DNS records")
}

// Add adds records, replacing those with the same names.
func (s *Server) Add(records ...Record) error { return s.update(nil, records, nil, "add DNS records") }

// Remove removes the records with these names; unknown names are ignored.
func (s *Server) Remove(names ...string) {
	_ = s.update(nil, nil, names, "remove DNS records") // removal cannot fail
}

func (s *Server) update(base *zone, put []Record, remove []string, what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.zone.Load()
	if base == nil {
		base = cur
	}
	n, err := s.with(base, cur.serial+1, put, remove)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.zone.Store(n)
	return nil
}

// Records returns the current records sorted by name (names in lower case).
func (s *Server) Records() []Record {
	z := s.zone.Load()
	out := make([]Record, 0, len(z.byName))
	for name, ip := range z.byName {
		out = append(out, Record{Name: name, IP: ip})
	}
	slices.SortFunc(out, func(a, b Record) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Serve answers queries on pc (UDP) and l (TCP) until ctx ends, then shuts
// both down and closes them. Either may be nil, not both. It returns nil
// after ctx ends, or the error that stopped a server.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, l net.Listener) error {
	var pcs []net.PacketConn
	if pc != nil {
		pcs = append(pcs, pc)
	}
	return s.serve(ctx, pcs, l)
}

// serve answers on every socket of pcs with a read loop each, and on l
// with miekg/dns's TCP server.
func (s *Server) serve(ctx context.Context, pcs []net.PacketConn, l net.Listener) error {
	if len(pcs) == 0 && l == nil {
		return errors.New("serve DNS: no socket given")
	}
	errc := make(chan error, len(pcs)+1)
	var tcp *mdns.Server
	if l != nil {
		tcp = &mdns.Server{Listener: l, Handler: s}
		started := make(chan struct{})
		var once sync.Once
		tcp.NotifyStartedFunc = func() { once.Do(func() { close(started) }) }
		go func() {
			err := tcp.ActivateAndServe()
			once.Do(func() { close(started) }) // it failed before it started
			errc <- err
		}()
		<-started
	}
	for _, pc := range pcs {
		go func() { errc <- s.serveUDP(pc) }()
	}

	pending := cap(errc)
	if l == nil {
		pending--
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		pending--
		if err == nil {
			err = errors.New("server stopped")
		}
		err = fmt.Errorf("serve DNS: %w", err)
	}
	if tcp != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = tcp.ShutdownContext(sctx) // fails only for a server that already stopped
		cancel()
	}
	for _, pc := range pcs {
		pc.Close() // ends its read loop
	}
	for ; pending > 0; pending-- {
		<-errc
	}
	if l != nil {
		l.Close()
	}
	return err
}

// ListenAndServe listens on addr (UDP and TCP) inside the network namespace
// at nsPath and serves until ctx ends. An empty addr means Addr,
// 168.63.129.16:53; the namespace must have that address (a VNET has it
// on lo). An empty nsPath means the process's namespace.
func (s *Server) ListenAndServe(ctx context.Context, nsPath, addr string) error {
	if addr == "" {
		addr = Addr
	}
	pcs, err := listenUDP(ctx, nsPath, addr, udpSockets())
	if err != nil {
		return fmt.Errorf("DNS server: %w", err)
	}
	l, err := nsnet.ListenTCP(ctx, nsPath, addr)
	if err != nil {
		for _, pc := range pcs {
			pc.Close()
		}
		return fmt.Errorf("DNS server: %w", err)
	}
	return s.serve(ctx, pcs, l)
}
