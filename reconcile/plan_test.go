package reconcile

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// planState builds a state with a public LB (NAT pool + rule + HTTP probe), an
// internal LB on the subnet, a 3-instance scale set in both pools, and a
// jumpbox VM with its own public IP.
func planState(t *testing.T) *model.State {
	t.Helper()
	st := model.New(model.DefaultConfig())
	must := func(e *arm.Error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	id := func(typ string, names ...string) arm.ID { return arm.MustID(sub0, "rg", typ, names...) }
	_, _, e := st.PutVNet(id(arm.TypeVirtualNetwork, "vnet"), []byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`))
	must(e)
	_, _, e = st.PutPublicIP(id(arm.TypePublicIP, "lbip"), []byte(`{}`))
	must(e)
	_, _, e = st.PutPublicIP(id(arm.TypePublicIP, "jbip"), []byte(`{}`))
	must(e)
	lb := id(arm.TypeLoadBalancer, "lb").String()
	_, _, e = st.PutLoadBalancer(id(arm.TypeLoadBalancer, "lb"), []byte(`{"properties":{
	 "frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"`+id(arm.TypePublicIP, "lbip").String()+`"}}}],
	 "backendAddressPools":[{"name":"be","properties":{"drainPeriodInSeconds":7}}],
	 "probes":[{"name":"http","properties":{"protocol":"Http","port":80,"requestPath":"/","intervalInSeconds":"10","numberOfProbes":3,"noHealthyBackendsBehavior":"AllProbedUp"}}],
	 "loadBalancingRules":[{"name":"web","properties":{"frontendIPConfiguration":{"id":"`+lb+`/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"`+lb+`/backendAddressPools/be"},"probe":{"id":"`+lb+`/probes/http"},"protocol":"Tcp","frontendPort":80,"backendPort":8080,"loadDistribution":"SourceIP","enableTcpReset":true}}],
	 "inboundNatPools":[{"name":"ssh","properties":{"frontendIPConfiguration":{"id":"`+lb+`/frontendIPConfigurations/fe"},"protocol":"Tcp","frontendPortRangeStart":50000,"frontendPortRangeEnd":50119,"backendPort":22}}]}}`))
	must(e)
	ilb := id(arm.TypeLoadBalancer, "ilb").String()
	_, _, e = st.PutLoadBalancer(id(arm.TypeLoadBalancer, "ilb"), []byte(`{"properties":{
	 "frontendIPConfigurations":[{"name":"fe","properties":{"subnet":{"id":"`+id(arm.TypeSubnet, "vnet", "sn").String()+`"},"privateIPAddress":"10.0.0.200"}}],
	 "backendAddressPools":[{"name":"be"}],
	 "loadBalancingRules":[{"name":"in","properties":{"frontendIPConfiguration":{"id":"`+ilb+`/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"`+ilb+`/backendAddressPools/be"},"protocol":"Tcp","frontendPort":81,"backendPort":80}}]}}`))
	must(e)
	body, _ := json.Marshal(map[string]any{"sku": map[string]any{"capacity": 3}, "properties": map[string]any{"overprovision": false,
		"virtualMachineProfile": map[string]any{
			"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
				"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
					"subnet":                          map[string]any{"id": id(arm.TypeSubnet, "vnet", "sn").String()},
					"loadBalancerBackendAddressPools": []any{map[string]any{"id": lb + "/backendAddressPools/be"}, map[string]any{"id": ilb + "/backendAddressPools/be"}},
					"loadBalancerInboundNatPools":     []any{map[string]any{"id": lb + "/inboundNatPools/ssh"}},
				}}}}}}},
		}}})
	_, _, e = st.PutScaleSet(id(arm.TypeScaleSet, "web"), body, false)
	must(e)
	_, _, e = st.PutNIC(id(arm.TypeNIC, "jbnic"), []byte(`{"properties":{"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"`+id(arm.TypeSubnet, "vnet", "sn").String()+`"},"publicIPAddress":{"id":"`+id(arm.TypePublicIP, "jbip").String()+`"}}}]}}`))
	must(e)
	_, _, e = st.PutVM(id(arm.TypeVM, "jb"), []byte(`{"properties":{"osProfile":{"adminUsername":"azureuser","adminPassword":"Passw0rd!x"},"networkProfile":{"networkInterfaces":[{"id":"`+id(arm.TypeNIC, "jbnic").String()+`"}]}}}`), false)
	must(e)
	return st
}

func TestBuildPlan(t *testing.T) {
	st := planState(t)
	all := map[string]bool{}
	for _, d := range DesiredInstances(st) {
		all[d.Spec.Netns] = true
	}
	serving := map[string]bool{}
	for n := range all {
		serving[n] = true
	}
	web1 := st.ScaleSets[arm.MustID(sub0, "rg", arm.TypeScaleSet, "web").Key()].Instances["1"].Netns
	serving[web1] = false // leaving: no new traffic
	p := BuildPlan(st, serving, all, PlanOptions{ProbeIntervalScale: 0.5, DefaultDrain: 3 * time.Second, JumpboxFallbackPorts: []uint16{2222}})

	lbAddr := st.PublicIPs[arm.MustID(sub0, "rg", arm.TypePublicIP, "lbip").Key()].Properties.IPAddress
	jbAddr := st.PublicIPs[arm.MustID(sub0, "rg", arm.TypePublicIP, "jbip").Key()].Properties.IPAddress
	var natPorts []string
	var jump *NATMapping
	for i, m := range p.NAT {
		if m.Public.Addr().String() == lbAddr {
			natPorts = append(natPorts, m.Public.String()+"->"+m.Backend.String())
		}
		if m.Public.Addr().String() == jbAddr {
			jump = &p.NAT[i]
		}
	}
	want := []string{lbAddr + ":50000->10.0.0.4:22", lbAddr + ":50001->10.0.0.5:22", lbAddr + ":50002->10.0.0.6:22"}
	if len(natPorts) != 3 || natPorts[0] != want[0] || natPorts[1] != want[1] || natPorts[2] != want[2] {
		t.Errorf("NAT pool mappings %v, want %v (NAT is not gated by serving)", natPorts, want)
	}
	if jump == nil || jump.Public.Port() != 22 || jump.Backend != netip.MustParseAddrPort("10.0.0.7:22") || len(jump.FallbackPorts) != 1 {
		t.Errorf("jumpbox mapping %+v", jump)
	}
	if len(p.LBs) != 2 {
		t.Fatalf("%d load balancers", len(p.LBs))
	}
	var pub, in *LBPlan
	for i := range p.LBs {
		if p.LBs[i].Name == "lb" {
			pub = &p.LBs[i]
		} else {
			in = &p.LBs[i]
		}
	}
	r := pub.Rules[0]
	if !r.Public || r.FrontendPort != 80 || r.BackendPort != 8080 || r.Distribution != "SourceIP" || !r.TCPReset || r.Probe != "http" || r.Pool != "be" || !r.AllDownOpen {
		t.Errorf("public rule %+v", r)
	}
	if pr := pub.Probes[0]; pr.Interval != 5*time.Second || pr.Threshold != 3 || pr.Path != "/" {
		t.Errorf("probe %+v (interval scaled 10s x 0.5, numberOfProbes as threshold)", pr)
	}
	pool := pub.Pools[0]
	if pool.DrainPeriod != 7*time.Second || len(pool.Backends) != 2 || pool.VNetNetns == "" {
		t.Errorf("pool %+v: want drain 7s and the 2 serving instances", pool)
	}
	ir := in.Rules[0]
	if ir.Public || ir.Frontend != netip.MustParseAddr("10.0.0.200") || ir.VNetNetns == "" || ir.Bridge != BridgeName("sn") {
		t.Errorf("internal rule %+v", ir)
	}
	if in.Pools[0].DrainPeriod != 3*time.Second {
		t.Errorf("default drain not applied: %v", in.Pools[0].DrainPeriod)
	}
	// DNS: every existing instance and the VM, in the VNET's zone.
	if len(p.DNS) != 1 || len(p.DNS[0].Records) != 4 {
		t.Fatalf("dns %+v", p.DNS)
	}
	if p.DNS[0].Records[0].Name != "jb" || p.DNS[0].Records[1].Name != "web000000" {
		t.Errorf("records %+v", p.DNS[0].Records)
	}
}
