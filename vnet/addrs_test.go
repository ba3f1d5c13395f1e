package vnet

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// A bridge's addresses come from a dump of that bridge's alone (the kernel
// filters: no message of another link), and are those AddrList gives; the
// gateway of a subnet is still found after Ensure moved the subnet to
// another prefix, and instances attach there.
func TestBridgeAddrsFilteredByKernel(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24")
	attach(t, &m, a, newInstance(t), "vmssbr1", "10.0.1.4/24")
	if err := m.AddFrontendIP(ctx, a, "vmssbr1", netip.MustParseAddr("10.0.1.200")); err != nil {
		t.Fatal(err)
	}
	h, err := handleIn(a)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// Positive control: the namespace has addresses on several links.
	all, err := h.AddrList(nil, 2 /* AF_INET */)
	if err != nil {
		t.Fatal(err)
	}
	links := map[int]bool{}
	for _, ad := range all {
		links[ad.LinkIndex] = true
	}
	if len(links) < 4 {
		t.Fatalf("IPv4 addresses on %d links of %s, want at least the 3 bridges and lo", len(links), a)
	}
	gateway := func(bridge string) string {
		t.Helper()
		_, gw, err := bridgeSubnet(ctx, h, a, bridge)
		if err != nil {
			t.Fatal(err)
		}
		return gw.String()
	}
	for i, want := range []string{"10.0.0.1/24", "10.0.1.1/24", "10.0.2.1/24"} {
		bridge := fmt.Sprintf("vmssbr%d", i)
		br, err := h.LinkByName(bridge)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := dumpLinkAddrs(ctx, a, br.Attrs().Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if got := nl.DeserializeIfAddrmsg(msg).Index; int(got) != br.Attrs().Index {
				t.Errorf("dump of %s (index %d) has an address of link %d: the kernel did not filter", bridge, br.Attrs().Index, got)
			}
		}
		got, err := linkIPv4Addrs(ctx, a, h, br)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ipv4Addrs(ctx, h, br)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(ref) || len(msgs) != len(ref) {
			t.Errorf("%s: addresses %v (%d messages), want those of AddrList %v", bridge, got, len(msgs), ref)
		}
		if g := gateway(bridge); g != want {
			t.Errorf("gateway of %s = %s, want %s", bridge, g, want)
		}
	}
	if got, err := linkIPv4Addrs(ctx, a, h, mustLink(t, h, "vmssbr1")); err != nil || len(got) != 2 {
		t.Errorf("vmssbr1 addresses = %v, %v, want the gateway and the frontend IP", got, err)
	}

	// Ensure again, with subnet 0 on another prefix.
	next := Spec{Netns: a, Subnets: []Subnet{
		{Prefix: netip.MustParsePrefix("10.0.8.0/22"), Bridge: "vmssbr0"},
		{Prefix: p24b, Bridge: "vmssbr1"},
		{Prefix: netip.MustParsePrefix("10.0.2.0/24"), Bridge: "vmssbr2"},
	}}
	if err := m.Ensure(ctx, next); err != nil {
		t.Fatal(err)
	}
	if g := gateway("vmssbr0"); g != "10.0.8.1/22" {
		t.Errorf("gateway of vmssbr0 after Ensure = %s, want 10.0.8.1/22", g)
	}
	attach(t, &m, a, newInstance(t), "vmssbr0", "10.0.9.4/22")
}

func mustLink(t *testing.T, h interface {
	LinkByName(string) (netlink.Link, error)
}, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
