package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/vnet"
)

// Network is what the data plane needs of the VNETs: a way in (dialling
// backends and probing them), a place to listen (internal frontends, the
// DNS server) and frontend addresses on a subnet's bridge. Namespaces
// implements it with network namespaces; tests use a fake on loopback.
type Network interface {
	// Open makes a VNET reachable (Dialer answers for it from now on).
	// It is idempotent.
	Open(vnetNetns string) error
	// Close forgets a VNET opened before.
	Close(vnetNetns string)
	// Dialer returns a dial function into a VNET whose connections come from
	// src (the zero Addr lets the kernel choose), or nil when the VNET is
	// not open.
	Dialer(vnetNetns string, src netip.Addr) proxy.DialFunc
	// AddFrontendIP puts an internal load balancer's frontend address on
	// the bridge of its subnet.
	AddFrontendIP(ctx context.Context, vnetNetns, bridge string, ip netip.Addr) error
	// ListenTCP and ListenUDP open a socket inside a VNET.
	ListenTCP(ctx context.Context, vnetNetns, addr string) (net.Listener, error)
	ListenUDP(ctx context.Context, vnetNetns, addr string) (net.PacketConn, error)
	// ServeDNS serves srv inside a VNET (at 168.63.129.16:53) until ctx ends.
	ServeDNS(ctx context.Context, vnetNetns string, srv *dns.Server) error
}

// Namespaces is the Network of VNET network namespaces: each open VNET
// keeps a handle on its namespace to dial from.
type Namespaces struct {
	vnets *vnet.Manager

	mu     sync.Mutex
	spaces map[string]*nsnet.Namespace // VNET netns -> dialer home
}

// NewNamespaces returns the Network of the VNETs vnets manages.
func NewNamespaces(vnets *vnet.Manager) *Namespaces {
	return &Namespaces{vnets: vnets, spaces: map[string]*nsnet.Namespace{}}
}

// Open implements Network.
func (n *Namespaces) Open(vnetNetns string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.spaces[vnetNetns]; ok {
		return nil
	}
	ns, err := nsnet.Open(nsnet.Path(vnetNetns))
	if err != nil {
		return fmt.Errorf("open VNET namespace %s: %w", vnetNetns, err)
	}
	n.spaces[vnetNetns] = ns
	return nil
}

// Close implements Network.
func (n *Namespaces) Close(vnetNetns string) {
	n.mu.Lock()
	ns := n.spaces[vnetNetns]
	delete(n.spaces, vnetNetns)
	n.mu.Unlock()
	if ns != nil {
		ns.Close()
	}
}

// Opened lists the open VNETs, sorted.
func (n *Namespaces) Opened() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.spaces))
	for k := range n.spaces {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Dialer implements Network.
func (n *Namespaces) Dialer(vnetNetns string, src netip.Addr) proxy.DialFunc {
	n.mu.Lock()
	ns := n.spaces[vnetNetns]
	n.mu.Unlock()
	if ns == nil {
		return nil
	}
	return proxy.DialFunc(ns.Dialer(src))
}

// AddFrontendIP implements Network.
func (n *Namespaces) AddFrontendIP(ctx context.Context, vnetNetns, bridge string, ip netip.Addr) error {
	return n.vnets.AddFrontendIP(ctx, vnetNetns, bridge, ip)
}

// ListenTCP implements Network.
func (n *Namespaces) ListenTCP(ctx context.Context, vnetNetns, addr string) (net.Listener, error) {
	ln, err := nsnet.ListenTCP(ctx, nsnet.Path(vnetNetns), addr)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// ListenUDP implements Network.
func (n *Namespaces) ListenUDP(ctx context.Context, vnetNetns, addr string) (net.PacketConn, error) {
	pc, err := nsnet.ListenUDP(ctx, nsnet.Path(vnetNetns), addr)
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// ServeDNS implements Network.
func (n *Namespaces) ServeDNS(ctx context.Context, vnetNetns string, srv *dns.Server) error {
	return srv.ListenAndServe(ctx, nsnet.Path(vnetNetns), "")
}

var _ Network = (*Namespaces)(nil)
