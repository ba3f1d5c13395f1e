package reconcile

import (
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// TestSecurityFilters: every created instance gets a filter from its
// subnet's NSG and its NIC's NSG (the scale set's NIC configuration, the
// VM's NIC), with its VNET's address space; instances not created yet get
// none.
func TestSecurityFilters(t *testing.T) {
	st := planState(t)
	id := func(typ string, names ...string) arm.ID { return arm.MustID(sub0, "rg", typ, names...) }
	rule := `{"name":"deny-ssh","properties":{"priority":100,"direction":"Inbound","access":"Deny","protocol":"Tcp","sourceAddressPrefix":"Internet","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"22"}}`
	for _, n := range []string{"subnetnsg", "jbnsg"} {
		if _, _, e := st.PutGeneric(id(arm.TypeNSG, n), []byte(`{"properties":{"securityRules":[`+rule+`]}}`)); e != nil {
			t.Fatal(e)
		}
	}
	// The subnet gets an NSG; so does the jumpbox's NIC.
	if _, _, e := st.PutVNet(id(arm.TypeVirtualNetwork, "vnet"), []byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24","networkSecurityGroup":{"id":"`+id(arm.TypeNSG, "subnetnsg").String()+`"}}}]}}`)); e != nil {
		t.Fatal(e)
	}
	if _, _, e := st.PutNIC(id(arm.TypeNIC, "jbnic"), []byte(`{"properties":{"networkSecurityGroup":{"id":"`+id(arm.TypeNSG, "jbnsg").String()+`"},"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"`+id(arm.TypeSubnet, "vnet", "sn").String()+`"},"publicIPAddress":{"id":"`+id(arm.TypePublicIP, "jbip").String()+`"}}}]}}`)); e != nil {
		t.Fatal(e)
	}
	exists := map[string]bool{}
	var notCreated string
	for _, d := range DesiredInstances(st) {
		if d.Spec.Kind == "vmss" && notCreated == "" {
			notCreated = d.Spec.Netns
			continue
		}
		exists[d.Spec.Netns] = true
	}
	plan := BuildPlan(st, exists, exists, PlanOptions{})
	if len(plan.Filters) != len(exists) {
		t.Fatalf("%d filters for %d created instances", len(plan.Filters), len(exists))
	}
	vms := 0
	for _, f := range plan.Filters {
		if f.Instance == notCreated {
			t.Errorf("a filter for %s, which is not created", f.Instance)
		}
		if len(f.Filter.VNet) != 1 || f.Filter.VNet[0].String() != "10.0.0.0/16" {
			t.Errorf("%s: VNET %v", f.Instance, f.Filter.VNet)
		}
		if f.Filter.Subnet == nil || !strings.HasSuffix(f.Filter.Subnet.ID, "/subnetnsg") {
			t.Errorf("%s: subnet NSG %+v", f.Instance, f.Filter.Subnet)
		}
		isVM := strings.Contains(f.Owner, "virtualmachines/jb")
		if isVM {
			vms++
		}
		switch {
		case isVM && (f.Filter.NIC == nil || !strings.HasSuffix(f.Filter.NIC.ID, "/jbnsg")):
			t.Errorf("the jumpbox's filter lacks its NIC's NSG: %+v", f.Filter.NIC)
		case !isVM && f.Filter.NIC != nil:
			t.Errorf("%s: a NIC NSG %v the scale set does not have", f.Instance, f.Filter.NIC.ID)
		}
	}
	if vms != 1 {
		t.Errorf("%d filters of the jumpbox, want 1", vms)
	}
}
