package vnet

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
)

// collidingNames returns two instance namespace names, both starting with
// prefix, that the 32-bit legacy scheme gives the same veth name (a
// birthday search: about 80,000 names).
func collidingNames(t testing.TB, prefix string) (string, string) {
	t.Helper()
	seen := map[string]string{}
	for i := range 1 << 22 {
		name := prefix + "-" + strconv.Itoa(i)
		v := legacyVethName(name)
		if o, ok := seen[v]; ok {
			return o, name
		}
		seen[v] = name
	}
	t.Fatal("no collision among 4M names")
	return "", ""
}

func TestVethNamesOfLegacyCollisionDiffer(t *testing.T) {
	a, b := collidingNames(t, "vmss-vnet-demo-vm")
	if VethName(a) == VethName(b) {
		t.Fatalf("%s and %s share the veth name %s", a, b, VethName(a))
	}
	for _, n := range []string{VethName(a), VethName(b)} {
		if len(n) != maxIfaceName {
			t.Errorf("%s: %d characters, want %d", n, len(n), maxIfaceName)
		}
		if err := checkIfaceName("veth", n, VethPrefix); err != nil {
			t.Error(err)
		}
	}
}

// Two instances whose names collided under the 32-bit scheme both attach
// and reach each other (the second used to be refused: "veth name ... is
// taken").
func TestAttachInstancesOfLegacyCollision(t *testing.T) {
	requireRoot(t)
	var m Manager
	v := newVNET(t, &m, "10.0.0.0/24")
	a, b := collidingNames(t, uniq())
	namedInstance(t, a)
	namedInstance(t, b)
	attach(t, &m, v, a, "vmssbr0", "10.0.0.4/24")
	attach(t, &m, v, b, "vmssbr0", "10.0.0.5/24")
	serve(t, b, "10.0.0.5:7000", "b")
	mustFetch(t, a, "10.0.0.5:7000", netip.Addr{}, "b 10.0.0.4:")
}

// A pair made by an earlier version, under the legacy name, is renamed
// when the instance is attached again (the daemon adopting it after an
// upgrade), and keeps working; Detach by the new name removes it.
func TestAttachAdoptsLegacyVeth(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	v := newVNET(t, &m, "10.0.0.0/24")
	i, peer := newInstance(t), newInstance(t)
	old := legacyVethName(i)
	nic := NIC{InstanceNetns: i, Bridge: "vmssbr0", HostSideName: old, Addr: netip.MustParsePrefix("10.0.0.4/24")}
	if err := m.Attach(ctx, v, nic); err != nil {
		t.Fatal(err)
	}
	attach(t, &m, v, peer, "vmssbr0", "10.0.0.5/24")
	serve(t, i, "10.0.0.4:7000", "i")
	mustFetch(t, peer, "10.0.0.4:7000", netip.Addr{}, "i 10.0.0.5:")

	attach(t, &m, v, i, "vmssbr0", "10.0.0.4/24")
	if hasLink(t, v, old) || !hasLink(t, v, VethName(i)) {
		t.Fatalf("after adoption: %s present %v, %s present %v", old, hasLink(t, v, old), VethName(i), hasLink(t, v, VethName(i)))
	}
	mustFetch(t, peer, "10.0.0.4:7000", netip.Addr{}, "i 10.0.0.5:")
	o, err := m.Observe(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range o.NICs {
		if n.InstanceNetns == i && (!n.Up || n.HostSideName != VethName(i)) {
			t.Fatalf("adopted NIC: %+v", n)
		}
	}
	if err := m.Detach(ctx, v, VethName(i)); err != nil {
		t.Fatal(err)
	}
	if hasLink(t, i, "eth0") {
		t.Fatal("Detach by the new name left the instance's eth0")
	}
}

// Ensure renames every pair of the VNET made under a legacy name (a daemon
// upgraded while its instances ran), and leaves a legacy-shaped name that
// is not its instance's legacy name alone.
func TestEnsureRenamesLegacyVeths(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	v := newVNET(t, &m, "10.0.0.0/24")
	i, j, k := newInstance(t), newInstance(t), newInstance(t)
	for n, inst := range []string{i, j} {
		nic := NIC{InstanceNetns: inst, Bridge: "vmssbr0", HostSideName: legacyVethName(inst), Addr: netip.MustParsePrefix("10.0.0." + strconv.Itoa(4+n) + "/24")}
		if err := m.Attach(ctx, v, nic); err != nil {
			t.Fatal(err)
		}
	}
	other := VethPrefix + "0123abcd" // legacy-shaped, not k's legacy name
	if err := m.Attach(ctx, v, NIC{InstanceNetns: k, Bridge: "vmssbr0", HostSideName: other, Addr: netip.MustParsePrefix("10.0.0.6/24")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx, Spec{Netns: v, Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/24")}}}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{i, j} {
		if hasLink(t, v, legacyVethName(inst)) || !hasLink(t, v, VethName(inst)) {
			t.Errorf("%s: legacy name present %v, new name present %v", inst, hasLink(t, v, legacyVethName(inst)), hasLink(t, v, VethName(inst)))
		}
	}
	if !hasLink(t, v, other) {
		t.Errorf("%s was renamed", other)
	}
	serve(t, j, "10.0.0.5:7000", "j")
	mustFetch(t, i, "10.0.0.5:7000", netip.Addr{}, "j 10.0.0.4:")
	mustFetch(t, k, "10.0.0.5:7000", netip.Addr{}, "j 10.0.0.6:")
}
