package vnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Manager creates, updates and removes VNET namespaces and attaches
// instances to them. The zero value is ready to use; a Manager must not be
// copied after first use. Methods are safe for concurrent use: Ensure and
// Delete of one VNET exclude each other and the other calls for that VNET.
type Manager struct {
	// Logger receives a line per kernel object created or removed. Nil
	// discards.
	Logger *slog.Logger

	// Layout spreads a subnet's instance ports over several bridges when
	// one bridge cannot hold them all. Zero: DefaultLayout. Tests use a
	// small one.
	Layout Layout

	// Sysctls is the host's /proc/sys, where the neighbour table limits
	// and the per-CPU backlog are raised when the instances need it. Nil:
	// /proc/sys.
	Sysctls Sysctls

	locks   sync.Map // VNET namespace name -> *sync.RWMutex
	placing sync.Map // VNET namespace name -> *placeState
	ports   sync.Map // VNET namespace name -> int, instance ports last counted
	neigh   neighSizer
	backlog backlogSizer

	detaches detachBatches // concurrent Detach calls, coalesced per VNET

	// failAt, when set, is called at named points of Ensure and Attach; an
	// error it returns fails the call there. Tests use it to check rollback.
	failAt func(point string) error
}

func (m *Manager) fail(point string) error {
	if m.failAt == nil {
		return nil
	}
	return m.failAt(point)
}

func (m *Manager) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return m.Logger
}

func (m *Manager) lock(ns string) *sync.RWMutex {
	v, _ := m.locks.LoadOrStore(ns, new(sync.RWMutex))
	return v.(*sync.RWMutex)
}

// List returns the named namespaces whose names start with prefix, sorted
// (for example every VNET: the caller's VNET prefix such as "vmss-vnet-").
func List(prefix string) ([]string, error) { return nsnet.List(prefix) }

// Ensure makes the VNET namespace match spec, creating what is missing and
// removing bridges of subnets no longer listed; running it again changes
// nothing. Inside the namespace (never on the host): loopback up with
// DNSAddr, IPv4 forwarding on, IPv6 off, and one bridge per subnet with the
// gateway address, MAC GatewayMAC, STP off (ports forward at once).
//
// Bad input changes nothing. A subnet whose bridge still has instances
// attached is not removed: Ensure fails naming them, before any change. If
// Ensure created the namespace and then fails, the namespace is removed.
func (m *Manager) Ensure(ctx context.Context, spec Spec) error {
	s, err := spec.normalize()
	if err != nil {
		return err
	}
	mu := m.lock(s.Netns)
	mu.Lock()
	defer mu.Unlock()

	created := false
	if !nsnet.Exists(s.Netns) {
		if err := nsnet.Create(s.Netns); err != nil {
			return fmt.Errorf("VNET %s: %w", s.Netns, err)
		}
		created = true
		m.log().Info("created VNET namespace", "netns", s.Netns)
	}
	err = m.ensureInside(ctx, s)
	m.forgetPlaces(s.Netns)
	if err != nil && created {
		if rerr := nsnet.Remove(s.Netns); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
	}
	if err != nil {
		return fmt.Errorf("VNET %s: %w", s.Netns, err)
	}
	return nil
}

func (m *Manager) ensureInside(ctx context.Context, s Spec) error {
	h, err := handleIn(s.Netns)
	if err != nil {
		return err
	}
	defer h.Close()

	// Plan: read what exists and refuse before changing anything.
	links, err := linkList(ctx, h)
	if err != nil {
		return err
	}
	byName := map[string]netlink.Link{}
	for _, l := range links {
		byName[l.Attrs().Name] = l
	}
	wanted := map[string]bool{}
	for _, sn := range s.Subnets {
		wanted[sn.Bridge] = true
		if l, ok := byName[sn.Bridge]; ok && l.Type() != "bridge" {
			return fmt.Errorf("subnet %s: link %s exists and is a %s, not a bridge; delete it", sn.Name, sn.Bridge, l.Type())
		}
	}
	topo := topology(linkInfos(links))
	trunks := trunkOf(topo)
	var remove []netlink.Link
	var busy []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "bridge" || !strings.HasPrefix(name, BridgePrefix) || wanted[name] {
			continue
		}
		// The bridge of a removed subnet goes with its leaves and uplinks;
		// instance ports on any of them keep it.
		var ports []string
		for _, p := range links {
			master := ""
			for _, b := range links {
				if b.Attrs().Index == p.Attrs().MasterIndex {
					master = b.Attrs().Name
				}
			}
			if master != "" && trunks[master] == name && strings.HasPrefix(p.Attrs().Name, VethPrefix) {
				ports = append(ports, p.Attrs().Name)
			}
		}
		if len(ports) > 0 {
			busy = append(busy, fmt.Errorf("bridge %s of a removed subnet still has instances attached (%s); detach them first", name, strings.Join(ports, ", ")))
		}
		for _, lf := range topo[name].leaves {
			up, _ := uplinkNames(lf.name)
			for _, n := range []string{up, lf.name} {
				if l, ok := byName[n]; ok {
					remove = append(remove, l)
				}
			}
		}
		remove = append(remove, l)
	}
	if err := errors.Join(busy...); err != nil {
		return err
	}

	// Apply.
	if err := writeSysctls(s.Netns, [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/disable_ipv6", "1"},
		{"net/ipv6/conf/default/disable_ipv6", "1"},
	}); err != nil {
		return err
	}
	lo, ok := byName["lo"]
	if !ok {
		return errors.New("no loopback interface")
	}
	if err := retry(ctx, func() error { return h.LinkSetUp(lo) }); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	for _, a := range []netip.Addr{DNSAddr, InternetAddr} {
		if err := retry(ctx, func() error { return h.AddrReplace(lo, toAddr(netip.PrefixFrom(a, 32))) }); err != nil {
			return fmt.Errorf("add %v to lo: %w", a, err)
		}
	}
	if err := m.renameLegacy(ctx, h, s.Netns, links); err != nil {
		return err
	}
	for _, l := range remove {
		if err := retry(ctx, func() error { return h.LinkDel(l) }); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove bridge %s: %w", l.Attrs().Name, err)
		}
		m.log().Info("removed bridge of a removed subnet", "netns", s.Netns, "bridge", l.Attrs().Name)
	}
	for _, sn := range s.Subnets {
		if err := errors.Join(ctx.Err(), m.fail("ensure-subnet")); err != nil {
			return err
		}
		if err := m.ensureBridge(ctx, h, s.Netns, sn, byName[sn.Bridge]); err != nil {
			return fmt.Errorf("subnet %s: %w", sn.Name, err)
		}
	}
	return nil
}

// ensureBridge creates or corrects one subnet bridge; existing is nil when
// the bridge does not exist yet.
func (m *Manager) ensureBridge(ctx context.Context, h *netlink.Handle, ns string, sn Subnet, existing netlink.Link) error {
	br := existing
	if br == nil {
		snoop := false
		attrs := netlink.NewLinkAttrs()
		attrs.Name = sn.Bridge
		attrs.HardwareAddr = GatewayMAC
		attrs.Group = LinkGroup
		nb := &netlink.Bridge{LinkAttrs: attrs, MulticastSnooping: &snoop}
		if err := retry(ctx, func() error { return h.LinkAdd(nb) }); err != nil {
			return fmt.Errorf("create bridge %s: %w", sn.Bridge, err)
		}
		l, err := retryGet(ctx, func() (netlink.Link, error) { return h.LinkByName(sn.Bridge) })
		if err != nil {
			return fmt.Errorf("find new bridge %s: %w", sn.Bridge, err)
		}
		br = l
		m.log().Info("created subnet bridge", "netns", ns, "bridge", sn.Bridge, "prefix", sn.Prefix)
	} else if !slices.Equal(br.Attrs().HardwareAddr, GatewayMAC) {
		if err := retry(ctx, func() error { return h.LinkSetHardwareAddr(br, GatewayMAC) }); err != nil {
			return fmt.Errorf("set MAC of bridge %s: %w", sn.Bridge, err)
		}
	}
	if br.Attrs().Group != LinkGroup {
		if err := retry(ctx, func() error { return h.LinkSetGroup(br, LinkGroup) }); err != nil {
			return fmt.Errorf("set group of bridge %s: %w", sn.Bridge, err)
		}
	}

	gw := netip.PrefixFrom(GatewayOf(sn.Prefix), sn.Prefix.Bits())
	have, err := ipv4Addrs(ctx, h, br)
	if err != nil {
		return err
	}
	for _, a := range have {
		// Keep the gateway and frontend addresses (/32); drop a gateway
		// of a former prefix.
		if a == gw || a.Bits() == 32 {
			continue
		}
		if err := retry(ctx, func() error { return h.AddrDel(br, toAddr(a)) }); err != nil {
			return fmt.Errorf("remove old address %v from %s: %w", a, sn.Bridge, err)
		}
	}
	if !slices.Contains(have, gw) {
		if err := retry(ctx, func() error { return h.AddrReplace(br, toAddr(gw)) }); err != nil {
			return fmt.Errorf("add gateway %v to %s: %w", gw, sn.Bridge, err)
		}
	}
	if err := retry(ctx, func() error { return h.LinkSetUp(br) }); err != nil {
		return fmt.Errorf("set %s up: %w", sn.Bridge, err)
	}
	return nil
}

// Delete removes a VNET namespace and everything in it; a missing one is
// not an error. Bridges and instance veths are deleted first, in one kernel
// batch, so instances are cut off at once even if an open socket (a DNS
// server, a load balancer listener) still holds the namespace: close those
// too, or the empty namespace lingers until they are closed. Instance
// namespaces themselves are left alone; their eth0 goes with the veth.
func (m *Manager) Delete(ctx context.Context, netns string) error {
	if err := nsnet.ValidName(netns); err != nil {
		return err
	}
	mu := m.lock(netns)
	mu.Lock()
	defer mu.Unlock()
	m.placing.Delete(netns)
	m.ports.Delete(netns)
	if nsnet.Exists(netns) {
		if err := deleteGroup(ctx, netns, LinkGroup); err != nil {
			return fmt.Errorf("VNET %s: %w", netns, err)
		}
	}
	if err := nsnet.Remove(netns); err != nil {
		return fmt.Errorf("VNET %s: %w", netns, err)
	}
	m.log().Info("deleted VNET namespace", "netns", netns)
	return nil
}
