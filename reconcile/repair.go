package reconcile

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// Repair actions of automaticRepairsPolicy.repairAction.
const (
	RepairReplace = "Replace"
	RepairRestart = "Restart"
	RepairReimage = "Reimage"
)

// RepairPolicy is a scale set's automaticRepairsPolicy with Azure's defaults.
type RepairPolicy struct {
	Enabled bool
	Grace   time.Duration // gracePeriod, PT10M by default
	Action  string        // RepairReplace, RepairRestart or RepairReimage
}

// repairPolicy reads automaticRepairsPolicy: enabled, its grace period
// (Azure's default PT10M) and its repair action (Replace by default).
func repairPolicy(ss *model.ScaleSet) RepairPolicy {
	p := ss.Model.Properties
	if p == nil || p.AutomaticRepairsPolicy == nil || !arm.BoolOr(p.AutomaticRepairsPolicy.Enabled, false) {
		return RepairPolicy{}
	}
	pol := RepairPolicy{Enabled: true, Grace: 10 * time.Minute, Action: RepairReplace}
	if g := p.AutomaticRepairsPolicy.GracePeriod; g != "" {
		pol.Grace = parseISODuration(g)
	}
	switch strings.ToLower(p.AutomaticRepairsPolicy.RepairAction) {
	case "restart":
		pol.Action = RepairRestart
	case "reimage":
		pol.Action = RepairReimage
	}
	return pol
}

// repairsDue picks the instances of a scale set to repair now: instances
// reported Unhealthy for longer than the grace period (counted from when
// the instance was last done changing), at most 5% of the set (at least
// one) at a time, and none while an earlier repair by replacement is still
// being carried out (an instance of the set is being deleted).
func repairsDue(ss *model.ScaleSet, unhealthySince func(in *model.Instance) time.Time, now time.Time) []string {
	pol := repairPolicy(ss)
	if !pol.Enabled || ss.Deleting {
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
		if since := unhealthySince(in); !since.IsZero() && now.Sub(since) >= pol.Grace {
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
	sort.SliceStable(due, func(i, j int) bool { return unhealthySince(due[i]).Before(unhealthySince(due[j])) })
	var ids []string
	for _, in := range due[:min(limit, len(due))] {
		ids = append(ids, in.ID)
	}
	return ids
}
