package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// An automatic repair driven by a load-balancer probe: the scale set names
// its LB rule's probe in networkProfile.healthProbe; the instance whose app
// answers 500 is probed down and replaced (a new instance id), the capacity
// stays, and the healthy instance is kept.
func TestRepairFromLoadBalancerProbe(t *testing.T) {
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	lbCreateUp(e, "heal", 2, lbAppCommand(80))
	probe := healRuleProbe(e, "healLB")
	lbEditScaleSet(e, "heal", func(ss *arm.VirtualMachineScaleSet) {
		on := arm.Bool(true)
		ss.Properties.AutomaticRepairsPolicy = &arm.AutomaticRepairsPolicy{Enabled: &on, GracePeriod: "PT0S"}
		ss.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = &arm.SubResource{ID: probe}
	})
	before := e.Instances("heal")
	if len(before) != 2 {
		t.Fatalf("%d instances, want 2", len(before))
	}
	e.runIn("heal", before[1].InstanceID, "echo 500 > /root/app-code; echo 500 > /root/health-code")
	Eventually(t, 3*time.Minute, "instance "+before[1].InstanceID+" replaced", func() error {
		now := e.Instances("heal")
		ids := map[string]bool{}
		for _, in := range now {
			ids[in.InstanceID] = true
		}
		if len(now) != 2 || ids[before[1].InstanceID] || !ids[before[0].InstanceID] {
			return fmt.Errorf("instances %+v", now)
		}
		return nil
	})
}

// healRuleProbe is the id of the probe of a load balancer's first rule.
func healRuleProbe(e *Env, lbName string) string {
	e.T.Helper()
	// The CLI shows az's flat form; the ARM form nests under properties.
	type rules struct {
		LoadBalancingRules []struct {
			Probe      *arm.SubResource `json:"probe"`
			Properties struct {
				Probe *arm.SubResource `json:"probe"`
			} `json:"properties"`
		} `json:"loadBalancingRules"`
	}
	var lb struct {
		rules
		Properties rules `json:"properties"`
	}
	e.JSON(&lb, "network", "lb", "show", "-n", lbName)
	probe := ""
	for _, r := range append(lb.LoadBalancingRules, lb.Properties.LoadBalancingRules...) {
		for _, p := range []*arm.SubResource{r.Probe, r.Properties.Probe} {
			if p != nil && probe == "" {
				probe = p.ID
			}
		}
	}
	if probe == "" {
		e.T.Fatalf("%s has no rule with a probe: %+v", lbName, lb)
	}
	return probe
}

// A rolling upgrade gated on a load-balancer probe stops when too many
// upgraded instances are unhealthy: the new model's app answers 500, so
// after more than maxUnhealthyUpgradedInstancePercent (20% of 5) fail the
// probe, no further batch starts, the rest keep the old model, and
// rollingUpgrades/latest says Faulted with Azure's error code.
func TestRollingUpgradeStopsOnUnhealthyUpgraded(t *testing.T) {
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	lbCreateUp(e, "roll", 5, lbAppCommand(80))
	probe := healRuleProbe(e, "rollLB")
	lbEditScaleSet(e, "roll", func(ss *arm.VirtualMachineScaleSet) {
		ss.Properties.UpgradePolicy = &arm.UpgradePolicy{Mode: "Rolling",
			RollingUpgradePolicy: json.RawMessage(`{"maxBatchInstancePercent":20,"maxUnhealthyUpgradedInstancePercent":20}`)}
		ss.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = &arm.SubResource{ID: probe}
		for i, x := range ss.Properties.VirtualMachineProfile.ExtensionProfile.Extensions {
			if strings.Contains(string(x.Properties.Settings), "commandToExecute") {
				b, _ := json.Marshal(map[string]string{"commandToExecute": "echo 500 > /root/app-code; " + lbAppCommand(80)})
				ss.Properties.VirtualMachineProfile.ExtensionProfile.Extensions[i].Properties.Settings = b
			}
		}
	})
	path := e.Client.ResourceID("default", arm.TypeScaleSet, "roll") + "/rollingUpgrades/latest"
	var status struct {
		Properties struct {
			RunningStatus struct{ Code string } `json:"runningStatus"`
			Progress      map[string]int        `json:"progress"`
			Error         *arm.Error            `json:"error"`
		} `json:"properties"`
	}
	Eventually(t, 3*time.Minute, "rolling upgrade stopped", func() error {
		if _, err := e.Client.Do(context.Background(), http.MethodGet, path, nil, &status); err != nil {
			return err
		}
		if status.Properties.RunningStatus.Code != "Faulted" {
			return fmt.Errorf("status %+v", status.Properties)
		}
		return nil
	})
	if status.Properties.Error == nil || status.Properties.Error.Code != "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade" {
		t.Errorf("error %+v, want MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade", status.Properties.Error)
	}
	// No batch starts after the stop: the pending instances keep the old model.
	pending := status.Properties.Progress["pendingInstanceCount"]
	if pending == 0 || status.Properties.Progress["failedInstanceCount"] < 2 {
		t.Errorf("progress %v: want at least 2 failed and some pending", status.Properties.Progress)
	}
	time.Sleep(5 * time.Second)
	if _, err := e.Client.Do(context.Background(), http.MethodGet, path, nil, &status); err != nil {
		t.Fatal(err)
	}
	if got := status.Properties.Progress["pendingInstanceCount"]; got != pending {
		t.Errorf("pending instances went from %d to %d after the upgrade stopped", pending, got)
	}
}
