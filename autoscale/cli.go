package autoscale

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Condition is a rule's trigger written as az monitor autoscale rule create
// takes it: "METRIC OPERATOR THRESHOLD AGGREGATION PERIOD", e.g.
// "Percentage CPU > 70 avg 5m".
type Condition struct {
	MetricName      string
	Operator        string // ARM spelling: GreaterThan, ...
	Threshold       float64
	TimeAggregation string // ARM spelling: Average, Minimum, Maximum, Total, Count
	TimeWindow      time.Duration
}

var conditionOps = map[string]string{
	"==": "Equals", "!=": "NotEquals", ">": "GreaterThan", ">=": "GreaterThanOrEqual", "<": "LessThan", "<=": "LessThanOrEqual",
}

var conditionAggs = map[string]string{
	"avg": "Average", "min": "Minimum", "max": "Maximum", "total": "Total", "count": "Count",
}

// ParseCondition reads an az-style condition.
func ParseCondition(s string) (Condition, error) {
	bad := func(why string) (Condition, error) {
		return Condition{}, fmt.Errorf("condition %q: %s; write METRIC {==,!=,>,>=,<,<=} THRESHOLD {avg,min,max,total,count} PERIOD, e.g. \"Percentage CPU > 70 avg 5m\"", s, why)
	}
	f := strings.Fields(s)
	if len(f) < 5 {
		return bad("too few words")
	}
	n := len(f)
	window, err := ParsePeriod(f[n-1])
	if err != nil {
		return bad(err.Error())
	}
	agg, ok := conditionAggs[strings.ToLower(f[n-2])]
	if !ok {
		return bad(fmt.Sprintf("aggregation %q is not avg, min, max, total or count", f[n-2]))
	}
	th, err := strconv.ParseFloat(f[n-3], 64)
	if err != nil {
		return bad(fmt.Sprintf("threshold %q is not a number", f[n-3]))
	}
	op, ok := conditionOps[f[n-4]]
	if !ok {
		return bad(fmt.Sprintf("operator %q is not one of == != > >= < <=", f[n-4]))
	}
	return Condition{MetricName: strings.Join(f[:n-4], " "), Operator: op, Threshold: th, TimeAggregation: agg, TimeWindow: window}, nil
}

// ParsePeriod reads "5m", "1h", "1d", "30s" or an ISO 8601 duration.
func ParsePeriod(s string) (time.Duration, error) {
	if strings.HasPrefix(strings.ToUpper(s), "P") {
		return ParseDuration(s)
	}
	if len(s) < 2 {
		return 0, fmt.Errorf("period %q is not like 5m, 1h or PT5M", s)
	}
	v, err := strconv.ParseFloat(s[:len(s)-1], 64)
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	if err != nil || unit == 0 || v <= 0 {
		return 0, fmt.Errorf("period %q is not like 5m, 1h or PT5M", s)
	}
	return time.Duration(v * float64(unit)), nil
}

// ParseScale reads az's --scale: "out 2", "in 1", "to 5", "out 50%".
func ParseScale(words []string) (ScaleAction, error) {
	bad := fmt.Errorf("--scale %q: write out N, in N, to N, or out/in N%%", strings.Join(words, " "))
	if len(words) != 2 {
		return ScaleAction{}, bad
	}
	var a ScaleAction
	switch strings.ToLower(words[0]) {
	case "out":
		a.Direction = "Increase"
	case "in":
		a.Direction = "Decrease"
	case "to":
		a.Direction, a.Type = "Increase", "ExactCount"
	default:
		return ScaleAction{}, bad
	}
	v := words[1]
	if strings.HasSuffix(v, "%") {
		if a.Type == "ExactCount" {
			return ScaleAction{}, bad
		}
		a.Type, v = "PercentChangeCount", strings.TrimSuffix(v, "%")
	} else if a.Type == "" {
		a.Type = "ChangeCount"
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return ScaleAction{}, bad
	}
	a.Value = n
	return a, nil
}
