package dashboard

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vmss-emulator/vmss/internal/testutil"
)

// BenchmarkPageUpdate1000 measures, in headless chromium, a page showing a
// scale set of 1,000 instances: the time from a scale request made by the
// page to the rendered update that shows it (request, model change, view
// built, sent, parsed and drawn), and the page's time per update: parsing
// the view, parsing and drawing it (script), and with the style and layout
// that follow. Opening the scale set's view is reported apart: it builds the
// page rather than updating it.
//
//	go test ./dashboard/ -run '^$' -bench PageUpdate1000 -benchtime 30x
func BenchmarkPageUpdate1000(b *testing.B) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		b.Skip("chromium is not installed")
	}
	f := newFixtureN(b, false, 1000)
	ctx := headless(b, path)
	if err := chromedp.Run(ctx, chromedp.Navigate(f.srv.URL+"/")); err != nil {
		b.Fatal(err)
	}
	var id string
	waitFor(b, ctx, `(() => { const a = document.querySelector('nav a[href^="#ss:"]'); if (a) a.click(); return !!document.querySelector('#insttable'); })()`)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#view").dataset.id`, &id)); err != nil {
		b.Fatal(err)
	}
	var lat []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := 999 + (i+1)%2 // 1000 → 999 → 1000 …
		expr := `window.vmssMeasure({op: "scale", scaleSet: ` + strconv.Quote(id) + `, capacity: ` + strconv.Itoa(want) + `},
			(s) => s.groups[0].scaleSets[0].capacity === ` + strconv.Itoa(want) + `)`
		var ms float64
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ms, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, ms)
	}
	b.StopTimer()
	// Draws that opened a view (a navigation: every row, the charts, the
	// grid built) are reported apart from the updates of an open view.
	var draws []struct {
		MS     float64 `json:"ms"`
		Parse  float64 `json:"parse"`
		Layout float64 `json:"layout"`
		View   string  `json:"view"`
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.vmssRenders`, &draws)); err != nil {
		b.Fatal(err)
	}
	var renders, parse, layout, open []float64
	for _, d := range draws {
		if d.View != "" {
			open = append(open, d.Layout)
			continue
		}
		renders, parse, layout = append(renders, d.MS), append(parse, d.Parse), append(layout, d.Layout)
	}
	if len(layout) > 0 {
		b.ReportMetric(layout[0], "first-draw+layout-ms") // the overview, the page's first draw
		renders, parse, layout = renders[1:], parse[1:], layout[1:]
	}
	if len(open) > 0 {
		b.ReportMetric(open[len(open)-1], "open-scale-set+layout-ms")
	}
	report(b, "request-to-page", lat)
	report(b, "page-render", renders) // parse and draw (script)
	report(b, "page-parse", parse)
	report(b, "page-render+layout", layout)
}

func report(b *testing.B, name string, ms []float64) {
	if len(ms) == 0 {
		return
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], name+"-p50-ms")
	b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], name+"-p99-ms")
}

func headless(b testing.TB, path string) context.Context {
	// A fresh profile; chromium's helpers may still write to it for a moment
	// after the browser exits, so it is removed once they are gone.
	profile, err := os.MkdirTemp("", "vmss-chromium-")
	if err != nil {
		b.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile), chromedp.WindowSize(1500, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	b.Cleanup(func() {
		cancelC()
		cancelA()
		if err := testutil.RemoveBrowserProfile(profile, 10*time.Second); err != nil {
			b.Error(err)
		}
	})
	return ctx
}

func waitFor(b testing.TB, ctx context.Context, expr string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the page never satisfied %s", expr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkBuild1000WithMetrics measures the server's side of an update of a
// scale set of 1,000 instances whose CPU is sampled: reading the model, the
// load balancers, the CPU series and each instance's CPU through the API.
//
//	go test ./dashboard/ -run '^$' -bench Build1000WithMetrics
func BenchmarkBuild1000WithMetrics(b *testing.B) {
	f := newLiveFixtureN(b, 0.5, 1000)
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) { // two samples at least
		s, err := f.dash.build(ctx)
		if err == nil && s.Groups[0].ScaleSets[0].Instances[999].CPU != nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no CPU sample within 30s")
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := f.dash.build(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if in := s.Groups[0].ScaleSets[0].Instances; len(in) != 1000 || in[0].CPU == nil {
			b.Fatalf("%d instances, CPU of the first %v", len(in), in[0].CPU)
		}
	}
}
