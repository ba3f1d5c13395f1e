package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/autoscale"
	"github.com/vmss-emulator/vmss/metrics"
	"github.com/vmss-emulator/vmss/model"
)

// fakeSampler makes every instance busy at a fraction of one vCPU.
type fakeSampler struct {
	now  func() time.Time
	busy float64
	cpu  map[string]time.Duration
	last time.Time
}

func (f *fakeSampler) Sample(_ context.Context, ins []Instance) (map[string]metrics.Counters, error) {
	now := f.now()
	dt := now.Sub(f.last)
	f.last = now
	out := map[string]metrics.Counters{}
	for _, in := range ins {
		f.cpu[in.Name] += time.Duration(float64(dt) * f.busy)
		out[in.Name] = metrics.Counters{CPU: f.cpu[in.Name], HasCPU: true, MemTotal: 1 << 30, MemAvailable: 1 << 29}
	}
	return out, nil
}

const autoscaleBody = `{"location":"westus","properties":{"name":"as","enabled":%v,"targetResourceUri":%q,"profiles":[{"name":"Profile1",
 "capacity":{"minimum":"1","maximum":"3","default":"1"},"rules":[
 {"metricTrigger":{"metricName":"\\Processor\\PercentProcessorTime","metricNamespace":"","metricResourceUri":%q,"timeGrain":"PT1M","statistic":"Average","timeWindow":"PT5M","timeAggregation":"Average","operator":"GreaterThan","threshold":60.0},
  "scaleAction":{"direction":"Increase","type":"ChangeCount","value":"1","cooldown":"PT1M"}},
 {"metricTrigger":{"metricName":"\\Processor\\PercentProcessorTime","metricNamespace":"","metricResourceUri":%q,"timeGrain":"PT1M","statistic":"Average","timeWindow":"PT5M","timeAggregation":"Average","operator":"LessThan","threshold":30.0},
  "scaleAction":{"direction":"Decrease","type":"ChangeCount","value":"1","cooldown":"PT5M"}}]}]}}`

type fixture struct {
	store   *model.Store
	set     arm.ID
	setting arm.ID
	clock   time.Time
	sampler *fakeSampler
	mon     *Monitor
}

// wantCPUAverage checks the scale set's Percentage CPU over the last 3 s
// against want (±0.1), as the metrics API answers it.
func (f *fixture) wantCPUAverage(t *testing.T, want float64) {
	t.Helper()
	resp, err := f.mon.Metrics(f.set.String(), "westus", map[string][]string{"metricnames": {"Percentage CPU"}, "timespan": {"PT3S"}, "interval": {"FULL"}})
	if err != nil {
		t.Fatal(err)
	}
	avg := resp.Value[0].Timeseries[0].Data[0].Average
	if avg == nil || *avg < want-0.1 || *avg > want+0.1 {
		t.Fatalf("average %v, want %v", avg, want)
	}
}

func newFixture(t *testing.T, enabled bool) *fixture {
	t.Helper()
	cfg := model.DefaultConfig()
	st, err := model.Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sub := cfg.Subscription
	f := &fixture{store: st, clock: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	f.set = arm.MustID(sub, "rg", arm.TypeScaleSet, "web")
	f.setting = arm.MustID(sub, "rg", arm.TypeAutoscale, "as")
	vnet := arm.MustID(sub, "rg", arm.TypeVirtualNetwork, "vnet")
	setBody, _ := json.Marshal(map[string]any{"sku": map[string]any{"name": "Standard_A1", "capacity": 1}, "properties": map[string]any{
		"overprovision": false, "upgradePolicy": map[string]any{"mode": "Manual"},
		"virtualMachineProfile": map[string]any{
			"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
				"name": "nic", "properties": map[string]any{"primary": true, "ipConfigurations": []any{map[string]any{
					"name": "ipc", "properties": map[string]any{"subnet": map[string]any{"id": vnet.String() + "/subnets/sn"}}}}}}}}}}})
	err = st.Update(func(s *model.State) error {
		if _, _, e := s.PutVNet(vnet, []byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`)); e != nil {
			return e
		}
		if _, _, e := s.PutScaleSet(f.set, setBody, false); e != nil {
			return e
		}
		if _, _, e := s.PutGeneric(f.setting, []byte(fmt.Sprintf(autoscaleBody, enabled, f.set, f.set, f.set))); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return f.clock }
	f.sampler = &fakeSampler{now: now, cpu: map[string]time.Duration{}, last: f.clock}
	f.mon = New(Options{Store: st, Sampler: f.sampler, TimeScale: 0.01, Now: now})
	return f
}

func (f *fixture) capacity() int {
	n := 0
	f.store.View(func(s *model.State) { n = s.ScaleSets[f.set.Key()].Capacity() })
	return n
}

// run advances the clock by d in sampling steps, evaluating on the
// evaluation interval, and answers the lowest and highest capacity seen.
func (f *fixture) run(t *testing.T, d time.Duration) (lo, hi int) {
	t.Helper()
	lo, hi = 1<<30, 0
	step := f.mon.o.SampleInterval
	nextEval := f.clock.Add(f.mon.o.EvalInterval)
	for end := f.clock.Add(d); f.clock.Before(end); f.clock = f.clock.Add(step) {
		if err := f.mon.SampleOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !f.clock.Before(nextEval) {
			if err := f.mon.EvaluateOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			nextEval = nextEval.Add(f.mon.o.EvalInterval)
		}
		c := f.capacity()
		lo, hi = min(lo, c), max(hi, c)
	}
	return lo, hi
}

// The reference template's setting, compressed 100×: busy instances scale
// the set out to the maximum and no further; idle ones scale it in to the
// minimum and no further; each scale action is in the activity log with the
// metric value that decided it.
func TestAutoscaleOutAndIn(t *testing.T) {
	f := newFixture(t, true)
	f.sampler.busy = 0.9
	if lo, hi := f.run(t, 30*time.Second); hi != 3 || f.capacity() != 3 || lo < 1 {
		t.Fatalf("busy: capacity %d (range %d..%d), want 3", f.capacity(), lo, hi)
	}
	if _, hi := f.run(t, 10*time.Second); hi > 3 {
		t.Fatalf("crossed the maximum: %d", hi)
	}
	ups := f.mon.Activity(Filter{ResourceID: f.setting.String(), ScaleOnly: true})
	if len(ups) != 2 || ups[0].OperationName.Value != OpScaleUp || ups[0].Properties["NewInstancesCount"] != "3" {
		t.Fatalf("scale-up events %+v", ups)
	}
	if v := ups[0].Decision.Rules[0].Value; v <= 60 {
		t.Fatalf("deciding metric value %v, want > 60", v)
	}
	f.sampler.busy = 0.05
	lo, _ := f.run(t, 60*time.Second)
	if f.capacity() != 1 || lo != 1 {
		t.Fatalf("idle: capacity %d (lowest %d), want 1", f.capacity(), lo)
	}
	downs := 0
	for _, e := range f.mon.Activity(Filter{ResourceID: f.set.String(), ScaleOnly: true}) {
		if e.OperationName.Value == OpScaleDown {
			downs++
		}
	}
	if downs != 2 {
		t.Fatalf("%d scale-down events, want 2", downs)
	}
	// every evaluation is recorded too
	if all := f.mon.Activity(Filter{ResourceID: f.setting.String()}); len(all) <= 4 {
		t.Fatalf("only %d events", len(all))
	}
}

// Scale-in cooldown (PT5M × 0.01 = 3 s) spaces the two scale-ins.
func TestAutoscaleCooldownSpacesActions(t *testing.T) {
	f := newFixture(t, true)
	f.sampler.busy = 0.9
	f.run(t, 30*time.Second)
	f.sampler.busy = 0
	f.run(t, 60*time.Second)
	var downs []time.Time
	for _, e := range f.mon.Activity(Filter{ScaleOnly: true}) {
		if e.OperationName.Value == OpScaleDown {
			downs = append(downs, e.EventTimestamp)
		}
	}
	if len(downs) != 2 || downs[0].Sub(downs[1]) < 3*time.Second {
		t.Fatalf("scale-downs at %v, want two at least 3 s apart", downs)
	}
}

// A disabled setting changes nothing (positive control: the enabled one
// above scales with the same load).
func TestAutoscaleDisabled(t *testing.T) {
	f := newFixture(t, false)
	f.sampler.busy = 0.9
	if _, hi := f.run(t, 20*time.Second); hi != 1 {
		t.Fatalf("disabled setting scaled to %d", hi)
	}
}

// A manual scale outside the profile's range is brought back at the next
// evaluation, as Azure does while autoscale is enabled.
func TestManualScaleOverridden(t *testing.T) {
	f := newFixture(t, true)
	f.sampler.busy = 0.5 // between the thresholds: no rule fires
	f.run(t, 5*time.Second)
	if err := f.store.Update(func(s *model.State) error {
		if _, e := s.Scale(f.set, 6); e != nil {
			return e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.run(t, 2*time.Second)
	if f.capacity() != 3 {
		t.Fatalf("capacity %d after a manual scale to 6, want the maximum 3", f.capacity())
	}
	ev := f.mon.Activity(Filter{ScaleOnly: true})
	if len(ev) == 0 || !strings.Contains(ev[0].Description, "above the profile's maximum") {
		t.Fatalf("events %+v", ev)
	}
}

func TestMetricsAnswer(t *testing.T) {
	f := newFixture(t, false)
	f.sampler.busy = 0.25
	f.run(t, 3*time.Second)
	f.wantCPUAverage(t, 25)
}

func TestPrometheusGauges(t *testing.T) {
	f := newFixture(t, true)
	reg := prometheus.NewRegistry()
	f.mon = New(Options{Store: f.store, Sampler: f.sampler, TimeScale: 0.01, Now: func() time.Time { return f.clock }, Registerer: reg})
	f.sampler.busy = 0.25
	f.run(t, 2*time.Second)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range fams {
		for _, m := range fam.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[fam.GetName()] += v
		}
	}
	if cpu := got["vmss_instance_cpu_percent"]; cpu < 24.9 || cpu > 25.1 {
		t.Errorf("cpu gauge %v, want 25", cpu)
	}
	if got["vmss_autoscale_evaluations_total"] < 1 || got["vmss_instance_available_memory_bytes"] != 1<<29 {
		t.Errorf("gathered %v", got)
	}
}

// A scale action posts Azure's webhook payload to a loopback webhook; a
// webhook elsewhere is not called and e-mail is recorded only.
func TestWebhookNotification(t *testing.T) {
	got := make(chan webhookPayload, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- p
	}))
	defer srv.Close()
	f := newFixture(t, true)
	var body map[string]any
	json.Unmarshal([]byte(fmt.Sprintf(autoscaleBody, true, f.set, f.set, f.set)), &body)
	body["properties"].(map[string]any)["notifications"] = []any{map[string]any{"operation": "Scale",
		"email":    map[string]any{"customEmails": []string{"ops@example.com"}},
		"webhooks": []any{map[string]any{"serviceUri": srv.URL + "/hook"}, map[string]any{"serviceUri": "http://203.0.113.9/hook"}}}}
	b, _ := json.Marshal(body)
	if err := f.store.Update(func(s *model.State) error {
		if _, _, e := s.PutGeneric(f.setting, b); e != nil {
			return e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.sampler.busy = 0.9
	f.run(t, 5*time.Second)
	// The run may scale out more than once, and each action's webhook is
	// posted on its own, so they can arrive in either order: wait for the
	// 1 → 2 one and check every payload on the way.
	timeout := time.After(10 * time.Second)
	for first := false; !first; {
		select {
		case p := <-got:
			if p.Operation != "Scale Out" || p.Context.ResourceID != f.set.String() {
				t.Fatalf("payload %+v", p)
			}
			first = p.Context.OldCapacity == "1" && p.Context.NewCapacity == "2"
		case <-timeout:
			t.Fatal("the webhook of the scale-out from 1 to 2 was not called")
		}
	}
	ev := f.mon.Activity(Filter{ScaleOnly: true})
	note := ev[len(ev)-1].Properties["Notifications"]
	if !strings.Contains(note, "203.0.113.9/hook not called") || !strings.Contains(note, "ops@example.com recorded, not sent") {
		t.Fatalf("notifications note %q", note)
	}
}

// A rule's VMName dimension selects the instances whose metric it reads.
func TestRuleDimensions(t *testing.T) {
	st := &metrics.Store{}
	const set = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for k := 0; k <= 10; k++ {
		for id, busy := range map[string]time.Duration{"0": 100 * time.Millisecond, "1": 900 * time.Millisecond} {
			st.Add(metrics.Target{ResourceID: set, Instance: id}, metrics.Counters{CPU: time.Duration(k) * busy, HasCPU: true}, t0.Add(time.Duration(k)*time.Second))
		}
	}
	src := source{st}
	avg := func(dims ...autoscale.Dimension) (float64, error) {
		pts, err := src.Series(context.Background(), autoscale.Query{ResourceURI: set, Name: "Percentage CPU", Grain: time.Minute, Statistic: "Average", Start: t0, End: t0.Add(time.Minute), Dimensions: dims})
		if err != nil || len(pts) == 0 {
			return 0, err
		}
		return pts[0].Value, nil
	}
	for _, tc := range []struct {
		dims []autoscale.Dimension
		want float64
	}{
		{nil, 50},
		{[]autoscale.Dimension{{Name: "VMName", Operator: "Equals", Values: []string{"web_1"}}}, 90},
		{[]autoscale.Dimension{{Name: "VMName", Operator: "NotEquals", Values: []string{"web_1"}}}, 10},
		{[]autoscale.Dimension{{Name: "VMName", Operator: "Equals", Values: []string{"*"}}}, 50},
	} {
		if got, err := avg(tc.dims...); err != nil || got < tc.want-1e-6 || got > tc.want+1e-6 {
			t.Errorf("%+v: %v %v, want %v", tc.dims, got, err, tc.want)
		}
	}
	if _, err := avg(autoscale.Dimension{Name: "Region", Operator: "Equals", Values: []string{"x"}}); err == nil {
		t.Error("an unknown dimension was accepted")
	}
}

// A monitor started again over the same state file (a daemon restart) keeps
// the setting's cooldown and its activity log: the scale-out just before the
// restart holds back a scale-in that a monitor without the file makes at
// once (positive control).
func TestRestartKeepsCooldownAndHistory(t *testing.T) {
	f := newFixture(t, true)
	file := t.TempDir() + "/" + StateFile
	f.mon = New(Options{Store: f.store, Sampler: f.sampler, TimeScale: 0.01, Now: func() time.Time { return f.clock }, StateFile: file})
	f.sampler.busy = 0.9
	for i := 0; i < 100 && f.capacity() < 2; i++ {
		f.run(t, 700*time.Millisecond) // one evaluation each
	}
	if f.capacity() < 2 {
		t.Fatalf("no scale-out under load: capacity %d", f.capacity())
	}
	before := f.mon.Activity(Filter{ScaleOnly: true})
	if len(before) == 0 {
		t.Fatal("no scale action recorded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.mon.Run(ctx) // stops at once and writes everything
	capacity := f.capacity()

	restart := func(file string) *Monitor {
		now := func() time.Time { return f.clock }
		s := &fakeSampler{now: now, cpu: map[string]time.Duration{}, last: f.clock}
		return New(Options{Store: f.store, Sampler: s, TimeScale: 0.01, Now: now, StateFile: file})
	}
	// the load stopped; the scale-in cooldown is PT5M × 0.01 = 3 s
	m := restart(file)
	if got := m.Activity(Filter{ScaleOnly: true}); len(got) != len(before) || got[0].ID != before[0].ID {
		t.Fatalf("activity log after restart: %d scale actions, want %d", len(got), len(before))
	}
	if all := m.Activity(Filter{}); len(all) <= len(before) {
		t.Fatalf("evaluations not kept: %d events", len(all))
	}
	f.mon = m
	f.run(t, 1500*time.Millisecond)
	if f.capacity() != capacity {
		t.Fatalf("scaled in from %d to %d within the cooldown after a restart", capacity, f.capacity())
	}
	// positive control: without the file the same moment scales in
	f.store.Update(func(s *model.State) error { _, e := s.Scale(f.set, int64(capacity)); return e })
	f.clock = f.clock.Add(-1500 * time.Millisecond)
	f.mon = restart("")
	f.run(t, 1500*time.Millisecond)
	if f.capacity() >= capacity {
		t.Fatalf("control: capacity %d, want a scale-in below %d", f.capacity(), capacity)
	}
}
