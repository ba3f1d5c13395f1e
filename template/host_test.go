package template

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/template/expr"
)

// evalIn evaluates one expression as a resource property of a one-resource
// template, inside a copy loop of 3 when loop is true.
func evalIn(t *testing.T, e string, loop bool) (any, error) {
	t.Helper()
	extra := `"properties": {"v": ` + expr.MarshalCompact(e) + `}`
	name := "r"
	if loop {
		extra += `, "copy": {"name": "rl", "count": 3}`
		name = "[concat('r', copyIndex())]"
	}
	d, err := mustPrepare(t, `{"contentVersion": "1.2.3.4", "parameters": {"p": {"type": "string", "defaultValue": "pv"}}, "variables": {"vv": "[parameters('p')]"},
	  "resources": [`+res("A.B/c", name, extra)+`]}`, Inputs{})
	if err != nil {
		return nil, err
	}
	r := d.Resources()[len(d.Resources())-1]
	b, err := d.Evaluate(context.Background(), r)
	if err != nil {
		return nil, err
	}
	return get(b, "properties", "v"), nil
}

func TestHostFunctions(t *testing.T) {
	sub := "/subscriptions/" + zeroGUID
	tests := []struct {
		in   string
		loop bool
		want string
	}{
		{"[parameters('p')]", false, `"pv"`},
		{"[parameters('P')]", false, `"pv"`},
		{"[variables('VV')]", false, `"pv"`},
		{"[resourceId('Microsoft.Network/virtualNetworks', 'n1')]", false, `"` + testRGID + `/providers/Microsoft.Network/virtualNetworks/n1"`},
		{"[resourceId('otherRg', 'Microsoft.Network/virtualNetworks', 'n1')]", false, `"` + sub + `/resourceGroups/otherRg/providers/Microsoft.Network/virtualNetworks/n1"`},
		{"[resourceId('s2', 'rg2', 'Microsoft.Network/virtualNetworks/subnets', 'n1', 's1')]", false, `"/subscriptions/s2/resourceGroups/rg2/providers/Microsoft.Network/virtualNetworks/n1/subnets/s1"`},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets/', 'n1', 's1')]", false, `"` + testRGID + `/providers/Microsoft.Network/virtualNetworks/n1/subnets/s1"`},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'n1/s1')]", false, `"` + testRGID + `/providers/Microsoft.Network/virtualNetworks/n1/subnets/s1"`},
		{"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'abc')]", false, `"` + sub + `/providers/Microsoft.Authorization/roleDefinitions/abc"`},
		{"[subscriptionResourceId('s9', 'Microsoft.Authorization/roleDefinitions', 'abc')]", false, `"/subscriptions/s9/providers/Microsoft.Authorization/roleDefinitions/abc"`},
		{"[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]", false, `"/providers/Microsoft.Management/managementGroups/mg"`},
		{"[extensionResourceId(resourceGroup().id, 'Microsoft.Authorization/locks', 'l1')]", false, `"` + testRGID + `/providers/Microsoft.Authorization/locks/l1"`},
		{"[resourceGroup().id]", false, `"` + testRGID + `"`},
		{"[resourceGroup().name]", false, `"rg-test"`},
		{"[resourceGroup().location]", false, `"westus"`},
		{"[resourceGroup().properties.provisioningState]", false, `"Succeeded"`},
		{"[subscription().subscriptionId]", false, `"` + zeroGUID + `"`},
		{"[subscription().id]", false, `"` + sub + `"`},
		{"[subscription().tenantId]", false, `"` + zeroGUID + `"`},
		{"[subscription().displayName]", false, `"vmss"`},
		{"[tenant().tenantId]", false, `"` + zeroGUID + `"`},
		{"[deployment().name]", false, `"test-deploy"`},
		{"[deployment().properties.template.contentVersion]", false, `"1.2.3.4"`},
		{"[environment().name]", false, `"AzureCloud"`},
		{"[environment().suffixes.storage]", false, `"core.windows.net"`},
		{"[providers('Microsoft.Compute', 'virtualMachineScaleSets').locations[0]]", false, `"westus"`},
		{"[providers('Microsoft.Compute').namespace]", false, `"Microsoft.Compute"`},
		{"[uniqueString(resourceGroup().id)]", false, `"` + expr.UniqueString(testRGID) + `"`},
		{"[guid(resourceGroup().id, 'x')]", false, `"` + expr.GUID(testRGID, "x") + `"`},
		{"[copyIndex()]", true, `2`},
		{"[copyIndex(10)]", true, `12`},
		{"[copyIndex('rl')]", true, `2`},
		{"[copyIndex('RL', 1)]", true, `3`},
	}
	for _, tt := range tests {
		got, err := evalIn(t, tt.in, tt.loop)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if s := expr.MarshalCompact(got); s != tt.want {
			t.Errorf("%s = %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestHostFunctionErrors(t *testing.T) {
	tests := []struct {
		in   string
		loop bool
		want string
	}{
		{"[parameters('q')]", false, "no parameter 'q'"},
		{"[parameters(1)]", false, "the parameter name must be a string, got int"},
		{"[variables('vw')]", false, "no variable 'vw' (did you mean 'vv'?)"},
		{"[resourceId('n1')]", false, "no resource type (Namespace/type) among the arguments"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'n1')]", false, "type 'Microsoft.Network/virtualNetworks/subnets' needs 2 names, got 1 (n1)"},
		{"[resourceId('a', 'b', 'c', 'A.B/c', 'n')]", false, "the resource type must come within the first 3 arguments"},
		{"[subscriptionResourceId('a', 'b', 'A.B/c', 'n')]", false, "the resource type must come within the first 2 arguments"},
		{"[resourceId('A.B/c')]", false, "no resource name after the type"},
		{"[resourceId('A.B/c', createArray())]", false, "argument 2 must be a string, got array"},
		{"[copyIndex('nope')]", true, "no copy loop 'nope' here (loops in scope: rl)"},
		{"[copyIndex(createArray())]", true, "must be an integer offset"},
		{"[resourceGroup(1)]", false, "takes no arguments, got 1"},
		{"[providers()]", false, "takes a namespace and an optional resource type"},
		{"[reference('r', '1', 'Partial')]", false, "the third argument must be 'Full'"},
		{"[reference(1)]", false, "the resource name or id must be a string"},
		{"[listKeys('r')]", false, "takes 2 arguments (resource, apiVersion), got 1"},
	}
	for _, tt := range tests {
		_, err := evalIn(t, tt.in, tt.loop)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestCopyLoops(t *testing.T) {
	d, err := mustPrepare(t, `{
	  "parameters": {"n": {"type": "int", "defaultValue": 2}},
	  "variables": {
	    "names": "[range(0, parameters('n'))]",
	    "copy": [
	      {"name": "disks", "count": "[parameters('n')]", "input": {"lun": "[copyIndex('disks')]", "size": "[mul(10, copyIndex('disks', 1))]"}},
	      {"name": "labels", "count": 3, "input": "[concat('l', copyIndex('labels'))]"}
	    ]
	  },
	  "resources": [{"type": "Microsoft.Compute/virtualMachines", "apiVersion": "1", "name": "[concat('vm', copyIndex())]",
	    "copy": {"name": "vms", "count": "[length(variables('names'))]"},
	    "properties": {
	      "disks": "[variables('disks')]",
	      "copy": [{"name": "nics", "count": 2, "input": {
	         "name": "[concat('vm', copyIndex(), '-nic', copyIndex('nics'))]",
	         "copy": [{"name": "ips", "count": "[add(copyIndex('nics'), 1)]", "input": "[format('{0}.{1}', copyIndex('nics'), copyIndex('ips'))]"}]
	      }}]
	    }}],
	  "outputs": {"labels": {"type": "array", "value": "[variables('labels')]"}}}`, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Evaluate(context.Background(), d.Resources()[1])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := expr.MarshalCompact(b["properties"]), `{"disks":[{"lun":0,"size":10},{"lun":1,"size":20}],"nics":[{"ips":["0.0"],"name":"vm1-nic0"},{"ips":["1.0","1.1"],"name":"vm1-nic1"}]}`; got != want {
		t.Fatalf("properties:\n got %s\nwant %s", got, want)
	}
	outs, err := d.Outputs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := expr.MarshalCompact(outs["labels"].Value); got != `["l0","l1","l2"]` {
		t.Fatalf("labels = %s", got)
	}
}

func TestVariableCycle(t *testing.T) {
	_, err := mustPrepare(t, `{"variables": {"a": "[variables('b')]", "b": "[concat(variables('a'))]"}, "resources": []}`, Inputs{})
	if err == nil || !strings.Contains(err.Error(), "variable 'a' refers to itself") {
		t.Fatalf("got %v", err)
	}
}

func TestUtcNowAndNewGuid(t *testing.T) {
	d, err := mustPrepare(t, `{"parameters": {
	  "t1": {"type": "string", "defaultValue": "[utcNow()]"},
	  "t2": {"type": "string", "defaultValue": "[utcNow('u')]"},
	  "t3": {"type": "string", "defaultValue": "[utcNow('yyyy-MM-dd HH:mm:ss.fff')]"},
	  "g":  {"type": "string", "defaultValue": "[newGuid()]"}}, "resources": []}`, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range d.Parameters() {
		got[p.Name] = p.Value.(string)
	}
	if got["t1"] != "20240305T060708Z" || got["t2"] != "2024-03-05 06:07:08Z" || got["t3"] != "2024-03-05 06:07:08.000" {
		t.Fatalf("utcNow: %v", got)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got["g"]) {
		t.Fatalf("newGuid = %s", got["g"])
	}
	if s := dotnetTime(time.Date(2024, 1, 2, 15, 4, 5, 0, time.UTC), "dd/MM/yy hh:mm tt"); s != "02/01/24 03:04 PM" {
		t.Fatalf("custom format = %s", s)
	}
}

func TestCoerce(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want int64
		ok   bool
	}{{int64(5), 5, true}, {"15", 15, true}, {" 7 ", 7, true}, {float64(3), 3, true}, {1.5, 0, false}, {"x", 0, false}, {true, 0, false}} {
		n, err := Int(tt.in)
		if (err == nil) != tt.ok || n != tt.want {
			t.Errorf("Int(%#v) = %d, %v", tt.in, n, err)
		}
	}
	for _, tt := range []struct {
		in       any
		want, ok bool
	}{{true, true, true}, {"true", true, true}, {"False", false, true}, {"yes", false, false}, {int64(1), false, false}} {
		b, err := Bool(tt.in)
		if (err == nil) != tt.ok || b != tt.want {
			t.Errorf("Bool(%#v) = %v, %v", tt.in, b, err)
		}
	}
	if s, err := String(true); s != "True" || err != nil {
		t.Errorf("String(true) = %q, %v", s, err)
	}
	if _, err := String([]any{}); err == nil {
		t.Error("String(array) should fail")
	}
	if !SameID("/subscriptions/A/resourceGroups/RG/providers/X.Y/z/N/", "/subscriptions/a/resourcegroups/rg/providers/x.y/z/n") {
		t.Error("SameID should ignore case and a trailing slash")
	}
}
