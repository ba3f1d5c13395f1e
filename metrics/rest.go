package metrics

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/autoscale"
)

// Request is a parsed GET {resourceId}/providers/Microsoft.Insights/metrics.
type Request struct {
	ResourceID   string
	Names        []string
	Start, End   time.Time
	Interval     time.Duration
	Aggregations []string // canonical names; empty means each metric's primary
	// VMNames filters by the VMName dimension ("web_0"); SplitByVM answers
	// one series per instance ($filter VMName eq '*').
	VMNames   []string
	SplitByVM bool
}

var vmNameTerm = regexp.MustCompile(`(?i)\bvmname\s+eq\s+'([^']*)'`)

// InstanceOf answers the instance id of a scale-set VM name ("web_3" → "3");
// a bare id is answered as it is.
func InstanceOf(vmName string) string {
	return vmName[strings.LastIndex(vmName, "_")+1:]
}

// ParseRequest reads the query of a metrics request: metricnames (comma
// separated; default Percentage CPU), timespan ("start/end", "start/PT1H" or
// "PT1H" ending now; default the last hour), interval (an ISO 8601 duration;
// default PT1M; FULL for the whole timespan) and aggregation (comma
// separated). Every problem is reported at once.
func ParseRequest(resourceID string, q url.Values, now time.Time) (Request, error) {
	r := Request{ResourceID: resourceID, End: now, Start: now.Add(-time.Hour), Interval: time.Minute}
	var errs []error
	names := q.Get("metricnames")
	if names == "" {
		names = PercentageCPU
	}
	for _, n := range strings.Split(names, ",") {
		d, err := Lookup(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.Names = append(r.Names, d.Name)
	}
	if ts := q.Get("timespan"); ts != "" {
		start, end, err := parseTimespan(ts, now)
		if err != nil {
			errs = append(errs, err)
		} else {
			r.Start, r.End = start, end
		}
	}
	if iv := q.Get("interval"); iv != "" {
		if strings.EqualFold(iv, "FULL") {
			r.Interval = 0
		} else if d, err := autoscale.ParseDuration(iv); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("interval %q is not an ISO 8601 duration such as PT1M, PT5M, PT1H or FULL", iv))
		} else {
			r.Interval = d
		}
	}
	if r.Interval == 0 {
		r.Interval = r.End.Sub(r.Start)
	}
	if f := q.Get("$filter"); f != "" {
		ms := vmNameTerm.FindAllStringSubmatch(f, -1)
		if len(ms) == 0 {
			errs = append(errs, fmt.Errorf("$filter %q: the dimension is VMName (VMName eq 'web_0' or VMName eq '*')", f))
		}
		for _, m := range ms {
			if m[1] == "*" {
				r.SplitByVM = true
			} else {
				r.VMNames = append(r.VMNames, m[1])
			}
		}
	}
	if a := q.Get("aggregation"); a != "" {
		for _, x := range strings.Split(a, ",") {
			c, ok := canonicalAggregation(x)
			if !ok {
				errs = append(errs, fmt.Errorf("aggregation %q is not one of %s", x, strings.Join(Aggregations, ", ")))
				continue
			}
			r.Aggregations = append(r.Aggregations, c)
		}
	}
	if !r.End.After(r.Start) {
		errs = append(errs, fmt.Errorf("timespan: the end %s is not after the start %s", r.End.Format(time.RFC3339), r.Start.Format(time.RFC3339)))
	} else if r.Interval > 0 && r.End.Sub(r.Start)/r.Interval > 10000 {
		errs = append(errs, fmt.Errorf("interval %s over timespan %s gives more than 10000 points; use a longer interval", autoscale.FormatDuration(r.Interval), r.End.Sub(r.Start)))
	}
	if err := errors.Join(errs...); err != nil {
		return Request{}, err
	}
	return r, nil
}

func parseTimespan(ts string, now time.Time) (time.Time, time.Time, error) {
	bad := fmt.Errorf("timespan %q is not start/end (2026-01-02T10:00:00Z/2026-01-02T11:00:00Z), start/duration or a duration (PT1H)", ts)
	if strings.Contains(ts, "%") { // az sends the timespan encoded twice
		if u, err := url.QueryUnescape(ts); err == nil {
			ts = u
		}
	}
	parts := strings.Split(ts, "/")
	switch len(parts) {
	case 1:
		d, err := autoscale.ParseDuration(parts[0])
		if err != nil {
			return time.Time{}, time.Time{}, bad
		}
		return now.Add(-d), now, nil
	case 2:
		start, err := parseInstant(parts[0])
		if err != nil {
			return time.Time{}, time.Time{}, bad
		}
		if end, err := parseInstant(parts[1]); err == nil {
			return start, end, nil
		}
		d, err := autoscale.ParseDuration(parts[1])
		if err != nil {
			return time.Time{}, time.Time{}, bad
		}
		return start, start.Add(d), nil
	}
	return time.Time{}, time.Time{}, bad
}

// parseInstant reads an ISO 8601 time; without a zone it is UTC (az sends
// such times).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var err error
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		var t time.Time
		if t, err = time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// Response is Azure Monitor's answer to a metrics request.
type Response struct {
	Cost           int      `json:"cost"`
	Timespan       string   `json:"timespan"`
	Interval       string   `json:"interval"`
	Namespace      string   `json:"namespace"`
	ResourceRegion string   `json:"resourceregion"`
	Value          []Metric `json:"value"`
}

// Metric is one metric's series in a Response.
type Metric struct {
	ID                 string          `json:"id"`
	Type               string          `json:"type"`
	Name               LocalizableName `json:"name"`
	DisplayDescription string          `json:"displayDescription"`
	Unit               string          `json:"unit"`
	Timeseries         []TimeSeries    `json:"timeseries"`
	ErrorCode          string          `json:"errorCode"`
}

// LocalizableName is Azure's {value, localizedValue}.
type LocalizableName struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

// TimeSeries is one series of a metric.
type TimeSeries struct {
	MetadataValues []any       `json:"metadatavalues"`
	Data           []DataPoint `json:"data"`
}

// DataPoint is one time grain; only the requested aggregations are set.
type DataPoint struct {
	TimeStamp string   `json:"timeStamp"`
	Average   *float64 `json:"average,omitempty"`
	Minimum   *float64 `json:"minimum,omitempty"`
	Maximum   *float64 `json:"maximum,omitempty"`
	Total     *float64 `json:"total,omitempty"`
	Count     *float64 `json:"count,omitempty"`
}

// Response answers r from the store. region is the resource's location.
func (s *Store) Response(r Request, region string) (Response, error) {
	out := Response{
		Timespan:       r.Start.UTC().Format(time.RFC3339) + "/" + r.End.UTC().Format(time.RFC3339),
		Interval:       autoscale.FormatDuration(r.Interval),
		Namespace:      Namespace,
		ResourceRegion: region,
		Value:          []Metric{},
	}
	for _, name := range r.Names {
		def, err := Lookup(name)
		if err != nil {
			return Response{}, err
		}
		aggs := r.Aggregations
		if len(aggs) == 0 {
			aggs = []string{def.Primary}
		}
		metric := Metric{
			ID:                 strings.TrimRight(r.ResourceID, "/") + "/providers/Microsoft.Insights/metrics/" + def.Name,
			Type:               "Microsoft.Insights/metrics",
			Name:               LocalizableName{def.Name, def.DisplayName},
			DisplayDescription: def.Description,
			Unit:               def.Unit,
			Timeseries:         []TimeSeries{},
			ErrorCode:          "Success",
		}
		var only []string
		for _, n := range r.VMNames {
			only = append(only, InstanceOf(n))
		}
		if !r.SplitByVM {
			data, err := s.data(r, def.Name, aggs, only)
			if err != nil {
				return Response{}, err
			}
			metric.Timeseries = append(metric.Timeseries, TimeSeries{MetadataValues: []any{}, Data: data})
		} else {
			set := r.ResourceID[strings.LastIndex(strings.TrimRight(r.ResourceID, "/"), "/")+1:]
			for _, id := range s.Instances(r.ResourceID) {
				if len(only) > 0 && !slices.Contains(only, id) {
					continue
				}
				data, err := s.data(r, def.Name, aggs, []string{id})
				if err != nil {
					return Response{}, err
				}
				metric.Timeseries = append(metric.Timeseries, TimeSeries{
					MetadataValues: []any{map[string]any{"name": LocalizableName{"vmname", "vmname"}, "value": set + "_" + id}},
					Data:           data})
			}
		}
		out.Value = append(out.Value, metric)
	}
	return out, nil
}

// data answers one series' points with the aggregations asked for.
func (s *Store) data(r Request, name string, aggs, instances []string) ([]DataPoint, error) {
	var data []DataPoint
	for _, agg := range aggs {
		pts, err := s.Series(r.ResourceID, name, r.Interval, agg, r.Start, r.End, instances...)
		if err != nil {
			return nil, err
		}
		if data == nil {
			data = make([]DataPoint, len(pts))
			for i, p := range pts {
				data[i].TimeStamp = p.Time.UTC().Format(time.RFC3339)
			}
		}
		for i, p := range pts {
			if p.Count == 0 && agg != "Count" {
				continue // Azure leaves a grain without data empty
			}
			v := p.Value
			switch agg {
			case "Average":
				data[i].Average = &v
			case "Minimum":
				data[i].Minimum = &v
			case "Maximum":
				data[i].Maximum = &v
			case "Total":
				data[i].Total = &v
			case "Count":
				data[i].Count = &v
			}
		}
	}
	if data == nil {
		data = []DataPoint{}
	}
	return data, nil
}

// DefinitionsResponse is Azure Monitor's answer to a metricDefinitions
// request.
type DefinitionsResponse struct {
	Value []MetricDefinition `json:"value"`
}

// MetricDefinition is one entry of a DefinitionsResponse.
type MetricDefinition struct {
	ID                        string               `json:"id"`
	ResourceID                string               `json:"resourceId"`
	Namespace                 string               `json:"namespace"`
	Name                      LocalizableName      `json:"name"`
	DisplayDescription        string               `json:"displayDescription"`
	IsDimensionRequired       bool                 `json:"isDimensionRequired"`
	Unit                      string               `json:"unit"`
	PrimaryAggregationType    string               `json:"primaryAggregationType"`
	SupportedAggregationTypes []string             `json:"supportedAggregationTypes"`
	MetricAvailabilities      []MetricAvailability `json:"metricAvailabilities"`
	Dimensions                []LocalizableName    `json:"dimensions"`
}

// MetricAvailability is a time grain and how long it is kept.
type MetricAvailability struct {
	TimeGrain string `json:"timeGrain"`
	Retention string `json:"retention"`
}

var grains = []string{"PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D"}

// DefinitionsFor answers the metric definitions of resourceID. retention is how
// long samples are kept (the Store's capacity times the sampling interval).
func DefinitionsFor(resourceID string, retention time.Duration) DefinitionsResponse {
	rid := strings.TrimRight(resourceID, "/")
	out := DefinitionsResponse{Value: []MetricDefinition{}}
	for _, d := range Definitions() {
		md := MetricDefinition{
			ID:                        rid + "/providers/microsoft.insights/metricdefinitions/" + d.Name,
			ResourceID:                rid,
			Namespace:                 Namespace,
			Name:                      LocalizableName{d.Name, d.DisplayName},
			DisplayDescription:        d.Description,
			Unit:                      d.Unit,
			PrimaryAggregationType:    d.Primary,
			SupportedAggregationTypes: append([]string{"None"}, Aggregations...),
			Dimensions:                []LocalizableName{{"VMName", "VMName"}},
		}
		for _, g := range grains {
			md.MetricAvailabilities = append(md.MetricAvailabilities, MetricAvailability{TimeGrain: g, Retention: autoscale.FormatDuration(retention)})
		}
		out.Value = append(out.Value, md)
	}
	return out
}
