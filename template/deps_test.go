package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// res renders a minimal resource for dependency tests.
func res(typ, name string, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{"type": %q, "apiVersion": "2020-01-01", "name": %q%s}`, typ, name, extra)
}

func tplOf(resources ...string) string {
	return `{"variables": {"v": "vnet1"}, "resources": [` + strings.Join(resources, ",") + `]}`
}

func TestDependsOnForms(t *testing.T) {
	vnet := res("Microsoft.Network/virtualNetworks", "vnet1", "")
	ip := res("Microsoft.Network/publicIPAddresses", "ip1", "")
	sub := res("Microsoft.Network/virtualNetworks/subnets", "vnet1/sub1", `"dependsOn": ["vnet1"]`)
	loop := res("Microsoft.Storage/storageAccounts", "[concat('sa', copyIndex())]", `"copy": {"name": "saLoop", "count": 3}`)
	tests := []struct {
		name    string
		depends string
		want    string // names of the dependencies
	}{
		{"plain name", `"ip1"`, "ip1"},
		{"name, other case", `"IP1"`, "ip1"},
		{"Type/name concat", `"[concat('Microsoft.Network/publicIPAddresses/', 'ip1')]"`, "ip1"},
		{"resourceId", `"[resourceId('Microsoft.Network/virtualNetworks', variables('v'))]"`, "vnet1"},
		{"full id, other case", `"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/resourcegroups/RG-TEST/providers/microsoft.network/virtualnetworks/VNET1"`, "vnet1"},
		{"child Type/name/childType/childName", `"Microsoft.Network/virtualNetworks/vnet1/subnets/sub1"`, "vnet1/sub1"},
		{"child Type/childType/name/childName", `"Microsoft.Network/virtualNetworks/subnets/vnet1/sub1"`, "vnet1/sub1"},
		{"child resourceId with trailing slash", `"[resourceId('Microsoft.Network/virtualNetworks/subnets/', 'vnet1', 'sub1')]"`, "vnet1/sub1"},
		{"child full name", `"vnet1/sub1"`, "vnet1/sub1"},
		{"loop name", `"saLoop"`, "sa0 sa1 sa2"},
		{"one loop instance", `"sa1"`, "sa1"},
		{"several", `"ip1", "saLoop", "ip1"`, "ip1 sa0 sa1 sa2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := res("Microsoft.Web/sites", "app", `"dependsOn": [`+tt.depends+`]`)
			d, err := mustPrepare(t, tplOf(vnet, ip, sub, loop, app), Inputs{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := d.Lookup("app")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, id := range r.DependsOn {
				dep, err := d.Lookup(id)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, dep.Name)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Fatalf("depends on %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDependencyErrors(t *testing.T) {
	ip := res("Microsoft.Network/publicIPAddresses", "ip1", "")
	tests := []struct {
		name string
		tpl  string
		err  string
	}{
		{"unknown name", tplOf(ip, res("Microsoft.Web/sites", "app", `"dependsOn": ["ip2"]`)),
			"resources[1].dependsOn[0]: no resource or copy loop named 'ip2' in the template (did you mean 'ip1'?)"},
		{"unknown Type/name", tplOf(ip, res("Microsoft.Web/sites", "app", `"dependsOn": ["Microsoft.Network/publicIPAddresses/ipx"]`)),
			"resources[1].dependsOn[0]: no resource or copy loop named 'Microsoft.Network/publicIPAddresses/ipx' in the template (did you mean 'Microsoft.Network/publicIPAddresses/ip1'?)"},
		{"unknown id", tplOf(ip, res("Microsoft.Web/sites", "app", `"dependsOn": ["/subscriptions/x/resourceGroups/y/providers/A.B/c/d"]`)),
			"resources[1].dependsOn[0]: no resource with id '/subscriptions/x/resourceGroups/y/providers/A.B/c/d' in the template"},
		{"self", tplOf(res("Microsoft.Web/sites", "app", `"dependsOn": ["app"]`)),
			"resources[0].dependsOn[0]: Microsoft.Web/sites/app depends on itself"},
		{"cycle", tplOf(
			res("Microsoft.Web/sites", "a", `"dependsOn": ["b"]`),
			res("Microsoft.Web/sites", "b", `"dependsOn": ["c"]`),
			res("Microsoft.Web/sites", "c", `"dependsOn": ["a"]`)),
			"dependency cycle: Microsoft.Web/sites/a (resources[0]) -> Microsoft.Web/sites/b (resources[1]) -> Microsoft.Web/sites/c (resources[2]) -> Microsoft.Web/sites/a (resources[0])"},
		{"ambiguous name", tplOf(ip, res("Microsoft.Web/sites", "ip1", ""), res("Microsoft.Web/sites", "app", `"dependsOn": ["ip1"]`)),
			"'ip1' is ambiguous: it names Microsoft.Network/publicIPAddresses/ip1 and Microsoft.Web/sites/ip1; write Type/name instead"},
		{"duplicate", tplOf(ip, ip), "resources[1]: " + testRGID + "/providers/Microsoft.Network/publicIPAddresses/ip1 is declared twice (also at resources[0])"},
		{"dependsOn not a string", tplOf(res("Microsoft.Web/sites", "app", `"dependsOn": ["[createArray()]"]`)),
			"resources[0].dependsOn[0]: must evaluate to a resource name or id, got array"},
		{"reference in dependsOn", tplOf(ip, res("Microsoft.Web/sites", "app", `"dependsOn": ["[reference('ip1').x]"]`)),
			"resources[1].dependsOn[0]: reference('ip1'): reference() cannot be used in a resource's type, name, apiVersion, copy count, condition or dependsOn"},
		{"name with too few segments", tplOf(res("Microsoft.Network/virtualNetworks/subnets", "sub1", "")),
			"resources[0]: name 'sub1' has 1 segment but type 'Microsoft.Network/virtualNetworks/subnets' needs 2"},
		{"bad copy count", tplOf(res("Microsoft.Web/sites", "[concat('a', copyIndex())]", `"copy": {"name": "l", "count": "[sub(0, 1)]"}`)),
			"resources[0].copy.count: copy count -1 must be between 0 and 800"},
		{"copyIndex outside a loop", tplOf(res("Microsoft.Web/sites", "[concat('a', copyIndex())]", "")),
			"resources[0].name: copyIndex(): copyIndex() is only valid inside a copy loop"},
		{"condition not a bool", tplOf(res("Microsoft.Web/sites", "a", `"condition": "maybe"`)),
			`resources[0].condition: "maybe" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustPrepare(t, tt.tpl, Inputs{})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v\nwant it to contain %q", err, tt.err)
			}
		})
	}
}

func TestLevelsAndConditions(t *testing.T) {
	d, err := mustPrepare(t, tplOf(
		res("Microsoft.Web/sites", "a", ""),
		res("Microsoft.Web/sites", "b", `"dependsOn": ["a"]`),
		res("Microsoft.Web/sites", "off", `"condition": "[equals(1, 2)]", "dependsOn": ["a"]`),
		res("Microsoft.Web/sites", "c", `"dependsOn": ["b", "off"]`),
		res("Microsoft.Web/sites", "d", `"condition": "true"`),
		res("Microsoft.Web/sites", "[concat('s', copyIndex(1))]", `"copy": {"name": "ser", "count": 5, "mode": "Serial", "batchSize": 2}`),
		res("Microsoft.Web/sites", "[concat('p', copyIndex())]", `"copy": {"name": "par", "count": 2, "mode": "parallel"}, "dependsOn": ["ser"]`),
	), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := levelNames(d), "a d s1 s2 | b s3 s4 | c s5 | p0 p1"; got != want {
		t.Fatalf("levels:\n got %s\nwant %s", got, want)
	}
	c, _ := d.Lookup("c")
	if len(c.DependsOn) != 1 || !strings.HasSuffix(c.DependsOn[0], "/sites/b") {
		t.Fatalf("a dependency on a resource with a false condition must be dropped: %v", c.DependsOn)
	}
	off, _ := d.Lookup("off")
	if off.Condition || off.Level != -1 {
		t.Fatalf("off: condition %v level %d", off.Condition, off.Level)
	}
}

func TestNestedResources(t *testing.T) {
	d, err := mustPrepare(t, `{"resources": [{
	  "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2020-01-01", "name": "[concat('net', copyIndex())]",
	  "copy": {"name": "nets", "count": 2},
	  "resources": [
	    {"type": "subnets", "apiVersion": "2020-01-01", "name": "[concat('sub', copyIndex())]"},
	    {"type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings", "apiVersion": "2020-01-01", "name": "[concat('net', copyIndex(), '/peer')]",
	     "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks/subnets', concat('net', copyIndex()), concat('sub', copyIndex()))]"]}
	  ]}]}`, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range d.Resources() {
		got = append(got, fmt.Sprintf("%s %s %s L%d", r.Path, r.Type, r.Name, r.Level))
	}
	want := []string{
		"resources[0] Microsoft.Network/virtualNetworks net0 L0",
		"resources[0] Microsoft.Network/virtualNetworks net1 L0",
		"resources[0].resources[0] Microsoft.Network/virtualNetworks/subnets net0/sub0 L1",
		"resources[0].resources[0] Microsoft.Network/virtualNetworks/subnets net1/sub1 L1",
		"resources[0].resources[1] Microsoft.Network/virtualNetworks/virtualNetworkPeerings net0/peer L2",
		"resources[0].resources[1] Microsoft.Network/virtualNetworks/virtualNetworkPeerings net1/peer L2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestImplicitReferenceDependency(t *testing.T) {
	s := newFakeState()
	tpl, err := Parse([]byte(tplOf(
		res("Microsoft.Web/sites", "app", `"properties": {"ip": "[reference('ip1').ipAddress]", "full": "[reference(resourceId('Microsoft.Network/publicIPAddresses', 'ip1'), '2020-01-01', 'Full').id]"}`),
		res("Microsoft.Network/publicIPAddresses", "ip1", ""),
	)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Prepare(context.Background(), tpl, Inputs{}, testScope(s))
	if err != nil {
		t.Fatal(err)
	}
	if got := levelNames(d); got != "ip1 | app" {
		t.Fatalf("levels = %s", got)
	}
	bodies := deployAll(t, d, s)
	if get(bodies["app"], "properties", "ip") != "203.0.113.7" || get(bodies["app"], "properties", "full") != testRGID+"/providers/Microsoft.Network/publicIPAddresses/ip1" {
		t.Fatalf("app = %v", bodies["app"])
	}
	if len(s.refCalls) != 2 || s.refCalls[0] != testRGID+"/providers/Microsoft.Network/publicIPAddresses/ip1@2020-01-01" {
		t.Fatalf("reference calls = %v", s.refCalls)
	}
}

func TestReferenceErrors(t *testing.T) {
	tests := []struct{ tpl, err string }{
		{`{"variables": {"x": "[reference('a').b]"}, "resources": []}`, "variables.x: reference('a'): reference() cannot be used in variables"},
		{`{"parameters": {"p": {"type": "string", "defaultValue": "[listKeys('a', '1').k]"}}, "resources": []}`, "parameters.p.defaultValue: listKeys('a', '1'): listKeys() cannot be used in parameter default values"},
		{`{"variables": {"x": "[utcNow()]"}, "resources": []}`, "variables.x: utcNow(): utcNow() can only be used in a parameter's defaultValue"},
		{`{"variables": {"x": "[newGuid()]"}, "resources": []}`, "newGuid() can only be used in a parameter's defaultValue"},
		{`{"variables": {"x": "[listSecrets('a', '1')]"}, "resources": []}`, "listsecrets() is not supported"},
		{`{"parameters": {"p": {"type": "string", "defaultValue": "[variables('x')]"}}, "variables": {"x": "1"}, "resources": []}`, "variables() cannot be used in parameter default values"},
	}
	for _, tt := range tests {
		if _, err := mustPrepare(t, tt.tpl, Inputs{}); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s:\n got %v\nwant %q", tt.tpl, err, tt.err)
		}
	}

	// reference() of a resource outside the template needs an apiVersion.
	d, err := mustPrepare(t, tplOf(res("Microsoft.Web/sites", "app", `"properties": {"x": "[reference('/subscriptions/s/resourceGroups/r/providers/A.B/c/d').x]", "y": "[reference('nothere').x]"}`)), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Evaluate(context.Background(), d.Resources()[0])
	if err == nil || !strings.Contains(err.Error(), "resources[0].properties.x: reference('/subscriptions/s/resourceGroups/r/providers/A.B/c/d'): reference() of '/subscriptions/s/resourceGroups/r/providers/A.B/c/d', which is not in this template, needs an apiVersion argument") {
		t.Fatalf("got %v", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Path != "resources[0].properties.x" || te.Expr != "reference('/subscriptions/s/resourceGroups/r/providers/A.B/c/d')" {
		t.Fatalf("structured error: %+v", te)
	}
}

func TestErrorsPointAtThePlace(t *testing.T) {
	tpl := `{"parameters": {"instanceCount": {"type": "int"}}, "resources": [
	  ` + res("A.B/c", "r0", "") + `, ` + res("A.B/c", "r1", "") + `, ` + res("A.B/c", "r2", "") + `, ` + res("A.B/c", "r3", "") + `,
	  {"type": "Microsoft.Compute/virtualMachineScaleSets", "apiVersion": "2020-01-01", "name": "set", "sku": {"capacity": "[parameters('instanceCnt')]"}}]}`
	d, err := mustPrepare(t, tpl, Inputs{Overrides: []string{"instanceCount=2"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Evaluate(context.Background(), d.Resources()[4])
	want := "resources[4].sku.capacity: parameters('instanceCnt'): no parameter 'instanceCnt' (did you mean 'instanceCount'?)"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}

	_, err = Parse([]byte(`{"resources": [{"type": "A.B/c", "apiVersion": "1", "name": "x", "properties": {"p": "[concat('a' 'b')]"}}]}`))
	want = "resources[0].properties.p: [concat('a' 'b')]: at position 13: expected ',' or ')' in the arguments of concat() but found string 'b'"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	var te *Error
	if !errors.As(err, &te) || te.Pos != 13 || te.Path != "resources[0].properties.p" {
		t.Fatalf("structured syntax error: %+v", te)
	}

	// Unknown function, with a suggestion, inside a variable used by a resource.
	_, err = mustPrepare(t, `{"variables": {"x": "[toLowr('A')]"}, "resources": []}`, Inputs{})
	if err == nil || err.Error() != "variables.x: toLowr('A'): unknown function 'toLowr' (did you mean 'toLower'?)" {
		t.Fatalf("got %v", err)
	}
}

func TestParseStructureErrors(t *testing.T) {
	tests := []struct{ tpl, err string }{
		{`[]`, "template must be a JSON object"},
		{`{`, "template is not valid JSON"},
		{`{"resources": [{"name": "x"}]}`, `resources[0].type: a resource needs a "type" string`},
		{`{"resources": [{"type": "A.B/c", "name": "x"}]}`, `resources[0].apiVersion: a resource needs a "apiVersion" string`},
		{`{"resources": {"a": {}}}`, "resources: resources as an object (symbolic names) are not supported"},
		{`{"parameters": {"p": {"type": "strin"}}}`, `parameters.p.type: type "strin" is not one of`},
		{`{"parameters": {"p": {"type": "int", "maxValue": "x"}}}`, `parameters.p.maxValue: must be an integer`},
		{`{"resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "1", "name": "n", "properties": {"templateLink": {"uri": "http://x"}}}]}`, "resources[0].properties.templateLink: linked templates are not supported"},
		{`{"resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "1", "name": "n", "properties": {"template": {}}}]}`, "resources[0]: nested deployments (Microsoft.Resources/deployments) are not supported"},
		{`{"resources": [{"type": "A.B/c", "apiVersion": "1", "name": "x", "copy": {"name": "l"}}]}`, "resources[0].copy: a resource copy needs a name and a count"},
		{`{"resources": [{"type": "A.B/c", "apiVersion": "1", "name": "x", "copy": {"name": "l", "count": 1, "mode": "sideways"}}]}`, `resources[0].copy.mode: mode "sideways" must be serial or parallel`},
		{`{"variables": {"copy": [{"name": "v", "count": 1}]}}`, `variables.copy[0].input: copy "v" needs an input`},
		{`{"outputs": {"o": {"value": 1}}}`, `outputs.o: needs a "type"`},
		{`{"functions": []}`, "functions: user-defined functions are not supported"},
		{`{"languageVersion": "2.0", "resources": []}`, "symbolic names"},
		{`{"variables": {"a": "[x(]", "b": "[y(]"}}`, "variables.a: [x(]: at position 4"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.tpl))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s:\n got %v\nwant %q", tt.tpl, err, tt.err)
		}
	}
	// Several problems are reported together.
	_, err := Parse([]byte(`{"variables": {"a": "[x(]", "b": "[y(]"}}`))
	if err == nil || !strings.Contains(err.Error(), "variables.b: [y(]") {
		t.Errorf("both syntax errors should be reported: %v", err)
	}
}
