package reconcile

import (
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// A pool's drainPeriodInSeconds reaches the plan: unset takes the daemon's
// default, 0 means no drain (not lb's own default), n means n seconds.
func TestPlanDrainPeriod(t *testing.T) {
	e := setup(t)
	e.update(func(s *model.State) *arm.Error {
		_, _, ae := s.PutLoadBalancer(arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "lb"), []byte(`{"properties":{"backendAddressPools":[
			{"name":"unset"},{"name":"zero","properties":{"drainPeriodInSeconds":0}},{"name":"seven","properties":{"drainPeriodInSeconds":"7"}}]}}`))
		return ae
	})
	var plan *Plan
	e.store.View(func(s *model.State) { plan = BuildPlan(s, nil, nil, PlanOptions{DefaultDrain: 3 * time.Second}) })
	want := map[string]time.Duration{"unset": 3 * time.Second, "zero": -1, "seven": 7 * time.Second}
	if len(plan.LBs) != 1 || len(plan.LBs[0].Pools) != len(want) {
		t.Fatalf("plan: %+v", plan.LBs)
	}
	for _, p := range plan.LBs[0].Pools {
		if p.DrainPeriod != want[p.Name] {
			t.Errorf("pool %s: drain period %v, want %v", p.Name, p.DrainPeriod, want[p.Name])
		}
	}
}
