package reconcile

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// RollingPolicy is a scale set's rollingUpgradePolicy with Azure's defaults.
type RollingPolicy struct {
	MaxBatchInstancePercent int
	PauseTimeBetweenBatches time.Duration
}

// rollingPolicy reads the policy of a Rolling scale set.
func rollingPolicy(up *arm.UpgradePolicy) RollingPolicy {
	p := RollingPolicy{MaxBatchInstancePercent: 20}
	if up == nil || len(up.RollingUpgradePolicy) == 0 {
		return p
	}
	var raw struct {
		MaxBatch *arm.Int `json:"maxBatchInstancePercent"`
		Pause    string   `json:"pauseTimeBetweenBatches"`
	}
	if json.Unmarshal(up.RollingUpgradePolicy, &raw) == nil {
		if raw.MaxBatch != nil && *raw.MaxBatch >= 5 && *raw.MaxBatch <= 100 {
			p.MaxBatchInstancePercent = int(*raw.MaxBatch)
		}
		p.PauseTimeBetweenBatches = parseISODuration(raw.Pause)
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

// nextRollingBatch picks the instances of a Rolling scale set to upgrade now:
// none while a batch is still being applied or the pause after the last batch
// runs, else up to maxBatchInstancePercent of the set (at least one), lowest
// ids first.
func nextRollingBatch(ss *model.ScaleSet, applied func(in *model.Instance) bool, lastBatch time.Time, now time.Time) []string {
	if ss.Deleting || ss.Model.Properties == nil || ss.Model.Properties.UpgradePolicy == nil || ss.Model.Properties.UpgradePolicy.Mode != "Rolling" {
		return nil
	}
	live := ss.Live()
	var outdated []string
	for _, in := range live {
		if in.ModelGen != ss.ModelGen {
			outdated = append(outdated, in.ID)
		} else if !applied(in) {
			return nil // the current batch is not done
		}
	}
	if len(outdated) == 0 {
		return nil
	}
	pol := rollingPolicy(ss.Model.Properties.UpgradePolicy)
	if !lastBatch.IsZero() && now.Before(lastBatch.Add(pol.PauseTimeBetweenBatches)) {
		return nil
	}
	n := int(math.Ceil(float64(len(live)) * float64(pol.MaxBatchInstancePercent) / 100))
	if n < 1 {
		n = 1
	}
	if n > len(outdated) {
		n = len(outdated)
	}
	return outdated[:n]
}
