package nat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/tcpfd"
)

// DefaultIdleTimeout is Azure's default idleTimeoutInMinutes (4).
const DefaultIdleTimeout = 4 * time.Minute

// ConnectTimeout bounds the dial to a backend: a backend whose network
// security group drops the flow fails the client's connection after it
// instead of holding it for the kernel's two minutes of SYN retries.
const ConnectTimeout = 5 * time.Second

// Mapping is one public address:port forwarded to one backend.
type Mapping struct {
	// Name identifies the mapping in errors and the snapshot, e.g.
	// "natpool.3" or "ssh-rule".
	Name     string
	Protocol Protocol // Tcp, Udp or All (both); empty means Tcp
	// Public is where clients connect (a 127.x host address, or a private
	// frontend IP for an internal load balancer with Listen set).
	Public netip.AddrPort
	// Backend is the instance's private IP and backend port.
	Backend netip.AddrPort
	// Dial reaches Backend (inside the VNET). nil dials from the host.
	Dial proxy.DialFunc
	// Listen and ListenPacket open the public side. nil means the Table's.
	Listen       proxy.ListenFunc
	ListenPacket proxy.ListenPacketFunc
	// IdleTimeout drops idle flows; zero means DefaultIdleTimeout,
	// negative disables it.
	IdleTimeout time.Duration
	// EnableTCPReset resets both sides on idle timeout instead of a silent drop.
	EnableTCPReset bool
}

type key struct {
	network string
	public  netip.AddrPort
}

func (k key) String() string { return k.public.String() + "/" + k.network }

// Table forwards the public side of every mapping. The zero value is
// ready to use; set the fields before the first Apply.
type Table struct {
	// Listen and ListenPacket open public sockets for mappings that do not
	// bring their own. nil means the host namespace.
	Listen       proxy.ListenFunc
	ListenPacket proxy.ListenPacketFunc
	// Logger receives errors. nil discards.
	Logger *slog.Logger

	mu      sync.Mutex
	entries map[key]*entry
	closed  bool
}

// entry is one listening socket and its live target.
type entry struct {
	*proxy.Frontend
	key      key
	target   atomic.Pointer[Mapping]
	conns    atomic.Int64
	up, down atomic.Int64
}

// Apply makes the forwarded set equal desired. Mappings whose public
// address:port and protocol are already forwarded keep their sockets and
// established flows (a changed backend applies to new connections);
// removed mappings are closed and their flows reset; new ones are opened.
// If any new socket cannot be opened (e.g. the port is in use: a
// *proxy.AddrInUseError) or desired is invalid, nothing changes.
func (t *Table) Apply(ctx context.Context, desired []Mapping) error {
	want := map[key]Mapping{}
	var errs []error
	for _, m := range desired {
		if !m.Public.IsValid() || m.Public.Port() == 0 || !m.Backend.IsValid() || m.Backend.Port() == 0 {
			errs = append(errs, fmt.Errorf("nat: mapping %q: public %v and backend %v must both be ip:port with a non-zero port", m.Name, m.Public, m.Backend))
			continue
		}
		if _, err := ParseProtocol(string(m.Protocol)); err != nil {
			errs = append(errs, fmt.Errorf("nat: mapping %q: %w", m.Name, err))
			continue
		}
		for _, n := range networks(m.Protocol) {
			k := key{n, m.Public}
			if prev, dup := want[k]; dup {
				errs = append(errs, fmt.Errorf("nat: mappings %q and %q both claim %s; give one another frontend port", prev.Name, m.Name, k))
				continue
			}
			want[k] = m
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("nat: table is closed")
	}
	if t.entries == nil {
		t.entries = map[key]*entry{}
	}
	// Open every new socket first, so a failure changes nothing.
	fresh := map[key]*entry{}
	for k, m := range want {
		if t.entries[k] != nil {
			continue
		}
		e, err := t.open(ctx, k, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[k] = e
	}
	if len(errs) > 0 {
		for _, e := range fresh {
			e.Close()
		}
		return errors.Join(errs...)
	}
	for k, e := range t.entries {
		if _, keep := want[k]; !keep {
			e.Close()
			delete(t.entries, k)
		}
	}
	for k, m := range want {
		if e := t.entries[k]; e != nil {
			m := m
			e.target.Store(&m)
		}
	}
	for k, e := range fresh {
		t.entries[k] = e
		e.Start()
	}
	return nil
}

// open creates the public socket for k; Start serves it.
func (t *Table) open(ctx context.Context, k key, m Mapping) (*entry, error) {
	e := &entry{key: k}
	e.target.Store(&m)
	log := t.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	spec := proxy.FrontendSpec{
		Network: k.network, Addr: k.public.String(), Owner: "inbound NAT " + m.Name,
		Listen: m.Listen, ListenPacket: m.ListenPacket,
		ConnectTCP: e.connectTCP, ConnectOnLoop: true, ConnectUDP: e.connectUDP, Logger: log,
	}
	if spec.Listen == nil {
		spec.Listen = t.Listen
	}
	if spec.ListenPacket == nil {
		spec.ListenPacket = t.ListenPacket
	}
	fe, err := proxy.OpenFrontend(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.Frontend = fe
	return e, nil
}

func idleOf(m *Mapping) time.Duration {
	switch {
	case m.IdleTimeout == 0:
		return DefaultIdleTimeout
	case m.IdleTimeout < 0:
		return 0
	}
	return m.IdleTimeout
}

func (e *entry) connectTCP(ctx context.Context, _ net.Conn) (proxy.Target, error) {
	m := e.target.Load()
	dial := m.Dial
	if dial == nil {
		dial = proxy.HostDial
	}
	c, err := proxy.DialTCP(ctx, dial, m.Backend.String(), ConnectTimeout)
	if errors.Is(err, tcpfd.ErrWouldBlock) {
		return proxy.Target{}, err // the proxy calls again where it may wait
	}
	if err != nil {
		return proxy.Target{}, fmt.Errorf("nat %s: dial backend %s: %w", m.Name, m.Backend, err)
	}
	e.conns.Add(1)
	return proxy.Target{
		Key:  m.Backend.String(),
		Conn: c,
		// QuickAck: NAT ports lead to SSH, whose handshake stalls on delayed ACKs.
		Pipe: proxy.PipeConfig{IdleTimeout: idleOf(m), ResetOnIdle: m.EnableTCPReset, Progress: e.progress, QuickAck: true},
	}, nil
}

func (e *entry) progress(up, down int64) {
	e.up.Add(up)
	e.down.Add(down)
}

func (e *entry) connectUDP(ctx context.Context, _ netip.AddrPort) (proxy.UDPTarget, error) {
	m := e.target.Load()
	dial := m.Dial
	if dial == nil {
		dial = proxy.HostDial
	}
	c, err := dial(ctx, "udp", m.Backend.String())
	if err != nil {
		return proxy.UDPTarget{}, fmt.Errorf("nat %s: dial backend %s: %w", m.Name, m.Backend, err)
	}
	e.conns.Add(1)
	idle := idleOf(m)
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	return proxy.UDPTarget{Key: m.Backend.String(), Conn: c, IdleTimeout: idle, Done: e.progress}, nil
}

// Status is one forwarded socket in a snapshot.
type Status struct {
	Name        string         `json:"name"`
	Network     string         `json:"network"` // tcp or udp
	Public      netip.AddrPort `json:"public"`
	Backend     netip.AddrPort `json:"backend"`
	Active      int            `json:"activeConnections"`
	Connections int64          `json:"totalConnections"`
	BytesIn     int64          `json:"bytesIn"`  // client → backend
	BytesOut    int64          `json:"bytesOut"` // backend → client
}

// Snapshot lists the forwarded sockets, ordered by public address.
func (t *Table) Snapshot() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Status, 0, len(t.entries))
	for k, e := range t.entries {
		m := e.target.Load()
		out = append(out, Status{
			Name: m.Name, Network: k.network, Public: k.public, Backend: m.Backend,
			Active: e.Active(), Connections: e.conns.Load(), BytesIn: e.up.Load(), BytesOut: e.down.Load(),
		})
	}
	slices.SortFunc(out, func(a, b Status) int {
		if c := a.Public.Compare(b.Public); c != 0 {
			return c
		}
		return cmpString(a.Network, b.Network)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close stops every mapping, resets established flows and waits for all
// goroutines. Apply fails afterwards.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for k, e := range t.entries {
		e.Close()
		delete(t.entries, k)
	}
	return nil
}
