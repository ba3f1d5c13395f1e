package vnet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/nsnet"
)

// vnetLinks lists the names of the links in a namespace.
func vnetLinks(t *testing.T, ns string) map[string]string {
	t.Helper()
	h, err := handleIn(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	out := map[string]string{} // name -> its bridge
	for _, l := range links {
		out[l.Attrs().Name] = byIndex[l.Attrs().MasterIndex]
	}
	return out
}

// A subnet larger than one bridge spreads over leaf bridges and stays one
// flat subnet: instances on the trunk and on different leaves reach each
// other, the gateway and 168.63.129.16 over TCP; Observe reports every
// instance on the subnet's bridge; a full subnet refuses; removing the
// subnet and deleting the VNET leave nothing.
func TestLeafBridges(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	// 3 ports per bridge, 2 kept for uplinks: the trunk takes 1 instance,
	// each of the 2 leaves 2.
	m := Manager{Layout: Layout{PortsPerBridge: 3, TrunkReserve: 2}}
	v := newVNET(t, &m, "10.0.0.0/24")
	var insts []string
	for j := range 5 {
		insts = append(insts, newInstance(t))
		attach(t, &m, v, insts[j], "vmssbr0", fmt.Sprintf("10.0.0.%d/24", 4+j))
	}
	l0, l1 := LeafName("vmssbr0", 0), LeafName("vmssbr0", 1)
	links := vnetLinks(t, v)
	wantOn := []string{"vmssbr0", l0, l0, l1, l1}
	for j, inst := range insts {
		if got := links[VethName(inst)]; got != wantOn[j] {
			t.Errorf("instance %d is on %q, want %q", j, got, wantOn[j])
		}
	}
	for _, lf := range []string{l0, l1} {
		up, down := uplinkNames(lf)
		if links[up] != "vmssbr0" || links[down] != lf {
			t.Errorf("uplink of %s: %s on %q, %s on %q", lf, up, links[up], down, links[down])
		}
	}

	// Flat L2: every instance reaches every other, the gateway and DNS.
	serve(t, v, "10.0.0.1:80", "gateway")
	serve(t, v, DNSAddr.String()+":53", "dns")
	for j, inst := range insts {
		serve(t, inst, fmt.Sprintf("10.0.0.%d:80", 4+j), fmt.Sprintf("inst%d", j))
	}
	for i, from := range insts {
		for j := range insts {
			if i != j {
				mustFetch(t, from, fmt.Sprintf("10.0.0.%d:80", 4+j), netip.Addr{}, fmt.Sprintf("inst%d 10.0.0.%d:", j, 4+i))
			}
		}
		mustFetch(t, from, "10.0.0.1:80", netip.Addr{}, "gateway")
		mustFetch(t, from, DNSAddr.String()+":53", netip.Addr{}, "dns")
		// and the VNET (load balancer, NAT, probes) reaches it
		mustFetch(t, v, fmt.Sprintf("10.0.0.%d:80", 4+i), netip.Addr{}, fmt.Sprintf("inst%d", i))
	}

	// Attaching again changes nothing: an instance stays on its leaf.
	attach(t, &m, v, insts[4], "vmssbr0", "10.0.0.8/24")
	if got := vnetLinks(t, v)[VethName(insts[4])]; got != l1 {
		t.Errorf("after a second Attach instance 4 is on %q, want %q", got, l1)
	}
	// A fresh manager (a restarted daemon) reads the layout back.
	m2 := Manager{Layout: m.Layout}
	extra := newInstance(t)
	err := m2.Attach(ctx, v, NIC{InstanceNetns: extra, Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.9/24")})
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("a sixth instance: err = %v, want the subnet full", err)
	}
	if hasLink(t, extra, "eth0") {
		t.Error("the refused instance got an eth0")
	}
	// A freed port is used again before anything new is made.
	if err := m2.Detach(ctx, v, VethName(insts[1])); err != nil {
		t.Fatal(err)
	}
	attach(t, &m2, v, extra, "vmssbr0", "10.0.0.9/24")
	if got := vnetLinks(t, v)[VethName(extra)]; got != l0 {
		t.Errorf("the new instance is on %q, want the freed port of %q", got, l0)
	}
	mustFetch(t, v, "10.0.0.4:80", netip.Addr{}, "inst0")

	obs, err := m2.Observe(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Bridges) != 1 || obs.Bridges[0].Name != "vmssbr0" {
		t.Errorf("observed bridges %+v, want vmssbr0 alone", obs.Bridges)
	}
	if len(obs.NICs) != 5 {
		t.Errorf("observed %d NICs, want 5: %+v", len(obs.NICs), obs.NICs)
	}
	for _, n := range obs.NICs {
		if n.Bridge != "vmssbr0" {
			t.Errorf("NIC %s observed on %q, want vmssbr0", n.HostSideName, n.Bridge)
		}
	}

	// Removing the subnet is refused while instances are on its leaves,
	// naming them and not the uplinks.
	err = m2.Ensure(ctx, Spec{Netns: v})
	if err == nil || !strings.Contains(err.Error(), VethName(insts[4])) || strings.Contains(err.Error(), UplinkPrefix) {
		t.Errorf("removing a busy subnet: err = %v, want it refused naming instance 4's veth only", err)
	}
	var names []string
	for _, inst := range append(insts, extra) {
		names = append(names, VethName(inst))
	}
	if err := m2.Detach(ctx, v, names...); err != nil {
		t.Fatal(err)
	}
	if err := m2.Ensure(ctx, Spec{Netns: v}); err != nil {
		t.Fatal(err)
	}
	for name := range vnetLinks(t, v) {
		if strings.HasPrefix(name, "vmss") {
			t.Errorf("%s is left after the subnet was removed", name)
		}
	}
}

// Deleting a VNET removes its leaves and uplinks with it.
func TestLeafBridgesDelete(t *testing.T) {
	requireRoot(t)
	m := Manager{Layout: Layout{PortsPerBridge: 2, TrunkReserve: 1}}
	v := newVNET(t, &m, "10.0.0.0/24")
	for j := range 2 {
		attach(t, &m, v, newInstance(t), "vmssbr0", fmt.Sprintf("10.0.0.%d/24", 4+j))
	}
	if _, ok := vnetLinks(t, v)[LeafName("vmssbr0", 0)]; !ok {
		t.Fatal("setup: no leaf bridge")
	}
	if err := m.Delete(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if nsnet.Exists(v) {
		t.Error("the VNET namespace is left")
	}
}
