package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// CPUPoint is one point of a Percentage CPU chart: Unix seconds and the
// average over the grain.
type CPUPoint [2]float64

// cpuWindow answers the span and grain of the CPU charts for a sampling
// interval: about 120 points, whole seconds.
func cpuWindow(sample time.Duration) (span, grain time.Duration) {
	span = min(30*time.Minute, max(2*time.Minute, 120*sample))
	grain = max(time.Second, sample, span/120).Truncate(time.Second)
	return span, grain
}

type metricsAnswer struct {
	Value []struct {
		Timeseries []struct {
			MetadataValues []struct {
				Value string `json:"value"`
			} `json:"metadatavalues"`
			Data []struct {
				TimeStamp string   `json:"timeStamp"`
				Average   *float64 `json:"average"`
			} `json:"data"`
		} `json:"timeseries"`
	} `json:"value"`
}

// cpu reads a scale set's Percentage CPU through Azure Monitor's metrics
// API: the set's average per grain over the chart's span, and each
// instance's average over the latest three of its samples (at least 5 s) (by instance id).
// A daemon without a monitor answers nothing.
func (s *Server) cpu(ctx context.Context, setID string, now time.Time) ([]CPUPoint, map[string]float64) {
	span, grain := cpuWindow(s.cfg.SampleInterval)
	q := url.Values{"metricnames": {"Percentage CPU"}, "aggregation": {"Average"},
		"timespan": {now.Add(-span).UTC().Format(time.RFC3339) + "/" + now.UTC().Format(time.RFC3339)},
		"interval": {fmtSeconds(grain)}}
	var all metricsAnswer
	if err := armGet(ctx, s.cfg.ARM, setID+"/providers/Microsoft.Insights/metrics", q, &all); err != nil {
		return nil, nil
	}
	pts := points(all)
	// three intervals: the monitor backs off when sampling takes long
	recent := max(3*s.instanceInterval(), 5*time.Second)
	q = url.Values{"metricnames": {"Percentage CPU"}, "aggregation": {"Average"}, "interval": {"FULL"}, "$filter": {"VMName eq '*'"},
		"timespan": {now.Add(-recent).UTC().Format(time.RFC3339Nano) + "/" + now.UTC().Format(time.RFC3339Nano)}}
	var each metricsAnswer
	byInst := map[string]float64{}
	if err := armGet(ctx, s.cfg.ARM, setID+"/providers/Microsoft.Insights/metrics", q, &each); err == nil {
		for _, m := range each.Value {
			for _, ts := range m.Timeseries {
				if len(ts.MetadataValues) == 0 {
					continue
				}
				vm := ts.MetadataValues[0].Value
				for _, d := range ts.Data {
					if d.Average != nil {
						byInst[vm[strings.LastIndex(vm, "_")+1:]] = round1(*d.Average)
					}
				}
			}
		}
	}
	return pts, byInst
}

// instanceInterval is how often each instance is sampled.
func (s *Server) instanceInterval() time.Duration {
	if s.cfg.InstanceInterval != nil {
		return max(s.cfg.SampleInterval, s.cfg.InstanceInterval())
	}
	return s.cfg.SampleInterval
}

func fmtSeconds(d time.Duration) string { return fmt.Sprintf("PT%dS", int(d.Seconds())) }

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// Decision is the latest autoscale evaluation of a scale set: the profile,
// its capacity bounds, each rule's metric value against its threshold, and
// why the capacity changed or did not.
type Decision struct {
	Time     time.Time `json:"time"`
	Setting  string    `json:"setting"`
	Profile  string    `json:"profile"`
	Min      int       `json:"min"`
	Max      int       `json:"max"`
	Default  int       `json:"default"`
	Action   string    `json:"action"`
	Current  int       `json:"current"`
	New      int       `json:"new"`
	Reason   string    `json:"reason"`
	Rules    []Rule    `json:"rules"`
	Status   string    `json:"status"`
	Disabled bool      `json:"disabled,omitempty"`
}

// Rule is one autoscale rule's evaluation.
type Rule struct {
	Metric     string  `json:"metric"`
	Direction  string  `json:"direction"`
	Operator   string  `json:"operator"`
	Threshold  float64 `json:"threshold"`
	Value      float64 `json:"value"`
	HasData    bool    `json:"hasData"`
	Met        bool    `json:"met"`
	InCooldown bool    `json:"inCooldown"`
	Window     string  `json:"window"`
	Agg        string  `json:"aggregation"`
}

// activityEvent is the part of an activity log event (Azure's EventData)
// the dashboard reads; decision is the emulator's extension.
type activityEvent struct {
	EventDataID    string    `json:"eventDataId"`
	EventTimestamp time.Time `json:"eventTimestamp"`
	ResourceID     string    `json:"resourceId"`
	Level          string    `json:"level"`
	Description    string    `json:"description"`
	OperationName  struct {
		Value string `json:"value"`
	} `json:"operationName"`
	Status struct {
		Value string `json:"value"`
	} `json:"status"`
	Properties map[string]string `json:"properties"`
	Decision   *struct {
		Setting  string `json:"autoscaleSetting"`
		Target   string `json:"targetResourceUri"`
		Profile  string `json:"profile"`
		Capacity struct {
			Minimum int `json:"minimum"`
			Maximum int `json:"maximum"`
			Default int `json:"default"`
		} `json:"capacity"`
		Current int    `json:"oldInstancesCount"`
		New     int    `json:"newInstancesCount"`
		Action  string `json:"action"`
		Reason  string `json:"reason"`
		Rules   []struct {
			MetricName      string  `json:"metricName"`
			Direction       string  `json:"direction"`
			Operator        string  `json:"operator"`
			Threshold       float64 `json:"threshold"`
			TimeAggregation string  `json:"timeAggregation"`
			TimeWindow      string  `json:"timeWindow"`
			Value           float64 `json:"metricValue"`
			HasData         bool    `json:"hasData"`
			Met             bool    `json:"met"`
			InCooldown      bool    `json:"inCooldown"`
		} `json:"rules"`
	} `json:"decision"`
}

func (e activityEvent) decision() Decision {
	d := e.Decision
	out := Decision{Time: e.EventTimestamp, Setting: d.Setting, Profile: d.Profile, Min: d.Capacity.Minimum, Max: d.Capacity.Maximum,
		Default: d.Capacity.Default, Action: d.Action, Current: d.Current, New: d.New, Reason: d.Reason, Status: e.Status.Value, Rules: []Rule{}}
	for _, r := range d.Rules {
		out.Rules = append(out.Rules, Rule{Metric: r.MetricName, Direction: r.Direction, Operator: r.Operator, Threshold: r.Threshold,
			Value: round1(r.Value), HasData: r.HasData, Met: r.Met, InCooldown: r.InCooldown, Window: r.TimeWindow, Agg: r.TimeAggregation})
	}
	return out
}

// autoscaleEvents reads the activity log's autoscale events since the last
// read, oldest first. A daemon without a monitor answers nothing.
func (s *Server) autoscaleEvents(ctx context.Context) []activityEvent {
	q := url.Values{}
	if !s.asSince.IsZero() {
		q.Set("$filter", "eventTimestamp ge '"+s.asSince.UTC().Format(time.RFC3339Nano)+"'")
	}
	var out struct {
		Value []activityEvent `json:"value"`
	}
	if err := armGet(ctx, s.cfg.ARM, "/subscriptions/"+s.cfg.Subscription+"/providers/Microsoft.Insights/eventtypes/management/values", q, &out); err != nil {
		return nil
	}
	var fresh []activityEvent
	for _, e := range out.Value {
		if e.Decision == nil || s.asSeen[e.EventDataID] {
			continue
		}
		s.asSeen[e.EventDataID] = true
		fresh = append(fresh, e)
		if e.EventTimestamp.After(s.asSince) {
			s.asSince = e.EventTimestamp
		}
	}
	if len(s.asSeen) > 10000 { // only events at asSince can come again
		s.asSeen = map[string]bool{}
		for _, e := range fresh {
			s.asSeen[e.EventDataID] = true
		}
	}
	sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].EventTimestamp.Before(fresh[j].EventTimestamp) })
	return fresh
}

// autoscaleActivity turns autoscale evaluations into activity log entries:
// every scale action (with its reason, each rule's metric value against its
// threshold), and an evaluation that changed nothing (a cooldown skip, a
// bound reached, nothing fired) when its reason differs from the setting's
// previous one, so a quiet setting does not flood the log.
func (s *Server) autoscaleActivity(evs []activityEvent) []Activity {
	var out []Activity
	for _, e := range evs {
		d := e.Decision
		set := d.Target[strings.LastIndex(d.Target, "/")+1:]
		key := strings.ToLower(e.ResourceID)
		changed := d.New != d.Current
		reason := d.Reason
		if !changed && s.asReason[key] == reason {
			continue
		}
		s.asReason[key] = reason
		var text string
		switch {
		case changed && d.New > d.Current:
			text = fmt.Sprintf("autoscale out %d → %d: %s", d.Current, d.New, reason)
		case changed:
			text = fmt.Sprintf("autoscale in %d → %d: %s", d.Current, d.New, reason)
		default:
			text = "autoscale: no change: " + reason
		}
		var rules []string
		for i, r := range d.Rules {
			v := "no data"
			if r.HasData {
				v = fmt.Sprintf("%g %s %g", round1(r.Value), opSymbol(r.Operator), r.Threshold)
				if r.Met {
					v += " (fired"
					if r.InCooldown {
						v += ", in cooldown"
					}
					v += ")"
				}
			}
			dir := "out"
			if r.Direction == "Decrease" {
				dir = "in"
			}
			rules = append(rules, fmt.Sprintf("rule %d (%s) %s %s over %s: %s", i, dir, r.TimeAggregation, r.MetricName, r.TimeWindow, v))
		}
		if len(rules) > 0 {
			text += " [" + strings.Join(rules, "; ") + "]"
		}
		if e.Status.Value == "Failed" {
			text += " — " + e.Description
		}
		out = append(out, Activity{Time: e.EventTimestamp.UTC(), Kind: "autoscale", Subject: set, Text: text})
	}
	return out
}

func opSymbol(op string) string {
	switch strings.ToLower(op) {
	case "greaterthan":
		return ">"
	case "greaterthanorequal":
		return "≥"
	case "lessthan":
		return "<"
	case "lessthanorequal":
		return "≤"
	case "equals":
		return "="
	case "notequals":
		return "≠"
	}
	return op
}

// instanceCPU answers GET /api/cpu?scaleSet=ID&instance=N: one instance's
// Percentage CPU per grain over the chart's span, as [[unix, percent], …].
func (s *Server) instanceCPU(w http.ResponseWriter, r *http.Request) {
	set, inst := r.URL.Query().Get("scaleSet"), r.URL.Query().Get("instance")
	if !strings.Contains(strings.ToLower(set), "/providers/microsoft.compute/virtualmachinescalesets/") || strings.ContainsAny(set, "?#") || inst == "" || strings.ContainsAny(inst, "/?#'") {
		http.Error(w, "give scaleSet (a scale set's resource id) and instance (its id)", http.StatusBadRequest)
		return
	}
	now := time.Now()
	span, grain := cpuWindow(s.cfg.SampleInterval)
	q := url.Values{"metricnames": {"Percentage CPU"}, "aggregation": {"Average"}, "interval": {fmtSeconds(grain)},
		"$filter":  {"VMName eq '" + set[strings.LastIndex(set, "/")+1:] + "_" + inst + "'"},
		"timespan": {now.Add(-span).UTC().Format(time.RFC3339) + "/" + now.UTC().Format(time.RFC3339)}}
	var ans metricsAnswer
	pts := []CPUPoint{}
	if err := armGet(r.Context(), s.cfg.ARM, set+"/providers/Microsoft.Insights/metrics", q, &ans); err == nil {
		pts = points(ans)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(pts)
}

// points are the averages of a metrics answer, grains without data left out.
func points(a metricsAnswer) []CPUPoint {
	pts := []CPUPoint{}
	for _, m := range a.Value {
		for _, ts := range m.Timeseries {
			for _, d := range ts.Data {
				t, err := time.Parse(time.RFC3339, d.TimeStamp)
				if err != nil || d.Average == nil {
					continue
				}
				pts = append(pts, CPUPoint{float64(t.Unix()), round1(*d.Average)})
			}
		}
	}
	return pts
}
