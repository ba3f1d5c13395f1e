package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/template/expr"
)

const password = "Sup3r-Secret!Pass"

func natParams(count int) map[string]any {
	return map[string]any{"setName": "Webset", "instanceCount": count, "adminPassword": password}
}

// infix is the template's namingInfix for group g.
func infix(setName, group string) string {
	s := strings.ToLower(setName + expr.UniqueString("/subscriptions/"+sub+"/resourceGroups/"+group))
	return s[:9]
}

func TestNATShapeDeployRedeployAndScaleExisting(t *testing.T) {
	f := newFixture(t, nil)
	tpl := readTemplate(t, "nat.json")
	rec := f.mustDeploy("rg1", "nat", body(tpl, "", natParams(3), false))
	set := infix("Webset", "rg1")

	// Every resource has a succeeded Create operation answered 201.
	ops := f.operations("rg1", "nat")
	if len(ops) != 7 { // vnet, 3 storage accounts (copy loop), public IP, LB, scale set
		t.Fatalf("%d operations, want 7: %s", len(ops), js(ops))
	}
	for _, op := range ops {
		if dig(op, "properties", "provisioningState") != stateSucceeded || dig(op, "properties", "statusCode") != "Created" ||
			dig(op, "properties", "timestamp") == "" || dig(op, "properties", "duration") == "" {
			t.Errorf("operation %s", js(op))
		}
	}
	// The copy loop's names come from uniqueString and concat, as in Azure.
	saSuffix := set + "sa"
	for i := 0; i < 3; i++ {
		name := expr.UniqueString("/subscriptions/"+sub+"/resourceGroups/rg1"+saSuffix+fmt.Sprint(i)) + saSuffix
		f.mustGet(rid("rg1", arm.TypeStorageAccount, name))
	}
	// String-typed numbers and booleans arrive typed.
	lb := f.mustGet(rid("rg1", arm.TypeLoadBalancer, set+"lb"))
	pool := dig(lb, "properties", "inboundNatPools").([]any)[0]
	if dig(pool, "properties", "frontendPortRangeStart") != float64(50000) || dig(pool, "properties", "backendPort") != float64(22) {
		t.Errorf("NAT pool %s", js(pool))
	}
	ss := f.mustGet(rid("rg1", arm.TypeScaleSet, set))
	if dig(ss, "sku", "capacity") != float64(3) || dig(ss, "properties", "overprovision") != true {
		t.Errorf("scale set sku %v overprovision %v", dig(ss, "sku"), dig(ss, "properties", "overprovision"))
	}
	// NAT ports follow instance ids.
	before := f.instances("rg1", set)
	if len(before) < 3 {
		t.Fatalf("%d instances", len(before))
	}
	for id, in := range before {
		for _, port := range in.NATPorts {
			if want := 50000 + atoi(id); port != want {
				t.Errorf("instance %s NAT port %d, want %d", id, port, want)
			}
		}
		if len(in.NATPorts) != 1 {
			t.Errorf("instance %s NAT ports %v", id, in.NATPorts)
		}
	}
	// Outputs: reference() of the public IP, secure output without its value.
	outs := dig(rec, "properties", "outputs")
	addr, _ := dig(outs, "address", "value").(string)
	if net.ParseIP(addr) == nil {
		t.Errorf("address output %q", addr)
	}
	if fq, _ := dig(outs, "fqdn", "value").(string); !strings.HasPrefix(fq, "webset.") {
		t.Errorf("fqdn output %q", fq)
	}
	if pw := dig(outs, "password"); pw == nil || dig(pw, "value") != nil {
		t.Errorf("secure output %v", pw)
	}
	if dig(outs, "setName", "value") != set {
		t.Errorf("setName output %v", dig(outs, "setName"))
	}
	if n := len(dig(rec, "properties", "outputResources").([]any)); n != 7 {
		t.Errorf("%d output resources", n)
	}

	// Redeploying the same template changes nothing and touches no instance.
	var genBefore int64
	f.store.View(func(st *model.State) {
		genBefore = st.ScaleSets[strings.ToLower(rid("rg1", arm.TypeScaleSet, set))].ModelGen
	})
	f.mustDeploy("rg1", "nat", body(tpl, "Incremental", natParams(3), false))
	for _, op := range f.operations("rg1", "nat") {
		if dig(op, "properties", "statusCode") != "OK" {
			t.Errorf("redeploy operation %s", js(op))
		}
	}
	after := f.instances("rg1", set)
	if js(after) != js(before) {
		t.Errorf("instances changed by an identical redeploy:\nbefore %s\nafter %s", js(before), js(after))
	}
	f.store.View(func(st *model.State) {
		if g := st.ScaleSets[strings.ToLower(rid("rg1", arm.TypeScaleSet, set))].ModelGen; g != genBefore {
			t.Errorf("model generation %d -> %d on an identical redeploy", genBefore, g)
		}
	})

	// What-if of the same template: nothing to do, nothing changed by asking.
	seq := f.seq()
	changes, err := f.whatIf("rg1", "nat", body(tpl, "", natParams(3), false))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c["changeType"] != changeNoChange {
			t.Errorf("what-if of the deployed template: %s", js(c))
		}
	}
	if len(changes) != 7 || f.seq() != seq {
		t.Errorf("%d changes, seq %d -> %d", len(changes), seq, f.seq())
	}

	// The partial scale-existing template (sku only) merges and scales.
	scale := readTemplate(t, "scale.json")
	f.mustDeploy("rg1", "scale", body(scale, "", map[string]any{"existingSetName": set, "newCapacity": 5}, false))
	ss = f.mustGet(rid("rg1", arm.TypeScaleSet, set))
	if dig(ss, "sku", "capacity") != float64(5) || dig(ss, "sku", "name") != "Standard_D1_v2" ||
		dig(ss, "properties", "virtualMachineProfile", "osProfile", "computerNamePrefix") != set {
		t.Errorf("after scale-existing: %s", js(dig(ss, "sku")))
	}
	grown := f.instances("rg1", set)
	highest := 0
	for id, in := range before {
		if js(grown[id]) != js(in) {
			t.Errorf("instance %s changed by scale-out: %s -> %s", id, js(in), js(grown[id]))
		}
		highest = max(highest, atoi(id))
	}
	for id, in := range grown {
		if _, old := before[id]; !old {
			if atoi(id) <= highest {
				t.Errorf("new instance id %s does not continue after %d", id, highest)
			}
			if want := fmt.Sprintf("%s_%s", set, id); in.Name != want {
				t.Errorf("new instance name %s, want %s", in.Name, want)
			}
			if want := set + fmt.Sprintf("%06s", strconv.FormatInt(int64(atoi(id)), 36)); !strings.EqualFold(in.ComputerName, want) {
				t.Errorf("computer name %s, want %s", in.ComputerName, want)
			}
		}
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func TestJumpboxShape(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.mustDeploy("jb", "jumpbox", body(readTemplate(t, "jumpbox.json"), "",
		map[string]any{"setName": "Jump", "adminUsername": "azureuser", "adminPassword": password}, false))
	set := infix("Jump", "jb")
	vm := f.mustGet(rid("jb", arm.TypeVM, set+"jbox"))
	if dig(vm, "properties", "osProfile", "computerName") != set+"jbox" {
		t.Errorf("VM %s", js(vm))
	}
	nic := f.mustGet(rid("jb", arm.TypeNIC, set+"jboxnic"))
	ipc := dig(nic, "properties", "ipConfigurations").([]any)[0]
	if !arm.EqualIDs(fmt.Sprint(dig(ipc, "properties", "publicIPAddress", "id")), rid("jb", arm.TypePublicIP, set+"pip")) {
		t.Errorf("NIC %s", js(nic))
	}
	pip := f.mustGet(rid("jb", arm.TypePublicIP, set+"pip"))
	outs := dig(rec, "properties", "outputs")
	if dig(outs, "jumpboxAddress", "value") != dig(pip, "properties", "ipAddress") || dig(outs, "jumpboxAddress", "value") == nil {
		t.Errorf("jumpbox address output %v, public IP %v", dig(outs, "jumpboxAddress"), dig(pip, "properties", "ipAddress"))
	}
	if ip, _ := dig(outs, "jumpboxPrivateIP", "value").(string); !strings.HasPrefix(ip, "10.0.0.") {
		t.Errorf("private IP output %q", ip)
	}
	// The VM extension is an accepted no-op with a warning.
	var found bool
	for _, op := range f.operations("jb", "jumpbox") {
		if strings.HasSuffix(fmt.Sprint(dig(op, "properties", "targetResource", "resourceType")), "virtualMachines/extensions") {
			found = true
			ws, _ := dig(op, "properties", "statusMessage", "warnings").([]any)
			if dig(op, "properties", "provisioningState") != stateSucceeded || len(ws) != 1 || !strings.Contains(fmt.Sprint(dig(ws[0], "message")), "LinuxDiagnostic") {
				t.Errorf("VM extension operation %s", js(op))
			}
		}
	}
	if !found || len(dig(rec, "properties", "diagnostics").([]any)) != 1 {
		t.Errorf("extension operation found %v, diagnostics %s", found, js(dig(rec, "properties", "diagnostics")))
	}
}

func TestAutoscaleShape(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.mustDeploy("auto", "autoscale", body(readTemplate(t, "autoscale.json"), "", map[string]any{"setName": "Auto", "adminPassword": password}, false))
	set := infix("Auto", "auto")
	as := f.mustGet(rid("auto", arm.TypeAutoscale, "autoscalewad"))
	if dig(as, "properties", "enabled") != true || dig(as, "properties", "profiles").([]any)[0].(map[string]any)["name"] != "Profile1" ||
		!arm.EqualIDs(fmt.Sprint(dig(as, "properties", "targetResourceUri")), rid("auto", arm.TypeScaleSet, set)) {
		t.Errorf("autoscale settings %s", js(as))
	}
	codes := map[string]string{}
	for _, w := range dig(rec, "properties", "diagnostics").([]any) {
		codes[fmt.Sprint(dig(w, "code"))] += fmt.Sprint(dig(w, "message"))
	}
	// autoscale settings act (package monitor): no StoredNotEnforced warning
	if !strings.Contains(codes["ExtensionNotEmulated"], "LinuxDiagnostic") || strings.Contains(codes["StoredNotEnforced"], "autoscale") {
		t.Errorf("diagnostics %s", js(dig(rec, "properties", "diagnostics")))
	}
	if strings.Contains(codes["ExtensionNotEmulated"], "hello") {
		t.Errorf("CustomScript warned about: %s", codes["ExtensionNotEmulated"])
	}
	// The child extension merged into the set's profile; protected settings
	// (a listKeys() key, a secure parameter) are kept in the model, never answered.
	ss := f.mustGet(rid("auto", arm.TypeScaleSet, set))
	exts := dig(ss, "properties", "virtualMachineProfile", "extensionProfile", "extensions").([]any)
	if len(exts) != 2 || dig(exts[0], "name") != "LinuxDiagnostic" || dig(exts[1], "name") != "hello" {
		t.Fatalf("extensions %s", js(exts))
	}
	for _, e := range exts {
		if dig(e, "properties", "protectedSettings") != nil {
			t.Errorf("protected settings answered: %s", js(e))
		}
	}
	f.store.View(func(st *model.State) {
		m := st.ScaleSets[strings.ToLower(rid("auto", arm.TypeScaleSet, set))].Profile().ExtensionProfile.Extensions
		var ps map[string]string
		_ = json.Unmarshal(m[0].Properties.ProtectedSettings, &ps)
		diag := expr.UniqueString("/subscriptions/"+sub+"/resourceGroups/auto") + "diag"
		if want := model.StorageKey(rid("auto", arm.TypeStorageAccount, diag), 1); ps["storageAccountKey"] != want {
			t.Errorf("listKeys key %q, want %q", ps["storageAccountKey"], want)
		}
		if len(m[1].Properties.ProtectedSettings) == 0 {
			t.Error("the child extension lost its protected settings")
		}
	})
	f.mustGet(rid("auto", arm.TypeScaleSet, set) + "/extensions/hello")
}

func TestBadTemplatesDeployNothing(t *testing.T) {
	nat := string(readTemplate(t, "nat.json"))
	cases := []struct {
		name, tpl, code string
		params          map[string]any
		want            []string
	}{
		{"parameter typo", strings.Replace(nat, `"capacity": "[parameters('instanceCount')]"`, `"capacity": "[parameters('instanceCnt')]"`, 1), "InvalidTemplate",
			natParams(2), []string{"resources[4].sku.capacity", "parameters('instanceCnt')", "did you mean 'instanceCount'"}},
		{"syntax", strings.Replace(nat, `"[variables('natEnd')]"`, `"[variables('natEnd'))]"`, 1), "InvalidTemplate",
			natParams(2), []string{"frontendPortRangeEnd", "position"}},
		{"missing parameter", nat, "InvalidTemplate", map[string]any{"setName": "x"}, []string{"instanceCount"}},
		{"maxValue", nat, "InvalidTemplate", natParams(101), []string{"instanceCount", "100"}},
		{"unknown type", strings.Replace(nat, `"resources": [`, `"resources": [ {"type": "Microsoft.Cdn/profiles", "apiVersion": "2020-01-01", "name": "cdn1", "properties": {}},`, 1), "InvalidTemplateDeployment",
			natParams(2), []string{"Microsoft.Cdn/profiles", "resources[0]", "cdn1", "skipUnknownResourceTypes"}},
		{"cycle", `{"$schema":"x","contentVersion":"1.0.0.0","resources":[
			{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"aaa","dependsOn":["bbb"],"properties":{}},
			{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"bbb","dependsOn":["aaa"],"properties":{}}]}`,
			"InvalidTemplate", nil, []string{"cycle", "aaa", "bbb"}},
		{"not an object", `[1, 2]`, "InvalidTemplate", nil, nil},
		{"undefined variable", strings.Replace(nat, `"name": "[variables('lbName')]"`, `"name": "[variables('lbNmae')]"`, 1), "InvalidTemplate",
			natParams(2), []string{"resources[3].name", "variables('lbNmae')", "did you mean 'lbName'"}},
		{"parameter of the wrong type", nat, "InvalidTemplate", map[string]any{"setName": "x", "instanceCount": "two", "adminPassword": password},
			[]string{"instanceCount", "int", "string"}},
		{"value not allowed", nat, "InvalidTemplate", map[string]any{"setName": "x", "instanceCount": 2, "adminPassword": password, "osVersion": "14.04.5-LTS"},
			[]string{"osVersion", "14.04.5-LTS", "22.04-LTS"}},
		{"unknown function", strings.Replace(nat, `"[toLower(substring(`, `"[toLowr(substring(`, 1), "InvalidTemplate",
			natParams(2), []string{"variables.infix", "toLowr", "toLower"}},
		{"wrong argument count", strings.Replace(nat, `"[concat(variables('infix'), 'vnet')]"`, `"[substring(variables('infix'))]"`, 1), "InvalidTemplate",
			natParams(2), []string{"variables.vnetName", "substring"}},
		{"undeclared parameter given", nat, "InvalidTemplate", map[string]any{"setName": "x", "instanceCount": 2, "adminPassword": password, "instanceCnt": 3},
			[]string{"instanceCnt"}},
		{"api-version Azure does not publish", strings.Replace(nat, `"apiVersion": "2016-03-30"`, `"apiVersion": "2016-03-31"`, 1), "InvalidTemplateDeployment",
			natParams(2), []string{"NoRegisteredProviderFound", "'2016-03-31'", "The supported api-versions are"}},
		{"linked template", strings.Replace(nat, `"resources": [`, `"resources": [ {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "linked", "properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.invalid/t.json"}}},`, 1), "InvalidTemplate",
			natParams(2), []string{"resources[0].properties.templateLink", "not supported", "inline"}},
	}
	f := newFixture(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seq := f.seq()
			_, err := f.deploy("bad", "d", body(json.RawMessage(tc.tpl), "", tc.params, false))
			ae := armErr(t, err)
			if ae.Status != 400 || ae.Code != tc.code {
				t.Errorf("status %d code %s: %s", ae.Status, ae.Code, ae.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(ae.Message, w) {
					t.Errorf("message lacks %q: %s", w, ae.Message)
				}
			}
			if strings.Contains(ae.Message, password) {
				t.Error("message shows the password")
			}
			if f.seq() != seq || len(f.groupResources("bad")) != 0 {
				t.Errorf("a bad template changed the state: %v", f.groupResources("bad"))
			}
			// What-if and validate report the same problem.
			if _, err := f.whatIf("bad", "d", body(json.RawMessage(tc.tpl), "", tc.params, false)); armErr(t, err).Code != tc.code {
				t.Errorf("what-if: %v", err)
			}
			if _, err := f.c.Do(context.Background(), http.MethodPost, deploymentPath("bad", "d")+"/validate",
				body(json.RawMessage(tc.tpl), "", tc.params, false), nil); armErr(t, err).Code != tc.code {
				t.Errorf("validate: %v", err)
			}
		})
	}
	if _, err := f.get(deploymentPath("bad", "d")); err == nil {
		t.Error("a rejected deployment left a record")
	}
}

func TestSkipUnknownTypesWithWarning(t *testing.T) {
	f := newFixture(t, nil)
	tpl := `{"$schema":"x","contentVersion":"1.0.0.0","resources":[
		{"type":"Microsoft.Cdn/profiles","apiVersion":"2020-01-01","name":"cdn","location":"eastus","properties":{}},
		{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"keep1","dependsOn":["cdn"],"properties":{}}]}`
	changes, err := f.whatIf("skip", "d", body(json.RawMessage(tpl), "", nil, true))
	if err != nil || len(changes) != 2 || changes[0]["changeType"] != changeIgnore || changes[1]["changeType"] != changeCreate {
		t.Fatalf("what-if %v %s", err, js(changes))
	}
	rec := f.mustDeploy("skip", "d", body(json.RawMessage(tpl), "", nil, true))
	ds := dig(rec, "properties", "diagnostics").([]any)
	if len(ds) != 1 || dig(ds[0], "code") != "ResourceTypeNotEmulated" || !strings.Contains(fmt.Sprint(dig(ds[0], "message")), "Microsoft.Cdn/profiles") {
		t.Errorf("diagnostics %s", js(ds))
	}
	if ids := f.groupResources("skip"); len(ids) != 1 || !strings.HasSuffix(ids[0], "/keep1") {
		t.Errorf("group holds %v", ids)
	}
}

// failing has a NIC on a subnet that exists only when withVnet is true, a
// VM that needs the NIC, and an independent storage account.
const failing = `{"$schema":"x","contentVersion":"1.0.0.0",
 "parameters":{"withVnet":{"type":"bool"},"pw":{"type":"securestring"}},
 "resources":[
  {"type":"Microsoft.Network/virtualNetworks","apiVersion":"2020-06-01","name":"vn","condition":"[parameters('withVnet')]","location":"eastus",
   "properties":{"addressSpace":{"addressPrefixes":["10.9.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.9.0.0/24"}}]}},
  {"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"independent1","properties":{}},
  {"type":"Microsoft.Network/networkInterfaces","apiVersion":"2020-06-01","name":"nic1","dependsOn":["vn"],"location":"eastus",
   "properties":{"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"[concat(resourceId('Microsoft.Network/virtualNetworks','vn'),'/subnets/sn')]"}}}]}},
  {"type":"Microsoft.Compute/virtualMachines","apiVersion":"2020-06-01","name":"vm1","dependsOn":["nic1"],"location":"eastus",
   "properties":{"osProfile":{"computerName":"vm1","adminUsername":"azureuser","adminPassword":"[parameters('pw')]"},
     "networkProfile":{"networkInterfaces":[{"id":"[resourceId('Microsoft.Network/networkInterfaces','nic1')]"}]}}}
 ]}`

func TestFailedDeploymentReportsAndRerunConverges(t *testing.T) {
	f := newFixture(t, nil)
	rec, err := f.deploy("fail", "d", body(json.RawMessage(failing), "", map[string]any{"withVnet": false, "pw": password}, false))
	ae := armErr(t, err)
	if ae.Code != "DeploymentFailed" || dig(rec, "properties", "provisioningState") != stateFailed {
		t.Fatalf("error %v, record %s", ae, js(rec))
	}
	msg := fmt.Sprint(dig(rec, "properties", "error", "message"))
	for _, w := range []string{"Failed: Microsoft.Network/networkInterfaces/nic1", "Microsoft.Compute/virtualMachines/vm1 (depends on", "Succeeded: Microsoft.Storage/storageAccounts/independent1"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error message lacks %q: %s", w, msg)
		}
	}
	details, _ := dig(rec, "properties", "error", "details").([]any)
	if len(details) != 1 || !strings.Contains(fmt.Sprint(dig(details[0], "target")), "nic1") {
		t.Errorf("details %s", js(details))
	}
	states := map[string]string{}
	for _, op := range f.operations("fail", "d") {
		states[fmt.Sprint(dig(op, "properties", "targetResource", "resourceName"))] = fmt.Sprint(dig(op, "properties", "provisioningState"))
		if dig(op, "properties", "provisioningState") == stateFailed && dig(op, "properties", "statusMessage", "error", "message") == nil {
			t.Errorf("failed operation without its error: %s", js(op))
		}
	}
	if states["independent1"] != stateSucceeded || states["nic1"] != stateFailed || states["vm1"] != "" {
		t.Errorf("operation states %v", states)
	}
	// The rerun with the missing piece converges.
	f.mustDeploy("fail", "d", body(json.RawMessage(failing), "", map[string]any{"withVnet": true, "pw": password}, false))
	f.mustGet(rid("fail", arm.TypeVM, "vm1"))
}

func TestSecureParametersNeverShown(t *testing.T) {
	f := newFixture(t, nil)
	nat := readTemplate(t, "nat.json")
	f.mustDeploy("sec", "nat", body(nat, "", natParams(2), false))
	changes, err := f.whatIf("sec", "nat", body(nat, "", natParams(3), false))
	if err != nil {
		t.Fatal(err)
	}
	// A failing resource whose name carries the secret: the API's message is scrubbed.
	bad := `{"$schema":"x","contentVersion":"1.0.0.0","parameters":{"pw":{"type":"securestring"}},"resources":[
		{"type":"Microsoft.Network/publicIPAddresses","apiVersion":"2020-06-01","name":"[concat('ip', parameters('pw'))]","location":"eastus","properties":{}}]}`
	badRec, err := f.deploy("sec", "bad", body(json.RawMessage(bad), "", map[string]any{"pw": password}, false))
	if err == nil {
		t.Fatal("a name with ! was accepted")
	}
	if !strings.Contains(js(badRec), "***") {
		t.Errorf("the failure does not show the redacted name: %s", js(badRec))
	}
	var list map[string]any
	if _, err := f.c.Do(context.Background(), "GET", "/subscriptions/"+sub+"/resourceGroups/sec/providers/Microsoft.Resources/deployments", nil, &list); err != nil {
		t.Fatal(err)
	}
	if n := len(list["value"].([]any)); n != 2 {
		t.Errorf("list has %d deployments", n)
	}
	var records string
	f.store.View(func(st *model.State) { records = js(st.Deployments) })
	for what, text := range map[string]string{
		"GET": js(f.mustGet(deploymentPath("sec", "nat"))), "operations": js(f.operations("sec", "nat")),
		"failed GET": js(badRec), "failed operations": js(f.operations("sec", "bad")), "list": js(list),
		"what-if": js(changes), "records": records, "logs": f.logs.String(), "error": err.Error(),
	} {
		if strings.Contains(text, password) || strings.Contains(text, strings.ReplaceAll(password, "!", `\u0021`)) {
			t.Errorf("%s shows the password", what)
		}
	}
	if p := dig(f.mustGet(deploymentPath("sec", "nat")), "properties", "parameters", "adminPassword"); js(p) != js(map[string]any{"type": "SecureString"}) {
		t.Errorf("secure parameter recorded as %s", js(p))
	}
	// The model still has the password the instances need.
	f.store.View(func(st *model.State) {
		for _, ss := range st.ScaleSets {
			if ss.Profile().OSProfile.AdminPassword != password {
				t.Error("the scale set lost its password")
			}
		}
	})
	if !strings.Contains(f.logs.String(), "deployment ended") {
		t.Errorf("no deployment log records: %s", f.logs.String())
	}
}

func TestCompleteModeRemovesWhatTheTemplateDoesNotName(t *testing.T) {
	f := newFixture(t, nil)
	extra := `{"$schema":"x","contentVersion":"1.0.0.0","resources":[
		{"type":"Microsoft.Network/networkSecurityGroups","apiVersion":"2020-06-01","name":"nsg1","location":"eastus","properties":{}},
		{"type":"Microsoft.Network/publicIPAddresses","apiVersion":"2020-06-01","name":"oldip","location":"eastus","properties":{}},
		{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"keep1","properties":{}}]}`
	f.mustDeploy("cm", "extra", body(json.RawMessage(extra), "", nil, false))
	keep := `{"$schema":"x","contentVersion":"1.0.0.0","resources":[
		{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"keep1","properties":{}},
		{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"off1","condition":false,"properties":{}},
		{"type":"Microsoft.Network/virtualNetworks","apiVersion":"2020-06-01","name":"vn","location":"eastus",
		 "properties":{"addressSpace":{"addressPrefixes":["10.9.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.9.0.0/24"}}]}}]}`
	changes, err := f.whatIf("cm", "keep", body(json.RawMessage(keep), "Complete", nil, false))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		got[lastSegment(fmt.Sprint(c["resourceId"]))] = fmt.Sprint(c["changeType"])
	}
	if want := map[string]string{"keep1": changeNoChange, "vn": changeCreate, "nsg1": changeDelete, "oldip": changeDelete}; js(got) != js(want) {
		t.Errorf("complete what-if %v, want %v", got, want)
	}
	// Incremental keeps everything.
	f.mustDeploy("cm", "keep", body(json.RawMessage(keep), "Incremental", nil, false))
	if n := len(f.groupResources("cm")); n != 4 {
		t.Errorf("incremental: %d resources", n)
	}
	f.mustDeploy("cm", "keep", body(json.RawMessage(keep), "Complete", nil, false))
	ids := f.groupResources("cm")
	if len(ids) != 2 || !strings.HasSuffix(ids[0], "/keep1") && !strings.HasSuffix(ids[1], "/keep1") {
		t.Errorf("complete mode left %v", ids)
	}
	var deletes int
	for _, op := range f.operations("cm", "keep") {
		if dig(op, "properties", "provisioningOperation") == "Delete" && dig(op, "properties", "provisioningState") == stateSucceeded {
			deletes++
		}
	}
	if deletes != 2 {
		t.Errorf("%d delete operations: %s", deletes, js(f.operations("cm", "keep")))
	}
}

func TestWhatIfReportsChangesAndChangesNothing(t *testing.T) {
	f := newFixture(t, nil)
	nat := readTemplate(t, "nat.json")
	seq := f.seq()
	changes, err := f.whatIf("wi", "nat", body(nat, "", natParams(2), false))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c["changeType"] != changeCreate || c["after"] == nil {
			t.Errorf("what-if on an empty group: %s", js(c))
		}
	}
	if len(changes) != 7 || f.seq() != seq || len(f.groupResources("wi")) != 0 {
		t.Fatalf("what-if changed the state or missed resources: %d changes", len(changes))
	}
	f.mustDeploy("wi", "nat", body(nat, "", natParams(2), false))
	changes, err = f.whatIf("wi", "nat", body(nat, "", natParams(4), false))
	if err != nil {
		t.Fatal(err)
	}
	var modified []string
	for _, c := range changes {
		if c["changeType"] == changeModify {
			modified = append(modified, js(c["delta"]))
		}
	}
	if len(modified) != 1 || !strings.Contains(modified[0], `"path": "sku.capacity"`) || !strings.Contains(modified[0], `"after": 4`) {
		t.Errorf("what-if of a capacity change: %v", modified)
	}
	if dig(f.mustGet(rid("wi", arm.TypeScaleSet, infix("Webset", "wi"))), "sku", "capacity") != float64(2) {
		t.Error("what-if changed the capacity")
	}
}

func TestRestartMarksRunningDeploymentFailed(t *testing.T) {
	gate := &gateRuntime{}
	gate.set(true)
	f := newFixture(t, gate)
	nat := readTemplate(t, "nat.json")
	ctx := context.Background()
	op, err := f.c.Do(ctx, "PUT", deploymentPath("rs", "nat"), body(nat, "", natParams(1), false), nil)
	if err != nil || op.Done() {
		t.Fatalf("PUT: %v %v", err, op)
	}
	// A second PUT while it runs is refused.
	waitFor(t, func() bool { return len(f.operations("rs", "nat")) == 7 })
	if _, err := f.c.Do(ctx, "PUT", deploymentPath("rs", "nat"), body(nat, "", natParams(1), false), nil); armErr(t, err).Code != "DeploymentActive" {
		t.Errorf("second PUT: %v", err)
	}
	if dig(f.mustGet(deploymentPath("rs", "nat")), "properties", "provisioningState") != stateRunning {
		t.Error("not running")
	}
	// A stop in the middle (the scale set never settles) then a restart.
	f.eng.Close()
	var state string
	f.store.View(func(st *model.State) {
		state = fmt.Sprint(st.Deployments[strings.ToLower(deploymentPath("rs", "nat"))].Properties["provisioningState"])
	})
	if state != stateFailed {
		t.Errorf("after Close the record is %s", state)
	}
	// Simulate a crash: the record still says Running on disk.
	if err := f.store.Update(func(st *model.State) error {
		st.Deployments[strings.ToLower(deploymentPath("rs", "nat"))].Properties["provisioningState"] = stateRunning
		st.Seq++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.restart()
	rec := f.mustGet(deploymentPath("rs", "nat"))
	if dig(rec, "properties", "provisioningState") != stateFailed || dig(rec, "properties", "error", "code") != "DeploymentInterrupted" ||
		!strings.Contains(fmt.Sprint(dig(rec, "properties", "error", "message")), "Run the deployment again") {
		t.Errorf("after restart: %s", js(dig(rec, "properties")))
	}
	f.mustDeploy("rs", "nat", body(nat, "", natParams(1), false))
	// Deleting the record leaves the resources, as in Azure.
	if op, err := f.c.Do(ctx, "DELETE", deploymentPath("rs", "nat"), nil, nil); err != nil || f.c.Wait(ctx, op, nil) != nil {
		t.Fatal(err)
	}
	if _, err := f.get(deploymentPath("rs", "nat")); armErr(t, err).Status != 404 {
		t.Errorf("deleted record: %v", err)
	}
	if len(f.groupResources("rs")) != 7 {
		t.Errorf("resources after deleting the record: %v", f.groupResources("rs"))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStateFileHasNoSecretsInRecords(t *testing.T) {
	f := newFixture(t, nil)
	f.mustDeploy("sf", "nat", body(readTemplate(t, "nat.json"), "", natParams(1), false))
	data, err := os.ReadFile(filepath.Join(f.dir, "state", model.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Deployments json.RawMessage `json:"deployments"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Deployments) < 100 || strings.Contains(string(st.Deployments), password) {
		t.Errorf("persisted records: %d bytes, password present %v", len(st.Deployments), strings.Contains(string(st.Deployments), password))
	}
}

// TestImplicitDependencyOnReferencedResource: a scale set that names a load
// balancer's pools without dependsOn (as the myriad NAT-pool template does)
// is put after the load balancer, every time.
func TestImplicitDependencyOnReferencedResource(t *testing.T) {
	tpl := json.RawMessage(`{
	 "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
	 "variables": {"lb": "[resourceId('Microsoft.Network/loadBalancers', 'lb1')]"},
	 "resources": [
	  {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2015-06-15", "name": "v", "location": "[resourceGroup().location]",
	   "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}},
	  {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2015-06-15", "name": "ip", "location": "[resourceGroup().location]", "properties": {}},
	  {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2015-06-15", "name": "lb1", "location": "[resourceGroup().location]",
	   "dependsOn": ["[resourceId('Microsoft.Network/publicIPAddresses', 'ip')]"],
	   "properties": {"frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": "[resourceId('Microsoft.Network/publicIPAddresses', 'ip')]"}}}],
	    "backendAddressPools": [{"name": "be"}]}},
	  {"type": "Microsoft.Compute/virtualMachineScaleSets", "apiVersion": "2015-06-15", "name": "ss", "location": "[resourceGroup().location]",
	   "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', 'v')]"],
	   "sku": {"name": "Standard_A1", "capacity": "2"},
	   "properties": {"overprovision": "false", "upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
	    "osProfile": {"computerNamePrefix": "ss", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
	    "networkProfile": {"networkInterfaceConfigurations": [{"name": "n", "properties": {"primary": "true", "ipConfigurations": [{"name": "i", "properties": {
	     "subnet": {"id": "[concat(resourceId('Microsoft.Network/virtualNetworks', 'v'), '/subnets/s')]"},
	     "loadBalancerBackendAddressPools": [{"id": "[concat(variables('lb'), '/backendAddressPools/be')]"}]}}]}}]}}}}
	 ]}`)
	for i := 0; i < 5; i++ {
		f := newFixture(t, nil)
		f.mustDeploy("rg", "d", body(tpl, "", nil, false))
		f.mustGet(rid("rg", arm.TypeScaleSet, "ss"))
	}
}

// az sends deployments (validate, create, what-if) with the template file
// spliced in as written: an unquoted "template" key, comments and trailing
// commas. Validate answers what would be deployed and changes nothing; the
// same body then deploys.
func TestAzStyleBodyValidatesAndDeploys(t *testing.T) {
	f := newFixture(t, nil)
	tpl := `{
  // storage for the boot diagnostics
  "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": { "name": { "type": "string" }, },
  "resources": [
    /* one account */
    { "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2021-04-01", "name": "[parameters('name')]",
      "location": "eastus", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2", "properties": {} },
  ],
}`
	// az's JsonCTemplatePolicy: json.dumps(body)[:-2] + ", template:" + file + "}}"
	azBody := `{"properties": {"parameters": {"name": {"value": "diag1"}}, "mode": "Incremental", template:` + tpl + `}}`
	send := func(method, path string) (int, map[string]any) {
		req := httptest.NewRequest(method, path+"?api-version=2019-10-01", strings.NewReader(azBody))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Code, out
	}
	seq := f.seq()
	code, out := send(http.MethodPost, deploymentPath("azg", "d")+"/validate")
	props, _ := out["properties"].(map[string]any)
	vr, _ := props["validatedResources"].([]any)
	if code != 200 || props["provisioningState"] != "Succeeded" || len(vr) != 1 ||
		!strings.HasSuffix(fmt.Sprint(vr[0].(map[string]any)["id"]), "/providers/Microsoft.Storage/storageAccounts/diag1") {
		t.Fatalf("validate: %d %v", code, out)
	}
	if f.seq() != seq || len(f.groupResources("azg")) != 0 {
		t.Errorf("validate changed the state: %v", f.groupResources("azg"))
	}
	if _, err := f.get(deploymentPath("azg", "d")); err == nil {
		t.Error("validate left a deployment record")
	}
	if code, out := send(http.MethodPost, deploymentPath("azg", "d")+"/whatIf"); code != 200 && code != 202 {
		t.Errorf("what-if of az's body: %d %v", code, out)
	}
	if code, out := send(http.MethodPut, deploymentPath("azg", "d")); code != 201 && code != 200 {
		t.Fatalf("PUT of az's body: %d %v", code, out)
	}
	waitFor(t, func() bool {
		rec, err := f.get(deploymentPath("azg", "d"))
		return err == nil && rec["properties"].(map[string]any)["provisioningState"] == "Succeeded"
	})
	if got := f.groupResources("azg"); len(got) != 1 {
		t.Errorf("after the deployment the group holds %v, want the storage account", got)
	}
}
