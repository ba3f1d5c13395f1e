package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/autoscale"
)

// monitorCmd is az monitor: autoscale settings, metrics, the activity log.
func monitorCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "monitor", Short: "Autoscale settings, metrics and the activity log (az monitor)"}
	c.AddCommand(autoscaleCmd(g), metricsCmd(g), activityLogCmd(g))
	return c
}

// resourceID answers --resource as an id: an id as given, or a scale set name
// in the current group.
func (g *globals) resourceID(res string) string {
	if strings.HasPrefix(res, "/") {
		return res
	}
	return g.rid(arm.TypeScaleSet, res)
}

func autoscaleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "autoscale", Short: "Autoscale settings (az monitor autoscale)"}
	settingPath := func(cmd *cobra.Command) string { return g.rid(arm.TypeAutoscale, nameFlag(cmd)) }

	var resource string
	var minCount, maxCount, count int
	var disabled bool
	create := &cobra.Command{Use: "create", Short: "Create an autoscale setting for a scale set", Args: cobra.NoArgs,
		Example: `  sudo vmss monitor autoscale create -g demo --resource web -n web-autoscale --min-count 2 --max-count 5 --count 2`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 0 {
				count = minCount
			}
			name := nameFlag(cmd)
			if name == "" {
				name = strings.TrimPrefix(resource[strings.LastIndex(resource, "/")+1:], "/")
			}
			body := map[string]any{"properties": map[string]any{
				"name": name, "enabled": !disabled, "targetResourceUri": g.resourceID(resource),
				"profiles": []any{map[string]any{"name": "default", "rules": []any{},
					"capacity": map[string]any{"minimum": fmt.Sprint(minCount), "maximum": fmt.Sprint(maxCount), "default": fmt.Sprint(count)}}},
			}}
			var out map[string]any
			if _, err := g.client().Do(ctxOf(cmd), http.MethodPut, g.rid(arm.TypeAutoscale, name), body, &out); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	create.Flags().StringVar(&resource, "resource", "", "the scale set: a name in --resource-group, or an id (required)")
	create.Flags().IntVar(&minCount, "min-count", 1, "minimum instance count")
	create.Flags().IntVar(&maxCount, "max-count", 1, "maximum instance count")
	create.Flags().IntVar(&count, "count", -1, "default instance count (default: --min-count)")
	create.Flags().BoolVar(&disabled, "disabled", false, "create the setting disabled")
	create.Flags().StringP("name", "n", "", "setting name (default: the scale set's name)")
	_ = create.MarkFlagRequired("resource")

	show := &cobra.Command{Use: "show", Short: "Show an autoscale setting", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), settingPath(cmd))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, nil)
		}}
	show.Flags().StringP("name", "n", "", "setting name (required)")
	_ = show.MarkFlagRequired("name")

	var all bool
	var offset time.Duration
	history := &cobra.Command{Use: "history", Short: "Each evaluation of an autoscale setting: metric values, the deciding rule, the new capacity", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id := settingPath(cmd)
			// the canonical id, as events carry it
			if v, err := g.get(ctxOf(cmd), id); err == nil {
				id = str(v["id"])
			} else {
				return err
			}
			evs, err := g.activity(cmd, id, offset)
			if err != nil {
				return err
			}
			var rows []any
			for _, e := range evs {
				m, _ := e.(map[string]any)
				op := str(dig(m, "operationName.value"))
				if !all && strings.HasSuffix(op, "/Evaluate/Action") {
					continue
				}
				rows = append(rows, map[string]any{
					"time": dig(m, "eventTimestamp"), "operation": dig(m, "operationName.localizedValue"), "status": dig(m, "status.value"),
					"profile": dig(m, "properties.ActiveAutoscaleProfile"), "oldCount": dig(m, "properties.OldInstancesCount"),
					"newCount": dig(m, "properties.NewInstancesCount"), "metrics": ruleValues(dig(m, "decision.rules")), "reason": dig(m, "decision.reason"),
				})
			}
			if rows == nil {
				rows = []any{}
			}
			return g.print(os.Stdout, rows, []column{col("Time", "time"), col("Operation", "operation"), col("Status", "status"),
				col("Old", "oldCount"), col("New", "newCount"), col("Metrics", "metrics"), col("Reason", "reason")})
		}}
	history.Flags().StringP("name", "n", "", "setting name (required)")
	history.Flags().BoolVar(&all, "all", false, "every evaluation, not only scale actions")
	history.Flags().DurationVar(&offset, "offset", 0, "only events of the last duration (e.g. 10m)")
	_ = history.MarkFlagRequired("name")

	c.AddCommand(create, show, history, autoscaleRuleCmd(g))
	return c
}

// ruleValues summarises a decision's rules: "Percentage CPU=72.1>60✓".
func ruleValues(v any) string {
	rules, _ := v.([]any)
	var parts []string
	for _, r := range rules {
		m, _ := r.(map[string]any)
		if m["hasData"] != true {
			parts = append(parts, fmt.Sprintf("%s=n/a", str(m["metricName"])))
			continue
		}
		met := ""
		if m["met"] == true {
			met = " (met)"
		}
		val, _ := m["metricValue"].(float64)
		parts = append(parts, fmt.Sprintf("%s=%.1f %s %s%s", str(m["metricName"]), val, str(m["operator"]), str(m["threshold"]), met))
	}
	return strings.Join(parts, "; ")
}

func autoscaleRuleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "rule", Short: "Rules of an autoscale setting (az monitor autoscale rule)"}
	var setting, condition, resource, profile, grain string
	var scale []string
	var cooldown int
	create := &cobra.Command{Use: "create", Short: "Add a rule to an autoscale setting's profile",
		// --scale takes two words, as in az: the second arrives as an argument
		Args: cobra.MaximumNArgs(1),
		Example: `  sudo vmss monitor autoscale rule create -g demo --autoscale-name web-autoscale --condition "Percentage CPU > 70 avg 5m" --scale out 1
  sudo vmss monitor autoscale rule create -g demo --autoscale-name web-autoscale --condition "Percentage CPU < 30 avg 5m" --scale in 1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cond, err := autoscale.ParseCondition(condition)
			if err != nil {
				return err
			}
			act, err := autoscale.ParseScale(append(scale, args...))
			if err != nil {
				return err
			}
			g0, err := autoscale.ParsePeriod(strings.TrimSpace(strings.TrimPrefix(grain, "avg")))
			if err != nil {
				return fmt.Errorf("--timegrain %q: %w", grain, err)
			}
			path := g.rid(arm.TypeAutoscale, setting)
			cur, err := g.get(ctxOf(cmd), path)
			if err != nil {
				return err
			}
			props, _ := cur["properties"].(map[string]any)
			profiles, _ := props["profiles"].([]any)
			idx := -1
			for i, p := range profiles {
				pm, _ := p.(map[string]any)
				if (profile == "" && i == 0) || strings.EqualFold(str(pm["name"]), profile) {
					idx = i
					break
				}
			}
			if idx < 0 {
				return fmt.Errorf("autoscale setting %s has no profile %q", setting, profile)
			}
			target := str(props["targetResourceUri"])
			if resource != "" {
				target = g.resourceID(resource)
			}
			rule := map[string]any{
				"metricTrigger": map[string]any{"metricName": cond.MetricName, "metricNamespace": "", "metricResourceUri": target,
					"timeGrain": autoscale.FormatDuration(g0), "statistic": "Average", "timeWindow": autoscale.FormatDuration(cond.TimeWindow),
					"timeAggregation": cond.TimeAggregation, "operator": cond.Operator, "threshold": cond.Threshold},
				"scaleAction": map[string]any{"direction": act.Direction, "type": act.Type, "value": fmt.Sprint(act.Value),
					"cooldown": autoscale.FormatDuration(time.Duration(cooldown) * time.Minute)},
			}
			pm := profiles[idx].(map[string]any)
			rules, _ := pm["rules"].([]any)
			pm["rules"] = append(rules, rule)
			delete(props, "provisioningState")
			var out map[string]any
			if _, err := g.client().Do(ctxOf(cmd), http.MethodPut, path, map[string]any{"location": cur["location"], "tags": cur["tags"], "properties": props}, &out); err != nil {
				return err
			}
			return g.print(os.Stdout, rule, nil)
		}}
	f := create.Flags()
	f.StringVar(&setting, "autoscale-name", "", "the autoscale setting (required)")
	f.StringVar(&condition, "condition", "", `METRIC OPERATOR THRESHOLD AGGREGATION PERIOD, e.g. "Percentage CPU > 70 avg 5m" (required)`)
	f.StringSliceVar(&scale, "scale", nil, "out N, in N, to N, out/in N% (required)")
	f.IntVar(&cooldown, "cooldown", 5, "minutes to wait after a scale action before scaling again")
	f.StringVar(&grain, "timegrain", "avg 1m", "time grain of the metric")
	f.StringVar(&profile, "profile-name", "", "the profile (default: the first)")
	f.StringVar(&resource, "resource", "", "the resource whose metric is read (default: the setting's target)")
	_ = create.MarkFlagRequired("autoscale-name")
	_ = create.MarkFlagRequired("condition")
	_ = create.MarkFlagRequired("scale")
	c.AddCommand(create)
	return c
}

func metricsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "metrics", Short: "Metrics of scale sets (az monitor metrics)"}
	var resource, interval, aggregation, start, end, filter string
	var names []string
	var offset time.Duration
	list := &cobra.Command{Use: "list", Short: "List a scale set's metric values", Args: cobra.NoArgs,
		Example: `  sudo vmss monitor metrics list -g demo --resource web --metric "Percentage CPU" --interval PT1M`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"metricnames": {strings.Join(names, ",")}, "interval": {interval}}
			if aggregation != "" {
				q.Set("aggregation", aggregation)
			}
			if filter != "" {
				q.Set("$filter", filter)
			}
			now := time.Now().UTC()
			switch {
			case start != "" || end != "":
				if end == "" {
					end = now.Format(time.RFC3339)
				}
				if start == "" {
					t, err := time.Parse(time.RFC3339, end)
					if err != nil {
						return fmt.Errorf("--end-time %q: %w", end, err)
					}
					start = t.Add(-offset).Format(time.RFC3339)
				}
				q.Set("timespan", start+"/"+end)
			default:
				q.Set("timespan", now.Add(-offset).Format(time.RFC3339)+"/"+now.Format(time.RFC3339))
			}
			var out map[string]any
			if _, err := g.client().Do(ctxOf(cmd), http.MethodGet, g.resourceID(resource)+"/providers/Microsoft.Insights/metrics?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if g.output == "table" || g.output == "tsv" {
				return g.print(os.Stdout, metricRows(out), []column{col("Timestamp", "timeStamp"), col("Name", "name"), col("VMName", "vmName"),
					col("Average", "average"), col("Minimum", "minimum"), col("Maximum", "maximum"), col("Total", "total"), col("Count", "count")})
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := list.Flags()
	f.StringVar(&resource, "resource", "", "the scale set: a name in --resource-group, or an id (required)")
	f.StringSliceVar(&names, "metric", []string{"Percentage CPU"}, "metric names")
	f.StringVar(&interval, "interval", "PT1M", "time grain (ISO 8601, or FULL)")
	f.StringVar(&aggregation, "aggregation", "", "Average, Minimum, Maximum, Total, Count (default: each metric's primary)")
	f.StringVar(&start, "start-time", "", "start (RFC 3339)")
	f.StringVar(&end, "end-time", "", "end (RFC 3339; default now)")
	f.DurationVar(&offset, "offset", time.Hour, "length of the time range when no --start-time is given")
	f.StringVar(&filter, "filter", "", `dimension filter: "VMName eq '*'" (a series per instance) or "VMName eq 'web_0'"`)
	_ = list.MarkFlagRequired("resource")
	def := &cobra.Command{Use: "list-definitions", Short: "List the metrics a scale set has", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), g.resourceID(resource)+"/providers/Microsoft.Insights/metricDefinitions")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, []column{col("Name", "name.value"), col("Unit", "unit"), col("Primary", "primaryAggregationType")})
		}}
	def.Flags().StringVar(&resource, "resource", "", "the scale set: a name in --resource-group, or an id (required)")
	_ = def.MarkFlagRequired("resource")
	c.AddCommand(list, def)
	return c
}

// metricRows flattens a metrics answer into one row per metric and grain.
func metricRows(out map[string]any) []any {
	rows := []any{}
	vals, _ := out["value"].([]any)
	for _, v := range vals {
		m, _ := v.(map[string]any)
		name := str(dig(m, "name.value"))
		ts, _ := m["timeseries"].([]any)
		for _, s := range ts {
			vm := ""
			if md, _ := dig(s, "metadatavalues").([]any); len(md) > 0 {
				vm = str(dig(md[0], "value"))
			}
			data, _ := dig(s, "data").([]any)
			for _, d := range data {
				dm, _ := d.(map[string]any)
				row := map[string]any{"name": name, "vmName": vm}
				for k, x := range dm {
					row[k] = x
				}
				rows = append(rows, row)
			}
		}
	}
	return rows
}

// activity lists activity log events of resourceID (all when empty) of the
// last offset (all when zero).
func (g *globals) activity(cmd *cobra.Command, resourceID string, offset time.Duration) ([]any, error) {
	var terms []string
	if offset > 0 {
		terms = append(terms, fmt.Sprintf("eventTimestamp ge '%s'", time.Now().UTC().Add(-offset).Format(time.RFC3339)))
	}
	if resourceID != "" {
		terms = append(terms, fmt.Sprintf("resourceUri eq '%s'", resourceID))
	}
	path := "/subscriptions/" + g.client().Subscription + "/providers/Microsoft.Insights/eventtypes/management/values"
	if len(terms) > 0 {
		path += "?" + url.Values{"$filter": {strings.Join(terms, " and ")}}.Encode()
	}
	return g.list(ctxOf(cmd), path)
}

func activityLogCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "activity-log", Short: "The activity log (az monitor activity-log)"}
	var resourceID string
	var offset time.Duration
	list := &cobra.Command{Use: "list", Short: "List activity log events (autoscale actions)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.activity(cmd, resourceID, offset)
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, []column{col("Time", "eventTimestamp"), col("Operation", "operationName.localizedValue"),
				col("Status", "status.value"), col("Description", "description")})
		}}
	list.Flags().StringVar(&resourceID, "resource-id", "", "only events of this resource")
	list.Flags().DurationVar(&offset, "offset", 6*time.Hour, "only events of the last duration")
	c.AddCommand(list)
	return c
}
