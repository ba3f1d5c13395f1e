package e2e

import (
	"fmt"
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
	e.JSON(&lb, "network", "lb", "show", "-n", "healLB")
	probe := ""
	for _, r := range append(lb.LoadBalancingRules, lb.Properties.LoadBalancingRules...) {
		for _, p := range []*arm.SubResource{r.Probe, r.Properties.Probe} {
			if p != nil && probe == "" {
				probe = p.ID
			}
		}
	}
	if probe == "" {
		t.Fatalf("healLB has no rule with a probe: %+v", lb)
	}
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
