package reconcile

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// RollingPolicy is a scale set's rollingUpgradePolicy with Azure's defaults.
type RollingPolicy struct {
	MaxBatchInstancePercent             int
	MaxUnhealthyInstancePercent         int
	MaxUnhealthyUpgradedInstancePercent int
	PauseTimeBetweenBatches             time.Duration
	PrioritizeUnhealthyInstances        bool
}

// rollingPolicy reads the policy of a Rolling scale set (values outside
// Azure's ranges keep the defaults: batch 5–100, unhealthy 5–100,
// upgraded unhealthy 0–100).
func rollingPolicy(up *arm.UpgradePolicy) RollingPolicy {
	p := RollingPolicy{MaxBatchInstancePercent: 20, MaxUnhealthyInstancePercent: 20, MaxUnhealthyUpgradedInstancePercent: 20}
	if up == nil || len(up.RollingUpgradePolicy) == 0 {
		return p
	}
	var raw struct {
		MaxBatch       *arm.Int  `json:"maxBatchInstancePercent"`
		MaxUnhealthy   *arm.Int  `json:"maxUnhealthyInstancePercent"`
		MaxUnhealthyUp *arm.Int  `json:"maxUnhealthyUpgradedInstancePercent"`
		Pause          string    `json:"pauseTimeBetweenBatches"`
		Prioritize     *arm.Bool `json:"prioritizeUnhealthyInstances"`
	}
	if json.Unmarshal(up.RollingUpgradePolicy, &raw) == nil {
		pick := func(v *arm.Int, lo int, def int) int {
			if v != nil && int(*v) >= lo && int(*v) <= 100 {
				return int(*v)
			}
			return def
		}
		p.MaxBatchInstancePercent = pick(raw.MaxBatch, 5, 20)
		p.MaxUnhealthyInstancePercent = pick(raw.MaxUnhealthy, 5, 20)
		p.MaxUnhealthyUpgradedInstancePercent = pick(raw.MaxUnhealthyUp, 0, 20)
		p.PauseTimeBetweenBatches = parseISODuration(raw.Pause)
		p.PrioritizeUnhealthyInstances = arm.BoolOr(raw.Prioritize, false)
	}
	return p
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration reads ISO 8601 durations such as PT0S, PT30S, PT1M30S, P1D.
func parseISODuration(s string) time.Duration {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, _ := strconv.ParseFloat(m[4], 64)
		d += time.Duration(f * float64(time.Second))
	}
	return d
}

// rollingInstance is what a rolling upgrade needs to know of one instance.
type rollingInstance struct {
	Applied bool   // built and running its model generation, nothing in flight
	Health  string // Healthy, Unhealthy, Unknown, or "" when nothing reports health
}

// Rolling upgrade failure codes, as Azure reports them in the rolling
// upgrade status's error.
const (
	codeMaxUnhealthy         = "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
	codeMaxUnhealthyUpgraded = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
)

// nextRollingBatch picks the instances of a Rolling scale set to upgrade now.
// Nothing while a batch is still being applied, while an upgraded instance's
// health is not known yet (batches are gated on health), or while the pause
// after the last batch runs. Before each batch the policy's limits are
// checked, as Azure does: more unhealthy upgraded instances than
// maxUnhealthyUpgradedInstancePercent of the set, or more unhealthy
// instances than maxUnhealthyInstancePercent, stop the upgrade with an error.
// A batch is up to maxBatchInstancePercent of the set (at least one),
// unhealthy instances first when prioritizeUnhealthyInstances is set, then
// lowest ids.
func nextRollingBatch(ss *model.ScaleSet, view func(in *model.Instance) rollingInstance, lastBatch time.Time, now time.Time) ([]string, *arm.Error) {
	if ss.Deleting || ss.Model.Properties == nil || ss.Model.Properties.UpgradePolicy == nil || ss.Model.Properties.UpgradePolicy.Mode != "Rolling" {
		return nil, nil
	}
	pol := rollingPolicy(ss.Model.Properties.UpgradePolicy)
	live := ss.Live()
	var outdated, sick []string
	unhealthy, unhealthyUpgraded := 0, 0
	for _, in := range live {
		v := view(in)
		if v.Health == "Unhealthy" {
			unhealthy++
		}
		if in.ModelGen != ss.ModelGen {
			if v.Health == "Unhealthy" {
				sick = append(sick, in.ID)
			} else {
				outdated = append(outdated, in.ID)
			}
			continue
		}
		if !v.Applied || v.Health == "Unknown" {
			return nil, nil // the current batch is not done, or its health not known yet
		}
		if v.Health == "Unhealthy" {
			unhealthyUpgraded++
		}
	}
	if pol.PrioritizeUnhealthyInstances {
		outdated = append(sick, outdated...)
	} else {
		outdated = mergeIDs(outdated, sick)
	}
	if len(outdated) == 0 {
		return nil, nil
	}
	if unhealthyUpgraded*100 > pol.MaxUnhealthyUpgradedInstancePercent*len(live) {
		return nil, &arm.Error{Code: codeMaxUnhealthyUpgraded, Message: fmt.Sprintf(
			"Rolling upgrade stopped: %d of %d instances are unhealthy after being upgraded, more than maxUnhealthyUpgradedInstancePercent %d%% of the rollingUpgradePolicy. Fix the application of the new model and update the scale set again.",
			unhealthyUpgraded, len(live), pol.MaxUnhealthyUpgradedInstancePercent)}
	}
	if unhealthy*100 > pol.MaxUnhealthyInstancePercent*len(live) {
		return nil, &arm.Error{Code: codeMaxUnhealthy, Message: fmt.Sprintf(
			"Rolling upgrade stopped: %d of %d instances are unhealthy, more than maxUnhealthyInstancePercent %d%% of the rollingUpgradePolicy. Repair them (or raise the limit) and update the scale set again.",
			unhealthy, len(live), pol.MaxUnhealthyInstancePercent)}
	}
	if !lastBatch.IsZero() && now.Before(lastBatch.Add(pol.PauseTimeBetweenBatches)) {
		return nil, nil
	}
	n := int(math.Ceil(float64(len(live)) * float64(pol.MaxBatchInstancePercent) / 100))
	if n < 1 {
		n = 1
	}
	if n > len(outdated) {
		n = len(outdated)
	}
	return outdated[:n], nil
}

// mergeIDs merges two lists of instance ids, each in ascending numeric
// order, into one.
func mergeIDs(a, b []string) []string {
	out := append(append([]string{}, a...), b...)
	sort.SliceStable(out, func(i, j int) bool {
		x, _ := strconv.Atoi(out[i])
		y, _ := strconv.Atoi(out[j])
		return x < y
	})
	return out
}
