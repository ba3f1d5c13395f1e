package vnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"github.com/vmss-emulator/vmss/nsnet"
	"golang.org/x/sys/unix"
)

// Attach connects an instance namespace to a subnet bridge of a VNET: a veth
// pair created inside the VNET namespace (never on the host) whose peer is
// created directly in the instance namespace as eth0, with the NIC's MAC,
// address and MTU, IPv6 address generation off, up, loopback up and a
// default route via the gateway. The VNET side joins the bridge and the
// group LinkGroup.
//
// Attach is idempotent: when the pair already exists it corrects what
// differs. It refuses (changing nothing) when the veth name is taken by
// another instance's pair or the instance already has an eth0 of its own.
// If a step fails after the pair was created, the pair is deleted again.
func (m *Manager) Attach(ctx context.Context, vnetNetns string, nic NIC) error {
	n, err := nic.normalize()
	if err == nil {
		err = nsnet.ValidName(vnetNetns)
	}
	if err != nil {
		return err
	}
	mu := m.lock(vnetNetns)
	mu.RLock()
	defer mu.RUnlock()
	if err := m.attach(ctx, vnetNetns, n); err != nil {
		return fmt.Errorf("attach instance %s to %s/%s: %w", n.InstanceNetns, vnetNetns, n.Bridge, err)
	}
	return nil
}

var errNoBridge = errors.New("no bridge")

// bridgeSubnet returns a bridge of the VNET in namespace ns (whose handle
// is h) and its gateway address.
func bridgeSubnet(ctx context.Context, h *netlink.Handle, ns, bridge string) (netlink.Link, netip.Prefix, error) {
	br, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(bridge) })
	if isNotFound(err) {
		return nil, netip.Prefix{}, fmt.Errorf("%w %s in the VNET; Ensure the subnet first", errNoBridge, bridge)
	}
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	if br.Type() != "bridge" {
		return nil, netip.Prefix{}, fmt.Errorf("%s is a %s, not a bridge", bridge, br.Type())
	}
	addrs, err := linkIPv4Addrs(ctx, ns, h, br)
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	for _, a := range addrs {
		if a.Bits() < 32 {
			return br, a, nil
		}
	}
	return nil, netip.Prefix{}, fmt.Errorf("bridge %s has no gateway address; Ensure the subnet first", bridge)
}

func (m *Manager) attach(ctx context.Context, vnetNetns string, n NIC) error {
	if !nsnet.Exists(vnetNetns) {
		return fmt.Errorf("VNET namespace %s does not exist; Ensure it first", vnetNetns)
	}
	instPath := nsnet.Path(n.InstanceNetns)
	if !nsnet.Exists(n.InstanceNetns) {
		return fmt.Errorf("instance namespace %s does not exist", instPath)
	}
	instFd, err := netns.GetFromPath(instPath)
	if err != nil {
		return fmt.Errorf("open instance namespace: %w", err)
	}
	defer instFd.Close()
	vh, err := handleIn(vnetNetns)
	if err != nil {
		return err
	}
	defer vh.Close()
	ih, err := handleIn(n.InstanceNetns)
	if err != nil {
		return err
	}
	defer ih.Close()

	br, gw, err := bridgeSubnet(ctx, vh, vnetNetns, n.Bridge)
	if err != nil {
		return err
	}
	if n.Addr.Masked() != gw.Masked() {
		return fmt.Errorf("address %v is not in the subnet of %s (%v)", n.Addr, n.Bridge, gw.Masked())
	}
	if n.Gateway != gw.Addr() {
		return fmt.Errorf("gateway %v: the gateway of %s is %v", n.Gateway, n.Bridge, gw.Addr())
	}

	// Find out whether the pair exists already, and refuse to touch
	// anything that is not this instance's pair.
	veth, err := retryGet(ctx, func() (netlink.Link, error) { return vh.LinkByName(n.HostSideName) })
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("look up %s: %w", n.HostSideName, err)
	}
	eth0, err := retryGet(ctx, func() (netlink.Link, error) { return ih.LinkByName(InstanceIface) })
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("look up %s in the instance: %w", InstanceIface, err)
	}
	if veth == nil && eth0 != nil && n.HostSideName == VethName(n.InstanceNetns) {
		if veth, err = m.adoptLegacy(ctx, vh, instFd, eth0, n); err != nil {
			return err
		}
	}
	switch {
	case veth != nil:
		if ok, why := isPeer(vh, veth, instFd, eth0); !ok {
			return fmt.Errorf("veth name %s is taken (%s); choose another HostSideName or Detach it", n.HostSideName, why)
		}
	case eth0 != nil:
		return fmt.Errorf("the instance already has an %s that is not attached to this VNET; delete it first", InstanceIface)
	}

	created := false
	if veth == nil {
		master, err := m.reservePort(ctx, vh, vnetNetns, br)
		if err != nil {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.HostSideName
		attrs.MTU = n.MTU
		attrs.MasterIndex = master
		attrs.Group = LinkGroup
		attrs.Flags = net.FlagUp
		nv := &netlink.Veth{
			LinkAttrs:        attrs,
			PeerName:         InstanceIface,
			PeerHardwareAddr: n.MAC,
			PeerNamespace:    netlink.NsFd(instFd),
		}
		if err := retry(ctx, func() error { return vh.LinkAdd(nv) }); err != nil {
			m.forgetPlaces(vnetNetns)
			return fmt.Errorf("create veth %s: %w", n.HostSideName, err)
		}
		created = true
	}
	err = m.fail("attach-configure")
	switch {
	case err != nil:
	case created:
		err = m.configureNew(ctx, vh, ih, br, n)
	default:
		err = m.configure(ctx, vnetNetns, vh, ih, br, n)
	}
	if err != nil && created {
		m.forgetPlaces(vnetNetns)
		if derr := deleteLink(ctx, vh, n.HostSideName); derr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
		}
	}
	if err == nil && created {
		m.log().Info("attached instance", "netns", vnetNetns, "instance", n.InstanceNetns, "veth", n.HostSideName, "addr", n.Addr)
	}
	return err
}

// isPeer reports whether veth (in the VNET) is a veth whose peer is eth0
// (in the instance namespace instFd), and if not, why.
func isPeer(vh *netlink.Handle, veth netlink.Link, instFd netns.NsHandle, eth0 netlink.Link) (bool, string) {
	if veth.Type() != "veth" {
		return false, "it is a " + veth.Type()
	}
	if eth0 == nil {
		return false, "its peer is not in the instance"
	}
	nsid, err := vh.GetNetNsIdByFd(int(instFd))
	if err != nil {
		return false, "cannot identify the instance namespace: " + err.Error()
	}
	if veth.Attrs().NetNsID != nsid || veth.Attrs().ParentIndex != eth0.Attrs().Index {
		return false, "its peer is in another namespace"
	}
	return true, ""
}

// configureNew finishes a pair created just now with the NIC's MAC, MTU,
// bridge port, group and state: what configure would find right already
// is not looked at again (each look is a request to the kernel, and there
// are thousands of instances to attach).
func (m *Manager) configureNew(ctx context.Context, vh, ih *netlink.Handle, br netlink.Link, n NIC) error {
	eth0, err := retryGet(ctx, func() (netlink.Link, error) { return ih.LinkByName(InstanceIface) })
	if err != nil {
		return fmt.Errorf("find %s in the instance: %w", InstanceIface, err)
	}
	return m.configureInstanceSide(ctx, vh, ih, br, eth0, n)
}

// configure brings an existing pair to the NIC's state. Everything here is
// idempotent.
func (m *Manager) configure(ctx context.Context, vnetNetns string, vh, ih *netlink.Handle, br netlink.Link, n NIC) error {
	veth, err := retryGet(ctx, func() (netlink.Link, error) { return vh.LinkByName(n.HostSideName) })
	if err != nil {
		return fmt.Errorf("find %s: %w", n.HostSideName, err)
	}
	ok, err := onSubnet(ctx, vh, veth, br)
	if err != nil {
		return err
	}
	if !ok {
		master, err := m.reservePort(ctx, vh, vnetNetns, br)
		if err != nil {
			return err
		}
		if err := retry(ctx, func() error { return vh.LinkSetMasterByIndex(veth, master) }); err != nil {
			return fmt.Errorf("attach %s to %s: %w", n.HostSideName, n.Bridge, err)
		}
	}
	if veth.Attrs().Group != LinkGroup {
		if err := retry(ctx, func() error { return vh.LinkSetGroup(veth, LinkGroup) }); err != nil {
			return fmt.Errorf("set group of %s: %w", n.HostSideName, err)
		}
	}
	if veth.Attrs().Flags&net.FlagUp == 0 {
		if err := retry(ctx, func() error { return vh.LinkSetUp(veth) }); err != nil {
			return fmt.Errorf("set %s up: %w", n.HostSideName, err)
		}
	}

	eth0, err := retryGet(ctx, func() (netlink.Link, error) { return ih.LinkByName(InstanceIface) })
	if err != nil {
		return fmt.Errorf("find %s in the instance: %w", InstanceIface, err)
	}
	return m.configureInstanceSide(ctx, vh, ih, br, eth0, n)
}

// configureInstanceSide brings eth0, the instance's end of the pair, to the
// NIC's state (MAC, MTU, address, up, default route) and lo up, and forgets
// the VNET's neighbour entry of the address.
func (m *Manager) configureInstanceSide(ctx context.Context, vh, ih *netlink.Handle, br, eth0 netlink.Link, n NIC) error {
	if !slices.Equal(eth0.Attrs().HardwareAddr, n.MAC) {
		if err := retry(ctx, func() error { return ih.LinkSetHardwareAddr(eth0, n.MAC) }); err != nil {
			return fmt.Errorf("set MAC of %s: %w", InstanceIface, err)
		}
	}
	if eth0.Attrs().MTU != n.MTU {
		if err := retry(ctx, func() error { return ih.LinkSetMTU(eth0, n.MTU) }); err != nil {
			return fmt.Errorf("set MTU of %s: %w", InstanceIface, err)
		}
	}
	// No IPv6 link-local address: no DAD, no router solicitations.
	if err := retry(ctx, func() error { return ih.LinkSetIP6AddrGenMode(eth0, nl.IN6_ADDR_GEN_MODE_NONE) }); err != nil &&
		!errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("turn off IPv6 address generation on %s: %w", InstanceIface, err)
	}
	have, err := ipv4Addrs(ctx, ih, eth0)
	if err != nil {
		return err
	}
	for _, a := range have {
		if a != n.Addr {
			if err := retry(ctx, func() error { return ih.AddrDel(eth0, toAddr(a)) }); err != nil {
				return fmt.Errorf("remove old address %v from %s: %w", a, InstanceIface, err)
			}
		}
	}
	if !slices.Contains(have, n.Addr) {
		if err := retry(ctx, func() error { return ih.AddrReplace(eth0, toAddr(n.Addr)) }); err != nil {
			return fmt.Errorf("add %v to %s: %w", n.Addr, InstanceIface, err)
		}
	}
	lo, err := retryGet(ctx, func() (netlink.Link, error) { return ih.LinkByName("lo") })
	if err != nil {
		return fmt.Errorf("find lo in the instance: %w", err)
	}
	for _, l := range []netlink.Link{lo, eth0} {
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := retry(ctx, func() error { return ih.LinkSetUp(l) }); err != nil {
				return fmt.Errorf("set %s up in the instance: %w", l.Attrs().Name, err)
			}
		}
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: n.Gateway.AsSlice(), Family: netlink.FAMILY_V4}
	if err := retry(ctx, func() error { return ih.RouteReplace(route) }); err != nil {
		return fmt.Errorf("default route via %v: %w", n.Gateway, err)
	}
	return forgetStaleNeighbor(vh, br, n)
}

// forgetStaleNeighbor removes the VNET's neighbor entry for the NIC's address:
// an instance that reuses the address of a deleted one would otherwise stay
// unreachable from the VNET (NAT, load balancing) while the old entry, with
// the old MAC, is still considered reachable. The entry goes whatever MAC it
// holds (the next packet resolves the address again): reading it first
// would mean listing the host's whole neighbour table, one table for all
// namespaces, for every instance attached.
func forgetStaleNeighbor(vh *netlink.Handle, br netlink.Link, n NIC) error {
	nb := &netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V4, IP: n.Addr.Addr().AsSlice()}
	if err := vh.NeighDel(nb); err != nil && !errors.Is(err, unix.ENOENT) && !isNotFound(err) {
		return fmt.Errorf("forget the old neighbor entry of %v on %s: %w", n.Addr.Addr(), n.Bridge, err)
	}
	return nil
}

func deleteLink(ctx context.Context, h *netlink.Handle, name string) error {
	l, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(name) })
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if l.Type() != "veth" {
		return fmt.Errorf("%s is a %s, not a veth", name, l.Type())
	}
	if err := retry(ctx, func() error { return h.LinkDel(l) }); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Detach removes instances' veth pairs (both ends: each instance loses
// eth0). Several names are deleted in one kernel batch, which is much faster
// than one call each (a veth deletion waits for an RCU grace period), and
// so are the names of concurrent calls for one VNET (see detachBatches). A
// missing VNET or veth is not an error. Deleting an instance namespace also
// deletes its pair, without Detach.
func (m *Manager) Detach(ctx context.Context, vnetNetns string, hostSideNames ...string) error {
	errs := []error{nsnet.ValidName(vnetNetns)}
	for _, n := range hostSideNames {
		errs = append(errs, checkIfaceName("veth", n, VethPrefix))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach from VNET %s: %w", vnetNetns, err)
	}
	if len(hostSideNames) == 0 {
		return nil
	}
	return m.detaches.detach(ctx, vnetNetns, hostSideNames, m.detachNow)
}

// detachNow deletes the veth pairs hostSideNames of the VNET in one batch.
func (m *Manager) detachNow(ctx context.Context, vnetNetns string, hostSideNames []string) error {
	mu := m.lock(vnetNetns)
	mu.RLock()
	defer mu.RUnlock()
	if !nsnet.Exists(vnetNetns) {
		return nil
	}
	if err := m.detach(ctx, vnetNetns, hostSideNames); err != nil {
		return fmt.Errorf("detach from VNET %s: %w", vnetNetns, err)
	}
	m.forgetPlaces(vnetNetns)
	m.log().Info("detached instances", "netns", vnetNetns, "veths", hostSideNames)
	return nil
}

func (m *Manager) detach(ctx context.Context, vnetNetns string, names []string) error {
	h, err := handleIn(vnetNetns)
	if err != nil {
		return err
	}
	defer h.Close()
	if len(names) == 1 {
		return deleteLink(ctx, h, names[0])
	}
	for _, name := range names {
		l, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(name) })
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		if l.Type() != "veth" {
			return fmt.Errorf("%s is a %s, not a veth", name, l.Type())
		}
		if err := retry(ctx, func() error { return h.LinkSetGroup(l, detachGroup) }); err != nil {
			if isNotFound(err) {
				continue // gone meanwhile: its instance namespace went
			}
			return fmt.Errorf("mark %s for deletion: %w", name, err)
		}
	}
	return deleteGroup(ctx, vnetNetns, detachGroup)
}

// AddFrontendIP adds ip, an address of the bridge's subnet, to the VNET
// namespace (as ip/32 on the bridge) so that an internal load balancer can
// listen on it; instances reach it like any address of their subnet.
// Adding it again changes nothing.
func (m *Manager) AddFrontendIP(ctx context.Context, vnetNetns, bridge string, ip netip.Addr) error {
	return m.frontend(ctx, vnetNetns, bridge, ip, true)
}

// RemoveFrontendIP removes a frontend IP; a missing one is not an error.
func (m *Manager) RemoveFrontendIP(ctx context.Context, vnetNetns, bridge string, ip netip.Addr) error {
	return m.frontend(ctx, vnetNetns, bridge, ip, false)
}

func (m *Manager) frontend(ctx context.Context, vnetNetns, bridge string, ip netip.Addr, add bool) error {
	verb := "remove"
	if add {
		verb = "add"
	}
	wrap := func(err error) error {
		return fmt.Errorf("%s frontend IP %v on %s/%s: %w", verb, ip, vnetNetns, bridge, err)
	}
	if err := errors.Join(nsnet.ValidName(vnetNetns), checkIfaceName("bridge", bridge, BridgePrefix)); err != nil {
		return wrap(err)
	}
	if !ip.Is4() {
		return wrap(errors.New("want an IPv4 address"))
	}
	mu := m.lock(vnetNetns)
	mu.RLock()
	defer mu.RUnlock()
	if !nsnet.Exists(vnetNetns) {
		if add {
			return wrap(errors.New("the VNET namespace does not exist; Ensure it first"))
		}
		return nil
	}
	h, err := handleIn(vnetNetns)
	if err != nil {
		return wrap(err)
	}
	defer h.Close()
	br, gw, err := bridgeSubnet(ctx, h, vnetNetns, bridge)
	if err != nil {
		if !add && errors.Is(err, errNoBridge) {
			return nil
		}
		return wrap(err)
	}
	subnet := gw.Masked()
	if add && (!subnet.Contains(ip) || ip == subnet.Addr() || ip == gw.Addr() || ip == broadcastOf(subnet)) {
		return wrap(fmt.Errorf("want a host address of %v other than the gateway %v", subnet, gw.Addr()))
	}
	a := toAddr(netip.PrefixFrom(ip, 32))
	if add {
		err = retry(ctx, func() error { return h.AddrReplace(br, a) })
	} else {
		err = retry(ctx, func() error { return h.AddrDel(br, a) })
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ESRCH) {
			err = nil
		}
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}
