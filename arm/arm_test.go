package arm

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	cases := []struct {
		in, typ, name, rg, parent string
		err                       string
	}{
		{in: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web", typ: "Microsoft.Compute/virtualMachineScaleSets", name: "web", rg: "rg",
			parent: "/subscriptions/s/resourceGroups/rg"},
		{in: "/SUBSCRIPTIONS/s/resourcegroups/rg/PROVIDERS/Microsoft.Network/virtualNetworks/v/subnets/sn/", typ: "Microsoft.Network/virtualNetworks/subnets", name: "sn", rg: "rg",
			parent: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"},
		{in: "/subscriptions/s/resourceGroups/rg", typ: "", name: "", rg: "rg", parent: "/subscriptions/s/resourceGroups/rg"},
		{in: "subscriptions/s", err: "must start with /subscriptions/"},
		{in: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks", err: "expected providers/{namespace}/{type}/{name}"},
		{in: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets", err: "has no name"},
		{in: "/subscriptions//resourceGroups/rg", err: "empty segment"},
	}
	for _, c := range cases {
		id, err := ParseID(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseID(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseID(%q): %v", c.in, err)
			continue
		}
		if id.Type() != c.typ || id.Name() != c.name || id.ResourceGroup != c.rg || id.Parent().String() != c.parent {
			t.Errorf("ParseID(%q) = type %q name %q rg %q parent %q", c.in, id.Type(), id.Name(), id.ResourceGroup, id.Parent())
		}
	}
}

func TestIDRoundTripAndCase(t *testing.T) {
	id := MustID("s", "RG", TypeSubnet, "V", "Sn")
	if id.String() != "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/V/subnets/Sn" {
		t.Errorf("String() = %s", id)
	}
	p, _ := ParseID(strings.ToUpper(id.String()))
	if p.Key() != id.Key() || !EqualIDs(p.String(), id.String()+"/") || !p.IsType("microsoft.network/VIRTUALNETWORKS/subnets/") {
		t.Error("ids must compare case-insensitively")
	}
	if _, err := NewID("s", "rg", TypeSubnet, "only-one"); err == nil {
		t.Error("NewID accepted too few names")
	}
	if c := MustID("s", "rg", TypeVirtualNetwork, "v").Child("subnets", "a"); !c.IsType(TypeSubnet) || c.Name() != "a" {
		t.Errorf("Child: %s", c)
	}
}

func TestFlexibleValues(t *testing.T) {
	var v struct {
		B  Bool `json:"b"`
		B2 Bool `json:"b2"`
		N  Int  `json:"n"`
		N2 Int  `json:"n2"`
		N3 Int  `json:"n3"`
	}
	if err := json.Unmarshal([]byte(`{"b":"TRUE","b2":false,"n":"15","n2":15,"n3":2.0}`), &v); err != nil {
		t.Fatal(err)
	}
	if !v.B || v.B2 || v.N != 15 || v.N2 != 15 || v.N3 != 2 {
		t.Errorf("decoded %+v", v)
	}
	for _, bad := range []string{`{"b":"yes please"}`, `{"n":"fifteen"}`, `{"n":1.5}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestErrors(t *testing.T) {
	e := NotFound("/subscriptions/s/resourceGroups/rg")
	data, _ := json.Marshal(Body{Error: e})
	back := DecodeError(404, data)
	if back == nil || back.Code != "ResourceNotFound" || back.Status != 404 || back.Target != e.Target {
		t.Errorf("round trip: %s -> %+v", data, back)
	}
	if DecodeError(500, []byte("not json")) != nil {
		t.Error("DecodeError invented an error")
	}
	if ae := AsError(BadRequest("x", "bad %d", 1)); ae.Status != 400 || ae.Message != "bad 1" {
		t.Errorf("AsError: %+v", ae)
	}
}
