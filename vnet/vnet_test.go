package vnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/testutil"

	"github.com/vishvananda/netlink"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Root integration tests. Every namespace they create is named vmsst +
// random hex and removed in t.Cleanup; nothing is created on the host.

func requireRoot(t testing.TB) { t.Helper(); testutil.RequireRoot(t) }

func uniq() string { return testutil.UniqueName("vmsst") }

// newInstance creates an empty instance namespace.
func newInstance(t testing.TB) string {
	t.Helper()
	return namedInstance(t, uniq())
}

// namedInstance creates an empty instance namespace called name.
func namedInstance(t testing.TB, name string) string {
	t.Helper()
	if err := nsnet.Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsnet.Remove(name); err != nil {
			t.Error(err)
		}
	})
	return name
}

// newVNET ensures a VNET with the given subnets (bridges vmssbr0, 1, ...).
func newVNET(t testing.TB, m *Manager, prefixes ...string) string {
	t.Helper()
	name := uniq()
	spec := Spec{Netns: name}
	for _, p := range prefixes {
		spec.Subnets = append(spec.Subnets, Subnet{Prefix: netip.MustParsePrefix(p)})
	}
	t.Cleanup(func() {
		if err := m.Delete(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	if err := m.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	return name
}

func attach(t testing.TB, m *Manager, vnet, inst, bridge, addr string) NIC {
	t.Helper()
	nic := NIC{InstanceNetns: inst, Bridge: bridge, Addr: netip.MustParsePrefix(addr)}
	if err := m.Attach(context.Background(), vnet, nic); err != nil {
		t.Fatal(err)
	}
	return nic
}

// serve answers every connection with "tag remote-address" and counts them.
func serve(t testing.TB, ns, addr, tag string) (*net.TCPListener, *atomic.Int32) {
	t.Helper()
	l, err := nsnet.ListenTCP(context.Background(), nsPath(ns), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			fmt.Fprintf(c, "%s %s", tag, c.RemoteAddr())
			c.Close()
		}
	}()
	return l, n
}

func nsPath(ns string) string {
	if ns == "" {
		return ""
	}
	return nsnet.Path(ns)
}

// fetch dials addr from inside ns (optionally from src) and returns what
// the server said.
func fetch(ns, addr string, src netip.Addr) (string, error) {
	return fetchWithin(ns, addr, src, 2*time.Second)
}

// fetchWithin is fetch with a dial timeout; failures expected by a test
// use a short one.
func fetchWithin(ns, addr string, src netip.Addr, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := nsnet.DialerFrom(nsPath(ns), src)(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func mustFetch(t *testing.T, ns, addr string, src netip.Addr, want string) {
	t.Helper()
	got, err := fetch(ns, addr, src)
	if err != nil {
		t.Fatalf("from %s to %s: %v", ns, addr, err)
	}
	if !strings.HasPrefix(got, want) {
		t.Fatalf("from %s to %s: got %q, want prefix %q", ns, addr, got, want)
	}
}

// hostSnapshot lists the host namespace's links, addresses and routes.
func hostSnapshot(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		out = append(out, fmt.Sprintf("link %s %s %s", a.Name, l.Type(), a.HardwareAddr))
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range addrs {
			out = append(out, fmt.Sprintf("addr %s %s", a.Name, ad.IPNet))
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		out = append(out, fmt.Sprintf("route table %d %s via %s dev %d", r.Table, r.Dst, r.Gw, r.LinkIndex))
	}
	slices.Sort(out)
	return out
}

// ours reports whether a host snapshot line could come from this package.
func ours(line string) bool {
	for _, s := range []string{"vmss", "eth0 veth", "10.0.", DNSAddr.String(), "00:0d:3a", GatewayMAC.String()} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func checkHostUnchanged(t *testing.T, before []string) {
	t.Helper()
	after := hostSnapshot(t)
	for _, l := range after {
		if !slices.Contains(before, l) {
			if ours(l) {
				t.Errorf("host namespace gained %q", l)
			} else {
				t.Logf("host namespace gained %q (not from this package; another test running at the same time?)", l)
			}
		}
	}
	for _, l := range before {
		if !slices.Contains(after, l) && ours(l) {
			t.Errorf("host namespace lost %q", l)
		}
	}
}

// hostAddr returns an IPv4 address of the host other than loopback.
func hostAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && !ip.Unmap().IsLoopback() {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func TestVNET(t *testing.T) {
	requireRoot(t)
	before := hostSnapshot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24", "10.0.1.0/24")

	// Idempotent: a second Ensure leaves what exists unchanged.
	obs1, err := m.Observe(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Netns: a, Subnets: []Subnet{{Prefix: p24a}, {Prefix: p24b}}}
	if err := m.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	obs2, err := m.Observe(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(obs1) != fmt.Sprint(obs2) {
		t.Fatalf("second Ensure changed the VNET:\n%+v\n%+v", obs1, obs2)
	}
	if !obs2.Exists || !obs2.Forwarding || !obs2.DNSAddr || len(obs2.Bridges) != 2 ||
		obs2.Bridges[0].Gateway != netip.MustParsePrefix("10.0.0.1/24") || !obs2.Bridges[0].Up ||
		obs2.Bridges[1].Gateway != netip.MustParsePrefix("10.0.1.1/24") {
		t.Fatalf("observed %+v", obs2)
	}

	i1, i2 := newInstance(t), newInstance(t)
	attach(t, &m, a, i1, "vmssbr0", "10.0.0.4/24")
	attach(t, &m, a, i2, "vmssbr1", "10.0.1.4/24")
	// Idempotent: attaching again keeps the same pair.
	before1, _ := m.Observe(ctx, a)
	attach(t, &m, a, i1, "vmssbr0", "10.0.0.4/24")
	after1, _ := m.Observe(ctx, a)
	if fmt.Sprint(before1) != fmt.Sprint(after1) {
		t.Fatalf("second Attach changed the VNET:\n%+v\n%+v", before1, after1)
	}
	var seen []string
	for _, nic := range after1.NICs {
		seen = append(seen, fmt.Sprintf("%s %s %s %s %v %s %v", nic.HostSideName, nic.Bridge, nic.InstanceNetns, nic.PeerName, nic.Addr, nic.MAC, nic.Up))
	}
	slices.Sort(seen)
	want := []string{
		fmt.Sprintf("%s vmssbr0 %s eth0 10.0.0.4/24 00:0d:3a:00:00:04 true", VethName(i1), i1),
		fmt.Sprintf("%s vmssbr1 %s eth0 10.0.1.4/24 00:0d:3a:00:01:04 true", VethName(i2), i2),
	}
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("observed NICs\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}

	t.Run("no IPv6", func(t *testing.T) {
		// No link-local addresses: no DAD, no router solicitations.
		for _, ns := range []string{i1, a} {
			h, err := handleIn(ns)
			if err != nil {
				t.Fatal(err)
			}
			addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
			h.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, ad := range addrs {
				if ad.IP.IsLinkLocalUnicast() {
					t.Errorf("%s has IPv6 link-local %v", ns, ad.IPNet)
				}
			}
		}
	})
	t.Run("across subnets", func(t *testing.T) {
		serve(t, i2, "10.0.1.4:8080", "i2")
		// Routed by the VNET, not translated: i2 sees i1's own address.
		mustFetch(t, i1, "10.0.1.4:8080", netip.Addr{}, "i2 10.0.0.4:")
	})
	t.Run("platform address", func(t *testing.T) {
		serve(t, a, "168.63.129.16:8081", "wire")
		mustFetch(t, i1, "168.63.129.16:8081", netip.Addr{}, "wire 10.0.0.4:")
		mustFetch(t, i2, "168.63.129.16:8081", netip.Addr{}, "wire 10.0.1.4:")
	})
	t.Run("probe source", func(t *testing.T) {
		serve(t, i1, "10.0.0.4:8082", "i1")
		mustFetch(t, a, "10.0.0.4:8082", DNSAddr, "i1 168.63.129.16:")
	})
	t.Run("frontend IP", func(t *testing.T) {
		fe := netip.MustParseAddr("10.0.0.100")
		for range 2 {
			if err := m.AddFrontendIP(ctx, a, "vmssbr0", fe); err != nil {
				t.Fatal(err)
			}
		}
		serve(t, a, "10.0.0.100:8083", "lb")
		mustFetch(t, i1, "10.0.0.100:8083", netip.Addr{}, "lb 10.0.0.4:")
		mustFetch(t, i2, "10.0.0.100:8083", netip.Addr{}, "lb 10.0.1.4:")
		o, _ := m.Observe(ctx, a)
		if !slices.Equal(o.Bridges[0].FrontendIPs, []netip.Addr{fe}) {
			t.Fatalf("frontends %v", o.Bridges[0].FrontendIPs)
		}
		for _, bad := range []string{"10.0.1.100", "10.0.0.1", "10.0.0.255"} {
			if err := m.AddFrontendIP(ctx, a, "vmssbr0", netip.MustParseAddr(bad)); err == nil {
				t.Errorf("frontend %s accepted on 10.0.0.0/24", bad)
			}
		}
		for range 2 {
			if err := m.RemoveFrontendIP(ctx, a, "vmssbr0", fe); err != nil {
				t.Fatal(err)
			}
		}
		o, _ = m.Observe(ctx, a)
		if len(o.Bridges[0].FrontendIPs) != 0 {
			t.Fatalf("frontends after remove %v", o.Bridges[0].FrontendIPs)
		}
	})
	t.Run("host unreachable", func(t *testing.T) {
		ha := hostAddr(t)
		if !ha.IsValid() {
			t.Skip("the host has no IPv4 address besides loopback")
		}
		l, accepted := serve(t, "", netip.AddrPortFrom(ha, 0).String(), "host")
		target := l.Addr().String()
		for _, ns := range []string{i1, a} {
			got, err := fetchWithin(ns, target, netip.Addr{}, 500*time.Millisecond)
			if err == nil {
				t.Errorf("from %s reached the host listener %s: %q", ns, target, got)
			}
			t.Logf("from %s to the host's %s: %v", ns, target, err)
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("host listener accepted %d connections", n)
		}
	})

	t.Run("overlapping VNETs", func(t *testing.T) {
		b := newVNET(t, &m, "10.0.0.0/24")
		i3, i4 := newInstance(t), newInstance(t)
		attach(t, &m, b, i3, "vmssbr0", "10.0.0.4/24") // same address as i1
		attach(t, &m, b, i4, "vmssbr0", "10.0.0.5/24")
		serve(t, i1, "10.0.0.4:9000", "A")
		serve(t, i3, "10.0.0.4:9000", "B")
		mustFetch(t, i4, "10.0.0.4:9000", netip.Addr{}, "B 10.0.0.5:")
		mustFetch(t, i2, "10.0.0.4:9000", netip.Addr{}, "A 10.0.1.4:")
		serve(t, i4, "10.0.0.5:9001", "i4")
		// 10.0.0.5 exists only in VNET b: VNET a has no way there.
		if got, err := fetchWithin(i2, "10.0.0.5:9001", netip.Addr{}, 500*time.Millisecond); err == nil {
			t.Errorf("VNET a reached VNET b: %q", got)
		}
		if got, err := fetchWithin(i1, "10.0.0.5:9001", netip.Addr{}, 500*time.Millisecond); err == nil {
			t.Errorf("VNET a reached VNET b: %q", got)
		}
	})

	t.Run("detach", func(t *testing.T) {
		for range 2 {
			if err := m.Detach(ctx, a, VethName(i2)); err != nil {
				t.Fatal(err)
			}
		}
		if hasLink(t, i2, "eth0") {
			t.Fatal("eth0 still in the instance after Detach")
		}
		// Attach again after Detach works.
		attach(t, &m, a, i2, "vmssbr1", "10.0.1.4/24")
	})

	t.Run("delete", func(t *testing.T) {
		// An open socket holds the VNET namespace beyond Delete (as a DNS
		// server would); the instances must be cut off all the same.
		hold, _ := serve(t, a, "168.63.129.16:8090", "held")
		for range 2 {
			if err := m.Delete(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if nsnet.Exists(a) {
			t.Fatal("VNET namespace still exists")
		}
		if hasLink(t, i1, "eth0") {
			t.Fatal("an instance kept eth0 after Delete")
		}
		o, err := m.Observe(ctx, a)
		if err != nil || o.Exists {
			t.Fatalf("Observe after Delete: %+v, %v", o, err)
		}
		hold.Close()
	})
	checkHostUnchanged(t, before)
}

func hasLink(t *testing.T, ns, name string) bool {
	t.Helper()
	h, err := handleIn(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = h.LinkByName(name)
	return err == nil
}

func TestEnsureUpdates(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24")
	i := newInstance(t)
	attach(t, &m, a, i, "vmssbr1", "10.0.1.4/24")

	// Bad input changes nothing.
	bad := Spec{Netns: a, Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/30")}}}
	before, _ := m.Observe(ctx, a)
	if err := m.Ensure(ctx, bad); err == nil {
		t.Fatal("bad spec accepted")
	}
	// Removing a subnet that still has an instance fails before any change.
	busy := Spec{Netns: a, Subnets: []Subnet{{Prefix: p24a, Bridge: "vmssbr0"}}}
	err := m.Ensure(ctx, busy)
	if err == nil || !strings.Contains(err.Error(), "vmssbr1") || !strings.Contains(err.Error(), VethName(i)) {
		t.Fatalf("removing a busy subnet: %v", err)
	}
	after, _ := m.Observe(ctx, a)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("a refused Ensure changed the VNET:\n%+v\n%+v", before, after)
	}

	// Drop subnet 2, move subnet 0 to another prefix; subnet 1 is kept.
	next := Spec{Netns: a, Subnets: []Subnet{
		{Prefix: netip.MustParsePrefix("10.0.8.0/22"), Bridge: "vmssbr0"},
		{Prefix: p24b, Bridge: "vmssbr1"},
	}}
	if err := m.Ensure(ctx, next); err != nil {
		t.Fatal(err)
	}
	o, _ := m.Observe(ctx, a)
	var got []string
	for _, b := range o.Bridges {
		got = append(got, b.Name+" "+b.Gateway.String())
	}
	slices.Sort(got)
	if want := []string{"vmssbr0 10.0.8.1/22", "vmssbr1 10.0.1.1/24"}; !slices.Equal(got, want) {
		t.Fatalf("bridges %v, want %v", got, want)
	}
	if len(o.NICs) != 1 || o.NICs[0].Bridge != "vmssbr1" {
		t.Fatalf("NICs %+v", o.NICs)
	}
}

func TestEnsureRollsBack(t *testing.T) {
	requireRoot(t)
	m := Manager{failAt: func(p string) error {
		if p == "ensure-subnet" {
			return errors.New("injected")
		}
		return nil
	}}
	name := uniq()
	t.Cleanup(func() { nsnet.Remove(name) })
	err := m.Ensure(context.Background(), Spec{Netns: name, Subnets: []Subnet{{Prefix: p24a}}})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Ensure = %v", err)
	}
	if nsnet.Exists(name) {
		t.Fatal("the namespace Ensure created was left behind")
	}
}

func TestAttachRollsBackAndRefuses(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24")
	i := newInstance(t)
	nic := NIC{InstanceNetns: i, Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.4/24")}

	m.failAt = func(p string) error {
		if p == "attach-configure" {
			return errors.New("injected")
		}
		return nil
	}
	if err := m.Attach(ctx, a, nic); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Attach = %v", err)
	}
	if hasLink(t, a, VethName(i)) || hasLink(t, i, "eth0") {
		t.Fatal("a failed Attach left its veth pair")
	}
	m.failAt = nil
	if err := m.Attach(ctx, a, nic); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		nic  NIC
		want string
	}{
		{"name taken", NIC{InstanceNetns: newInstance(t), HostSideName: VethName(i), Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.5/24")}, "is taken"},
		{"other subnet", NIC{InstanceNetns: newInstance(t), Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.9.5/24")}, "not in the subnet"},
		{"no bridge", NIC{InstanceNetns: newInstance(t), Bridge: "vmssbr7", Addr: netip.MustParsePrefix("10.0.0.5/24")}, "no bridge vmssbr7"},
		{"no instance", NIC{InstanceNetns: uniq(), Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.5/24")}, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Attach(ctx, a, tc.nic)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Attach = %v, want %q", err, tc.want)
			}
			if tc.nic.HostSideName == "" && hasLink(t, a, VethName(tc.nic.InstanceNetns)) {
				t.Fatal("a refused Attach created a veth")
			}
		})
	}
	t.Run("own eth0", func(t *testing.T) {
		j := newInstance(t)
		h, err := handleIn(j)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "eth0"
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			t.Fatal(err)
		}
		err = m.Attach(ctx, a, NIC{InstanceNetns: j, Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.6/24")})
		if err == nil || !strings.Contains(err.Error(), "already has an eth0") {
			t.Fatalf("Attach = %v", err)
		}
		if hasLink(t, a, VethName(j)) {
			t.Fatal("a refused Attach created a veth")
		}
	})
	// The first instance is untouched by all of this.
	if !hasLink(t, i, "eth0") || !hasLink(t, a, VethName(i)) {
		t.Fatal("the attached instance lost its pair")
	}

	t.Run("re-address", func(t *testing.T) {
		// Attaching an attached instance with another address changes the
		// address and MAC in place.
		attach(t, &m, a, i, "vmssbr0", "10.0.0.9/24")
		o, err := m.Observe(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.NICs) != 1 || o.NICs[0].Addr != netip.MustParsePrefix("10.0.0.9/24") || o.NICs[0].MAC.String() != "00:0d:3a:00:00:09" || !o.NICs[0].Up {
			t.Fatalf("after re-address: %+v", o.NICs)
		}
		serve(t, i, "10.0.0.9:7000", "moved")
		mustFetch(t, a, "10.0.0.9:7000", netip.Addr{}, "moved 10.0.0.1:")
	})
}

func TestMissingVNET(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	name := uniq()
	if o, err := m.Observe(ctx, name); err != nil || o.Exists {
		t.Fatalf("Observe = %+v, %v", o, err)
	}
	if err := m.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, name, VethName("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveFrontendIP(ctx, name, "vmssbr0", netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatal(err)
	}
	err := m.Attach(ctx, name, NIC{InstanceNetns: newInstance(t), Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.5/24")})
	if err == nil || !strings.Contains(err.Error(), "Ensure it first") {
		t.Fatalf("Attach to a missing VNET = %v", err)
	}
}

func TestDetachBatch(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24")
	var insts []string
	for j := range 3 {
		insts = append(insts, newInstance(t))
		attach(t, &m, a, insts[j], "vmssbr0", fmt.Sprintf("10.0.0.%d/24", 4+j))
	}
	err := m.Detach(ctx, a, VethName(insts[0]), VethName(insts[1]), VethName("vmsst-never-attached"))
	if err != nil {
		t.Fatal(err)
	}
	for j, inst := range insts {
		if got, want := hasLink(t, inst, "eth0"), j == 2; got != want {
			t.Errorf("instance %d has eth0: %v, want %v", j, got, want)
		}
	}
	if err := m.Detach(ctx, a, "eth0"); err == nil {
		t.Error("Detach of a name without the veth prefix accepted")
	}
}
