package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vmss-emulator/vmss/internal/testutil"
)

// browser starts a headless chromium (Debian's package) with a fresh profile.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install chromium; scripts/setup.sh installs it): %v", err)
	}
	// A fresh profile; chromium's helpers may still write to it for a moment
	// after the browser exits, so it is removed once they are gone.
	profile, err := os.MkdirTemp("", "vmss-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1500, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
		if err := testutil.RemoveBrowserProfile(profile, 10*time.Second); err != nil {
			t.Error(err)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shotDir is where the browser tests write their screenshots: the
// directory $VMSS_SCREENSHOTS names (kept), else a temporary one that is
// kept only when the test fails, for a person to look at what it saw.
func shotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VMSS_SCREENSHOTS")
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshots in %s", dir)
		return dir
	}
	dir, err := os.MkdirTemp("", "vmss-dashboard-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

func shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil { // quality 100 gives a PNG
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Error(err)
	}
}

// waitJS waits until the expression is true in the page.
func waitJS(t testing.TB, ctx context.Context, timeout time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("main").innerText.slice(0, 3000)`, &body))
			t.Fatalf("the page did not show %s within %s (%v); it shows:\n%s", what, timeout, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// load sends requests to url until stop is closed, for the live chart.
func load(url string, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
			_, _ = lbHit(url, netip.Addr{})
		}
	}
}

// The dashboard in a real browser: a new scale set's instances appear, an
// instance stopped from the page leaves the rotation, and scaling from the
// page changes the instance count.
func TestDashboardInBrowser(t *testing.T) {
	metrics := lbMetricsAddr(t)
	e := Start(t, Options{ProbeScale: "0.05", Extra: []string{"--metrics-addr", metrics}})
	ctx := browser(t)
	dir := shotDir(t)
	base := "http://" + metrics + "/"
	if err := chromedp.Run(ctx, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 20*time.Second, "a live connection", `document.querySelector("#conn").textContent === "live"`)

	lbNeedPython(t)
	url := lbCreate(e, "web", 4, lbAppCommand(80))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go load(url, stop, &wg)
	defer func() { close(stop); wg.Wait() }()

	waitJS(t, ctx, 20*time.Second, "the scale set in the tree", `!!document.querySelector('nav a[href^="#ss:"]')`)
	if err := chromedp.Run(ctx, chromedp.Click(`nav a[href^="#ss:"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 60*time.Second, "4 instances in rotation",
		`document.querySelectorAll('#insttable td.lbstate .Up').length === 4 && document.querySelectorAll('#insttable td.power .running').length === 4`)
	var ssh string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(document.querySelector('#insttable code')||{}).textContent||""`, &ssh)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ssh, "ssh -p ") || !strings.Contains(ssh, "azureuser@") {
		t.Errorf("instance row's SSH command: %q", ssh)
	}
	shot(t, ctx, dir, "scaleset-running.png")

	// Stop instance 1 from the page: it leaves the rotation.
	if err := chromedp.Run(ctx, chromedp.Click(`#insttable button[data-act="stop"][data-inst="1"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 60*time.Second, "instance 1 stopped and out of rotation",
		`(() => { const r = document.querySelector('#insttable tr[data-instance="1"]'); return !!r && !!r.querySelector('td.power .stopped') && !r.querySelector('td.lbstate .Up'); })()`)
	if n := len(e.Instances("web")); n != 4 {
		t.Errorf("%d instances after a stop", n)
	}

	// Instance 2's app fails its probe: the load balancer's page shows it Down,
	// instance 1 out of the pool, and the live chart of requests.
	e.runIn("web", "2", "echo 500 > /root/app-code")
	if err := chromedp.Run(ctx, chromedp.Click(`nav a[href^="#lb:"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 30*time.Second, "backend 2 Down, backend 1 out of rotation, the chart",
		`!!document.querySelector('#backends tr[data-backend$="web_2"] .Down') && !!document.querySelector('#backends tr[data-backend$="web_0"] .Up') &&
		 !document.querySelector('#backends tr[data-backend$="web_1"] .Up') && !!document.querySelector('#lbchart .uplot')`)
	time.Sleep(3 * time.Second) // a few more points on the chart
	shot(t, ctx, dir, "loadbalancer-backend-down.png")

	// Scale from the page: 4 → 10, then in to 6 under load.
	scale := func(n string) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Click(`nav a[href^="#ss:"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#cap`, chromedp.ByQuery),
			chromedp.SetValue(`#cap`, n, chromedp.ByQuery),
			chromedp.Click(`#scalebtn`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
	}
	scale("10")
	waitJS(t, ctx, 30*time.Second, "10 instances", `document.querySelector("#count").textContent === "10" && document.querySelector("#capacity").textContent === "10"`)
	if n := len(e.Instances("web")); n != 10 {
		t.Errorf("the API has %d instances after scaling to 10 from the page", n)
	}
	// All but the stopped one and the failing one come into rotation.
	waitJS(t, ctx, 120*time.Second, "8 instances in rotation", `document.querySelectorAll('#insttable td.lbstate .Up').length === 8`)
	shot(t, ctx, dir, "scaleset-10.png")
	scale("6")
	waitJS(t, ctx, 30*time.Second, "capacity 6", `document.querySelector("#capacity").textContent === "6"`)
	shot(t, ctx, dir, "scaleset-scale-in.png")
	waitJS(t, ctx, 60*time.Second, "6 instances", `document.querySelector("#count").textContent === "6"`)
	if n := len(e.Instances("web")); n != 6 {
		t.Errorf("the API has %d instances after scaling in to 6 from the page", n)
	}
	shot(t, ctx, dir, "scaleset-6.png")
}

// BenchmarkDashboardInstanceLatency measures, in headless chromium against a
// real daemon, the time from a stop or start of an instance requested by the
// page to the rendered update showing its first change of power state
// (stopping, starting), and to the one showing its new power state (the
// reconciler's work on the instance included).
//
//	sudo go test ./e2e/ -run '^$' -bench DashboardInstanceLatency -benchtime 20x
func BenchmarkDashboardInstanceLatency(b *testing.B) {
	metrics := lbMetricsAddr(b)
	e := Start(b, Options{ProbeScale: "0.05", Extra: []string{"--metrics-addr", metrics}})
	lbCreate(e, "web", 2, webapp)
	ctx := browser(b)
	if err := chromedp.Run(ctx, chromedp.Navigate("http://"+metrics+"/")); err != nil {
		b.Fatal(err)
	}
	waitJS(b, ctx, 60*time.Second, "the running instances",
		`(() => { const a = document.querySelector('nav a[href^="#ss:"]'); if (a) a.click(); return document.querySelectorAll('#insttable td.power .running').length === 2; })()`)
	var id string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#view").dataset.id`, &id)); err != nil {
		b.Fatal(err)
	}
	var lat, first []float64
	final := map[string][]float64{} // by operation
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op, from, want := "stop", "running", "stopped"
		if i%2 == 1 {
			op, from, want = "start", "stopped", "running"
		}
		// The first state change (stopping, starting) is on the page at
		// once; the last one (stopped, running) after the reconciler's
		// work: draining the instance, killing or starting its processes.
		expr := `(() => { const t0 = performance.now(); let first = null;
			return window.vmssMeasure({op: "` + op + `", scaleSet: ` + strconv.Quote(id) + `, instance: "0"}, (s) => {
				const p = s.groups[0].scaleSets[0].instances.find((i) => i.id === "0").power;
				if (p !== "` + from + `" && first === null) first = performance.now() - t0;
				return p === "` + want + `";
			}).then((ms) => [first, ms]); })()`
		var ms []float64
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ms, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
			b.Fatal(err)
		}
		first, lat = append(first, ms[0]), append(lat, ms[1])
		final[op] = append(final[op], ms[1])
	}
	b.StopTimer()
	var renders []float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.vmssRenders.filter((r) => !r.view).map((r) => r.ms)`, &renders)); err != nil {
		b.Fatal(err)
	}
	for name, ms := range map[string][]float64{"first-change-to-page": first, "state-change-to-page": lat, "page-render": renders,
		"stopped-to-page": final["stop"], "running-to-page": final["start"]} {
		slices.Sort(ms)
		if len(ms) > 0 {
			b.ReportMetric(ms[len(ms)/2], name+"-p50-ms")
			b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], name+"-p99-ms")
		}
	}
}
