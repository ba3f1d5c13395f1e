package vnet

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// A Linux bridge holds at most MaxBridgePorts ports (BR_MAX_PORTS), so a
// subnet larger than that spreads its instance ports over several bridges:
// the subnet bridge (the trunk, which holds the gateway address) takes
// instance ports first; once it is full, leaf bridges are made, each joined
// to the trunk by a veth pair (an uplink). The subnet stays one flat L2
// segment: ARP, the gateway and every instance are reachable from every
// port, through at most two bridges.
//
// Leaves and uplinks carry the project's prefix and LinkGroup, so deleting
// the VNET (or its group of links) removes them with everything else:
//
//	vmssbl<h>  leaf bridge k of a subnet (h: FNV-32a of "<trunk>/<k>")
//	vmssbu<h>  uplink, trunk side (a port of the trunk)
//	vmssbd<h>  uplink, leaf side (a port of the leaf)
const (
	MaxBridgePorts = 1023 // the kernel never uses port number 0 of its 1,024
	LeafPrefix     = "vmssbl"
	UplinkPrefix   = "vmssbu"
	DownlinkPrefix = "vmssbd"
)

// Layout says how many ports a bridge holds and how many of the trunk's
// ports are kept for uplinks. The zero value is DefaultLayout.
type Layout struct {
	// PortsPerBridge is the most ports any bridge of a subnet gets (at most
	// MaxBridgePorts). Zero: MaxBridgePorts.
	PortsPerBridge int
	// TrunkReserve is how many trunk ports are kept for uplinks to leaves,
	// so also the most leaves a subnet gets. Zero: 64, which with 1,023
	// ports per bridge makes room for 959 + 64 × 1,022 = 66,367 instances
	// (more than a /16 has addresses).
	TrunkReserve int
}

// DefaultLayout is the layout of a Manager that sets none.
var DefaultLayout = Layout{PortsPerBridge: MaxBridgePorts, TrunkReserve: 64}

func (l Layout) normalize() (Layout, error) {
	if l.PortsPerBridge == 0 {
		l.PortsPerBridge = DefaultLayout.PortsPerBridge
	}
	if l.TrunkReserve == 0 {
		l.TrunkReserve = DefaultLayout.TrunkReserve
	}
	if l.PortsPerBridge < 2 || l.PortsPerBridge > MaxBridgePorts {
		return l, fmt.Errorf("layout: ports per bridge %d: want 2 to %d", l.PortsPerBridge, MaxBridgePorts)
	}
	if l.TrunkReserve < 1 || l.TrunkReserve > l.PortsPerBridge {
		return l, fmt.Errorf("layout: trunk reserve %d: want 1 to the ports per bridge (%d)", l.TrunkReserve, l.PortsPerBridge)
	}
	return l, nil
}

// Capacity is the most instance ports one subnet holds in this layout.
func (l Layout) Capacity() int {
	return l.PortsPerBridge - l.TrunkReserve + l.TrunkReserve*(l.PortsPerBridge-1)
}

// subnetPorts is how full the bridges of one subnet are.
type subnetPorts struct {
	trunk      string
	trunkPorts int // every port of the trunk: instance veths and uplinks
	leaves     []leafPorts
}

type leafPorts struct {
	name    string
	index   int // k in the leaf's name
	ports   int // every port of the leaf, its uplink included
	ifindex int // 0 when not known yet
}

// placement is where a new instance port goes: an existing bridge, or a
// new leaf (index newLeaf) that must be made first.
type placement struct {
	bridge  string
	newLeaf int // -1: bridge exists
}

// place chooses the bridge of a new instance port: the trunk while it has
// room beyond its reserve, else the first leaf with a free port, else a new
// leaf with the lowest unused index.
func (l Layout) place(s *subnetPorts) (placement, error) {
	if s.trunkPorts < l.PortsPerBridge-l.TrunkReserve {
		return placement{bridge: s.trunk, newLeaf: -1}, nil
	}
	for _, lf := range s.leaves {
		if lf.ports < l.PortsPerBridge {
			return placement{bridge: lf.name, newLeaf: -1}, nil
		}
	}
	if s.trunkPorts >= l.PortsPerBridge || len(s.leaves) >= l.TrunkReserve {
		return placement{}, fmt.Errorf("subnet bridge %s and its %d leaf bridges are full (%d instance ports, %d per bridge); use a second subnet",
			s.trunk, len(s.leaves), l.Capacity(), l.PortsPerBridge)
	}
	used := map[int]bool{}
	for _, lf := range s.leaves {
		used[lf.index] = true
	}
	k := 0
	for used[k] {
		k++
	}
	return placement{bridge: LeafName(s.trunk, k), newLeaf: k}, nil
}

// add records a port on bridge (after place). A new leaf counts its uplink
// on both bridges.
func (s *subnetPorts) add(p placement) {
	if p.newLeaf >= 0 {
		s.trunkPorts++
		s.leaves = append(s.leaves, leafPorts{name: p.bridge, index: p.newLeaf, ports: 1})
	}
	if p.bridge == s.trunk {
		s.trunkPorts++
		return
	}
	for i := range s.leaves {
		if s.leaves[i].name == p.bridge {
			s.leaves[i].ports++
		}
	}
}

// remove undoes add of an instance port (not of the leaf).
func (s *subnetPorts) remove(bridge string) {
	if bridge == s.trunk {
		s.trunkPorts--
		return
	}
	for i := range s.leaves {
		if s.leaves[i].name == bridge {
			s.leaves[i].ports--
		}
	}
}

func leafHash(trunk string, k int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", trunk, k)
	return fmt.Sprintf("%08x", h.Sum32())
}

// LeafName is the name of leaf bridge k of the subnet bridge trunk.
func LeafName(trunk string, k int) string { return LeafPrefix + leafHash(trunk, k) }

// uplinkNames returns the trunk-side and leaf-side names of a leaf's uplink.
func uplinkNames(leaf string) (trunkSide, leafSide string) {
	h := strings.TrimPrefix(leaf, LeafPrefix)
	return UplinkPrefix + h, DownlinkPrefix + h
}

// linkInfo is what the layout needs to know of a link in a VNET namespace.
type linkInfo struct {
	name   string
	kind   string // "bridge", "veth", ...
	index  int
	master int // index of its bridge; 0 for none
}

// topology reads the layout of every subnet from the links of a VNET
// namespace: subnet bridges (BridgePrefix), their leaves (found through
// their uplinks) and how many ports each has. A leaf whose uplink is gone
// is not listed (and gets no ports).
func topology(links []linkInfo) map[string]*subnetPorts {
	byIndex := map[int]linkInfo{}
	ports := map[int]int{}
	byName := map[string]linkInfo{}
	for _, l := range links {
		byIndex[l.index] = l
		byName[l.name] = l
		if l.master != 0 {
			ports[l.master]++
		}
	}
	out := map[string]*subnetPorts{}
	for _, l := range links {
		if l.kind == "bridge" && strings.HasPrefix(l.name, BridgePrefix) {
			out[l.name] = &subnetPorts{trunk: l.name, trunkPorts: ports[l.index]}
		}
	}
	for _, l := range links {
		if l.kind != "bridge" || !strings.HasPrefix(l.name, LeafPrefix) {
			continue
		}
		up, _ := uplinkNames(l.name)
		t, ok := byIndex[byName[up].master]
		if !ok || out[t.name] == nil {
			continue
		}
		s := out[t.name]
		s.leaves = append(s.leaves, leafPorts{name: l.name, index: leafIndex(t.name, l.name), ports: ports[l.index], ifindex: l.index})
	}
	for _, s := range out {
		slices.SortFunc(s.leaves, func(a, b leafPorts) int { return a.index - b.index })
	}
	return out
}

// leafIndex finds k with LeafName(trunk, k) == leaf; -1 when none below
// the most leaves a subnet can have.
func leafIndex(trunk, leaf string) int {
	for k := 0; k < MaxBridgePorts; k++ {
		if LeafName(trunk, k) == leaf {
			return k
		}
	}
	return -1
}

// trunkOf maps each leaf bridge's name to its subnet bridge's name.
func trunkOf(t map[string]*subnetPorts) map[string]string {
	out := map[string]string{}
	for trunk, s := range t {
		out[trunk] = trunk
		for _, lf := range s.leaves {
			out[lf.name] = trunk
		}
	}
	return out
}
