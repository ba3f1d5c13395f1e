package vnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Observed is what exists in a VNET namespace, read from the kernel; it
// lets a restarted daemon adopt what it finds.
type Observed struct {
	Netns      string
	Exists     bool // the namespace exists; nothing else is set when false
	Forwarding bool // IPv4 forwarding is on
	DNSAddr    bool // DNSAddr is on lo
	Bridges    []ObservedBridge
	NICs       []ObservedNIC
}

// ObservedBridge is one subnet bridge.
type ObservedBridge struct {
	Name        string
	Gateway     netip.Prefix // e.g. 10.0.0.1/24; zero when it has none
	FrontendIPs []netip.Addr // the /32 addresses on the bridge
	Up          bool
}

// ObservedNIC is one instance veth, seen from both ends.
type ObservedNIC struct {
	HostSideName  string
	Bridge        string           // the bridge it is attached to; "" for none
	InstanceNetns string           // name of the peer's namespace; "" when it has none in /run/netns
	PeerName      string           // name of the peer (eth0), when found
	Addr          netip.Prefix     // the peer's first IPv4 address; zero when none
	MAC           net.HardwareAddr // the peer's MAC, when found
	Up            bool             // both ends are up
}

// Observe reports the bridges, instance veths and addresses in a VNET
// namespace. A missing namespace is not an error: Exists is false.
func (m *Manager) Observe(ctx context.Context, netns string) (Observed, error) {
	o := Observed{Netns: netns}
	if err := nsnet.ValidName(netns); err != nil {
		return o, err
	}
	mu := m.lock(netns)
	mu.RLock()
	defer mu.RUnlock()
	if !nsnet.Exists(netns) {
		return o, nil
	}
	o.Exists = true
	err := observe(ctx, &o)
	if err != nil {
		return o, fmt.Errorf("observe VNET %s: %w", netns, err)
	}
	return o, nil
}

func observe(ctx context.Context, o *Observed) error {
	fwd, err := readSysctl(o.Netns, "net/ipv4/ip_forward")
	if err != nil {
		return err
	}
	o.Forwarding = fwd == "1"
	h, err := handleIn(o.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	links, err := linkList(ctx, h)
	if err != nil {
		return err
	}
	// An instance on a leaf bridge is on its subnet's bridge.
	trunks := trunkOf(topology(linkInfos(links)))
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		if t, ok := trunks[l.Attrs().Name]; ok {
			names[l.Attrs().Index] = t
		}
	}
	type peer struct {
		nic     int // index in o.NICs
		ifindex int // the peer's index in its namespace
	}
	peers := map[int][]peer{} // by the peer namespace's id
	for _, l := range links {
		a := l.Attrs()
		switch {
		case a.Name == "lo":
			addrs, err := ipv4Addrs(ctx, h, l)
			if err != nil {
				return err
			}
			o.DNSAddr = slices.Contains(addrs, netip.PrefixFrom(DNSAddr, 32))
		case l.Type() == "bridge" && strings.HasPrefix(a.Name, BridgePrefix):
			b := ObservedBridge{Name: a.Name, Up: a.Flags&net.FlagUp != 0}
			addrs, err := ipv4Addrs(ctx, h, l)
			if err != nil {
				return err
			}
			for _, p := range addrs {
				if p.Bits() == 32 {
					b.FrontendIPs = append(b.FrontendIPs, p.Addr())
				} else if !b.Gateway.IsValid() {
					b.Gateway = p
				}
			}
			o.Bridges = append(o.Bridges, b)
		case l.Type() == "veth" && strings.HasPrefix(a.Name, VethPrefix):
			if a.NetNsID >= 0 {
				peers[a.NetNsID] = append(peers[a.NetNsID], peer{len(o.NICs), a.ParentIndex})
			}
			o.NICs = append(o.NICs, ObservedNIC{
				HostSideName: a.Name,
				Bridge:       names[a.MasterIndex],
				Up:           a.Flags&net.FlagUp != 0,
			})
		}
	}
	if len(peers) == 0 {
		return nil
	}
	named, err := nameNamespaces(h, o.Netns, func(id int) bool { return peers[id] != nil })
	if err != nil {
		return err
	}
	for id, name := range named {
		ih, err := handleIn(name)
		if err != nil {
			return err
		}
		for _, p := range peers[id] {
			err = observePeer(ctx, ih, name, p.ifindex, &o.NICs[p.nic])
			if err != nil {
				break
			}
		}
		ih.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// nameNamespaces names the namespaces, seen from the namespace of h (named
// self), whose ids want accepts: it matches their ids against /run/netns.
func nameNamespaces(h *netlink.Handle, self string, want func(id int) bool) (map[int]string, error) {
	all, err := nsnet.List("")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, name := range all {
		if name == self {
			continue
		}
		fd, err := netns.GetFromPath(nsnet.Path(name))
		if err != nil {
			continue // removed meanwhile, or not a namespace
		}
		id, err := h.GetNetNsIdByFd(int(fd))
		fd.Close()
		if err == nil && want(id) {
			out[id] = name
		}
	}
	return out, nil
}

// observePeer fills in the instance side of a NIC whose peer has index
// ifindex in the namespace name (handle ih).
func observePeer(ctx context.Context, ih *netlink.Handle, name string, ifindex int, nic *ObservedNIC) error {
	nic.InstanceNetns = name
	l, err := retryGet(ctx, func() (netlink.Link, error) { return ih.LinkByIndex(ifindex) })
	if err != nil {
		nic.Up = false
		return nil // the peer went away meanwhile
	}
	nic.PeerName = l.Attrs().Name
	nic.MAC = l.Attrs().HardwareAddr
	nic.Up = nic.Up && l.Attrs().Flags&net.FlagUp != 0
	addrs, err := ipv4Addrs(ctx, ih, l)
	if err != nil {
		return err
	}
	if len(addrs) > 0 {
		nic.Addr = addrs[0]
	}
	return nil
}
