package autoscale

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Setting is an autoscale setting's properties, parsed and validated.
type Setting struct {
	Name              string
	TargetResourceURI string
	Enabled           bool
	Profiles          []Profile
	Notifications     []Notification
}

// Profile is one scale condition: a capacity range and its rules, in force by
// default, on fixed dates or on a weekly recurrence.
type Profile struct {
	Name       string
	Capacity   Capacity
	Rules      []Rule
	FixedDate  *FixedDate  // nil unless the profile has fixedDate
	Recurrence *Recurrence // nil unless the profile has recurrence
}

// Capacity is a profile's instance count range and default.
type Capacity struct {
	Minimum int `json:"minimum"`
	Maximum int `json:"maximum"`
	Default int `json:"default"`
}

// FixedDate is a profile's absolute time range (inclusive at both ends).
type FixedDate struct {
	TimeZone   string
	Start, End time.Time
}

// Recurrence is a weekly schedule: the profile starts on each listed day at
// each listed hour and minute, in TimeZone, and lasts until another recurrence
// profile starts.
type Recurrence struct {
	Frequency string // Week
	TimeZone  string
	Location  *time.Location
	Days      []time.Weekday
	Hours     []int
	Minutes   []int
}

// Rule is a metric trigger and the scale action it causes.
type Rule struct {
	Trigger MetricTrigger
	Action  ScaleAction
}

// MetricTrigger says which metric a rule reads and when it fires.
type MetricTrigger struct {
	MetricName        string
	MetricNamespace   string
	MetricResourceURI string
	TimeGrain         time.Duration
	Statistic         string // Average, Min, Max, Sum, Count
	TimeWindow        time.Duration
	TimeAggregation   string // Average, Minimum, Maximum, Total, Count, Last
	Operator          string // Equals, NotEquals, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual
	Threshold         float64
	DividePerInstance bool
	Dimensions        []Dimension
}

// Dimension filters a metric by one of its dimensions.
type Dimension struct {
	Name     string   `json:"DimensionName"`
	Operator string   `json:"Operator"` // Equals, NotEquals
	Values   []string `json:"Values"`
}

// ScaleAction is what a rule does when it fires.
type ScaleAction struct {
	Direction string // Increase, Decrease
	Type      string // ChangeCount, PercentChangeCount, ExactCount
	Value     int
	Cooldown  time.Duration
}

// Notification is where scale actions are announced.
type Notification struct {
	Operation string   // Scale
	Emails    []string // recorded only
	Webhooks  []string // service URIs
}

// Limits Azure enforces on a setting.
const (
	MaxProfiles        = 20
	MaxRulesPerProfile = 10
	MaxCapacity        = 1000
	minGrain           = time.Minute
	maxGrain           = 12 * time.Hour
	minWindow          = 5 * time.Minute
	maxWindow          = 12 * time.Hour
	minCooldown        = time.Minute
	maxCooldown        = 7 * 24 * time.Hour
)

// wire types: the ARM shape, with numbers that may be strings.
type wireSetting struct {
	Name                      string          `json:"name"`
	TargetResourceURI         string          `json:"targetResourceUri"`
	Enabled                   *flexBool       `json:"enabled"`
	Profiles                  []wireProfile   `json:"profiles"`
	Notifications             []wireNotify    `json:"notifications"`
	PredictiveAutoscalePolicy *wirePredictive `json:"predictiveAutoscalePolicy"`
}

type wirePredictive struct {
	ScaleMode string `json:"scaleMode"`
}

type wireProfile struct {
	Name     string `json:"name"`
	Capacity struct {
		Minimum flexNum `json:"minimum"`
		Maximum flexNum `json:"maximum"`
		Default flexNum `json:"default"`
	} `json:"capacity"`
	Rules     []wireRule `json:"rules"`
	FixedDate *struct {
		TimeZone string `json:"timeZone"`
		Start    string `json:"start"`
		End      string `json:"end"`
	} `json:"fixedDate"`
	Recurrence *struct {
		Frequency string `json:"frequency"`
		Schedule  struct {
			TimeZone string    `json:"timeZone"`
			Days     []string  `json:"days"`
			Hours    []flexNum `json:"hours"`
			Minutes  []flexNum `json:"minutes"`
		} `json:"schedule"`
	} `json:"recurrence"`
}

type wireRule struct {
	MetricTrigger struct {
		MetricName        string      `json:"metricName"`
		MetricNamespace   string      `json:"metricNamespace"`
		MetricResourceURI string      `json:"metricResourceUri"`
		TimeGrain         string      `json:"timeGrain"`
		Statistic         string      `json:"statistic"`
		TimeWindow        string      `json:"timeWindow"`
		TimeAggregation   string      `json:"timeAggregation"`
		Operator          string      `json:"operator"`
		Threshold         flexNum     `json:"threshold"`
		DividePerInstance *flexBool   `json:"dividePerInstance"`
		Dimensions        []Dimension `json:"dimensions"`
	} `json:"metricTrigger"`
	ScaleAction struct {
		Direction string  `json:"direction"`
		Type      string  `json:"type"`
		Value     flexNum `json:"value"`
		Cooldown  string  `json:"cooldown"`
	} `json:"scaleAction"`
}

type wireNotify struct {
	Operation string `json:"operation"`
	Email     *struct {
		CustomEmails []string `json:"customEmails"`
	} `json:"email"`
	Webhooks []struct {
		ServiceURI string `json:"serviceUri"`
	} `json:"webhooks"`
}

// flexNum is a JSON number that may be written as a string ("1"), as older
// templates do.
type flexNum struct {
	set bool
	v   float64
}

func (n *flexNum) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("expected a number, got %s", b)
	}
	n.set, n.v = true, v
	return nil
}

// flexBool is a JSON boolean that may be written as a string.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	v, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		return fmt.Errorf("expected a boolean, got %s", b)
	}
	*f = flexBool(v)
	return nil
}

// Parse reads an autoscale setting: either the whole ARM resource (with
// "properties") or the properties alone. It validates every field against
// Azure's rules and answers all problems at once, each naming its JSON path and
// the allowed values.
func Parse(body []byte) (Setting, error) {
	var top struct {
		Name       string          `json:"name"`
		Properties json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return Setting{}, fmt.Errorf("autoscale setting: the body is not a JSON object: %w", err)
	}
	props, prefix := body, ""
	if len(top.Properties) > 0 && string(top.Properties) != "null" {
		props, prefix = top.Properties, "properties."
	}
	var w wireSetting
	if err := json.Unmarshal(props, &w); err != nil {
		return Setting{}, fmt.Errorf("autoscale setting: %s: %w", strings.TrimSuffix(prefix, ".")+"", err)
	}
	if w.Name == "" {
		w.Name = top.Name
	}
	return w.setting(prefix)
}

func (w wireSetting) setting(p string) (Setting, error) {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", p, path, fmt.Sprintf(format, a...)))
	}
	if w.PredictiveAutoscalePolicy != nil && !strings.EqualFold(w.PredictiveAutoscalePolicy.ScaleMode, "Disabled") && w.PredictiveAutoscalePolicy.ScaleMode != "" {
		bad("predictiveAutoscalePolicy.scaleMode", "predictive autoscale (%q) is not emulated: it forecasts from days of CPU history; set predictiveAutoscalePolicy.scaleMode to \"Disabled\" or remove predictiveAutoscalePolicy", w.PredictiveAutoscalePolicy.ScaleMode)
	}
	s := Setting{Name: w.Name, TargetResourceURI: w.TargetResourceURI, Enabled: true}
	if w.Enabled != nil {
		s.Enabled = bool(*w.Enabled)
	}
	if w.TargetResourceURI == "" {
		bad("targetResourceUri", "required: the id of the scale set this setting scales")
	}
	if len(w.Profiles) == 0 || len(w.Profiles) > MaxProfiles {
		bad("profiles", "%d profiles; a setting has 1 to %d", len(w.Profiles), MaxProfiles)
	}
	defaults := 0
	for i, wp := range w.Profiles {
		pr := wp.profile(fmt.Sprintf("profiles[%d]", i), bad)
		if pr.FixedDate == nil && pr.Recurrence == nil && wp.FixedDate == nil && wp.Recurrence == nil {
			defaults++
		}
		s.Profiles = append(s.Profiles, pr)
	}
	if defaults > 1 {
		bad("profiles", "%d profiles have neither fixedDate nor recurrence; at most one default profile", defaults)
	}
	s.Notifications = w.notifications(bad)
	if len(errs) > 0 {
		return Setting{}, fmt.Errorf("autoscale setting %q is invalid: %w", s.Name, errors.Join(errs...))
	}
	return s, nil
}

// profile converts and validates the profile at path pp.
func (wp wireProfile) profile(pp string, bad func(string, string, ...any)) Profile {
	pr := Profile{Name: wp.Name}
	c := &wp.Capacity
	for _, f := range []struct {
		name string
		n    flexNum
		dst  *int
	}{{"minimum", c.Minimum, &pr.Capacity.Minimum}, {"maximum", c.Maximum, &pr.Capacity.Maximum}, {"default", c.Default, &pr.Capacity.Default}} {
		if !f.n.set {
			bad(pp+".capacity."+f.name, "required (a whole number 0..%d)", MaxCapacity)
			continue
		}
		if f.n.v != math.Trunc(f.n.v) || f.n.v < 0 || f.n.v > MaxCapacity {
			bad(pp+".capacity."+f.name, "%v is not a whole number 0..%d", f.n.v, MaxCapacity)
			continue
		}
		*f.dst = int(f.n.v)
	}
	if cp := pr.Capacity; cp.Minimum > cp.Maximum || cp.Default < cp.Minimum || cp.Default > cp.Maximum {
		bad(pp+".capacity", "minimum %d, default %d, maximum %d: need minimum ≤ default ≤ maximum", cp.Minimum, cp.Default, cp.Maximum)
	}
	if wp.FixedDate != nil && wp.Recurrence != nil {
		bad(pp, "has both fixedDate and recurrence; a profile has at most one")
	}
	if wp.FixedDate != nil {
		fd, err := fixedDate(wp.FixedDate.TimeZone, wp.FixedDate.Start, wp.FixedDate.End)
		if err != nil {
			bad(pp+".fixedDate", "%v", err)
		}
		pr.FixedDate = fd
	}
	if wp.Recurrence != nil {
		pr.Recurrence = wp.recurrence(pp, bad)
	}
	if len(wp.Rules) > MaxRulesPerProfile {
		bad(pp+".rules", "%d rules; a profile has at most %d", len(wp.Rules), MaxRulesPerProfile)
	}
	for j, wr := range wp.Rules {
		pr.Rules = append(pr.Rules, wr.rule(fmt.Sprintf("%s.rules[%d]", pp, j), bad))
	}
	return pr
}

// recurrence converts and validates the weekly recurrence of the profile at
// path pp, which has one.
func (wp wireProfile) recurrence(pp string, bad func(string, string, ...any)) *Recurrence {
	wr := wp.Recurrence
	r := &Recurrence{Frequency: wr.Frequency, TimeZone: wr.Schedule.TimeZone}
	if !strings.EqualFold(wr.Frequency, "Week") {
		bad(pp+".recurrence.frequency", "%q: autoscale recurrences are weekly (\"Week\")", wr.Frequency)
	}
	loc, err := Location(wr.Schedule.TimeZone)
	if err != nil {
		bad(pp+".recurrence.schedule.timeZone", "%v", err)
	}
	r.Location = loc
	if len(wr.Schedule.Days) == 0 {
		bad(pp+".recurrence.schedule.days", "required: one or more of Monday..Sunday")
	}
	for j, d := range wr.Schedule.Days {
		wd, ok := weekday(d)
		if !ok {
			bad(fmt.Sprintf("%s.recurrence.schedule.days[%d]", pp, j), "%q is not a day (Monday..Sunday)", d)
		}
		r.Days = append(r.Days, wd)
	}
	r.Hours = ints(wr.Schedule.Hours, 23, pp+".recurrence.schedule.hours", bad)
	r.Minutes = ints(wr.Schedule.Minutes, 59, pp+".recurrence.schedule.minutes", bad)
	return r
}

// notifications converts and validates the setting's notifications.
func (w wireSetting) notifications(bad func(string, string, ...any)) []Notification {
	var out []Notification
	for i, n := range w.Notifications {
		nt := Notification{Operation: n.Operation}
		if n.Email != nil {
			nt.Emails = n.Email.CustomEmails
		}
		for j, h := range n.Webhooks {
			if !strings.HasPrefix(h.ServiceURI, "http://") && !strings.HasPrefix(h.ServiceURI, "https://") {
				bad(fmt.Sprintf("notifications[%d].webhooks[%d].serviceUri", i, j), "%q is not an http(s) URL", h.ServiceURI)
			}
			nt.Webhooks = append(nt.Webhooks, h.ServiceURI)
		}
		out = append(out, nt)
	}
	return out
}

func ints(ns []flexNum, max int, path string, bad func(string, string, ...any)) []int {
	if len(ns) == 0 {
		bad(path, "required: one or more whole numbers 0..%d", max)
	}
	var out []int
	for i, n := range ns {
		if n.v != math.Trunc(n.v) || n.v < 0 || n.v > float64(max) {
			bad(fmt.Sprintf("%s[%d]", path, i), "%v is not a whole number 0..%d", n.v, max)
			continue
		}
		out = append(out, int(n.v))
	}
	return out
}

var (
	statistics   = []string{"Average", "Min", "Max", "Sum", "Count"}
	aggregations = []string{"Average", "Minimum", "Maximum", "Total", "Count", "Last"}
	operators    = []string{"Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"}
	directions   = []string{"Increase", "Decrease"}
	actionTypes  = []string{"ChangeCount", "PercentChangeCount", "ExactCount"}
)

// oneOf answers the canonical spelling of v among allowed (ARM enums are
// case-insensitive).
func oneOf(v string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return v, false
}

func (wr wireRule) rule(rp string, bad func(string, string, ...any)) Rule {
	mt, sa := wr.MetricTrigger, wr.ScaleAction
	var r Rule
	t := &r.Trigger
	t.MetricName, t.MetricNamespace, t.MetricResourceURI = mt.MetricName, mt.MetricNamespace, mt.MetricResourceURI
	if t.MetricName == "" {
		bad(rp+".metricTrigger.metricName", "required (for example \"Percentage CPU\")")
	}
	if t.MetricResourceURI == "" {
		bad(rp+".metricTrigger.metricResourceUri", "required: the id of the resource whose metric is read")
	}
	dur := func(field, v string, min, max time.Duration) time.Duration {
		d, err := ParseDuration(v)
		if err != nil {
			bad(rp+field, "%v", err)
			return 0
		}
		if d < min || d > max {
			bad(rp+field, "%s is outside %s..%s", v, FormatDuration(min), FormatDuration(max))
		}
		return d
	}
	t.TimeGrain = dur(".metricTrigger.timeGrain", mt.TimeGrain, minGrain, maxGrain)
	t.TimeWindow = dur(".metricTrigger.timeWindow", mt.TimeWindow, minWindow, maxWindow)
	if t.TimeGrain > 0 && t.TimeWindow > 0 && t.TimeWindow < t.TimeGrain {
		bad(rp+".metricTrigger.timeWindow", "%s is shorter than the time grain %s", mt.TimeWindow, mt.TimeGrain)
	}
	enum := func(field, v string, allowed []string) string {
		c, ok := oneOf(v, allowed)
		if !ok {
			bad(rp+field, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		return c
	}
	t.Statistic = enum(".metricTrigger.statistic", mt.Statistic, statistics)
	t.TimeAggregation = enum(".metricTrigger.timeAggregation", mt.TimeAggregation, aggregations)
	t.Operator = enum(".metricTrigger.operator", mt.Operator, operators)
	if !mt.Threshold.set {
		bad(rp+".metricTrigger.threshold", "required (a number)")
	}
	t.Threshold = mt.Threshold.v
	if mt.DividePerInstance != nil {
		t.DividePerInstance = bool(*mt.DividePerInstance)
	}
	t.Dimensions = mt.Dimensions
	a := &r.Action
	a.Direction = enum(".scaleAction.direction", sa.Direction, directions)
	a.Type = enum(".scaleAction.type", sa.Type, actionTypes)
	if !sa.Value.set || sa.Value.v != math.Trunc(sa.Value.v) || sa.Value.v < 0 || (sa.Value.v == 0 && a.Type != "ExactCount") {
		bad(rp+".scaleAction.value", "%v: need a whole number ≥ 1 (≥ 0 for ExactCount)", sa.Value.v)
	}
	a.Value = int(sa.Value.v)
	a.Cooldown = dur(".scaleAction.cooldown", sa.Cooldown, minCooldown, maxCooldown)
	return r
}

func weekday(s string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, d.String()) {
			return d, true
		}
	}
	return 0, false
}

func fixedDate(tz, start, end string) (*FixedDate, error) {
	loc, err := Location(tz)
	if err != nil {
		return nil, fmt.Errorf("timeZone: %w", err)
	}
	st, err1 := parseTime(start, loc)
	en, err2 := parseTime(end, loc)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if en.Before(st) {
		return nil, fmt.Errorf("end %s is before start %s", end, start)
	}
	return &FixedDate{TimeZone: tz, Start: st, End: en}, nil
}

// parseTime reads an ISO 8601 time; without an offset it is in loc.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time (2024-06-01T08:00:00 or with an offset)", s)
}

// ParseDuration reads an ISO 8601 duration as ARM writes them: PT1M, PT5M,
// PT1H30M, P1D, P1W, PT30S, P1DT12H.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration (PT1M, PT5M, PT1H, P1D, P1W)", s)
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "P") || len(u) < 3 {
		return 0, bad
	}
	u = u[1:]
	var d time.Duration
	inTime := false
	num := ""
	units := 0
	for _, c := range u {
		switch {
		case c == 'T':
			if inTime || num != "" {
				return 0, bad
			}
			inTime = true
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
		default:
			if num == "" {
				return 0, bad
			}
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, bad
			}
			var unit time.Duration
			switch {
			case !inTime && c == 'W':
				unit = 7 * 24 * time.Hour
			case !inTime && c == 'D':
				unit = 24 * time.Hour
			case inTime && c == 'H':
				unit = time.Hour
			case inTime && c == 'M':
				unit = time.Minute
			case inTime && c == 'S':
				unit = time.Second
			default:
				return 0, bad
			}
			d += time.Duration(v * float64(unit))
			num = ""
			units++
		}
	}
	if num != "" || units == 0 {
		return 0, bad
	}
	return d, nil
}

// FormatDuration writes d as an ISO 8601 duration (PT5M, PT1H30M, P7D).
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		fmt.Fprintf(&b, "%sS", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	}
	return b.String()
}
