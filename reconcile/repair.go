package reconcile

import (
	"math"
	"sort"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// repairPolicy reads automaticRepairsPolicy: enabled and its grace period
// (Azure's default PT30M).
func repairPolicy(ss *model.ScaleSet) (bool, time.Duration) {
	p := ss.Model.Properties
	if p == nil || p.AutomaticRepairsPolicy == nil || !arm.BoolOr(p.AutomaticRepairsPolicy.Enabled, false) {
		return false, 0
	}
	grace := 30 * time.Minute
	if g := p.AutomaticRepairsPolicy.GracePeriod; g != "" {
		grace = parseISODuration(g)
	}
	return true, grace
}

// repairsDue picks the instances of a scale set to replace now: instances
// reported Unhealthy for longer than the grace period, at most 5% of the set
// (at least one) at a time, and none while an earlier repair is still being
// carried out (an instance of the set is being deleted).
func repairsDue(ss *model.ScaleSet, unhealthySince func(in *model.Instance) time.Time, now time.Time) []string {
	on, grace := repairPolicy(ss)
	if !on || ss.Deleting {
		return nil
	}
	for _, in := range ss.Instances {
		if in.Deleting {
			return nil
		}
	}
	live := ss.Live()
	var due []*model.Instance
	for _, in := range live {
		if since := unhealthySince(in); !since.IsZero() && now.Sub(since) >= grace {
			due = append(due, in)
		}
	}
	if len(due) == 0 {
		return nil
	}
	limit := int(math.Floor(float64(len(live)) * 0.05))
	if limit < 1 {
		limit = 1
	}
	sort.Slice(due, func(i, j int) bool { return unhealthySince(due[i]).Before(unhealthySince(due[j])) })
	var ids []string
	for _, in := range due[:min(limit, len(due))] {
		ids = append(ids, in.ID)
	}
	return ids
}
