package vnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
)

// placeState caches how full the bridges of one VNET namespace are, so an
// Attach does not list every link. It is dropped by whatever may make it
// wrong (Ensure, Detach, Delete, a failed Attach) and read again from the
// kernel; ports that vanished without Detach (an instance namespace
// deleted) make it count too many, which is corrected by reading it again
// before a new leaf is made.
type placeState struct {
	mu      sync.Mutex
	subnets map[string]*subnetPorts // nil: read from the kernel first
}

func (m *Manager) places(ns string) *placeState {
	v, _ := m.placing.LoadOrStore(ns, new(placeState))
	return v.(*placeState)
}

// forgetPlaces drops the cached layout of a VNET namespace.
func (m *Manager) forgetPlaces(ns string) {
	ps := m.places(ns)
	ps.mu.Lock()
	ps.subnets = nil
	ps.mu.Unlock()
}

func linkInfos(links []netlink.Link) []linkInfo {
	out := make([]linkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, linkInfo{name: a.Name, kind: l.Type(), index: a.Index, master: a.MasterIndex})
	}
	return out
}

func readTopology(ctx context.Context, h *netlink.Handle) (map[string]*subnetPorts, error) {
	links, err := linkList(ctx, h)
	if err != nil {
		return nil, err
	}
	return topology(linkInfos(links)), nil
}

// reservePort chooses the bridge (the subnet bridge br or one of its
// leaves, made here when needed) that a new instance port joins and counts
// the port. It returns the bridge's index.
func (m *Manager) reservePort(ctx context.Context, h *netlink.Handle, ns string, br netlink.Link) (int, error) {
	layout, err := m.Layout.normalize()
	if err != nil {
		return 0, err
	}
	ps := m.places(ns)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	trunk := br.Attrs().Name
	fresh := false
	var p placement
	for {
		if ps.subnets == nil || fresh {
			t, err := readTopology(ctx, h)
			if err != nil {
				return 0, err
			}
			ps.subnets, fresh = t, true
		}
		s := ps.subnets[trunk]
		if s == nil {
			return 0, fmt.Errorf("%w %s in the VNET; Ensure the subnet first", errNoBridge, trunk)
		}
		p, err = layout.place(s)
		if (err != nil || p.newLeaf >= 0) && !fresh {
			fresh = true // counts may be stale: read them again first
			continue
		}
		if err != nil {
			return 0, err
		}
		break
	}
	if err := m.sizeNeighbors(ns, ps.subnets, 1); err != nil {
		return 0, err
	}
	s := ps.subnets[trunk]
	if p.newLeaf >= 0 {
		idx, err := m.makeLeaf(ctx, h, ns, br, p.bridge)
		if err != nil {
			ps.subnets = nil
			return 0, err
		}
		s.add(p)
		s.leaves[len(s.leaves)-1].ifindex = idx
		return idx, nil
	}
	s.add(p)
	if p.bridge == trunk {
		return br.Attrs().Index, nil
	}
	for _, lf := range s.leaves {
		if lf.name == p.bridge {
			return lf.ifindex, nil
		}
	}
	return 0, fmt.Errorf("leaf bridge %s: not found", p.bridge)
}

// makeLeaf creates leaf bridge name of the subnet bridge br and its uplink,
// replacing leftovers of a half-made one, and returns its index.
func (m *Manager) makeLeaf(ctx context.Context, h *netlink.Handle, ns string, br netlink.Link, name string) (int, error) {
	up, down := uplinkNames(name)
	for _, n := range []string{up, name} { // deleting up deletes down too
		l, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(n) })
		if err == nil {
			if err := retry(ctx, func() error { return h.LinkDel(l) }); err != nil && !isNotFound(err) {
				return 0, fmt.Errorf("remove leftover %s: %w", n, err)
			}
		} else if !isNotFound(err) {
			return 0, fmt.Errorf("look up %s: %w", n, err)
		}
	}
	snoop := false
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.Group = LinkGroup
	attrs.MTU = br.Attrs().MTU
	if err := retry(ctx, func() error {
		return h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs, MulticastSnooping: &snoop})
	}); err != nil {
		return 0, fmt.Errorf("create leaf bridge %s: %w", name, err)
	}
	leaf, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(name) })
	if err != nil {
		return 0, fmt.Errorf("find new leaf bridge %s: %w", name, err)
	}
	err = m.linkLeaf(ctx, h, br, leaf, up, down)
	if err != nil {
		if derr := retry(ctx, func() error { return h.LinkDel(leaf) }); derr != nil && !isNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
		}
		return 0, fmt.Errorf("leaf bridge %s of %s: %w", name, br.Attrs().Name, err)
	}
	m.log().Info("created leaf bridge", "netns", ns, "bridge", br.Attrs().Name, "leaf", name)
	return leaf.Attrs().Index, nil
}

func (m *Manager) linkLeaf(ctx context.Context, h *netlink.Handle, br, leaf netlink.Link, up, down string) error {
	if err := m.fail("leaf-uplink"); err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = up
	attrs.MTU = br.Attrs().MTU
	attrs.MasterIndex = br.Attrs().Index
	attrs.Group = LinkGroup
	attrs.Flags = net.FlagUp
	if err := retry(ctx, func() error {
		return h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: down})
	}); err != nil {
		return fmt.Errorf("create uplink %s: %w", up, err)
	}
	fail := func(err error) error {
		if l, lerr := h.LinkByName(up); lerr == nil {
			if derr := h.LinkDel(l); derr != nil && !isNotFound(derr) {
				err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
			}
		}
		return err
	}
	d, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(down) })
	if err != nil {
		return fail(fmt.Errorf("find %s: %w", down, err))
	}
	if err := retry(ctx, func() error { return h.LinkSetMasterByIndex(d, leaf.Attrs().Index) }); err != nil {
		return fail(fmt.Errorf("attach %s to %s: %w", down, leaf.Attrs().Name, err))
	}
	if err := retry(ctx, func() error { return h.LinkSetGroup(d, LinkGroup) }); err != nil {
		return fail(fmt.Errorf("set group of %s: %w", down, err))
	}
	for _, l := range []netlink.Link{d, leaf} {
		if err := retry(ctx, func() error { return h.LinkSetUp(l) }); err != nil {
			return fail(fmt.Errorf("set %s up: %w", l.Attrs().Name, err))
		}
	}
	return nil
}

// onSubnet reports whether a link's bridge is the subnet bridge br or one of
// its leaves.
func onSubnet(ctx context.Context, h *netlink.Handle, l, br netlink.Link) (bool, error) {
	mi := l.Attrs().MasterIndex
	if mi == 0 {
		return false, nil
	}
	if mi == br.Attrs().Index {
		return true, nil
	}
	master, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByIndex(mi) })
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find the bridge of %s: %w", l.Attrs().Name, err)
	}
	if !strings.HasPrefix(master.Attrs().Name, LeafPrefix) {
		return false, nil
	}
	upName, _ := uplinkNames(master.Attrs().Name)
	up, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(upName) })
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find %s: %w", upName, err)
	}
	return up.Attrs().MasterIndex == br.Attrs().Index, nil
}

// instancePorts counts the instance ports of a VNET's subnets.
func instancePorts(subnets map[string]*subnetPorts) int {
	n := 0
	for _, s := range subnets {
		n += s.trunkPorts - len(s.leaves)
		for _, lf := range s.leaves {
			n += lf.ports - 1
		}
	}
	return n
}

// sizeNeighbors makes the host's neighbour table hold the instances of
// every VNET of the Manager, with adding more in VNET ns, and its backlog
// hold the broadcasts of the largest bridge.
func (m *Manager) sizeNeighbors(ns string, subnets map[string]*subnetPorts, adding int) error {
	m.ports.Store(ns, instancePorts(subnets))
	total := adding
	m.ports.Range(func(_, v any) bool { total += v.(int); return true })
	var sys Sysctls = procSysctls{}
	if m.Sysctls != nil {
		sys = m.Sysctls
	}
	if err := m.neigh.ensure(sys, total, m.log()); err != nil {
		return err
	}
	// The bridge the instance joins has at most one port more than the
	// largest one now.
	return m.backlog.ensure(sys, min(largestBridge(subnets)+adding, MaxBridgePorts), m.log())
}
