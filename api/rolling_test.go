package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// rollingRuntime reports one faulted rolling upgrade.
type rollingRuntime struct{ StaticRuntime }

func (rollingRuntime) RollingUpgrade(string, *model.ScaleSet) (RollingUpgradeStatus, bool) {
	return RollingUpgradeStatus{Code: "Faulted", Successful: 1, Failed: 2, Pending: 2,
		Error: &arm.Error{Code: "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade", Message: "stopped"}}, true
}

// GET …/rollingUpgrades/latest: 404 without a rolling upgrade, else Azure's
// RollingUpgradeStatusInfo (runningStatus, progress, error).
func TestRollingUpgradeLatest(t *testing.T) {
	srv := newServer(t)
	rgp := sub + "/resourceGroups/rg"
	for _, r := range [][2]string{
		{rgp, `{"location":"westus"}`},
		{rgp + "/providers/Microsoft.Network/virtualNetworks/vnet", `{"location":"westus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`},
		{rgp + "/providers/Microsoft.Compute/virtualMachineScaleSets/web", `{"location":"westus","sku":{"name":"Standard_A1","capacity":2},"properties":{"upgradePolicy":{"mode":"Rolling","rollingUpgradePolicy":{"maxBatchInstancePercent":50}},"virtualMachineProfile":{
		  "osProfile":{"computerNamePrefix":"web","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
		  "networkProfile":{"networkInterfaceConfigurations":[{"name":"nic","properties":{"primary":true,"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"` + rgp + `/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sn"}}}]}}]},
		  "extensionProfile":{"extensions":[{"name":"health","properties":{"publisher":"Microsoft.ManagedServices","type":"ApplicationHealthLinux","typeHandlerVersion":"1.0","settings":{"protocol":"tcp","port":80}}}]}}}}`},
	} {
		if w := serve(t, srv, "PUT", r[0], r[1]); w.Code >= 300 {
			t.Fatalf("PUT %s: %d %s", r[0], w.Code, w.Body)
		}
	}
	path := rgp + "/providers/Microsoft.Compute/virtualMachineScaleSets/web/rollingUpgrades/latest"
	if w := serve(t, srv, "GET", path, ""); w.Code != http.StatusNotFound {
		t.Fatalf("no rolling upgrade yet: %d %s, want 404", w.Code, w.Body)
	}
	srv.Runtime = rollingRuntime{}
	w := serve(t, srv, "GET", path, "")
	var got struct {
		Properties struct {
			Policy        map[string]any        `json:"policy"`
			RunningStatus struct{ Code string } `json:"runningStatus"`
			Progress      map[string]int        `json:"progress"`
			Error         *arm.Error            `json:"error"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s (%v)", w.Code, w.Body, err)
	}
	p := got.Properties
	if p.RunningStatus.Code != "Faulted" || p.Progress["failedInstanceCount"] != 2 || p.Progress["pendingInstanceCount"] != 2 ||
		p.Error == nil || p.Error.Code != "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade" || p.Policy["maxBatchInstancePercent"] == nil {
		t.Errorf("status %s", w.Body)
	}
}
