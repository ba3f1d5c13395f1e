package model

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

func subnetID(t *testing.T) string {
	return id(t, arm.TypeVirtualNetwork, "vnet").String() + "/subnets/sn"
}

// frontend is the JSON of an internal frontend; addr "" is dynamic.
func frontend(t *testing.T, name, addr string) string {
	ip := ""
	if addr != "" {
		ip = `,"privateIPAddress":"` + addr + `","privateIPAllocationMethod":"Static"`
	}
	return fmt.Sprintf(`{"name":%q,"properties":{"subnet":{"id":%q}%s}}`, name, subnetID(t), ip)
}

func putInternalLB(t *testing.T, s *State, name string, fes ...string) (*arm.LoadBalancer, *arm.Error) {
	t.Helper()
	lb, _, e := s.PutLoadBalancer(id(t, arm.TypeLoadBalancer, name),
		[]byte(`{"properties":{"frontendIPConfigurations":[`+strings.Join(fes, ",")+`]}}`))
	return lb, e
}

func frontendIPs(lb *arm.LoadBalancer) []string {
	var out []string
	for _, f := range lb.Properties.FrontendIPConfigurations {
		out = append(out, f.Properties.PrivateIPAddress)
	}
	return out
}

func TestAllocatorRemembersTheRequest(t *testing.T) {
	s := fixture(t, "10.0.0.0/29") // .4 .5 .6 usable
	ref, ok := s.LookupSubnet(subnetID(t))
	if !ok {
		t.Fatal("no subnet")
	}
	a := s.Allocator()
	var got []string
	for i := 0; i < 3; i++ {
		ip, e := a.Dynamic(ref)
		must(t, e)
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "10.0.0.4 10.0.0.5 10.0.0.6" {
		t.Fatalf("three dynamic addresses of one request: %v", got)
	}
	if _, e := a.Dynamic(ref); e == nil || e.Code != "SubnetIsFull" {
		t.Fatalf("fourth address: %v; want SubnetIsFull", e)
	}
	if _, e := a.Static("x", ref, "10.0.0.5"); e == nil || e.Code != "PrivateIPAddressInUse" {
		t.Fatalf("static address the request took: %v; want PrivateIPAddressInUse", e)
	}
	a.Release(ref.Subnet.ID, "10.0.0.5")
	if ip, e := a.Dynamic(ref); e != nil || ip.String() != "10.0.0.5" {
		t.Fatalf("after releasing .5: %v, %v", ip, e)
	}
	// A fresh allocator starts from the state alone (nothing was stored).
	if ip, e := s.Allocator().Dynamic(ref); e != nil || ip != netip.MustParseAddr("10.0.0.4") {
		t.Fatalf("fresh allocator: %v, %v", ip, e)
	}
}

func TestTwoDynamicFrontendsGetTwoAddresses(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	lb, e := putInternalLB(t, s, "ilb", frontend(t, "a", ""), frontend(t, "b", ""))
	must(t, e)
	if got := frontendIPs(lb); strings.Join(got, " ") != "10.0.0.4 10.0.0.5" {
		t.Fatalf("frontend addresses %v; want 10.0.0.4 10.0.0.5", got)
	}
	// A NIC after that takes the next one, and an instance the one after.
	nic, _, e := s.PutNIC(id(t, arm.TypeNIC, "nic"), []byte(`{"properties":{"ipConfigurations":[
		{"name":"c1","properties":{"subnet":{"id":"`+subnetID(t)+`"}}},
		{"name":"c2","properties":{"subnet":{"id":"`+subnetID(t)+`"}}}]}}`))
	must(t, e)
	if a, b := nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress, nic.Properties.IPConfigurations[1].Properties.PrivateIPAddress; a != "10.0.0.6" || b != "10.0.0.7" {
		t.Fatalf("NIC addresses %s %s; want 10.0.0.6 10.0.0.7", a, b)
	}
	ss, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "web"), setBody(t, 1, map[string]any{"overprovision": false}), false)
	must(t, e)
	if ip := ss.Instances["0"].PrivateIP; ip != "10.0.0.8" {
		t.Fatalf("instance address %s; want 10.0.0.8", ip)
	}
}

func TestStaticAddressesWinOverDynamicOnesOfTheSameRequest(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	// The dynamic frontend comes first but must not take the address the
	// static one asks for.
	lb, e := putInternalLB(t, s, "ilb", frontend(t, "dyn", ""), frontend(t, "fixed", "10.0.0.4"))
	must(t, e)
	if got := frontendIPs(lb); strings.Join(got, " ") != "10.0.0.5 10.0.0.4" {
		t.Fatalf("frontend addresses %v; want 10.0.0.5 10.0.0.4", got)
	}
	// Moving "dyn"'s address to a new static frontend and adding a dynamic
	// one: "dyn" gets a new address, nothing collides.
	lb, e = putInternalLB(t, s, "ilb", frontend(t, "dyn", ""), frontend(t, "fixed", "10.0.0.4"), frontend(t, "new", "10.0.0.5"), frontend(t, "more", ""))
	must(t, e)
	if got := frontendIPs(lb); strings.Join(got, " ") != "10.0.0.6 10.0.0.4 10.0.0.5 10.0.0.7" {
		t.Fatalf("frontend addresses %v; want 10.0.0.6 10.0.0.4 10.0.0.5 10.0.0.7", got)
	}
	// Unchanged, a dynamic frontend keeps its address.
	lb, e = putInternalLB(t, s, "ilb", frontend(t, "dyn", ""), frontend(t, "fixed", "10.0.0.4"), frontend(t, "new", "10.0.0.5"), frontend(t, "more", ""))
	must(t, e)
	if got := frontendIPs(lb); strings.Join(got, " ") != "10.0.0.6 10.0.0.4 10.0.0.5 10.0.0.7" {
		t.Fatalf("after an unchanged put: %v", got)
	}
	// Two static frontends asking for one address still fail.
	seq := s.Seq
	if _, e := putInternalLB(t, s, "ilb2", frontend(t, "a", "10.0.0.20"), frontend(t, "b", "10.0.0.20")); e == nil || e.Code != "PrivateIPAddressInUse" {
		t.Fatalf("two frontends on one static address: %v; want PrivateIPAddressInUse", e)
	}
	if s.Seq != seq {
		t.Fatal("a failed put changed the state")
	}
	// The NIC's ip configurations follow the same rules.
	nic, _, e := s.PutNIC(id(t, arm.TypeNIC, "nic"), []byte(`{"properties":{"ipConfigurations":[
		{"name":"c1","properties":{"subnet":{"id":"`+subnetID(t)+`"}}},
		{"name":"c2","properties":{"subnet":{"id":"`+subnetID(t)+`"},"privateIPAddress":"10.0.0.8"}}]}}`))
	must(t, e)
	if a, b := nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress, nic.Properties.IPConfigurations[1].Properties.PrivateIPAddress; a != "10.0.0.9" || b != "10.0.0.8" {
		t.Fatalf("NIC addresses %s %s; want 10.0.0.9 10.0.0.8", a, b)
	}
}
