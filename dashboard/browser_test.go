package dashboard

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/deploy"
	"github.com/vmss-emulator/vmss/metrics"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/monitor"
)

// busySampler makes every instance busy at a fraction of one vCPU, on the
// wall clock.
type busySampler struct {
	mu   sync.Mutex
	busy float64
	cpu  map[string]time.Duration
	last time.Time
}

func (f *busySampler) Sample(_ context.Context, ins []monitor.Instance) (map[string]metrics.Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	dt := now.Sub(f.last)
	f.last = now
	out := map[string]metrics.Counters{}
	for _, in := range ins {
		f.cpu[in.Name] += time.Duration(float64(dt) * f.busy)
		out[in.Name] = metrics.Counters{CPU: f.cpu[in.Name], HasCPU: true, MemTotal: 1 << 30, MemAvailable: 1 << 29}
	}
	return out, nil
}

// monitorAPI is the daemon's adapter of the monitor to the API, as far as
// the dashboard reads it.
type monitorAPI struct{ m *monitor.Monitor }

func (a monitorAPI) Metrics(id, region string, q url.Values) (any, error) {
	return a.m.Metrics(id, region, q)
}
func (a monitorAPI) Definitions(id string) any { return a.m.Definitions(id) }

var sinceTerm = regexp.MustCompile(`eventTimestamp ge '([^']+)'`)

func (a monitorAPI) Activity(q url.Values) (any, error) {
	var f monitor.Filter
	if m := sinceTerm.FindStringSubmatch(q.Get("$filter")); m != nil {
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, err
		}
		f.Since = t
	}
	return map[string]any{"value": a.m.Activity(f)}, nil
}

// liveFixture is a fixture whose API has the monitor (metrics sampled every
// 200ms from busySampler, autoscale at 1/100 of Azure's durations) and the
// template deployment engine, with an autoscale setting on the scale set:
// out above 60% CPU, in below 30%, 1 to 3 instances.
type liveFixture struct {
	*fixture
	sampler *busySampler
}

const autoscaleSetting = `{"location":"eastus","properties":{"name":"as","enabled":true,"targetResourceUri":%q,"profiles":[{"name":"Profile1",
 "capacity":{"minimum":"1","maximum":"3","default":"2"},"rules":[
 {"metricTrigger":{"metricName":"Percentage CPU","metricResourceUri":%q,"timeGrain":"PT1M","statistic":"Average","timeWindow":"PT5M","timeAggregation":"Average","operator":"GreaterThan","threshold":60},
  "scaleAction":{"direction":"Increase","type":"ChangeCount","value":"1","cooldown":"PT5M"}},
 {"metricTrigger":{"metricName":"Percentage CPU","metricResourceUri":%q,"timeGrain":"PT1M","statistic":"Average","timeWindow":"PT5M","timeAggregation":"Average","operator":"LessThan","threshold":30},
  "scaleAction":{"direction":"Decrease","type":"ChangeCount","value":"1","cooldown":"PT5M"}}]}]}}`

func newLiveFixture(t testing.TB, busy float64) *liveFixture { return newLiveFixtureN(t, busy, 2) }

func newLiveFixtureN(t testing.TB, busy float64, capacity int) *liveFixture {
	t.Helper()
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	smp := &busySampler{busy: busy, cpu: map[string]time.Duration{}, last: time.Now()}
	mon := monitor.New(monitor.Options{Store: st, Sampler: smp, TimeScale: 0.01, SampleInterval: 200 * time.Millisecond, EvalInterval: 400 * time.Millisecond})
	a := &api.Server{Store: st, Runtime: api.StaticRuntime{}, Monitor: monitorAPI{mon}}
	eng, err := deploy.New(deploy.Options{Handler: a, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	a.Deployer = eng
	f := &fixture{store: st, arm: a}
	f.setup(t, capacity)
	d, err := New(Config{ARM: a, Subscription: sub, Debounce: time.Millisecond, DataPlane: 200 * time.Millisecond, SampleInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mon.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &liveFixture{fixture: f, sampler: smp}
}

func (f *liveFixture) autoscale(t *testing.T) {
	f.call(t, "PUT", rg+"/providers/Microsoft.Insights/autoscaleSettings/as", fmt.Sprintf(autoscaleSetting, set, set, set))
}

func browserOrSkip(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; scripts/setup.sh installs it)")
	}
	return headless(t, path)
}

// screenshot saves the page, full height, at width px, under
// $VMSS_SCREENSHOTS (when set).
func screenshot(t *testing.T, ctx context.Context, name string, width int64) {
	t.Helper()
	dir := os.Getenv("VMSS_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(width, 900), chromedp.Sleep(300*time.Millisecond), chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Error(err)
	}
}

func text(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &s)); err != nil {
		t.Fatal(err)
	}
	return s
}

// The scale set's page charts Percentage CPU from the metrics API (the set's
// average, and an instance's when its id is clicked), shows each instance's
// CPU, and shows the autoscale setting's decision, which also reaches the
// activity log with the metric value against the threshold.
func TestBrowserCPUChartAndAutoscaleDecisions(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed")
	}
	f := newLiveFixture(t, 0.9) // 90% of a vCPU: above the scale-out threshold
	ctx := browserOrSkip(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/#ss:"+strings.ToLower(set))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `!!document.querySelector('#insttable tr[data-instance="1"]')`)
	// Positive control for the CPU: points reach the chart and the rows.
	waitFor(t, ctx, `(() => { const c = document.querySelector('#cpuchart .uplot'); return !!c && window.vmssCPUPoints && window.vmssCPUPoints() >= 2; })()`)
	cpu := text(t, ctx, `document.querySelector('#insttable tr[data-instance="1"] td.cpu').textContent`)
	if v, err := strconv.ParseFloat(cpu, 64); err != nil || v < 60 || v > 100 {
		t.Errorf("instance 1's CPU column shows %q, want about 90", cpu)
	}
	// An instance's own chart, from its history and then live.
	if err := chromedp.Run(ctx, chromedp.Click(`#insttable tr[data-instance="0"] a[data-pick]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `!document.querySelector('#instcpu').hidden && !!document.querySelector('#instcpuchart .uplot') && window.vmssCPUPoints("picked") >= 2`)
	if got := text(t, ctx, `document.querySelector('#instcputitle').textContent`); got != "Percentage CPU of web_0" {
		t.Errorf("instance chart title %q", got)
	}
	screenshot(t, ctx, "scaleset-cpu-1500.png", 1500)
	// Another instance replaces it.
	if err := chromedp.Run(ctx, chromedp.Click(`#insttable tr[data-instance="1"] a[data-pick]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `document.querySelector('#instcputitle').textContent === "Percentage CPU of web_1" && document.querySelectorAll('#instcpuchart .uplot').length === 1 && window.vmssCPUPoints("picked") >= 2`)

	// Autoscale: busy instances scale the set out to the maximum; the page
	// shows the decision and the activity log has it with its reason.
	f.autoscale(t)
	waitFor(t, ctx, `document.querySelector('#capacity') && document.querySelector('#capacity').textContent === "3"`)
	waitFor(t, ctx, `!!document.querySelector('#asrules') && document.querySelectorAll('#asrules tr').length === 3`)
	reason := text(t, ctx, `document.querySelector('#asreason').textContent`)
	if !strings.Contains(reason, "scale-out") {
		t.Errorf("autoscale reason on the page: %q", reason)
	}
	screenshot(t, ctx, "scaleset-autoscale-1000.png", 1000)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/#activity")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `[...document.querySelectorAll('table.log tr')].some((r) => /autoscale out 2 → 3: scale-out rule 0 fired: Percentage CPU \d+(\.\d+)? > 60/.test(r.textContent))`)
	// At the maximum, the next evaluation's skip is logged once, not at every evaluation.
	waitFor(t, ctx, `[...document.querySelectorAll('table.log tr')].some((r) => r.textContent.includes("already at the maximum 3"))`)
	time.Sleep(time.Second) // a few more evaluations
	var n int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('table.log tr')].filter((r) => r.textContent.includes("already at the maximum 3")).length`, &n)); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the same skip is logged %d times", n)
	}
	screenshot(t, ctx, "activity-1000.png", 1000)
}

const whatIfTemplate = `{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0",
 "parameters":{"prefix":{"type":"string"}},
 "resources":[
  {"type":"Microsoft.Network/virtualNetworks","apiVersion":"2023-04-01","name":"vnet","location":"eastus",
   "properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16","10.1.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/20"}}]}},
  {"type":"Microsoft.Network/virtualNetworks","apiVersion":"2023-04-01","name":"[concat(parameters('prefix'), 'vnet')]","location":"eastus",
   "properties":{"addressSpace":{"addressPrefixes":["10.9.0.0/16"]}}}]}`

// The what-if view previews a pasted template as a change list: the new
// VNET to create, the existing one modified with its property diff; nothing
// changes until Deploy.
func TestBrowserWhatIf(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed")
	}
	f := newLiveFixture(t, 0)
	ctx := browserOrSkip(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/#whatif"),
		chromedp.WaitVisible(`#witemplate`, chromedp.ByQuery),
		chromedp.SetValue(`#witemplate`, whatIfTemplate, chromedp.ByQuery),
		chromedp.SetValue(`#wiparams`, `{"prefix":{"value":"new"}}`, chromedp.ByQuery),
		chromedp.Click(`#wirun`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `!!document.querySelector('#wichanges')`)
	if got := text(t, ctx, `[...document.querySelectorAll('#wichanges .change')].map((c) => c.dataset.change + " " + c.dataset.resource).join(", ")`); got != "Modify vnet, Create newvnet" {
		t.Errorf("change list: %q", got)
	}
	delta := text(t, ctx, `document.querySelector('#wichanges .change[data-resource="vnet"] table.delta').textContent`)
	if !strings.Contains(delta, "addressPrefixes") || !strings.Contains(delta, "10.1.0.0/16") {
		t.Errorf("the modified VNET's diff: %q", delta)
	}
	screenshot(t, ctx, "whatif-1500.png", 1500)
	screenshot(t, ctx, "whatif-1000.png", 1000)
	var exists bool
	f.store.View(func(st *model.State) {
		for k := range st.VNets {
			exists = exists || strings.HasSuffix(k, "/newvnet")
		}
	})
	if exists {
		t.Fatal("what-if created the VNET")
	}
	// A bad template says why, on the page.
	if err := chromedp.Run(ctx, chromedp.SetValue(`#witemplate`, `{"resources":[{"type":"Microsoft.Network/virtualNetworks"}]}`, chromedp.ByQuery),
		chromedp.Click(`#wirun`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, `!!document.querySelector('#wierror')`)
}

// The fault-domain × update-domain grid shows each instance in the cell of
// its domains, and a change redraws only the cells it touches: after a
// scale-out, cells that kept their instances keep their elements.
func TestBrowserFaultDomainGrid(t *testing.T) {
	f := newFixtureN(t, false, 9)
	ctx := browserOrSkip(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/#ss:"+strings.ToLower(set))); err != nil {
		t.Fatal(err)
	}
	// cells reads the page's grid: cell id → the instance names in it.
	const cells = `(() => { const o = {}; for (const td of document.querySelectorAll('#grid td[id^="cell-"]'))
	  o[td.id] = [...td.querySelectorAll('.dot')].map((d) => d.title.split(":")[0]).sort().join(","); return o; })()`
	check := func(n int) map[string]string {
		t.Helper()
		waitFor(t, ctx, `document.querySelectorAll('#grid .dot').length === `+strconv.Itoa(n))
		s, err := f.dash.build(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{}
		for _, i := range s.Groups[0].ScaleSets[0].Instances {
			k := fmt.Sprintf("cell-%d-%d", i.FD, i.UD)
			want[k] = append(want[k], i.Name)
		}
		var got map[string]string
		if err := chromedp.Run(ctx, chromedp.Evaluate(cells, &got)); err != nil {
			t.Fatal(err)
		}
		used := 0
		for k, names := range want {
			slices.Sort(names)
			if got[k] != strings.Join(names, ",") {
				t.Errorf("%d instances: cell %s shows %q, want %q", n, k, got[k], strings.Join(names, ","))
			}
			used++
		}
		for k, v := range got {
			if _, ok := want[k]; !ok && v != "" {
				t.Errorf("%d instances: cell %s shows %q, want it empty", n, k, v)
			}
		}
		if used < 2 {
			t.Fatalf("%d instances fill %d cells; the check needs several", n, used)
		}
		return got
	}
	before := check(9)
	// Mark every cell's element; a cell redrawn loses its mark.
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('#grid td[id^="cell-"]').forEach((td) => { if (td.firstChild) td.firstChild.kept = true; })`, nil)); err != nil {
		t.Fatal(err)
	}
	f.call(t, "PATCH", set, `{"sku":{"capacity":12}}`)
	after := check(12)
	var kept map[string]bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const o = {}; for (const td of document.querySelectorAll('#grid td[id^="cell-"]')) o[td.id] = !!(td.firstChild && td.firstChild.kept); return o; })()`, &kept)); err != nil {
		t.Fatal(err)
	}
	same, changed := 0, 0
	for k, v := range after {
		switch {
		case v == before[k] && v != "":
			same++
			if !kept[k] {
				t.Errorf("cell %s did not change (%s) but was redrawn", k, v)
			}
		case v != before[k] && v != "":
			changed++
			if kept[k] {
				t.Errorf("cell %s changed (%s → %s) but still shows its old elements", k, before[k], v)
			}
		}
	}
	if same == 0 || changed == 0 {
		t.Fatalf("the scale-out left %d cells unchanged and changed %d: the check needs both", same, changed)
	}
}

// A change that touches one column of every row rewrites that column's
// cells only: the rows and their other cells keep their elements.
func TestBrowserRowsRedrawChangedCells(t *testing.T) {
	f := newFixtureN(t, false, 4)
	ctx := browserOrSkip(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/#ss:"+strings.ToLower(set))); err != nil {
		t.Fatal(err)
	}
	const rows = `[...document.querySelectorAll('#instbody tr')]`
	waitFor(t, ctx, rows+`.length === 4 && `+rows+`.every((r) => r.children[10].textContent === "yes")`)
	if err := chromedp.Run(ctx, chromedp.Evaluate(rows+`.forEach((r) => { r.kept = true; for (const td of r.children) td.firstChild.kept = true; })`, nil)); err != nil {
		t.Fatal(err)
	}
	// A new model with a Manual upgrade policy: no instance runs the latest.
	f.call(t, "PATCH", set, `{"sku":{"name":"Standard_A2"}}`)
	waitFor(t, ctx, rows+`.every((r) => r.children[10].textContent === "no")`)
	var kept [][]bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(rows+`.map((r) => [!!r.kept].concat([...r.children].map((td) => !!td.firstChild.kept)))`, &kept)); err != nil {
		t.Fatal(err)
	}
	for n, row := range kept {
		if !row[0] {
			t.Errorf("row %d was replaced", n)
		}
		for k, ok := range row[1:] {
			if k == 10 && ok {
				t.Errorf("row %d: the latest-model cell changed but still shows its old element", n)
			}
			if k != 10 && !ok {
				t.Errorf("row %d: cell %d did not change but was redrawn", n, k)
			}
		}
	}
}
