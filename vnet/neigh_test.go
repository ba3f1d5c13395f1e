package vnet

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// An instance that reuses a deleted instance's address must be reachable from
// the VNET at once: Attach drops the VNET's neighbor entry that still holds
// the old MAC, and leaves the entries of other addresses alone.
func TestAttachForgetsStaleNeighbor(t *testing.T) {
	requireRoot(t)
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24")
	vh, err := handleIn(a)
	if err != nil {
		t.Fatal(err)
	}
	defer vh.Close()
	br, err := vh.LinkByName("vmssbr0")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := net.ParseMAC("00:0d:3a:de:ad:01")
	for _, ip := range []string{"10.0.0.4", "10.0.0.9"} {
		nb := &netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_REACHABLE,
			IP: net.ParseIP(ip), HardwareAddr: old}
		if err := vh.NeighSet(nb); err != nil {
			t.Fatal(err)
		}
	}
	macOf := func(ip string) net.HardwareAddr {
		t.Helper()
		ns, err := vh.NeighList(br.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, nb := range ns {
			if a, ok := netip.AddrFromSlice(nb.IP); ok && a.Unmap().String() == ip {
				return nb.HardwareAddr
			}
		}
		return nil
	}
	if !slices.Equal(macOf("10.0.0.4"), old) {
		t.Fatalf("setup: no stale entry for 10.0.0.4")
	}
	attach(t, &m, a, newInstance(t), "vmssbr0", "10.0.0.4/24")
	if got := macOf("10.0.0.4"); slices.Equal(got, old) {
		t.Errorf("the VNET still maps 10.0.0.4 to the old MAC %s", got)
	}
	if got := macOf("10.0.0.9"); !slices.Equal(got, old) {
		t.Errorf("the entry of another address changed: %s", got)
	}
}
