package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

const sub0 = "00000000-0000-0000-0000-000000000000"

func id(t *testing.T, typ string, names ...string) arm.ID {
	t.Helper()
	i, err := arm.NewID(sub0, "rg", typ, names...)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// fixture: a state with VNET 10.0.0.0/16 + subnet 10.0.0.0/24 (or the given
// prefix), a public IP and a load balancer with a NAT pool 50000-50119 -> 22.
func fixture(t *testing.T, subnet string) *State {
	t.Helper()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	s := New(cfg)
	must(t, s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "vnet"), `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"`+subnet+`"}}]}}`))
	_, _, e := s.PutPublicIP(id(t, arm.TypePublicIP, "pip"), []byte(`{}`))
	must(t, e)
	lbid := id(t, arm.TypeLoadBalancer, "lb").String()
	_, _, e = s.PutLoadBalancer(id(t, arm.TypeLoadBalancer, "lb"), []byte(`{"properties":{
	 "frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"`+id(t, arm.TypePublicIP, "pip").String()+`"}}}],
	 "backendAddressPools":[{"name":"be"}],
	 "inboundNatPools":[{"name":"nat","properties":{"frontendIPConfiguration":{"id":"`+lbid+`/frontendIPConfigurations/FE"},"protocol":"tcp","frontendPortRangeStart":50000,"frontendPortRangeEnd":"50119","backendPort":22}}]}}`))
	must(t, e)
	return s
}

func (s *State) PutVNetJSON(i arm.ID, body string) *arm.Error {
	_, _, e := s.PutVNet(i, []byte(body))
	return e
}

func must(t *testing.T, e *arm.Error) {
	t.Helper()
	if e != nil {
		t.Fatal(e)
	}
}

func setBody(t *testing.T, capacity int, extra map[string]any) []byte {
	t.Helper()
	lb := id(t, arm.TypeLoadBalancer, "lb").String()
	props := map[string]any{
		"overprovision": false,
		"upgradePolicy": map[string]any{"mode": "Manual"},
		"virtualMachineProfile": map[string]any{
			"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
				"name": "nic", "properties": map[string]any{"primary": "true", "ipConfigurations": []any{map[string]any{
					"name": "ipc", "properties": map[string]any{
						"subnet":                          map[string]any{"id": id(t, arm.TypeSubnet, "vnet", "sn").String()},
						"loadBalancerBackendAddressPools": []any{map[string]any{"id": lb + "/backendAddressPools/be"}},
						"loadBalancerInboundNatPools":     []any{map[string]any{"id": lb + "/inboundNatPools/nat"}},
					}}}}}}},
		},
	}
	for k, v := range extra {
		props[k] = v
	}
	if _, ok := extra["noNAT"]; ok {
		delete(props, "noNAT")
		ic := props["virtualMachineProfile"].(map[string]any)["networkProfile"].(map[string]any)["networkInterfaceConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)["ipConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)
		delete(ic, "loadBalancerInboundNatPools")
	}
	b, _ := json.Marshal(map[string]any{"sku": map[string]any{"name": "Standard_A1", "capacity": capacity}, "properties": props})
	return b
}

func liveIDs(ss *ScaleSet) []string {
	var out []string
	for _, in := range ss.Live() {
		out = append(out, in.ID)
	}
	return out
}

func TestComputerName(t *testing.T) {
	for _, c := range []struct {
		prefix string
		id     int
		want   string
	}{
		{"PREFIX", 85, "PREFIX00002D"},
		{"web", 0, "web000000"},
		{"web", 35, "web00000Z"},
		{"web", 36, "web000010"},
		{"myss", 1295, "myss0000ZZ"},
	} {
		if got := ComputerName(c.prefix, c.id); got != c.want {
			t.Errorf("ComputerName(%q, %d) = %q, want %q", c.prefix, c.id, got, c.want)
		}
	}
	if got := VMName("web", 7); got != "web_7" {
		t.Errorf("VMName = %q", got)
	}
}

func TestCreateAssignsAzureIdentities(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	ss, created, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "web"), setBody(t, 7, nil), false)
	must(t, e)
	if !created {
		t.Fatal("created = false for a new set")
	}
	for i, in := range ss.SortedInstances() {
		if in.ID != strconv.Itoa(i) || in.Name != "web_"+in.ID || in.ComputerName != ComputerName("web", i) {
			t.Errorf("instance %d: id %s name %s computer %s", i, in.ID, in.Name, in.ComputerName)
		}
		if in.PrivateIP != fmt.Sprintf("10.0.0.%d", 4+i) {
			t.Errorf("instance %d: ip %s, want 10.0.0.%d", i, in.PrivateIP, 4+i)
		}
		if in.FaultDomain != i%5 || in.UpdateDomain != i%5 {
			t.Errorf("instance %d: fd %d ud %d", i, in.FaultDomain, in.UpdateDomain)
		}
		if in.NATPorts[arm.KeyOf(id(t, arm.TypeLoadBalancer, "lb").String()+"/inboundNatPools/nat")] != 50000+i {
			t.Errorf("instance %d: nat ports %v", i, in.NATPorts)
		}
		if !strings.HasPrefix(in.Netns, "vmss-") {
			t.Errorf("netns %q lacks the prefix", in.Netns)
		}
	}
}

func TestFaultDomainCount(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	ss, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "web"), setBody(t, 6, map[string]any{"platformFaultDomainCount": 2}), false)
	must(t, e)
	for _, in := range ss.Instances {
		if in.FaultDomain != in.IDNum()%2 || in.UpdateDomain != in.IDNum()%5 {
			t.Errorf("instance %s: fd %d ud %d", in.ID, in.FaultDomain, in.UpdateDomain)
		}
	}
	_, _, e = s.PutScaleSet(id(t, arm.TypeScaleSet, "bad"), setBody(t, 1, map[string]any{"platformFaultDomainCount": 6}), false)
	if e == nil || e.Target != "properties.platformFaultDomainCount" {
		t.Fatalf("fault domain count 6 accepted: %v", e)
	}
}

func TestIDsContinueFromHighestEverUsed(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 20, nil), false)
	must(t, e)
	ss, e := s.Scale(sid, 15)
	must(t, e)
	// Default policy after balancing fault domains: ids 15-19 (one per domain).
	var del []string
	for _, in := range ss.SortedInstances() {
		if in.Deleting {
			del = append(del, in.ID)
			s.RemoveInstance(sid.Key(), in.ID)
		}
	}
	if strings.Join(del, ",") != "15,16,17,18,19" {
		t.Errorf("scale-in removed %v, want 15-19", del)
	}
	ss, e = s.Scale(sid, 18)
	must(t, e)
	ids := liveIDs(ss)
	if got := strings.Join(ids[15:], ","); got != "20,21,22" {
		t.Errorf("new ids %s, want 20,21,22", got)
	}
}

func TestScaleInDefaultBalancesFaultDomains(t *testing.T) {
	// Instances 0..9 in 5 fault domains; delete-instances 0 and 5 empties FD 0
	// partially; scale-in by 3 must take from the fullest domains, highest id first.
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 10, nil), false)
	must(t, e)
	_, e = s.DeleteInstances(sid, []string{"9", "8", "3"})
	must(t, e)
	// Now FD0: 0,5  FD1: 1,6  FD2: 2,7  FD3: none... wait 8->FD3, 3->FD3 deleted; FD4: 4 (9 deleted)
	ss, e := s.Scale(sid, 4)
	must(t, e)
	var del []string
	for _, in := range ss.SortedInstances() {
		if in.Deleting && in.ID != "9" && in.ID != "8" && in.ID != "3" {
			del = append(del, in.ID)
		}
	}
	sort.Strings(del)
	// FD0,1,2 have 2 each; FD4 has 1. Take 7 (FD2), 6 (FD1), 5 (FD0).
	if strings.Join(del, ",") != "5,6,7" {
		t.Errorf("Default scale-in chose %v, want 5,6,7", del)
	}
}

func TestScaleInPolicies(t *testing.T) {
	mk := func(id string, fd int, created int) *Instance {
		return &Instance{ID: id, FaultDomain: fd, Created: time.Unix(int64(created), 0)}
	}
	live := []*Instance{mk("0", 0, 5), mk("1", 1, 1), mk("2", 2, 3), mk("3", 3, 4), mk("4", 4, 2)}
	cases := []struct {
		policy string
		n      int
		want   string
	}{
		{ScaleInDefault, 2, "4,3"},
		{ScaleInNewestVM, 2, "0,3"},
		{ScaleInOldestVM, 2, "1,4"},
	}
	for _, c := range cases {
		got, e := SelectScaleIn(live, c.n, c.policy)
		must(t, e)
		var ids []string
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if strings.Join(ids, ",") != c.want {
			t.Errorf("%s: chose %v, want %s", c.policy, ids, c.want)
		}
	}
}

func TestProtectFromScaleIn(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 3, nil), false)
	must(t, e)
	yes := true
	_, e = s.SetProtection(sid, "2", &yes, nil)
	must(t, e)
	ss, e := s.Scale(sid, 2)
	must(t, e)
	if ss.Instances["2"].Deleting || !ss.Instances["1"].Deleting {
		t.Errorf("scale-in ignored protection: 1 deleting=%v 2 deleting=%v", ss.Instances["1"].Deleting, ss.Instances["2"].Deleting)
	}
	// Protection never blocks delete-instances.
	_, e = s.DeleteInstances(sid, []string{"2"})
	must(t, e)
	if !ss.Instances["2"].Deleting {
		t.Error("delete-instances of a protected instance did not delete it")
	}
	// Not enough unprotected instances: the request fails and changes nothing.
	_, e = s.SetProtection(sid, "0", &yes, nil)
	must(t, e)
	seq := s.Seq
	if _, e = s.Scale(sid, 0); e == nil {
		t.Fatal("scale to 0 with a protected instance succeeded")
	}
	if s.Seq != seq || s.ScaleSets[sid.Key()].Capacity() != 1 {
		t.Errorf("failed scale-in changed the state (capacity %d)", s.ScaleSets[sid.Key()].Capacity())
	}
}

func TestPrivateIPsAndFullSubnet(t *testing.T) {
	s := fixture(t, "10.0.0.0/29") // .4 .5 .6 usable
	sid := id(t, arm.TypeScaleSet, "web")
	ss, _, e := s.PutScaleSet(sid, setBody(t, 3, nil), false)
	must(t, e)
	if got := []string{ss.Instances["0"].PrivateIP, ss.Instances["2"].PrivateIP}; got[0] != "10.0.0.4" || got[1] != "10.0.0.6" {
		t.Errorf("ips %v", got)
	}
	seq := s.Seq
	_, e = s.Scale(sid, 4)
	if e == nil || e.Code != "SubnetIsFull" || !strings.Contains(e.Message, "/subnets/sn") {
		t.Fatalf("full subnet: %v", e)
	}
	if s.Seq != seq || len(s.ScaleSets[sid.Key()].Instances) != 3 {
		t.Error("failed scale-out changed the state")
	}
}

func TestOverprovision(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	ss, _, e := s.PutScaleSet(sid, setBody(t, 3, map[string]any{"overprovision": "true"}), false)
	must(t, e)
	if len(ss.Instances) != 6 || ss.Batch == nil || ss.Batch.Want != 3 {
		t.Fatalf("overprovisioned create made %d instances, batch %+v", len(ss.Instances), ss.Batch)
	}
	if ss.EffectiveCount() != 3 {
		t.Errorf("effective count %d", ss.EffectiveCount())
	}
	// Instances 1, 2, 4 and 5 come up first; 3 of them stay (lowest ids).
	if extras := s.ResolveBatch(sid, map[string]bool{"1": true, "2": true, "4": true, "5": true}, false); len(extras) != 3 {
		t.Fatalf("extras %d", len(extras))
	}
	var keep []string
	for _, in := range ss.Live() {
		keep = append(keep, in.ID)
	}
	if strings.Join(keep, ",") != "1,2,4" {
		t.Errorf("kept %v, want 1,2,4 (non-contiguous ids)", keep)
	}
	// Next scale-out continues after the highest id ever used (5).
	for _, in := range ss.SortedInstances() {
		s.RemoveInstance(sid.Key(), in.ID)
	}
	body, _ := json.Marshal(map[string]any{"sku": map[string]any{"capacity": 4}, "properties": map[string]any{"overprovision": false}})
	ss, _, e = s.PutScaleSet(sid, body, true)
	must(t, e)
	if got := strings.Join(liveIDs(ss), ","); got != "1,2,4,6" {
		t.Errorf("after scale-out: %s", got)
	}
	ss, e = s.Scale(sid, 5)
	must(t, e)
	if got := strings.Join(liveIDs(ss), ","); got != "1,2,4,6,7" || ss.Batch != nil {
		t.Errorf("scale-out without overprovisioning: %s, batch %+v", got, ss.Batch)
	}
}

func TestOverprovisionSettledWithFailures(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	ss, _, e := s.PutScaleSet(sid, setBody(t, 2, map[string]any{"overprovision": true}), false)
	must(t, e)
	if extras := s.ResolveBatch(sid, map[string]bool{"3": true}, false); extras != nil {
		t.Fatal("batch resolved with 1 of 2 running and not settled")
	}
	extras := s.ResolveBatch(sid, map[string]bool{"3": true}, true)
	if len(extras) != 2 || strings.Join(liveIDs(ss), ",") != "0,3" {
		t.Errorf("settled: extras %d, live %v (want running 3 plus lowest 0)", len(extras), liveIDs(ss))
	}
}

func TestLimits(t *testing.T) {
	s := fixture(t, "10.0.0.0/16")
	_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "big"), setBody(t, 101, nil), false)
	if e == nil || e.Target != "sku.capacity" || !strings.Contains(e.Message, "singlePlacementGroup") {
		t.Fatalf("101 with single placement group: %v", e)
	}
	_, _, e = s.PutScaleSet(id(t, arm.TypeScaleSet, "big"), setBody(t, 1001, map[string]any{"singlePlacementGroup": false}), false)
	if e == nil || !strings.Contains(e.Message, "1000") {
		t.Fatalf("1001: %v", e)
	}
	_, _, e = s.PutScaleSet(id(t, arm.TypeScaleSet, "big"), setBody(t, 101, map[string]any{"singlePlacementGroup": false}), false)
	if e != nil && e.Code == "InvalidParameter" {
		t.Fatalf("101 without single placement group refused: %v", e)
	}
	cfg := s.Config()
	cfg.LiftLimits = true
	s.SetConfig(cfg)
	if err := s.checkLimits(&arm.VirtualMachineScaleSet{Properties: &arm.ScaleSetProperties{}}, 5000); err != nil {
		t.Errorf("lifted limits still enforced: %v", err)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 2, nil), false)
	must(t, e)
	before, _ := json.Marshal(s)
	cases := []struct {
		name string
		do   func() *arm.Error
		code string
	}{
		{"negative capacity", func() *arm.Error { _, e := s.Scale(sid, -1); return e }, "InvalidParameter"},
		{"over limit", func() *arm.Error { _, e := s.Scale(sid, 500); return e }, "InvalidParameter"},
		{"unknown instance", func() *arm.Error { _, e := s.DeleteInstances(sid, []string{"0", "7"}); return e }, "InvalidParameter"},
		{"power unknown instance", func() *arm.Error { _, e := s.SetPower(sid, []string{"9"}, PowerStopped); return e }, "InvalidParameter"},
		{"not json", func() *arm.Error { _, _, e := s.PutScaleSet(sid, []byte("{nope"), false); return e }, "InvalidRequestContent"},
		{"bad set name", func() *arm.Error {
			_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "-bad"), setBody(t, 1, nil), false)
			return e
		}, "InvalidResourceName"},
		{"bad cidr", func() *arm.Error {
			return s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "v2"), `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/33"]}}}`)
		}, "InvalidAddressPrefixFormat"},
		{"non-canonical cidr", func() *arm.Error {
			return s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "v2"), `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.5/16"]}}}`)
		}, "InvalidCIDRNotation"},
		{"overlapping subnets", func() *arm.Error {
			return s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "v2"), `{"properties":{"addressSpace":{"addressPrefixes":["10.1.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.1.0.0/24"}},{"name":"b","properties":{"addressPrefix":"10.1.0.128/25"}}]}}`)
		}, "NetcfgSubnetRangesOverlap"},
		{"subnet outside vnet", func() *arm.Error {
			return s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "v2"), `{"properties":{"addressSpace":{"addressPrefixes":["10.1.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.2.0.0/24"}}]}}`)
		}, "NetcfgSubnetRangeOutsideVnet"},
		{"in-use subnet removed", func() *arm.Error {
			return s.PutVNetJSON(id(t, arm.TypeVirtualNetwork, "vnet"), `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}`)
		}, "InUseSubnetCannotBeDeleted"},
		{"missing subnet", func() *arm.Error {
			b := strings.ReplaceAll(string(setBody(t, 1, nil)), "/subnets/sn", "/subnets/nope")
			_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "other"), []byte(b), false)
			return e
		}, "InvalidResourceReference"},
		{"reserved admin", func() *arm.Error {
			b := strings.ReplaceAll(string(setBody(t, 1, nil)), `"azureuser"`, `"root"`)
			_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "other"), []byte(b), false)
			return e
		}, "InvalidParameter"},
		{"weak password", func() *arm.Error {
			b := strings.ReplaceAll(string(setBody(t, 1, nil)), `Passw0rd!x`, `password`)
			_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "other"), []byte(b), false)
			return e
		}, "InvalidParameter"},
		{"delete lb in use", func() *arm.Error { _, e := s.Delete(id(t, arm.TypeLoadBalancer, "lb")); return e }, "InUseLoadBalancerCannotBeDeleted"},
		{"delete pip in use", func() *arm.Error { _, e := s.Delete(id(t, arm.TypePublicIP, "pip")); return e }, "PublicIPAddressCannotBeDeleted"},
		{"delete vnet in use", func() *arm.Error { _, e := s.Delete(id(t, arm.TypeVirtualNetwork, "vnet")); return e }, "InUseSubnetCannotBeDeleted"},
		{"wrong subscription", func() *arm.Error {
			i := sid
			i.Subscription = "other"
			_, _, e := s.PutScaleSet(i, setBody(t, 1, nil), false)
			return e
		}, "SubscriptionNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.do()
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Code != c.code {
				t.Errorf("code %s (%s), want %s", e.Code, e.Message, c.code)
			}
			after, _ := json.Marshal(s)
			if string(after) != string(before) {
				t.Error("rejected request changed the state")
			}
		})
	}
}

func TestNATPortAssignment(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	pool := arm.KeyOf(id(t, arm.TypeLoadBalancer, "lb").String() + "/inboundNatPools/nat")
	// Shrink the pool to 50000-50004 to see out-of-range ids and exhaustion.
	lb := s.LoadBalancers[id(t, arm.TypeLoadBalancer, "lb").Key()]
	lb.Properties.InboundNatPools[0].Properties.FrontendPortRangeEnd = arm.IntPtr(50004)
	sid := id(t, arm.TypeScaleSet, "web")
	ss, _, e := s.PutScaleSet(sid, setBody(t, 4, nil), false)
	must(t, e)
	_, e = s.DeleteInstances(sid, []string{"1"})
	must(t, e)
	s.RemoveInstance(sid.Key(), "1")
	ss, e = s.Scale(sid, 5) // ids 4 and 5: 4 -> 50004 (own), 5 out of range -> lowest free (50001)
	must(t, e)
	want := map[string]int{"0": 50000, "2": 50002, "3": 50003, "4": 50004, "5": 50001}
	for idn, p := range want {
		if got := ss.Instances[idn].NATPorts[pool]; got != p {
			t.Errorf("instance %s port %d, want %d", idn, got, p)
		}
	}
	seq := s.Seq
	_, e = s.Scale(sid, 6)
	if e == nil || e.Code != "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts" {
		t.Fatalf("exhausted range: %v", e)
	}
	if s.Seq != seq || len(s.ScaleSets[sid.Key()].Live()) != 5 {
		t.Error("failed scale-out changed the state")
	}
}

func TestPartialPutMergesAndScales(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 2, nil), false)
	must(t, e)
	gen := s.ScaleSets[sid.Key()].ModelGen
	ss, created, e := s.PutScaleSet(sid, []byte(`{"sku":{"name":"Standard_D1_v2","tier":"Standard","capacity":"4"},"location":"eastus"}`), false)
	must(t, e)
	if created || ss.Capacity() != 4 || len(ss.Live()) != 4 {
		t.Fatalf("partial put: created=%v capacity=%d live=%d", created, ss.Capacity(), len(ss.Live()))
	}
	if ss.Profile().OSProfile.AdminUsername != "azureuser" || ss.ModelGen != gen {
		t.Error("partial put lost the model or bumped its generation")
	}
	// Untouched instances are the same records.
	if ss.Instances["0"].PrivateIP != "10.0.0.4" || ss.Instances["0"].Deleting {
		t.Error("instance 0 churned")
	}
}

func TestStorePersistsAtomically(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	st, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, cfg); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a locked state: %v", err)
	}
	err = st.Update(func(s *State) error {
		_, _, e := s.PutVNet(arm.MustID(cfg.Subscription, "rg", arm.TypeVirtualNetwork, "v"), []byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.9.0.0/16"]}}}`))
		if e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failing update leaves the state alone.
	err = st.Update(func(s *State) error {
		_, _, e := s.PutVNet(arm.MustID(cfg.Subscription, "rg", arm.TypeVirtualNetwork, "w"), []byte(`nope`))
		if e != nil {
			return e
		}
		return nil
	})
	if err == nil {
		t.Fatal("bad body accepted")
	}
	st.Close()
	st2, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	st2.View(func(s *State) {
		if len(s.VNets) != 1 {
			t.Errorf("reloaded %d vnets, want 1", len(s.VNets))
		}
		if s.VNetNetns(arm.MustID(cfg.Subscription, "rg", arm.TypeVirtualNetwork, "v").Key()) == "" {
			t.Error("vnet netns name not persisted")
		}
	})
	if m, _ := filepath.Glob(filepath.Join(dir, ".state-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestUniqueNetnsNames(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	a, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "a.b"), setBody(t, 1, nil), false)
	must(t, e)
	b, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "a-b"), setBody(t, 1, map[string]any{"noNAT": true}), false)
	must(t, e)
	if a.Instances["0"].Netns == b.Instances["0"].Netns {
		t.Errorf("two instances share netns %s", a.Instances["0"].Netns)
	}
}

func TestNATPoolServesOneScaleSet(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "a"), setBody(t, 1, nil), false)
	must(t, e)
	_, _, e = s.PutScaleSet(id(t, arm.TypeScaleSet, "b"), setBody(t, 1, nil), false)
	if e == nil || e.Code != "InboundNatPoolInUse" {
		t.Fatalf("second scale set on one NAT pool: %v", e)
	}
}

func TestExtensionOrder(t *testing.T) {
	ext := func(name string, after ...string) arm.Extension {
		return arm.Extension{Name: name, Properties: arm.ExtensionP{Publisher: "p", Type: "t", ProvisionAfterExtensions: after}}
	}
	got, e := ExtensionOrder([]arm.Extension{ext("c", "b"), ext("a"), ext("b", "a")})
	must(t, e)
	var names []string
	for _, x := range got {
		names = append(names, x.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("order %v", names)
	}
	if _, e := ExtensionOrder([]arm.Extension{ext("a", "b"), ext("b", "a")}); e == nil || !strings.Contains(e.Message, "cycle") {
		t.Errorf("cycle not reported: %v", e)
	}
}

func TestDeleteGroupFinishesAfterInstances(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 2, nil), false)
	must(t, e)
	if _, e := s.DeleteGroup("rg"); e != nil {
		t.Fatal(e)
	}
	if len(s.VNets) != 1 {
		t.Fatal("vnet removed before the scale set's instances")
	}
	for _, in := range s.ScaleSets[sid.Key()].SortedInstances() {
		s.RemoveInstance(sid.Key(), in.ID)
	}
	s.FinishGroupDeletes()
	if len(s.VNets)+len(s.LoadBalancers)+len(s.PublicIPs)+len(s.ScaleSets)+len(s.ResourceGroups) != 0 {
		t.Errorf("left: %d vnets %d lbs %d pips %d sets %d groups", len(s.VNets), len(s.LoadBalancers), len(s.PublicIPs), len(s.ScaleSets), len(s.ResourceGroups))
	}
}

func TestReplaceInstances(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, setBody(t, 3, map[string]any{"overprovision": true}), false)
	must(t, e)
	ss := s.ScaleSets[sid.Key()]
	s.ResolveBatch(sid, map[string]bool{"0": true, "1": true, "2": true}, true)
	seq := s.Seq
	if _, e := s.ReplaceInstances(sid, []string{"9"}); e == nil || s.Seq != seq {
		t.Fatal("replacing an unknown instance was accepted or changed the state")
	}
	_, e = s.ReplaceInstances(sid, []string{"1"})
	must(t, e)
	ss = s.ScaleSets[sid.Key()]
	if got := strings.Join(liveIDs(ss), ","); got != "0,2,6" || ss.Capacity() != 3 || ss.Batch != nil {
		t.Errorf("after replacing 1: live %s capacity %d batch %+v (want a new id, no overprovisioning)", got, ss.Capacity(), ss.Batch)
	}
	if !ss.Instances["1"].Deleting {
		t.Error("replaced instance not deleted")
	}
}

// Quickstart templates pass one adminPasswordOrKey parameter to
// osProfile.adminPassword and disable password authentication when it is an
// SSH key: Azure accepts this and ignores the password.
func TestKeyOnlyProfileIgnoresPassword(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl azureuser"
	keyOnly := func(pw string) *arm.OSProfile {
		tr := arm.Bool(true)
		return &arm.OSProfile{ComputerNamePrefix: "web", AdminUsername: "azureuser", AdminPassword: pw,
			LinuxConfiguration: &arm.LinuxConfiguration{DisablePasswordAuthentication: &tr,
				SSH: &arm.SSHConfiguration{PublicKeys: []arm.SSHPublicKey{{Path: "/home/azureuser/.ssh/authorized_keys", KeyData: key}}}}}
	}
	for _, pw := range []string{"", key, "x"} {
		p := keyOnly(pw)
		if e := validateOSProfile("osProfile", p); e != nil {
			t.Errorf("adminPassword %q with key-only Linux: %v, want accepted", pw, e)
		}
		if PasswordAuth(p) {
			t.Errorf("adminPassword %q with key-only Linux: password logins enabled, want disabled", pw)
		}
	}
	// Positive control: with password authentication on, the password is
	// still checked and used.
	p := keyOnly("x")
	p.LinuxConfiguration.DisablePasswordAuthentication = nil
	if e := validateOSProfile("osProfile", p); e == nil {
		t.Error("weak password with password authentication enabled was accepted")
	}
	p.AdminPassword = "Passw0rd!x"
	if e := validateOSProfile("osProfile", p); e != nil || !PasswordAuth(p) {
		t.Errorf("password profile: err %v, PasswordAuth %v; want accepted and enabled", e, PasswordAuth(p))
	}
}

// TestStoreSealsProtectedSettings: protected settings are not in the state
// file in clear, come back on reopen, and need the key.
func TestStoreSealsProtectedSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	st, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "echo s3cr3t-in-state"
	var body map[string]any
	if err := json.Unmarshal(setBody(t, 1, nil), &body); err != nil {
		t.Fatal(err)
	}
	body["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["extensionProfile"] = map[string]any{
		"extensions": []any{map[string]any{"name": "cse", "properties": map[string]any{
			"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
			"settings":          map[string]any{"fileUris": []any{"/srv/app.sh"}},
			"protectedSettings": map[string]any{"commandToExecute": secret, "big": json.Number("12345678901234567890")}}}}}
	b, _ := json.Marshal(body)
	sid := id(t, arm.TypeScaleSet, "web")
	err = st.Update(func(s *State) error {
		fx := fixture(t, "10.0.0.0/24")
		*s = *fx
		s.SetConfig(cfg)
		_, _, e := s.PutScaleSet(sid, b, false)
		if e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "s3cr3t") || strings.Contains(string(data), "Passw0rd!x") {
		t.Error("the state file has the protected command or the admin password in clear")
	}
	// Positive controls: the public settings are there, the protected ones sealed.
	if !strings.Contains(string(data), "/srv/app.sh") || !strings.Contains(string(data), `"vmssSealed"`) {
		t.Errorf("state file lacks the public settings or the sealed value: %.300s", data)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", fi, err)
	}
	st.Close()
	st2, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st2.View(func(s *State) {
		ps := string(s.ScaleSets[sid.Key()].Model.Properties.VirtualMachineProfile.ExtensionProfile.Extensions[0].Properties.ProtectedSettings)
		if !strings.Contains(ps, secret) || !strings.Contains(ps, "12345678901234567890") {
			t.Errorf("protected settings after reopen = %s", ps)
		}
		if pw := s.ScaleSets[sid.Key()].Model.Properties.VirtualMachineProfile.OSProfile.AdminPassword; pw != "Passw0rd!x" {
			t.Errorf("admin password after reopen = %q", pw)
		}
	})
	st2.Close()
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, cfg); err == nil || !strings.Contains(err.Error(), KeyFile) {
		t.Errorf("open without the key: %v, want an error naming %s", err, KeyFile)
	}
}

// Every OnChange listener hears every change: the reconciler and the
// dashboard both listen (the dashboard's registration used to replace the
// reconciler's, which then only woke on its resync timer).
func TestOnChangeCallsEveryListener(t *testing.T) {
	st, err := Open(t.TempDir(), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var a, b int
	st.OnChange(func() { a++ })
	st.OnChange(func() { b++ })
	if err := st.Update(func(s *State) error { s.bump(); return nil }); err != nil {
		t.Fatal(err)
	}
	if a != 1 || b != 1 {
		t.Errorf("listeners called %d and %d times, want once each", a, b)
	}
}
