package model

import (
	"encoding/json"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// v2LB puts load balancer lb2 with a version 2 inbound NAT rule "ssh"
// (frontend ports lo-hi of frontend fe → backend port 22 of pool be).
func v2LB(t *testing.T, s *State, lo, hi int, extraRule string) *arm.Error {
	t.Helper()
	_, _, e := s.PutPublicIP(id(t, arm.TypePublicIP, "pip2"), []byte(`{}`))
	must(t, e)
	lbid := id(t, arm.TypeLoadBalancer, "lb2").String()
	rules := `{"name":"ssh","properties":{"frontendIPConfiguration":{"id":"` + lbid + `/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"` + lbid + `/backendAddressPools/be"},"protocol":"Tcp","frontendPortRangeStart":` + itoa(lo) + `,"frontendPortRangeEnd":` + itoa(hi) + `,"backendPort":22}}`
	if extraRule != "" {
		rules += "," + extraRule
	}
	_, _, e = s.PutLoadBalancer(id(t, arm.TypeLoadBalancer, "lb2"), []byte(`{"properties":{
	 "frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"`+id(t, arm.TypePublicIP, "pip2").String()+`"}}}],
	 "backendAddressPools":[{"name":"be"}],
	 "inboundNatRules":[`+rules+`]}}`))
	return e
}

// v2SetBody is a scale set in pool be of lb2 (no NAT pool).
func v2SetBody(t *testing.T, capacity int) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(setBody(t, capacity, map[string]any{"noNAT": true}), &m); err != nil {
		t.Fatal(err)
	}
	ic := m["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["networkProfile"].(map[string]any)["networkInterfaceConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)["ipConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	ic["loadBalancerBackendAddressPools"] = []any{map[string]any{"id": id(t, arm.TypeLoadBalancer, "lb2").String() + "/backendAddressPools/be"}}
	b, _ := json.Marshal(m)
	return b
}

func TestNATRuleV2Validation(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	lbid := id(t, arm.TypeLoadBalancer, "lb2").String()
	for _, c := range []struct{ name, rule, code string }{
		{"range without end", `{"name":"r","properties":{"frontendIPConfiguration":{"id":"` + lbid + `/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"` + lbid + `/backendAddressPools/be"},"protocol":"Tcp","frontendPortRangeStart":300,"backendPort":22}}`, "MissedInboundNatRuleV2Properties"},
		{"frontendPort with a range", `{"name":"r","properties":{"frontendIPConfiguration":{"id":"` + lbid + `/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"` + lbid + `/backendAddressPools/be"},"protocol":"Tcp","frontendPort":22,"frontendPortRangeStart":300,"frontendPortRangeEnd":310,"backendPort":22}}`, "UnsupportedSetOfInboundNatRulePropertiesWhenFrontendPortIsSpecified"},
		{"overlapping ranges", `{"name":"r","properties":{"frontendIPConfiguration":{"id":"` + lbid + `/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"` + lbid + `/backendAddressPools/be"},"protocol":"Tcp","frontendPortRangeStart":205,"frontendPortRangeEnd":310,"backendPort":80}}`, "LoadBalancerFrontendPortConflict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := v2LB(t, s, 201, 210, c.rule)
			if e == nil || e.Code != c.code {
				t.Fatalf("got %v, want %s", e, c.code)
			}
		})
	}
	must(t, v2LB(t, s, 201, 210, "")) // positive control
	r := s.LoadBalancers[id(t, arm.TypeLoadBalancer, "lb2").Key()].Properties.InboundNatRules[0]
	if r.Properties.FrontendPort != nil || arm.IntOr(r.Properties.FrontendPortRangeStart, 0) != 201 || r.Properties.BackendAddressPool == nil {
		t.Errorf("stored rule %+v", r.Properties)
	}
}

func TestNATRuleV2PortsFollowScale(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	must(t, v2LB(t, s, 221, 223, ""))
	rule := arm.KeyOf(id(t, arm.TypeLoadBalancer, "lb2").String() + "/inboundNatRules/ssh")
	sid := id(t, arm.TypeScaleSet, "web")
	ports := func() map[string]int {
		out := map[string]int{}
		for _, in := range s.ScaleSets[sid.Key()].Live() {
			out[in.ID] = in.NATPorts[rule]
		}
		return out
	}
	_, _, e := s.PutScaleSet(sid, v2SetBody(t, 2), false)
	must(t, e)
	if got := ports(); got["0"] != 221 || got["1"] != 222 || len(got) != 2 {
		t.Fatalf("pre-allocated %v, want 0:221 1:222", got)
	}
	_, e = s.DeleteInstances(sid, []string{"0"})
	must(t, e)
	s.RemoveInstance(sid.Key(), "0")
	if got := ports(); got["1"] != 222 || len(got) != 1 {
		t.Fatalf("after scale-in %v, want 1:222 kept", got)
	}
	_, e = s.Scale(sid, 3) // ids 2 and 3 take 221 and 223
	must(t, e)
	if got := ports(); got["1"] != 222 || got["2"] != 221 || got["3"] != 223 {
		t.Fatalf("after scale-out %v", got)
	}
	seq := s.Seq
	_, e = s.Scale(sid, 4)
	if e == nil || e.Code != "InboundNatRuleFrontendPortRangeSmallerThanRequestedPorts" {
		t.Fatalf("exhausted range: %v", e)
	}
	if s.Seq != seq || len(s.ScaleSets[sid.Key()].Live()) != 3 {
		t.Error("failed scale-out changed the state")
	}
	// Narrowing the range below the pool's members is refused and changes nothing.
	if e := v2LB(t, s, 221, 222, ""); e == nil || e.Code != "InboundNatRuleFrontendPortRangeSmallerThanRequestedPorts" {
		t.Fatalf("narrowed range: %v", e)
	}
	if got := ports(); got["3"] != 223 || arm.IntOr(s.LoadBalancers[id(t, arm.TypeLoadBalancer, "lb2").Key()].Properties.InboundNatRules[0].Properties.FrontendPortRangeEnd, 0) != 223 {
		t.Fatalf("refused PUT changed state: %v", got)
	}
	// A rule added to a pool the instances already join maps them at once.
	lbid := id(t, arm.TypeLoadBalancer, "lb2").String()
	must(t, v2LB(t, s, 221, 223, `{"name":"web","properties":{"frontendIPConfiguration":{"id":"`+lbid+`/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"`+lbid+`/backendAddressPools/be"},"protocol":"Tcp","frontendPortRangeStart":8001,"frontendPortRangeEnd":8010,"backendPort":80}}`))
	web := arm.KeyOf(lbid + "/inboundNatRules/web")
	for _, in := range s.ScaleSets[sid.Key()].Live() {
		if p := in.NATPorts[web]; p < 8001 || p > 8003 {
			t.Errorf("instance %s web port %d", in.ID, p)
		}
	}
	// Removing the rule frees its ports; the other rule's stay.
	must(t, v2LB(t, s, 221, 223, ""))
	for _, in := range s.ScaleSets[sid.Key()].Live() {
		if _, has := in.NATPorts[web]; has || in.NATPorts[rule] == 0 {
			t.Errorf("instance %s ports after removing rule web: %v", in.ID, in.NATPorts)
		}
	}
}

func TestQueryNATRulePortMappings(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	must(t, v2LB(t, s, 221, 230, ""))
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, v2SetBody(t, 2), false)
	must(t, e)
	pool, _ := arm.ParseID(id(t, arm.TypeLoadBalancer, "lb2").String() + "/backendAddressPools/be")
	in1 := s.ScaleSets[sid.Key()].Instances["1"]
	for _, body := range []string{
		`{"ipAddress":"` + in1.PrivateIP + `"}`,
		`{"ipConfiguration":{"id":"` + sid.String() + `/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ipc"}}`,
	} {
		got, e := s.QueryNATRulePortMappings(pool, []byte(body))
		must(t, e)
		if len(got) != 1 || got[0] != (NATRulePortMapping{"ssh", "Tcp", 222, 22}) {
			t.Errorf("%s: %+v", body, got)
		}
	}
	for _, body := range []string{`{}`, `{"ipAddress":"10.0.0.99"}`, `{"ipAddress":"10.0.0.4","ipConfiguration":{"id":"x"}}`} {
		if _, e := s.QueryNATRulePortMappings(pool, []byte(body)); e == nil {
			t.Errorf("%s accepted", body)
		}
	}
}
