package machinetest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/proxy"
)

// Network is a fake dataplane.Network. A VNET address (a backend's
// "10.0.0.4:80", an internal frontend's "10.0.0.100:80") reaches the loopback
// address it is routed to with Route; dialling an unrouted address is
// refused. Every dial, frontend address and DNS server is recorded.
type Network struct {
	mu        sync.Mutex
	open      map[string]bool
	routes    map[string]string // VNET netns + " " + VNET address -> host address
	dials     []Dial
	frontends []Frontend
	dns       map[string]*dns.Server

	// FrontendErr, when set, fails AddFrontendIP.
	FrontendErr error
}

// Dial is one connection made into a VNET.
type Dial struct {
	VNet, Addr string
	Src        netip.Addr
}

// Frontend is one AddFrontendIP call.
type Frontend struct {
	VNet, Bridge string
	IP           netip.Addr
}

// NewNetwork returns a Network with no VNET open.
func NewNetwork() *Network {
	return &Network{open: map[string]bool{}, routes: map[string]string{}, dns: map[string]*dns.Server{}}
}

// Route makes vnetAddr inside the VNET reach hostAddr (dial and listen).
func (n *Network) Route(vnet, vnetAddr, hostAddr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[vnet+" "+vnetAddr] = hostAddr
}

func (n *Network) route(vnet, addr string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.routes[vnet+" "+addr]
	if !ok {
		return "", fmt.Errorf("fake network: %s has no route to %s", vnet, addr)
	}
	return h, nil
}

// Open implements dataplane.Network.
func (n *Network) Open(vnet string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.open[vnet] = true
	return nil
}

// Close implements dataplane.Network.
func (n *Network) Close(vnet string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.open, vnet)
}

// IsOpen reports whether the VNET is open.
func (n *Network) IsOpen(vnet string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.open[vnet]
}

// Dialer implements dataplane.Network: nil for a VNET that is not open.
func (n *Network) Dialer(vnet string, src netip.Addr) proxy.DialFunc {
	if !n.IsOpen(vnet) {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.mu.Lock()
		n.dials = append(n.dials, Dial{VNet: vnet, Addr: addr, Src: src})
		n.mu.Unlock()
		host, err := n.route(vnet, addr)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}
}

// Dials returns the dials made so far.
func (n *Network) Dials() []Dial {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Dial(nil), n.dials...)
}

// AddFrontendIP implements dataplane.Network.
func (n *Network) AddFrontendIP(_ context.Context, vnet, bridge string, ip netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.FrontendErr != nil {
		return n.FrontendErr
	}
	n.frontends = append(n.frontends, Frontend{VNet: vnet, Bridge: bridge, IP: ip})
	return nil
}

// Frontends returns the AddFrontendIP calls made so far.
func (n *Network) Frontends() []Frontend {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Frontend(nil), n.frontends...)
}

// ListenTCP implements dataplane.Network on the routed host address.
func (n *Network) ListenTCP(ctx context.Context, vnet, addr string) (net.Listener, error) {
	host, err := n.route(vnet, addr)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", host)
}

// ListenUDP implements dataplane.Network on the routed host address.
func (n *Network) ListenUDP(ctx context.Context, vnet, addr string) (net.PacketConn, error) {
	host, err := n.route(vnet, addr)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, "udp", host)
}

// ServeDNS implements dataplane.Network: it records the server and returns
// when ctx ends.
func (n *Network) ServeDNS(ctx context.Context, vnet string, srv *dns.Server) error {
	n.mu.Lock()
	n.dns[vnet] = srv
	n.mu.Unlock()
	<-ctx.Done()
	n.mu.Lock()
	if n.dns[vnet] == srv {
		delete(n.dns, vnet)
	}
	n.mu.Unlock()
	return nil
}

// DNS returns the DNS server served in a VNET now, or nil.
func (n *Network) DNS(vnet string) *dns.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dns[vnet]
}
