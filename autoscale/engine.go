package autoscale

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// MetricSource answers a metric's values, one per time grain.
type MetricSource interface {
	// Series answers q's metric over [q.Start, q.End): one point per grain,
	// each the q.Statistic of the per-instance values in that grain. A grain
	// without data has no point. An unknown metric is an error.
	Series(ctx context.Context, q Query) ([]Point, error)
}

// Query asks a MetricSource for one rule's metric.
type Query struct {
	ResourceURI string
	Namespace   string
	Name        string
	Grain       time.Duration // already multiplied by the time scale
	Statistic   string        // Average, Min, Max, Sum, Count
	Start, End  time.Time
	Dimensions  []Dimension
}

// Point is a metric's value in one time grain starting at Time.
type Point struct {
	Time  time.Time
	Value float64
}

// State is what the engine needs to know about the target besides its setting.
type State struct {
	Capacity   int       // current instance count
	LastAction time.Time // last scale action by this setting; zero if none
}

// Engine evaluates autoscale settings. The zero value evaluates at Azure's
// pace (TimeScale 1).
type Engine struct {
	// TimeScale multiplies every rule duration (grain, window, cooldown).
	// Zero or negative means 1.
	TimeScale float64
}

func (e Engine) scale(d time.Duration) time.Duration {
	if e.TimeScale <= 0 {
		return d
	}
	return time.Duration(float64(d) * e.TimeScale)
}

// Actions a Decision can take.
const (
	ActionNone     = "None"
	ActionScaleOut = "ScaleOut"
	ActionScaleIn  = "ScaleIn"
)

// Decision is one evaluation of a setting: suitable for an activity log.
type Decision struct {
	Time              time.Time        `json:"time"`
	Setting           string           `json:"autoscaleSetting"`
	TargetResourceURI string           `json:"targetResourceUri"`
	Profile           string           `json:"profile,omitempty"`
	ProfileIndex      int              `json:"profileIndex"`
	Capacity          Capacity         `json:"capacity"`
	Current           int              `json:"oldInstancesCount"`
	New               int              `json:"newInstancesCount"`
	Action            string           `json:"action"`
	Rule              int              `json:"ruleIndex"` // index in the profile's rules of the deciding rule; -1 if none
	Rules             []RuleEvaluation `json:"rules,omitempty"`
	Reason            string           `json:"reason"`
}

// Changed reports whether the decision changes the capacity.
func (d Decision) Changed() bool { return d.New != d.Current }

// RuleEvaluation is one rule's metric value and verdict.
type RuleEvaluation struct {
	Index           int      `json:"index"`
	MetricName      string   `json:"metricName"`
	Direction       string   `json:"direction"`
	Operator        string   `json:"operator"`
	Threshold       float64  `json:"threshold"`
	TimeAggregation string   `json:"timeAggregation"`
	TimeWindow      string   `json:"timeWindow"` // the scaled window actually used
	Value           float64  `json:"metricValue"`
	Points          int      `json:"points"`
	HasData         bool     `json:"hasData"`
	Met             bool     `json:"met"`
	InCooldown      bool     `json:"inCooldown,omitempty"`
	Capacity        int      `json:"capacity"` // the capacity this rule would set
	Error           string   `json:"error,omitempty"`
	Estimated       *float64 `json:"estimatedAfterScaleIn,omitempty"`
}

// Evaluate decides the capacity of s's target at now. It never changes
// anything; errors are only a cancelled ctx. A metric source error is recorded
// on its rule (the rule has no data) and does not stop the evaluation.
func (e Engine) Evaluate(ctx context.Context, s Setting, st State, now time.Time, src MetricSource) (Decision, error) {
	d := Decision{Time: now, Setting: s.Name, TargetResourceURI: s.TargetResourceURI, Current: st.Capacity, New: st.Capacity, Action: ActionNone, Rule: -1, ProfileIndex: -1}
	if !s.Enabled {
		d.Reason = "autoscale setting is disabled"
		return d, nil
	}
	p, pi, ok := s.ActiveProfile(now)
	if !ok {
		d.Reason = "no profile is in force at this time and the setting has no default profile"
		return d, nil
	}
	d.Profile, d.ProfileIndex, d.Capacity = p.Name, pi, p.Capacity
	c := p.Capacity
	switch {
	case st.Capacity < c.Minimum:
		d.New, d.Action = c.Minimum, ActionScaleOut
		d.Reason = fmt.Sprintf("capacity %d is below the profile's minimum %d", st.Capacity, c.Minimum)
		return d, nil
	case st.Capacity > c.Maximum:
		d.New, d.Action = c.Maximum, ActionScaleIn
		d.Reason = fmt.Sprintf("capacity %d is above the profile's maximum %d", st.Capacity, c.Maximum)
		return d, nil
	}
	anyData := false
	for i, r := range p.Rules {
		ev, err := e.evalRule(ctx, i, r, st, now, c, src)
		if err != nil {
			return d, err
		}
		anyData = anyData || ev.HasData
		d.Rules = append(d.Rules, ev)
	}
	if len(p.Rules) > 0 && !anyData {
		if st.Capacity < c.Default {
			d.New, d.Action = c.Default, ActionScaleOut
			d.Reason = fmt.Sprintf("no metric data for any rule; capacity %d is below the profile's default %d", st.Capacity, c.Default)
		} else {
			d.Reason = "no metric data for any rule"
		}
		return d, nil
	}

	if e.scaleOut(&d, st, c) {
		return d, nil
	}
	e.scaleIn(&d, st, c)
	return d, nil
}

// scaleOut decides on the scale-out rules of d: any out-rule that fires; the
// largest capacity wins. It reports whether the decision is made.
func (e Engine) scaleOut(d *Decision, st State, c Capacity) bool {
	best, cooling := -1, -1
	for i, ev := range d.Rules {
		if ev.Direction != "Increase" || !ev.Met {
			continue
		}
		if ev.InCooldown {
			cooling = i
			continue
		}
		if ev.Capacity > st.Capacity && (best < 0 || ev.Capacity > d.Rules[best].Capacity) {
			best = i
		}
	}
	if best >= 0 {
		ev := d.Rules[best]
		d.New, d.Action, d.Rule = ev.Capacity, ActionScaleOut, best
		d.Reason = fmt.Sprintf("scale-out rule %d fired: %s %s %s %s (%s over %s)", best, ev.MetricName, fmtNum(ev.Value), opSymbol(ev.Operator), fmtNum(ev.Threshold), ev.TimeAggregation, ev.TimeWindow)
		return true
	}
	var outMet []string
	for i, ev := range d.Rules {
		if ev.Direction == "Increase" && ev.Met {
			outMet = append(outMet, fmt.Sprint(i))
		}
	}
	if len(outMet) > 0 {
		switch {
		case cooling >= 0:
			d.Reason = fmt.Sprintf("scale-out rule %d fired but its cooldown has not passed since the last scale action at %s", cooling, st.LastAction.UTC().Format(time.RFC3339))
		default:
			d.Reason = fmt.Sprintf("scale-out rules %s fired but the capacity is already at the maximum %d", strings.Join(outMet, ", "), c.Maximum)
		}
		return true
	}
	return false
}

// scaleIn decides on the scale-in rules of d: only when every in-rule fires;
// the largest capacity wins, unless that would cause flapping.
func (e Engine) scaleIn(d *Decision, st State, c Capacity) {
	var in []int
	for i, ev := range d.Rules {
		if ev.Direction == "Decrease" {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		d.Reason = "no scale-out rule fired and the profile has no scale-in rule"
		return
	}
	var notMet []string
	for _, i := range in {
		if !d.Rules[i].Met {
			notMet = append(notMet, fmt.Sprint(i))
		}
	}
	if len(notMet) > 0 {
		d.Reason = fmt.Sprintf("no scale-out rule fired; scale-in rules %s did not fire (scale-in needs all of them)", strings.Join(notMet, ", "))
		return
	}
	best := in[0]
	for _, i := range in[1:] {
		if d.Rules[i].Capacity > d.Rules[best].Capacity {
			best = i
		}
	}
	ev := d.Rules[best]
	if ev.Capacity >= st.Capacity {
		d.Reason = fmt.Sprintf("all scale-in rules fired but the capacity is already at the minimum %d", c.Minimum)
		return
	}
	for _, i := range in {
		if d.Rules[i].InCooldown {
			d.Reason = fmt.Sprintf("all scale-in rules fired but rule %d's cooldown has not passed since the last scale action at %s", i, st.LastAction.UTC().Format(time.RFC3339))
			return
		}
	}
	// Flapping: estimate every scale-out rule's metric after the scale-in and
	// take the deepest scale-in that triggers none.
	for target := ev.Capacity; target < st.Capacity; target++ {
		if flap := e.flaps(d.Rules, st.Capacity, target); flap < 0 {
			d.New, d.Action, d.Rule = target, ActionScaleIn, best
			d.Reason = fmt.Sprintf("all scale-in rules fired: %s", e.describeIn(d.Rules, in))
			if target != ev.Capacity {
				d.Reason += fmt.Sprintf("; scaling in to %d rather than %d, which would have caused flapping", target, ev.Capacity)
			}
			e.estimate(d.Rules, st.Capacity, target)
			return
		}
	}
	flap := e.flaps(d.Rules, st.Capacity, st.Capacity-1)
	e.estimate(d.Rules, st.Capacity, st.Capacity-1)
	fe := d.Rules[flap]
	d.Reason = fmt.Sprintf("all scale-in rules fired but scaling in was skipped to avoid flapping: with %d instances %s is estimated at %s (%s × %d / %d), which would fire scale-out rule %d (%s %s)",
		st.Capacity-1, fe.MetricName, fmtNum(fe.Value*float64(st.Capacity)/float64(st.Capacity-1)), fmtNum(fe.Value), st.Capacity, st.Capacity-1, flap, opSymbol(fe.Operator), fmtNum(fe.Threshold))
}

// flaps answers the index of a scale-out rule that would fire after scaling
// in from cur to target, or -1.
func (e Engine) flaps(rules []RuleEvaluation, cur, target int) int {
	if target <= 0 {
		return -1
	}
	for i, ev := range rules {
		if ev.Direction != "Increase" || !ev.HasData {
			continue
		}
		if compare(ev.Operator, ev.Value*float64(cur)/float64(target), ev.Threshold) {
			return i
		}
	}
	return -1
}

func (e Engine) estimate(rules []RuleEvaluation, cur, target int) {
	if target <= 0 {
		return
	}
	for i := range rules {
		if rules[i].Direction == "Increase" && rules[i].HasData {
			v := rules[i].Value * float64(cur) / float64(target)
			rules[i].Estimated = &v
		}
	}
}

func (e Engine) describeIn(rules []RuleEvaluation, in []int) string {
	var parts []string
	for _, i := range in {
		ev := rules[i]
		parts = append(parts, fmt.Sprintf("rule %d %s %s %s %s (%s over %s)", i, ev.MetricName, fmtNum(ev.Value), opSymbol(ev.Operator), fmtNum(ev.Threshold), ev.TimeAggregation, ev.TimeWindow))
	}
	return strings.Join(parts, "; ")
}

func (e Engine) evalRule(ctx context.Context, i int, r Rule, st State, now time.Time, c Capacity, src MetricSource) (RuleEvaluation, error) {
	t := r.Trigger
	window := e.scale(t.TimeWindow)
	ev := RuleEvaluation{Index: i, MetricName: t.MetricName, Direction: r.Action.Direction, Operator: t.Operator, Threshold: t.Threshold, TimeAggregation: t.TimeAggregation, TimeWindow: FormatDuration(window)}
	ev.Capacity = clamp(r.Action.apply(st.Capacity), c)
	if !st.LastAction.IsZero() && now.Sub(st.LastAction) < e.scale(r.Action.Cooldown) {
		ev.InCooldown = true
	}
	if src == nil {
		ev.Error = "no metric source"
		return ev, nil
	}
	pts, err := src.Series(ctx, Query{ResourceURI: t.MetricResourceURI, Namespace: t.MetricNamespace, Name: t.MetricName, Grain: e.scale(t.TimeGrain), Statistic: t.Statistic, Start: now.Add(-window), End: now, Dimensions: t.Dimensions})
	if err != nil {
		if ctx.Err() != nil {
			return ev, ctx.Err()
		}
		ev.Error = err.Error()
		return ev, nil
	}
	ev.Points = len(pts)
	if len(pts) == 0 {
		return ev, nil
	}
	ev.HasData = true
	ev.Value = Aggregate(t.TimeAggregation, pts)
	if t.DividePerInstance && st.Capacity > 0 {
		ev.Value /= float64(st.Capacity)
	}
	ev.Met = compare(t.Operator, ev.Value, t.Threshold)
	return ev, nil
}

// apply answers the capacity after the action, before clamping.
func (a ScaleAction) apply(cur int) int {
	switch a.Type {
	case "ExactCount":
		return a.Value
	case "PercentChangeCount":
		n := int(math.Ceil(float64(cur) * float64(a.Value) / 100))
		if n < 1 {
			n = 1
		}
		if a.Direction == "Decrease" {
			return cur - n
		}
		return cur + n
	default:
		if a.Direction == "Decrease" {
			return cur - a.Value
		}
		return cur + a.Value
	}
}

func clamp(n int, c Capacity) int {
	return max(c.Minimum, min(c.Maximum, n))
}

// Aggregate combines per-grain values with an Azure time aggregation
// (Average, Minimum, Maximum, Total, Count, Last). pts must not be empty.
func Aggregate(agg string, pts []Point) float64 {
	switch agg {
	case "Minimum":
		v := pts[0].Value
		for _, p := range pts[1:] {
			v = min(v, p.Value)
		}
		return v
	case "Maximum":
		v := pts[0].Value
		for _, p := range pts[1:] {
			v = max(v, p.Value)
		}
		return v
	case "Total":
		v := 0.0
		for _, p := range pts {
			v += p.Value
		}
		return v
	case "Count":
		return float64(len(pts))
	case "Last":
		last := pts[0]
		for _, p := range pts[1:] {
			if !p.Time.Before(last.Time) {
				last = p
			}
		}
		return last.Value
	default: // Average
		v := 0.0
		for _, p := range pts {
			v += p.Value
		}
		return v / float64(len(pts))
	}
}

func compare(op string, v, threshold float64) bool {
	switch op {
	case "Equals":
		return v == threshold
	case "NotEquals":
		return v != threshold
	case "GreaterThan":
		return v > threshold
	case "GreaterThanOrEqual":
		return v >= threshold
	case "LessThan":
		return v < threshold
	case "LessThanOrEqual":
		return v <= threshold
	}
	return false
}

func opSymbol(op string) string {
	switch op {
	case "Equals":
		return "="
	case "NotEquals":
		return "≠"
	case "GreaterThan":
		return ">"
	case "GreaterThanOrEqual":
		return "≥"
	case "LessThan":
		return "<"
	case "LessThanOrEqual":
		return "≤"
	}
	return op
}

func fmtNum(v float64) string { return fmt.Sprintf("%.4g", v) }
