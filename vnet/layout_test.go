package vnet

import (
	"strings"
	"testing"
)

// A subnet fills its trunk up to the reserve, then leaves one after the
// other, each made only when every bridge before it is full, and refuses
// once the trunk has no port left for another uplink.
func TestLayoutPlace(t *testing.T) {
	l, err := Layout{PortsPerBridge: 4, TrunkReserve: 2}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Capacity(), 2+2*3; got != want {
		t.Fatalf("Capacity() = %d, want %d", got, want)
	}
	s := &subnetPorts{trunk: "vmssbr0"}
	var got []string
	var made []int
	for range l.Capacity() {
		p, err := l.place(s)
		if err != nil {
			t.Fatalf("port %d: %v", len(got), err)
		}
		if p.newLeaf >= 0 {
			made = append(made, len(got))
		}
		s.add(p)
		got = append(got, p.bridge)
	}
	l0, l1 := LeafName("vmssbr0", 0), LeafName("vmssbr0", 1)
	want := []string{"vmssbr0", "vmssbr0", l0, l0, l0, l1, l1, l1}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ports went to %v, want %v", got, want)
	}
	if len(made) != 2 || made[0] != 2 || made[1] != 5 {
		t.Errorf("leaves made at ports %v, want [2 5]", made)
	}
	if s.trunkPorts != 4 || s.leaves[0].ports != 4 || s.leaves[1].ports != 4 {
		t.Errorf("counts: trunk %d, leaves %+v; want every bridge at 4", s.trunkPorts, s.leaves)
	}
	if _, err := l.place(s); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("a ninth port: err = %v, want the subnet full", err)
	}
	// A freed port is reused before anything new is made.
	s.remove(l0)
	if p, err := l.place(s); err != nil || p.bridge != l0 || p.newLeaf >= 0 {
		t.Errorf("after freeing a port of %s: place = %+v, %v", l0, p, err)
	}
}

// A leaf lost (its index unused) is made again with the lowest free index.
func TestLayoutReusesLeafIndex(t *testing.T) {
	l := Layout{PortsPerBridge: 4, TrunkReserve: 3}
	s := &subnetPorts{trunk: "vmssbr0", trunkPorts: 3, leaves: []leafPorts{{name: LeafName("vmssbr0", 1), index: 1, ports: 4}}}
	p, err := l.place(s)
	if err != nil || p.newLeaf != 0 || p.bridge != LeafName("vmssbr0", 0) {
		t.Errorf("place = %+v, %v; want new leaf 0", p, err)
	}
}

func TestLayoutDefaults(t *testing.T) {
	l, err := Layout{}.normalize()
	if err != nil || l != DefaultLayout {
		t.Fatalf("zero layout = %+v, %v; want %+v", l, err, DefaultLayout)
	}
	if l.Capacity() < 65536-5 {
		t.Errorf("default capacity %d does not hold a /16", l.Capacity())
	}
	// 1,000 instances still fit on one bridge; 4,096 need leaves.
	s := &subnetPorts{trunk: "vmssbr0", trunkPorts: 958}
	if p, _ := l.place(s); p.bridge != "vmssbr0" {
		t.Errorf("port 959 went to %s, want the trunk", p.bridge)
	}
	// A kernel bridge takes 1,023 ports (port number 0 is never used): the
	// trunk keeps 64 for uplinks, so instance 960 needs a leaf.
	s.trunkPorts = 959
	if p, _ := l.place(s); p.bridge == "vmssbr0" {
		t.Errorf("port 960 went to the trunk, whose other 64 ports are the leaves' uplinks")
	}
	for _, bad := range []Layout{{PortsPerBridge: 1}, {PortsPerBridge: 2000}, {PortsPerBridge: 4, TrunkReserve: 5}, {TrunkReserve: -1}} {
		if _, err := bad.normalize(); err == nil {
			t.Errorf("layout %+v accepted", bad)
		}
	}
}

// Names of leaves and uplinks fit IFNAMSIZ, carry the project's prefix,
// are never taken for instance veths or subnet bridges, and differ per
// subnet and index.
func TestLeafNames(t *testing.T) {
	seen := map[string]bool{}
	for _, trunk := range []string{"vmssbr0", "vmssbr1", "vmssbr0123abcd"} {
		for k := range 200 {
			leaf := LeafName(trunk, k)
			up, down := uplinkNames(leaf)
			for _, n := range []string{leaf, up, down} {
				if len(n) > maxIfaceName || !strings.HasPrefix(n, "vmss") || strings.HasPrefix(n, VethPrefix) || strings.HasPrefix(n, BridgePrefix) {
					t.Fatalf("name %q (leaf %d of %s)", n, k, trunk)
				}
				if seen[n] {
					t.Fatalf("name %q used twice", n)
				}
				seen[n] = true
			}
			if leafIndex(trunk, leaf) != k {
				t.Fatalf("leafIndex(%s, %s) = %d, want %d", trunk, leaf, leafIndex(trunk, leaf), k)
			}
		}
	}
}

// The layout is read back from the links: leaves belong to the subnet
// bridge their uplink is a port of, ports are counted per bridge, and a
// leaf without its uplink is not counted.
func TestTopology(t *testing.T) {
	l0, l1, orphan := LeafName("vmssbr0", 0), LeafName("vmssbr0", 1), LeafName("vmssbr1", 0)
	u0, d0 := uplinkNames(l0)
	u1, d1 := uplinkNames(l1)
	links := []linkInfo{
		{name: "lo", kind: "device", index: 1},
		{name: "vmssbr0", kind: "bridge", index: 2},
		{name: "vmssbr1", kind: "bridge", index: 3},
		{name: l1, kind: "bridge", index: 4},
		{name: l0, kind: "bridge", index: 5},
		{name: orphan, kind: "bridge", index: 6},
		{name: u0, kind: "veth", index: 7, master: 2},
		{name: d0, kind: "veth", index: 8, master: 5},
		{name: u1, kind: "veth", index: 9, master: 2},
		{name: d1, kind: "veth", index: 10, master: 4},
		{name: "vmssv00000001", kind: "veth", index: 11, master: 2},
		{name: "vmssv00000002", kind: "veth", index: 12, master: 5},
		{name: "vmssv00000003", kind: "veth", index: 13, master: 5},
		{name: "vmssv00000004", kind: "veth", index: 14, master: 3},
		{name: "vmssv00000005", kind: "veth", index: 15, master: 6},
	}
	top := topology(links)
	s := top["vmssbr0"]
	if s == nil || s.trunkPorts != 3 || len(s.leaves) != 2 {
		t.Fatalf("vmssbr0: %+v", s)
	}
	if s.leaves[0].name != l0 || s.leaves[0].ports != 3 || s.leaves[0].ifindex != 5 ||
		s.leaves[1].name != l1 || s.leaves[1].ports != 1 || s.leaves[1].index != 1 {
		t.Errorf("leaves of vmssbr0: %+v", s.leaves)
	}
	if s := top["vmssbr1"]; s == nil || s.trunkPorts != 1 || len(s.leaves) != 0 {
		t.Errorf("vmssbr1: %+v", s)
	}
	tr := trunkOf(top)
	if tr[l0] != "vmssbr0" || tr[l1] != "vmssbr0" || tr["vmssbr1"] != "vmssbr1" {
		t.Errorf("trunkOf = %v", tr)
	}
	if _, ok := tr[orphan]; ok {
		t.Errorf("a leaf without uplink is listed: %v", tr)
	}
}
