package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const setID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web"

// fakeSource answers a constant value per metric, one point per grain over
// the window, and records the queries.
type fakeSource struct {
	values  map[string]float64
	queries []Query
}

func (f *fakeSource) Series(_ context.Context, q Query) ([]Point, error) {
	f.queries = append(f.queries, q)
	v, ok := f.values[q.Name]
	if !ok {
		return nil, nil
	}
	var pts []Point
	for t := q.Start; t.Before(q.End); t = t.Add(q.Grain) {
		pts = append(pts, Point{Time: t, Value: v})
	}
	return pts, nil
}

func cpu(v float64) *fakeSource { return &fakeSource{values: map[string]float64{"Percentage CPU": v}} }

// rule writes one rule's JSON.
func rule(metric, op string, threshold float64, dir, typ string, value int, cooldown string) string {
	return fmt.Sprintf(`{"metricTrigger":{"metricName":%q,"metricResourceUri":%q,"timeGrain":"PT1M","statistic":"Average","timeWindow":"PT5M","timeAggregation":"Average","operator":%q,"threshold":%v},
	"scaleAction":{"direction":%q,"type":%q,"value":"%d","cooldown":%q}}`, metric, setID, op, threshold, dir, typ, value, cooldown)
}

func setting(t *testing.T, min, max, def int, rules ...string) Setting {
	t.Helper()
	body := fmt.Sprintf(`{"name":"as","properties":{"targetResourceUri":%q,"enabled":true,"profiles":[{"name":"p","capacity":{"minimum":"%d","maximum":"%d","default":"%d"},"rules":[%s]}]}}`,
		setID, min, max, def, strings.Join(rules, ","))
	s, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday

func eval(t *testing.T, s Setting, st State, src MetricSource) Decision {
	t.Helper()
	d, err := Engine{}.Evaluate(context.Background(), s, st, t0, src)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The reference template's setting parses as written (capacities and values as
// strings, guest metric names).
func TestParseReferenceTemplate(t *testing.T) {
	raw, err := os.ReadFile("../../shared/templates/201-vmss-ubuntu-autoscale/azuredeploy.json")
	if err != nil {
		t.Skipf("reference templates not present: %v", err)
	}
	var tpl struct {
		Resources []json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range tpl.Resources {
		var head struct{ Type string }
		json.Unmarshal(r, &head)
		if head.Type != "Microsoft.Insights/autoscaleSettings" {
			continue
		}
		found = true
		// the template's expressions stand in for the deployed values
		body := strings.ReplaceAll(string(r), `[concat('/subscriptions/',subscription().subscriptionId, '/resourceGroups/',  resourceGroup().name, '/providers/Microsoft.Compute/virtualMachineScaleSets/', variables('namingInfix'))]`, setID)
		s, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		p := s.Profiles[0]
		if p.Capacity != (Capacity{1, 10, 1}) || len(p.Rules) != 2 || !s.Enabled {
			t.Fatalf("parsed %+v", s)
		}
		r0, r1 := p.Rules[0], p.Rules[1]
		if r0.Trigger.MetricName != `\Processor\PercentProcessorTime` || r0.Trigger.TimeWindow != 5*time.Minute || r0.Trigger.Threshold != 60 ||
			r0.Action != (ScaleAction{"Increase", "ChangeCount", 1, time.Minute}) || r1.Action.Cooldown != 5*time.Minute || r1.Trigger.Operator != "LessThan" {
			t.Fatalf("rules %+v", p.Rules)
		}
	}
	if !found {
		t.Fatal("no autoscale setting in the reference template")
	}
}

func TestAnyOutRuleScalesOut(t *testing.T) {
	s := setting(t, 1, 10, 1,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Network In Total", "GreaterThan", 1e6, "Increase", "ChangeCount", 3, "PT5M"),
		rule("Percentage CPU", "LessThan", 30, "Decrease", "ChangeCount", 1, "PT5M"))
	for _, tc := range []struct {
		name      string
		cpu, net  float64
		want, idx int
	}{
		{"cpu only", 80, 10, 3, 0},
		{"network only", 50, 2e6, 5, 1},
		{"both: the largest capacity wins", 80, 2e6, 5, 1},
		{"neither", 50, 10, 2, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, s, State{Capacity: 2}, &fakeSource{values: map[string]float64{"Percentage CPU": tc.cpu, "Network In Total": tc.net}})
			if d.New != tc.want || d.Rule != tc.idx {
				t.Fatalf("new %d rule %d, want %d rule %d: %s", d.New, d.Rule, tc.want, tc.idx, d.Reason)
			}
		})
	}
}

func TestScaleInNeedsAllInRules(t *testing.T) {
	s := setting(t, 1, 10, 1,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Percentage CPU", "LessThan", 30, "Decrease", "ChangeCount", 1, "PT5M"),
		rule("Network In Total", "LessThan", 1000, "Decrease", "ChangeCount", 2, "PT5M"))
	// CPU low but network high: one in-rule does not fire, so no scale-in.
	d := eval(t, s, State{Capacity: 4}, &fakeSource{values: map[string]float64{"Percentage CPU": 10, "Network In Total": 5000}})
	if d.Changed() || !strings.Contains(d.Reason, "rules 2 did not fire") {
		t.Fatalf("scaled in with one in-rule unmet: %+v", d)
	}
	// Both low: scale in; of -1 and -2 the largest capacity (the smaller decrease) wins.
	d = eval(t, s, State{Capacity: 4}, &fakeSource{values: map[string]float64{"Percentage CPU": 10, "Network In Total": 10}})
	if d.New != 3 || d.Action != ActionScaleIn || d.Rule != 1 {
		t.Fatalf("all in-rules met: %+v", d)
	}
}

// Scale-out takes precedence over scale-in when both fire.
func TestOutBeatsIn(t *testing.T) {
	s := setting(t, 1, 10, 1,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Network In Total", "LessThan", 1000, "Decrease", "ChangeCount", 1, "PT5M"))
	d := eval(t, s, State{Capacity: 3}, &fakeSource{values: map[string]float64{"Percentage CPU": 90, "Network In Total": 10}})
	if d.New != 4 {
		t.Fatalf("%+v", d)
	}
}

// The documented flapping example: scale out by 1 when CPU ≥ 80 %, scale in by
// 1 when CPU ≤ 60 %. With 3 instances at 60 %, scaling in to 2 gives an
// estimated 60 × 3 / 2 = 90 % (≥ 80): skip. At 50 %, 50 × 3 / 2 = 75 % (< 80):
// scale in. With 2 instances at 50 %, scaling in to 1 gives 100 %: skip.
func TestFlapping(t *testing.T) {
	s := setting(t, 1, 10, 1,
		rule("Percentage CPU", "GreaterThanOrEqual", 80, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Percentage CPU", "LessThanOrEqual", 60, "Decrease", "ChangeCount", 1, "PT5M"))
	d := eval(t, s, State{Capacity: 3}, cpu(60))
	if d.Changed() || !strings.Contains(d.Reason, "flapping") || !strings.Contains(d.Reason, "estimated at 90") {
		t.Fatalf("3 instances at 60%%: %+v", d)
	}
	d = eval(t, s, State{Capacity: 3}, cpu(50))
	if d.New != 2 || d.Action != ActionScaleIn {
		t.Fatalf("3 instances at 50%%: %+v", d)
	}
	if est := d.Rules[0].Estimated; est == nil || *est != 75 {
		t.Fatalf("estimate %v, want 75", est)
	}
	d = eval(t, s, State{Capacity: 2}, cpu(50))
	if d.Changed() || !strings.Contains(d.Reason, "flapping") || !strings.Contains(d.Reason, "100") {
		t.Fatalf("2 instances at 50%%: %+v", d)
	}
}

// A scale-in by several instances that would flap is reduced to the deepest
// safe scale-in.
func TestFlappingReducesScaleIn(t *testing.T) {
	s := setting(t, 1, 20, 1,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Percentage CPU", "LessThan", 40, "Decrease", "ChangeCount", 5, "PT5M"))
	// 10 at 30 %: to 5 → 60 % safe. 10 at 39 %: to 5 → 78 % flaps; to 6 → 65 % safe.
	if d := eval(t, s, State{Capacity: 10}, cpu(30)); d.New != 5 {
		t.Fatalf("%+v", d)
	}
	d := eval(t, s, State{Capacity: 10}, cpu(39))
	if d.New != 6 || !strings.Contains(d.Reason, "rather than 5") {
		t.Fatalf("%+v", d)
	}
}

func TestCooldown(t *testing.T) {
	s := setting(t, 1, 10, 1,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"),
		rule("Percentage CPU", "LessThan", 30, "Decrease", "ChangeCount", 1, "PT10M"))
	for _, tc := range []struct {
		name  string
		cpu   float64
		since time.Duration
		want  int
	}{
		{"out within cooldown", 90, 4 * time.Minute, 3},
		{"out after cooldown", 90, 5 * time.Minute, 4},
		{"in within cooldown", 10, 9 * time.Minute, 3},
		{"in after cooldown", 10, 10 * time.Minute, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, s, State{Capacity: 3, LastAction: t0.Add(-tc.since)}, cpu(tc.cpu))
			if d.New != tc.want {
				t.Fatalf("new %d, want %d: %s", d.New, tc.want, d.Reason)
			}
		})
	}
}

// TimeScale multiplies grain, window and cooldown.
func TestTimeScale(t *testing.T) {
	s := setting(t, 1, 10, 1, rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"))
	src := cpu(90)
	e := Engine{TimeScale: 0.02}
	d, _ := e.Evaluate(context.Background(), s, State{Capacity: 2, LastAction: t0.Add(-5 * time.Second)}, t0, src)
	q := src.queries[0]
	if q.Grain != 1200*time.Millisecond || q.End.Sub(q.Start) != 6*time.Second {
		t.Fatalf("query %+v", q)
	}
	if d.Changed() { // cooldown 5 min × 0.02 = 6 s; 5 s passed
		t.Fatalf("scaled within the scaled cooldown: %+v", d)
	}
	d, _ = e.Evaluate(context.Background(), s, State{Capacity: 2, LastAction: t0.Add(-6 * time.Second)}, t0, src)
	if d.New != 3 {
		t.Fatalf("after the scaled cooldown: %+v", d)
	}
}

func TestMinMax(t *testing.T) {
	s := setting(t, 2, 5, 3,
		rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 3, "PT5M"),
		rule("Percentage CPU", "LessThan", 30, "Decrease", "ChangeCount", 3, "PT5M"))
	for _, tc := range []struct {
		name      string
		cur       int
		cpu       float64
		want      int
		action    string
		reasonHas string
	}{
		{"out clamped to maximum", 4, 90, 5, ActionScaleOut, "fired"},
		{"at maximum", 5, 90, 5, ActionNone, "maximum 5"},
		{"in clamped to minimum", 3, 5, 2, ActionScaleIn, "fired"},
		{"at minimum", 2, 5, 2, ActionNone, "minimum 2"},
		{"below minimum", 1, 50, 2, ActionScaleOut, "below the profile's minimum"},
		{"above maximum", 9, 50, 5, ActionScaleIn, "above the profile's maximum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, s, State{Capacity: tc.cur}, cpu(tc.cpu))
			if d.New != tc.want || d.Action != tc.action || !strings.Contains(d.Reason, tc.reasonHas) {
				t.Fatalf("%+v", d)
			}
		})
	}
}

func TestActionTypes(t *testing.T) {
	for _, tc := range []struct {
		typ, dir string
		value    int
		cur      int
		want     int
	}{
		{"ChangeCount", "Increase", 2, 4, 6},
		{"PercentChangeCount", "Increase", 50, 4, 6},
		{"PercentChangeCount", "Increase", 10, 4, 5}, // 0.4 rounds up to one instance
		{"PercentChangeCount", "Decrease", 50, 8, 4},
		{"ExactCount", "Increase", 7, 4, 7},
		{"ExactCount", "Decrease", 2, 8, 2},
	} {
		t.Run(fmt.Sprintf("%s %s %d from %d", tc.typ, tc.dir, tc.value, tc.cur), func(t *testing.T) {
			op, v := "GreaterThan", 90.0
			if tc.dir == "Decrease" {
				op, v = "LessThan", 1.0
			}
			s := setting(t, 1, 20, 1, rule("Percentage CPU", op, 50, tc.dir, tc.typ, tc.value, "PT5M"))
			if d := eval(t, s, State{Capacity: tc.cur}, cpu(v)); d.New != tc.want {
				t.Fatalf("new %d, want %d: %s", d.New, tc.want, d.Reason)
			}
		})
	}
}

func TestTimeAggregations(t *testing.T) {
	pts := []Point{{t0, 10}, {t0.Add(time.Minute), 40}, {t0.Add(2 * time.Minute), 25}}
	for agg, want := range map[string]float64{"Average": 25, "Minimum": 10, "Maximum": 40, "Total": 75, "Count": 3, "Last": 25} {
		if got := Aggregate(agg, pts); got != want {
			t.Errorf("%s = %v, want %v", agg, got, want)
		}
	}
}

func TestDisabledAndNoData(t *testing.T) {
	s := setting(t, 1, 10, 3, rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"))
	s.Enabled = false
	if d := eval(t, s, State{Capacity: 2}, cpu(99)); d.Changed() || !strings.Contains(d.Reason, "disabled") {
		t.Fatalf("disabled: %+v", d)
	}
	s.Enabled = true
	empty := &fakeSource{}
	if d := eval(t, s, State{Capacity: 2}, empty); d.New != 3 || !strings.Contains(d.Reason, "default") {
		t.Fatalf("no data below default: %+v", d)
	}
	if d := eval(t, s, State{Capacity: 4}, empty); d.Changed() {
		t.Fatalf("no data above default: %+v", d)
	}
	// positive control: the same setting with data scales out
	if d := eval(t, s, State{Capacity: 4}, cpu(99)); d.New != 5 {
		t.Fatalf("with data: %+v", d)
	}
}

type failingSource struct{}

func (failingSource) Series(context.Context, Query) ([]Point, error) {
	return nil, errors.New("unknown metric")
}

func TestSourceErrorRecordedOnRule(t *testing.T) {
	s := setting(t, 1, 10, 1, rule("Nope", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M"))
	d := eval(t, s, State{Capacity: 2}, failingSource{})
	if d.Changed() || d.Rules[0].Error != "unknown metric" {
		t.Fatalf("%+v", d)
	}
}

func profilesSetting(t *testing.T, profiles string) Setting {
	t.Helper()
	s, err := Parse([]byte(fmt.Sprintf(`{"targetResourceUri":%q,"profiles":[%s]}`, setID, profiles)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Recurrence profiles in a time zone, checked at their boundaries: a weekday
// profile from 08:00 Pacific, an evening profile from 18:00, and the default.
func TestRecurrenceAtBoundary(t *testing.T) {
	s := profilesSetting(t, `
	{"name":"day","capacity":{"minimum":"4","maximum":"10","default":"4"},"rules":[],
	 "recurrence":{"frequency":"Week","schedule":{"timeZone":"Pacific Standard Time","days":["Monday","Tuesday","Wednesday","Thursday","Friday"],"hours":[8],"minutes":[0]}}},
	{"name":"night","capacity":{"minimum":"1","maximum":"10","default":"1"},"rules":[],
	 "recurrence":{"frequency":"Week","schedule":{"timeZone":"Pacific Standard Time","days":["Monday","Tuesday","Wednesday","Thursday","Friday","Saturday","Sunday"],"hours":[18],"minutes":[0]}}},
	{"name":"default","capacity":{"minimum":"2","maximum":"2","default":"2"},"rules":[]}`)
	la, _ := time.LoadLocation("America/Los_Angeles")
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 7, 59, 59, 0, la), "night"}, // Monday before 08:00: Sunday's 18:00 night
		{time.Date(2026, 3, 2, 8, 0, 0, 0, la), "day"},     // the boundary itself
		{time.Date(2026, 3, 2, 17, 59, 0, 0, la), "day"},
		{time.Date(2026, 3, 2, 18, 0, 0, 0, la), "night"},
		{time.Date(2026, 3, 7, 12, 0, 0, 0, la), "night"}, // Saturday: no day start
		// 16:00 UTC on Monday 2 March is 08:00 PST
		{time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC), "day"},
		{time.Date(2026, 3, 2, 15, 59, 0, 0, time.UTC), "night"},
	} {
		p, _, ok := s.ActiveProfile(tc.at)
		if !ok || p.Name != tc.want {
			t.Errorf("at %s: profile %q, want %q", tc.at, p.Name, tc.want)
		}
	}
	// The profile's capacity applies: at 08:00 a capacity of 2 goes to the day minimum 4.
	d, _ := Engine{}.Evaluate(context.Background(), s, State{Capacity: 2}, time.Date(2026, 3, 2, 8, 0, 0, 0, la), cpu(0))
	if d.New != 4 || d.Profile != "day" {
		t.Fatalf("%+v", d)
	}
}

func TestFixedDateProfile(t *testing.T) {
	s := profilesSetting(t, `
	{"name":"default","capacity":{"minimum":"1","maximum":"3","default":"1"},"rules":[]},
	{"name":"launch","capacity":{"minimum":"5","maximum":"10","default":"5"},"rules":[],
	 "fixedDate":{"timeZone":"W. Europe Standard Time","start":"2026-03-02T09:00:00","end":"2026-03-02T17:00:00"}}`)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 7, 59, 0, 0, time.UTC), "default"}, // 08:59 in Berlin
		{time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), "launch"},
		{time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC), "launch"}, // end, inclusive
		{time.Date(2026, 3, 2, 16, 0, 1, 0, time.UTC), "default"},
	} {
		if p, _, _ := s.ActiveProfile(tc.at); p.Name != tc.want {
			t.Errorf("at %s: %q, want %q", tc.at, p.Name, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	base := func(profile string) string {
		return fmt.Sprintf(`{"properties":{"targetResourceUri":%q,"profiles":[%s]}}`, setID, profile)
	}
	goodRule := rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M")
	for _, tc := range []struct{ name, body, want string }{
		{"predictive", fmt.Sprintf(`{"properties":{"targetResourceUri":%q,"predictiveAutoscalePolicy":{"scaleMode":"Enabled"},"profiles":[{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[]}]}}`, setID), "predictiveAutoscalePolicy"},
		{"min above max", base(`{"name":"p","capacity":{"minimum":"5","maximum":"2","default":"3"},"rules":[]}`), "properties.profiles[0].capacity"},
		{"capacity missing", base(`{"name":"p","capacity":{"minimum":"1","maximum":"2"},"rules":[]}`), "capacity.default"},
		{"window too short", base(`{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[` + strings.Replace(goodRule, `"PT5M","timeAggregation"`, `"PT2M","timeAggregation"`, 1) + `]}`), "timeWindow: PT2M is outside PT5M..PT12H"},
		{"bad operator", base(`{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[` + strings.Replace(goodRule, "GreaterThan", "Bigger", 1) + `]}`), `operator: "Bigger" is not one of`},
		{"bad duration", base(`{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[` + strings.Replace(goodRule, `"cooldown":"PT5M"`, `"cooldown":"5 minutes"`, 1) + `]}`), "cooldown"},
		{"bad time zone", base(`{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[],"recurrence":{"frequency":"Week","schedule":{"timeZone":"Mars Time","days":["Monday"],"hours":[1],"minutes":[0]}}}`), "Mars Time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// positive control: predictive explicitly disabled is accepted
	if _, err := Parse([]byte(fmt.Sprintf(`{"targetResourceUri":%q,"predictiveAutoscalePolicy":{"scaleMode":"Disabled"},"profiles":[{"name":"p","capacity":{"minimum":1,"maximum":2,"default":1},"rules":[%s]}]}`, setID, goodRule))); err != nil {
		t.Fatal(err)
	}
}

func TestDurations(t *testing.T) {
	for s, want := range map[string]time.Duration{"PT1M": time.Minute, "PT5M": 5 * time.Minute, "PT1H30M": 90 * time.Minute, "P1D": 24 * time.Hour, "P1W": 7 * 24 * time.Hour, "PT30S": 30 * time.Second, "P1DT12H": 36 * time.Hour} {
		got, err := ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
		if back, _ := ParseDuration(FormatDuration(got)); back != want {
			t.Errorf("%s round trip: %s", s, FormatDuration(got))
		}
	}
	for _, s := range []string{"", "P", "PT", "5M", "PT5X", "P5M"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseCondition(t *testing.T) {
	c, err := ParseCondition("Percentage CPU > 70 avg 5m")
	if err != nil || c != (Condition{"Percentage CPU", "GreaterThan", 70, "Average", 5 * time.Minute}) {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseCondition(`\Processor\PercentProcessorTime <= 25.5 max PT10M`)
	if err != nil || c.MetricName != `\Processor\PercentProcessorTime` || c.Operator != "LessThanOrEqual" || c.TimeWindow != 10*time.Minute || c.TimeAggregation != "Maximum" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, s := range []string{"Percentage CPU > 70", "Percentage CPU >> 70 avg 5m", "Percentage CPU > lots avg 5m", "Percentage CPU > 70 mean 5m", "Percentage CPU > 70 avg 5x"} {
		if _, err := ParseCondition(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	for _, tc := range []struct {
		in   string
		want ScaleAction
	}{
		{"out 2", ScaleAction{Direction: "Increase", Type: "ChangeCount", Value: 2}},
		{"in 1", ScaleAction{Direction: "Decrease", Type: "ChangeCount", Value: 1}},
		{"to 5", ScaleAction{Direction: "Increase", Type: "ExactCount", Value: 5}},
		{"in 50%", ScaleAction{Direction: "Decrease", Type: "PercentChangeCount", Value: 50}},
	} {
		if a, err := ParseScale(strings.Fields(tc.in)); err != nil || a != tc.want {
			t.Errorf("%s: %+v %v", tc.in, a, err)
		}
	}
	if _, err := ParseScale([]string{"up", "1"}); err == nil {
		t.Error("up accepted")
	}
}
