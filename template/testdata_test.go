package template

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/template/expr"
)

func TestJumpboxTemplate(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "jumpbox", s)
	prefix := strings.ToLower(("Alpha7cluster" + expr.UniqueString(testRGID))[:8])
	suffix := prefix + "disk"
	box := prefix + "box"
	boxAccount := expr.UniqueString(testRGID, "box") + "bx"
	disks := []string{}
	for _, l := range []string{"a", "b", "c"} {
		disks = append(disks, expr.UniqueString(testRGID, suffix, l)+suffix)
	}
	want := strings.Join([]string{
		prefix + "net " + boxAccount + " " + strings.Join(disks, " ") + " " + prefix + "ip",
		box + "nic " + prefix,
		box,
	}, " | ")
	if got := levelNames(d); got != want {
		t.Fatalf("levels:\n got %s\nwant %s", got, want)
	}
	if n := len(d.Resources()); n != 9 {
		t.Fatalf("%d resources, want 9", n)
	}
	for i, r := range d.Resources()[2:5] {
		if r.CopyName != "diskLoop" || r.CopyIndex != i || r.Path != "resources[2]" {
			t.Errorf("disk %d: copy %s/%d path %s", i, r.CopyName, r.CopyIndex, r.Path)
		}
	}
	set, err := d.Lookup("Microsoft.Compute/virtualMachineScaleSets/" + prefix)
	if err != nil {
		t.Fatal(err)
	}
	wantDeps := []string{}
	for _, n := range disks {
		wantDeps = append(wantDeps, testRGID+"/providers/Microsoft.Storage/storageAccounts/"+n)
	}
	wantDeps = append([]string{testRGID + "/providers/Microsoft.Network/virtualNetworks/" + prefix + "net"}, wantDeps...)
	if got := strings.Join(set.DependsOn, ","); got != strings.Join(wantDeps, ",") {
		t.Fatalf("scale set depends on\n%s\nwant\n%s", got, strings.Join(wantDeps, ","))
	}

	bodies := deployAll(t, d, s)
	b := bodies[prefix]
	if c := get(b, "sku", "capacity"); c != int64(4) {
		t.Errorf("capacity = %#v, want 4", c)
	}
	if v := get(b, "properties", "overprovision"); v != "true" {
		t.Errorf("overprovision = %#v, want the string \"true\" as written", v)
	}
	if v := get(b, "properties", "virtualMachineProfile", "storageProfile", "imageReference", "sku"); v != "18.04-LTS" {
		t.Errorf("image sku = %v", v)
	}
	if v := get(b, "properties", "virtualMachineProfile", "storageProfile", "osDisk", "vhdContainers", 2); v != "https://"+disks[2]+".blob.core.windows.net/vhds" {
		t.Errorf("vhd container = %v", v)
	}
	subnet := testRGID + "/providers/Microsoft.Network/virtualNetworks/" + prefix + "net/subnets/" + prefix + "sub"
	if v := get(b, "properties", "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations", 0, "properties", "ipConfigurations", 0, "properties", "subnet", "id"); v != subnet {
		t.Errorf("subnet id = %v, want %s", v, subnet)
	}
	if v := get(bodies[box], "properties", "osProfile", "adminPassword"); v != "Tr0ub4dor&3-jumpbox" {
		t.Errorf("the body must carry the real password for the engine, got %v", v)
	}
	if v := get(bodies[box+"nic"], "properties", "ipConfigurations", 0, "properties", "subnet", "id"); v != subnet {
		t.Errorf("nic subnet = %v", v)
	}
	if b["location"] != "westus" || b["type"] != "Microsoft.Compute/virtualMachineScaleSets" || b["apiVersion"] != "2020-06-01" {
		t.Errorf("head fields: %v %v %v", b["location"], b["type"], b["apiVersion"])
	}
	for _, k := range []string{"dependsOn", "copy"} {
		if _, ok := b[k]; ok {
			t.Errorf("body keeps %s", k)
		}
	}
	outs, err := d.Outputs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v := outs["jumpboxFqdn"].Value; v != "alpha7cluster.westus.cloudapp.azure.com" {
		t.Errorf("fqdn output = %v", v)
	}
	if v := outs["scaleSetId"].Value; v != testRGID+"/providers/Microsoft.Compute/virtualMachineScaleSets/"+prefix {
		t.Errorf("scaleSetId output = %v", v)
	}
}

func TestNatTemplate(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "nat", s)
	if got, want := levelNames(d), "web-vnet web-ip | web-vnet/backend web-lb | web-set"; got != want {
		t.Fatalf("levels:\n got %s\nwant %s", got, want)
	}
	var bastion *Resource
	for _, r := range d.Resources() {
		if r.Name == "web-bastion-ip" {
			bastion = r
		}
	}
	if bastion == nil || bastion.Condition || bastion.Level != -1 {
		t.Fatalf("bastion ip should be listed with condition false: %+v", bastion)
	}
	sub, err := d.Lookup("web-vnet/backend")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Type != "Microsoft.Network/virtualNetworks/subnets" || sub.ID != testRGID+"/providers/Microsoft.Network/virtualNetworks/web-vnet/subnets/backend" || sub.Path != "resources[0].resources[0]" {
		t.Fatalf("nested subnet: %s %s %s", sub.Type, sub.ID, sub.Path)
	}
	bodies := deployAll(t, d, s)
	lb := bodies["web-lb"]
	pools := get(lb, "properties", "inboundNatPools").([]any)
	if len(pools) != 2 {
		t.Fatalf("%d NAT pools, want 2", len(pools))
	}
	for i, want := range []struct {
		name       string
		start, end int64
		backend    int64
	}{{"nat01", 50000, 50099, 22}, {"nat02", 50100, 50199, 80}} {
		p := pools[i]
		if get(p, "name") != want.name || get(p, "properties", "frontendPortRangeStart") != want.start ||
			get(p, "properties", "frontendPortRangeEnd") != want.end || get(p, "properties", "backendPort") != want.backend {
			t.Errorf("pool %d = %v", i, expr.MarshalCompact(p))
		}
		if get(p, "properties", "frontendIPConfiguration", "id") != testRGID+"/providers/Microsoft.Network/loadBalancers/web-lb/frontendIPConfigurations/front" {
			t.Errorf("pool %d frontend = %v", i, get(p, "properties", "frontendIPConfiguration", "id"))
		}
	}
	if got := expr.MarshalCompact(get(lb, "properties", "probes")); got != `[{"name":"probe22","properties":{"intervalInSeconds":"15","numberOfProbes":"2","port":"22","protocol":"Tcp"}},{"name":"probe80","properties":{"intervalInSeconds":"15","numberOfProbes":"2","port":"80","protocol":"Tcp"}}]` {
		t.Errorf("probes = %s", got)
	}
	if _, ok := get(lb, "properties").(map[string]any)["copy"]; ok {
		t.Error("property copy array left in the body")
	}
	set := bodies["web-set"]
	if get(set, "sku", "capacity") != "3" {
		t.Errorf("capacity = %#v, want the string \"3\"", get(set, "sku", "capacity"))
	}
	if n, err := Int(get(set, "sku", "capacity")); err != nil || n != 3 {
		t.Errorf("Int(capacity) = %d, %v", n, err)
	}
	if got := expr.MarshalCompact(set["tags"]); got != `{"env":"test","role":"web"}` {
		t.Errorf("tags = %s", got)
	}
	ipc := get(set, "properties", "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations", 0, "properties", "ipConfigurations", 0, "properties")
	if got := expr.MarshalCompact(get(ipc, "loadBalancerInboundNatPools")); got != `[{"id":"`+testRGID+`/providers/Microsoft.Network/loadBalancers/web-lb/inboundNatPools/nat01"},{"id":"`+testRGID+`/providers/Microsoft.Network/loadBalancers/web-lb/inboundNatPools/nat02"}]` {
		t.Errorf("nat pool refs = %s", got)
	}
	if get(set, "properties", "singlePlacementGroup") != true {
		t.Errorf("singlePlacementGroup = %v", get(set, "properties", "singlePlacementGroup"))
	}
	outs, err := d.Outputs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := outs["bastion"]; ok {
		t.Error("output with a false condition is present")
	}
	if got := expr.MarshalCompact(outs["natPoolIds"].Value); got != `["`+testRGID+`/providers/Microsoft.Network/loadBalancers/web-lb/inboundNatPools/nat01","`+testRGID+`/providers/Microsoft.Network/loadBalancers/web-lb/inboundNatPools/nat02"]` {
		t.Errorf("natPoolIds = %s", got)
	}
	if outs["frontendAddress"].Value != "203.0.113.7" {
		t.Errorf("frontendAddress = %v", outs["frontendAddress"].Value)
	}

	// The same template with the bastion enabled and more pools.
	d2 := prepareTestdata(t, "nat", newFakeState(), "withBastion=true", "natPools=3", "ports=[22,80,443]")
	if got, want := levelNames(d2), "web-vnet web-ip web-bastion-ip | web-vnet/backend web-lb | web-set"; got != want {
		t.Fatalf("levels with bastion:\n got %s\nwant %s", got, want)
	}
}

func TestMyriadTemplate(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "myriad", s)
	// accounts is a serial loop with batchSize 2: r and s wait for p and q.
	if got, want := levelNames(d), "pstore9 qstore9 net1 address1 | rstore9 sstore9 balancer1 | myriad1"; got != want {
		t.Fatalf("levels:\n got %s\nwant %s", got, want)
	}
	bodies := deployAll(t, d, s)
	if v := get(bodies["myriad1"], "sku", "capacity"); v != "3" {
		t.Errorf("capacity = %#v, want \"3\" (string parameter kept as written)", v)
	}
	if v := get(bodies["myriad1"], "tags", "owner"); v != "myriad" {
		t.Errorf("tags = %v", bodies["myriad1"]["tags"])
	}
	if v := get(bodies["balancer1"], "properties", "inboundNatPools", 0, "properties", "frontendPortRangeEnd"); v != int64(50500) {
		t.Errorf("nat end = %#v", v)
	}
}

func TestScaleExistingTemplate(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "scale", s)
	if got := levelNames(d); got != "ExistingSet" {
		t.Fatalf("levels = %s", got)
	}
	b, err := d.Evaluate(context.Background(), d.Resources()[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := expr.MarshalCompact(b); got != `{"apiVersion":"2020-06-01","location":"westus","name":"ExistingSet","sku":{"capacity":6,"name":"Standard_B2s","tier":"Standard"},"type":"Microsoft.Compute/virtualMachineScaleSets"}` {
		t.Fatalf("partial scale set body = %s", got)
	}
}

func TestAutoscaleTemplate(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "autoscale", s)
	infix := strings.ToLower(("ScaleMe" + expr.UniqueString(testRGID))[:9])
	diag := expr.UniqueString(testRGID, infix) + "diag"
	// The scale set has no dependsOn on the diagnostics account: listKeys()
	// of it adds the dependency.
	if got, want := levelNames(d), diag+" "+infix+"vnet | "+infix+" | cpuautoscale"; got != want {
		t.Fatalf("levels:\n got %s\nwant %s", got, want)
	}
	bodies := deployAll(t, d, s)
	set := bodies[infix]
	setID := "/subscriptions/" + zeroGUID + "/resourceGroups/" + testRG + "/providers/Microsoft.Compute/virtualMachineScaleSets/" + infix
	ext := get(set, "properties", "virtualMachineProfile", "extensionProfile", "extensions", 0, "properties")
	if v := get(ext, "protectedSettings", "storageAccountKey"); v != "KEY-"+diag {
		t.Errorf("storage key = %v", v)
	}
	xml, err := base64.StdEncoding.DecodeString(get(ext, "settings", "xmlCfg").(string))
	if err != nil {
		t.Fatal(err)
	}
	if want := `<WadCfg><Counters><Counter specifier="\Processor\PercentProcessorTime" rate="PT15S"/></Counters><Metrics resourceId="` + setID + `"><Aggregation period="PT1M"/></Metrics></WadCfg>`; string(xml) != want {
		t.Errorf("xmlCfg =\n%s\nwant\n%s", xml, want)
	}
	if get(ext, "autoUpgradeMinorVersion") != true {
		t.Error("autoUpgradeMinorVersion lost its bool")
	}
	if v := get(set, "tags", "deployedAt"); v != "20240305" {
		t.Errorf("utcNow default = %v", v)
	}
	as := bodies["cpuautoscale"]
	rule := get(as, "properties", "profiles", 0, "rules", 1, "metricTrigger")
	if get(rule, "threshold") != 30.5 || get(rule, "metricResourceUri") != setID || get(rule, "metricName") != `\Processor\PercentProcessorTime` {
		t.Errorf("rule = %s", expr.MarshalCompact(rule))
	}
	if v := get(as, "properties", "profiles", 0, "rules", 0, "metricTrigger", "threshold"); v != float64(60) {
		t.Errorf("threshold = %#v", v)
	}
	if get(as, "properties", "profiles", 0, "capacity", "default") != "2" || get(as, "properties", "enabled") != true {
		t.Errorf("capacity = %v", get(as, "properties", "profiles", 0, "capacity"))
	}
	outs, err := d.Outputs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if outs["minimum"].Value != int64(1) || outs["setId"].Value != setID {
		t.Errorf("outputs = %v", outs)
	}
}

// TestLazyReference: reference() is answered only when a body is evaluated,
// by the resources deployed so far.
func TestLazyReference(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "autoscale", s)
	if len(s.refCalls)+len(s.listCalls) != 0 {
		t.Fatalf("Prepare called the callbacks: %v %v", s.refCalls, s.listCalls)
	}
	levels := d.Levels()
	set := levels[1][0]
	_, err := d.Evaluate(context.Background(), set)
	if !errors.Is(err, ErrNotDeployed) {
		t.Fatalf("Evaluate before the storage account exists: %v, want ErrNotDeployed", err)
	}
	if !strings.HasPrefix(err.Error(), "resources[2].properties.virtualMachineProfile.extensionProfile.extensions[0].properties.protectedSettings.storageAccountKey: listKeys(variables('diagId'), '2019-06-01'): cannot list the keys of ") {
		t.Errorf("error does not point at the place: %v", err)
	}
	body, unresolved, err := d.WhatIf(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	if len(unresolved) != 1 || !strings.HasSuffix(unresolved[0], "protectedSettings.storageAccountKey") {
		t.Fatalf("unresolved = %v", unresolved)
	}
	if v := get(body, "properties", "virtualMachineProfile", "extensionProfile", "extensions", 0, "properties", "protectedSettings", "storageAccountKey"); v != "[listKeys(variables('diagId'), '2019-06-01').keys[0].value]" {
		t.Errorf("what-if kept %v", v)
	}
	for _, r := range levels[0] {
		b, err := d.Evaluate(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		s.deploy(r, b)
	}
	if _, err := d.Evaluate(context.Background(), set); err != nil {
		t.Fatalf("after the account is deployed: %v", err)
	}
	if len(s.listCalls) != 3 || !strings.HasSuffix(s.listCalls[2], "@2019-06-01") {
		t.Errorf("listKeys calls = %v", s.listCalls)
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "jumpbox", s)
	deployAll(t, d, s)
	done := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			for _, r := range d.Resources() {
				b, err := d.Evaluate(context.Background(), r)
				if err != nil {
					done <- err
					return
				}
				b["location"] = "changed" // the caller owns the result
			}
			done <- nil
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	b, _ := d.Evaluate(context.Background(), d.Resources()[0])
	if b["location"] != "westus" {
		t.Fatalf("a caller's change leaked into the deployment: %v", b["location"])
	}
}
