package arm

import (
	"strings"
	"testing"
)

// Every api-version the real clients send is accepted for what it
// addresses; others are refused as ARM refuses them.
func TestCheckAPIVersion(t *testing.T) {
	const sub = "/subscriptions/00000000-0000-0000-0000-000000000000"
	const rg = sub + "/resourceGroups/demo"
	accepted := []struct{ path, version string }{
		// az 2.45 with the 2020-09-01-hybrid profile
		{rg, "2019-10-01"},
		{rg + "/providers/Microsoft.Resources/deployments/d/validate", "2019-10-01"},
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web", "2020-06-01"},
		{rg + "/providers/Microsoft.Network/loadBalancers", "2022-07-01"},
		{sub + "/providers/Microsoft.Network", "2019-10-01"},
		{sub + "/providers/Microsoft.Compute/locations/eastus/publishers/Canonical/artifacttypes/vmimage/offers/o/skus/s/versions", "2020-06-01"},
		{"/subscriptions", "2019-11-01"},
		{"/tenants", "2019-11-01"},
		// the Go SDK: armcompute v8, armnetwork v9, armresources
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines", "2026-04-01"},
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/networkInterfaces", "2018-10-01"},
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/networkInterfaces", "2025-05-01"},
		{rg + "/providers/Microsoft.Network/loadBalancers/lb/backendAddressPools/p/queryInboundNatRulePortMapping", "2025-05-01"},
		{sub + "/resourcegroups/demo", "2021-04-01"},
		// the emulator's own clients and the templates people deploy
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/start", "2024-03-01"},
		{sub + "/providers/Microsoft.Compute/locations/eastus/operations/x", "2024-03-01"},
		{rg + "/providers/Microsoft.Storage/storageAccounts/sa", "2015-05-01-preview"},
		{rg + "/providers/Microsoft.Insights/autoscaleSettings/a", "2015-04-01"},
		{rg + "/providers/Microsoft.Network/networkSecurityGroups/n", "2017-04-01"},
		{rg + "/providers/microsoft.compute/VIRTUALMACHINESCALESETS/web", "2016-04-30-PREVIEW"},
		// extension resources and paths without versions here are not checked
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/providers/Microsoft.Insights/metrics", "2018-01-01"},
		{sub + "/providers/Microsoft.Insights/eventtypes/management/values", "2015-04-01"},
		{rg + "/providers/Microsoft.Cdn/profiles/p", "1999-01-01"},
	}
	for _, c := range accepted {
		if e := CheckAPIVersion(c.path, c.version, "eastus"); e != nil {
			t.Errorf("%s?api-version=%s: %v", c.path, c.version, e)
		}
	}
	refused := []struct{ path, version, code, typ string }{
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web", "2099-01-01", "NoRegisteredProviderFound", "virtualMachineScaleSets"},
		{rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/3", "2020-13-01", "NoRegisteredProviderFound", "virtualMachineScaleSets/virtualMachines"},
		{rg + "/providers/Microsoft.Network/loadBalancers/lb", "2019-10-02", "NoRegisteredProviderFound", "loadBalancers"},
		{rg + "/providers/Microsoft.Storage/storageAccounts/sa", "2024-03-01", "NoRegisteredProviderFound", "storageAccounts"},
		{rg, "2099-01-01", "InvalidApiVersionParameter", ""},
		{rg + "/providers/Microsoft.Resources/deployments/d", "2020-06-02", "InvalidApiVersionParameter", ""},
		{"/subscriptions", "banana", "InvalidApiVersionParameter", ""},
		{"/providers/Microsoft.Compute", "2099-01-01", "InvalidApiVersionParameter", ""},
	}
	for _, c := range refused {
		e := CheckAPIVersion(c.path, c.version, "eastus")
		if e == nil || e.Status != 400 || e.Code != c.code || !strings.Contains(e.Message, "'"+c.version+"'") {
			t.Errorf("%s?api-version=%s: %v, want 400 %s", c.path, c.version, e, c.code)
			continue
		}
		switch c.code {
		case "NoRegisteredProviderFound":
			if want := "No registered resource provider found for location 'eastus' and API version '" + c.version + "' for type '" + c.typ + "'. The supported api-versions are '"; !strings.HasPrefix(e.Message, want) {
				t.Errorf("message %q, want it to start %q", e.Message, want)
			}
		case "InvalidApiVersionParameter":
			if want := "The api-version '" + c.version + "' is invalid. The supported versions are '"; !strings.HasPrefix(e.Message, want) {
				t.Errorf("message %q, want it to start %q", e.Message, want)
			}
		}
	}
	// The emulator's clients send a version each path accepts.
	for _, p := range []string{rg + "/providers/Microsoft.Storage/storageAccounts/sa", rg + "/providers/Microsoft.Insights/autoscaleSettings/a",
		rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web?$expand=instanceView", "http://vmss" + rg} {
		if v := VersionFor(p, "2024-03-01"); CheckAPIVersion(p, v, "eastus") != nil {
			t.Errorf("VersionFor(%s) = %s, which is refused", p, v)
		}
	}
	if v := VersionFor(rg+"/providers/Microsoft.Compute/virtualMachineScaleSets/web", "2024-03-01"); v != "2024-03-01" {
		t.Errorf("VersionFor a scale set: %s, want the preferred 2024-03-01", v)
	}
}
