package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// capacityWatch polls a scale set's sku.capacity and keeps the lowest and
// highest values seen.
type capacityWatch struct {
	mu       sync.Mutex
	lo, hi   int
	last     int
	stop     chan struct{}
	finished chan struct{}
}

func watchCapacity(e *Env, set string) *capacityWatch {
	w := &capacityWatch{lo: 1 << 30, stop: make(chan struct{}), finished: make(chan struct{})}
	path := "/subscriptions/" + e.Client.Subscription + "/resourceGroups/default/providers/Microsoft.Compute/virtualMachineScaleSets/" + set
	go func() {
		defer close(w.finished)
		for {
			var ss struct {
				Sku struct{ Capacity int } `json:"sku"`
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := e.Client.Do(ctx, http.MethodGet, path, nil, &ss)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.lo, w.hi, w.last = min(w.lo, ss.Sku.Capacity), max(w.hi, ss.Sku.Capacity), ss.Sku.Capacity
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *capacityWatch) get() (lo, hi, last int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lo, w.hi, w.last
}

func (w *capacityWatch) close() { close(w.stop); <-w.finished }

// TestAutoscaleRealLoad: busy loops in the instances (through run-command)
// drive Percentage CPU, measured from the instances' cgroups, over the
// scale-out threshold; autoscale, compressed 50×, scales the set out to its
// maximum; when the loops stop it scales in to the minimum. The capacity
// never leaves [minimum, maximum], and the history names the metric values
// that decided each action.
func TestAutoscaleRealLoad(t *testing.T) {
	e := Start(t, Options{Extra: []string{"--time-scale", "0.02"}})
	e.MustCLI("create", "-n", "web", "--instance-count", "1", "--disable-overprovision", "--admin-password", password, "-o", "none")
	e.MustCLI("monitor", "autoscale", "create", "--resource", "web", "-n", "web-as", "--min-count", "1", "--max-count", "3", "--count", "1", "-o", "none")
	// PT5M windows and 1-minute cooldowns, × 0.02: 6 s windows, 1.2 s cooldowns
	e.MustCLI("monitor", "autoscale", "rule", "create", "--autoscale-name", "web-as", "--condition", "Percentage CPU > 10 avg 5m", "--scale", "out", "1", "--cooldown", "1", "-o", "none")
	e.MustCLI("monitor", "autoscale", "rule", "create", "--autoscale-name", "web-as", "--condition", "Percentage CPU < 2 avg 5m", "--scale", "in", "1", "--cooldown", "1", "-o", "none")
	w := watchCapacity(e, "web")
	defer w.close()

	// Load every instance, including those autoscale adds, until the maximum.
	loaded := map[string]bool{}
	start := time.Now()
	Eventually(t, 3*time.Minute, "scale-out to the maximum 3", func() error {
		for _, in := range e.Instances("web") {
			if !loaded[in.InstanceID] && in.PowerState == "running" {
				// nice: the loops must not starve the daemon on a small host
				e.runIn("web", in.InstanceID, "nohup nice -n 10 yes >/dev/null 2>&1 & echo $! > /tmp/busy.pid")
				loaded[in.InstanceID] = true
			}
		}
		if _, _, last := w.get(); last != 3 {
			return fmt.Errorf("capacity %d", last)
		}
		return nil
	})
	t.Logf("scaled out to 3 in %s", time.Since(start).Round(100*time.Millisecond))
	time.Sleep(5 * time.Second) // more evaluations at the maximum
	if lo, hi, _ := w.get(); lo < 1 || hi > 3 {
		t.Fatalf("capacity left [1, 3] under load: %d..%d", lo, hi)
	}

	// The metric the engine read is served as Azure Monitor answers it.
	var m struct {
		Value []struct {
			Name       struct{ Value string } `json:"name"`
			Timeseries []struct {
				Data []struct {
					Average *float64 `json:"average"`
				} `json:"data"`
			} `json:"timeseries"`
		} `json:"value"`
	}
	e.JSON(&m, "monitor", "metrics", "list", "--resource", "web", "--metric", "Percentage CPU", "--interval", "PT1S", "--offset", "30s")
	peak := 0.0
	for _, d := range m.Value[0].Timeseries[0].Data {
		if d.Average != nil {
			peak = max(peak, *d.Average)
		}
	}
	if m.Value[0].Name.Value != "Percentage CPU" || peak <= 10 {
		t.Fatalf("Percentage CPU peak %.1f under load, want > 10", peak)
	}

	// Split by instance: a series per VM, each named.
	var split struct {
		Value []struct {
			Timeseries []struct {
				MetadataValues []struct {
					Value string `json:"value"`
				} `json:"metadatavalues"`
			} `json:"timeseries"`
		} `json:"value"`
	}
	e.JSON(&split, "monitor", "metrics", "list", "--resource", "web", "--interval", "PT5S", "--offset", "10s", "--filter", "VMName eq '*'")
	if n := len(split.Value[0].Timeseries); n != 3 || split.Value[0].Timeseries[0].MetadataValues[0].Value != "web_0" {
		t.Fatalf("split by VMName: %+v", split)
	}

	// Stop the load: autoscale scales in to the minimum.
	for _, in := range e.Instances("web") {
		if loaded[in.InstanceID] {
			e.runIn("web", in.InstanceID, "kill $(cat /tmp/busy.pid)")
		}
	}
	start = time.Now()
	Eventually(t, 2*time.Minute, "scale-in to the minimum 1", func() error {
		if _, _, last := w.get(); last != 1 {
			return fmt.Errorf("capacity %d", last)
		}
		return nil
	})
	t.Logf("scaled in to 1 in %s", time.Since(start).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second)
	if lo, hi, last := w.get(); lo < 1 || hi > 3 || last != 1 {
		t.Fatalf("capacity range %d..%d, now %d; want within [1, 3] and at 1", lo, hi, last)
	}
	if n := len(e.Instances("web")); n != 1 {
		t.Fatalf("%d instances after scale-in to 1", n)
	}

	// The history: scale-ups decided by a CPU value over 10, scale-downs by one under 2.
	var hist []map[string]any
	out := e.MustCLI("monitor", "autoscale", "history", "-n", "web-as", "-o", "json")
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		t.Fatal(err)
	}
	ups, downs := 0, 0
	for _, h := range hist {
		op, metrics := fmt.Sprint(h["operation"]), fmt.Sprint(h["metrics"])
		switch {
		case op == "Autoscale scale up" && strings.Contains(metrics, "GreaterThan 10 (met)"):
			ups++
		case op == "Autoscale scale down" && strings.Contains(metrics, "LessThan 2 (met)"):
			downs++
		}
	}
	if ups < 2 || downs < 2 {
		t.Fatalf("history has %d scale-ups and %d scale-downs with their deciding values, want ≥ 2 each:\n%s", ups, downs, out)
	}
}

// TestAutoscaleFromTemplate: the autoscale setting of a diagnostics-era
// template (a guest counter, \Processor\PercentProcessorTime, and capacities
// written as strings) deploys and is evaluated on measured data.
func TestAutoscaleFromTemplate(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{Extra: []string{"--time-scale", "0.02"}})
	const g = "e2eauto"
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/autoscale.json",
		"--parameters", "setName=Auto", "adminPassword="+depPassword, "-o", "none")
	var hist []map[string]any
	Eventually(t, time.Minute, "evaluations with data", func() error {
		hist = nil
		e.JSON(&hist, "monitor", "autoscale", "history", "-g", g, "-n", "autoscalewad", "--all")
		for _, h := range hist {
			if m := fmt.Sprint(h["metrics"]); strings.Contains(m, `\Processor\PercentProcessorTime=`) && !strings.Contains(m, "n/a") {
				return nil
			}
		}
		return fmt.Errorf("%d evaluations, none with data", len(hist))
	})
	// idle instances: the setting's only rule (scale out over 60 %) does not fire
	for _, h := range hist {
		if h["operation"] != "Autoscale evaluation" || h["oldCount"] != h["newCount"] {
			t.Fatalf("idle set changed: %v", h)
		}
	}
}

// TestAutoscaleBehindLoadBalancer: autoscale's capacity changes go through
// the path of a manual scale, so instances join the load balancer when they
// are up and leave it drained: no request through the frontend fails while
// load scales the set out to 3 and back in to 1.
func TestAutoscaleBehindLoadBalancer(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05", Drain: "2s", Extra: []string{"--time-scale", "0.02"}})
	url := lbCreate(e, "web", 1, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	e.MustCLI("monitor", "autoscale", "create", "--resource", "web", "-n", "web-as", "--min-count", "1", "--max-count", "3", "-o", "none")
	e.MustCLI("monitor", "autoscale", "rule", "create", "--autoscale-name", "web-as", "--condition", "Percentage CPU > 15 avg 5m", "--scale", "out", "1", "--cooldown", "1", "-o", "none")
	e.MustCLI("monitor", "autoscale", "rule", "create", "--autoscale-name", "web-as", "--condition", "Percentage CPU < 5 avg 5m", "--scale", "in", "1", "--cooldown", "1", "-o", "none")
	w := watchCapacity(e, "web")
	defer w.close()

	// a paced request stream (20 per second, a new connection each)
	var mu sync.Mutex
	var rs []lbResult
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			id, err := lbHit(url, netip.Addr{})
			mu.Lock()
			rs = append(rs, lbResult{start: start, instance: id, err: err})
			mu.Unlock()
		}
	})
	stopLoad := func() []lbResult { close(stop); wg.Wait(); return rs }

	loaded := map[string]bool{}
	Eventually(t, 3*time.Minute, "scale-out to 3 with every backend up", func() error {
		for _, in := range e.Instances("web") {
			if !loaded[in.InstanceID] && in.PowerState == "running" {
				e.runIn("web", in.InstanceID, "nohup nice -n 10 yes >/dev/null 2>&1 & echo $! > /tmp/busy.pid")
				loaded[in.InstanceID] = true
			}
		}
		if _, _, last := w.get(); last != 3 {
			return fmt.Errorf("capacity %d", last)
		}
		if st, err := lbStates(e, "webLB", ""); err != nil || len(st) != 3 {
			return fmt.Errorf("backends %v %v", st, err)
		}
		return nil
	})
	lbWaitAllUp(e, "webLB", "", "web", time.Minute)
	for _, in := range e.Instances("web") {
		if loaded[in.InstanceID] {
			e.runIn("web", in.InstanceID, "kill $(cat /tmp/busy.pid)")
		}
	}
	Eventually(t, 2*time.Minute, "scale-in to 1", func() error {
		if n := len(e.Instances("web")); n != 1 {
			return fmt.Errorf("%d instances", n)
		}
		if st, err := lbStates(e, "webLB", ""); err != nil || len(st) != 1 {
			return fmt.Errorf("backends %v %v", st, err)
		}
		return nil
	})
	time.Sleep(time.Second)
	per, errs, nerr := lbSummary(stopLoad())
	t.Logf("%d requests through 1 → 3 → 1: %v", len(rs), per)
	if nerr != 0 {
		t.Fatalf("%d of %d requests failed while autoscale changed the capacity: %v", nerr, len(rs), errs)
	}
	if len(per) < 3 {
		t.Errorf("only instances %v answered; the added ones never joined", per)
	}
	if lo, hi, _ := w.get(); lo < 1 || hi > 3 {
		t.Errorf("capacity left [1, 3]: %d..%d", lo, hi)
	}
}

// TestAutoscaleDiskWritesAcrossRestart: direct writes to an instance's home
// (the instances' ext4 image) drive Disk Write Bytes, measured from the
// instance's io/blkio cgroup, over a scale-out rule; the daemon is then
// killed and started again while the writes go on: the history still lists
// the scale-out and the rule's cooldown (PT40M × 0.02 = 48 s) still holds,
// until it ends and the same load scales out again (positive control).
func TestAutoscaleDiskWritesAcrossRestart(t *testing.T) {
	e := Start(t, Options{Extra: []string{"--time-scale", "0.02"}})
	e.MustCLI("create", "-n", "web", "--instance-count", "1", "--disable-overprovision", "--admin-password", password, "-o", "none")
	e.MustCLI("monitor", "autoscale", "create", "--resource", "web", "-n", "web-as", "--min-count", "1", "--max-count", "3", "--count", "1", "-o", "none")
	e.MustCLI("monitor", "autoscale", "rule", "create", "--autoscale-name", "web-as", "--condition", "Disk Write Bytes > 100000 avg 5m", "--scale", "out", "1", "--cooldown", "40", "-o", "none")
	e.runIn("web", "0", "nohup nice -n 10 sh -c 'while :; do dd if=/dev/zero of=$HOME/f bs=1M count=1 oflag=direct status=none; sleep 0.1; done' >/dev/null 2>&1 &")
	w := watchCapacity(e, "web")
	Eventually(t, 2*time.Minute, "scale-out on disk writes", func() error {
		if _, _, last := w.get(); last != 2 {
			return fmt.Errorf("capacity %d", last)
		}
		return nil
	})
	scaledOut := time.Now()
	w.close()
	// The writes go on (about 10 MiB/s): the set's Disk Write Bytes over
	// the last 20 s reach 1 MiB (the scale-out may come after a second of
	// writes, before the sampler's next rounds have counted that much).
	Eventually(t, 30*time.Second, "Disk Write Bytes over 20 s of at least 1 MiB", func() error {
		var m struct {
			Value []struct {
				Timeseries []struct {
					Data []struct {
						Total *float64 `json:"total"`
					} `json:"data"`
				} `json:"timeseries"`
			} `json:"value"`
		}
		e.JSON(&m, "monitor", "metrics", "list", "--resource", "web", "--metric", "Disk Write Bytes", "--aggregation", "Total", "--interval", "PT1S", "--offset", "20s")
		written := 0.0
		for _, v := range m.Value {
			for _, ts := range v.Timeseries {
				for _, d := range ts.Data {
					if d.Total != nil {
						written += *d.Total
					}
				}
			}
		}
		if written < 1<<20 {
			return fmt.Errorf("%.0f bytes", written)
		}
		return nil
	})

	e.Kill()
	e.Serve()
	out := e.MustCLI("monitor", "autoscale", "history", "-n", "web-as", "-o", "json")
	if !strings.Contains(out, "Autoscale scale up") {
		t.Fatalf("history after the restart lacks the scale-out:\n%s", out)
	}
	w = watchCapacity(e, "web")
	defer w.close()
	// the writes go on; a new window (6 s) and several evaluations pass
	time.Sleep(time.Until(scaledOut.Add(30 * time.Second)))
	if _, hi, _ := w.get(); hi != 2 {
		t.Fatalf("capacity %d within the cooldown after a restart, want 2", hi)
	}
	Eventually(t, 2*time.Minute, "scale-out once the cooldown ends", func() error {
		if _, _, last := w.get(); last != 3 {
			return fmt.Errorf("capacity %d", last)
		}
		return nil
	})
	if d := time.Since(scaledOut); d < 48*time.Second {
		t.Fatalf("second scale-out %s after the first, within the 48 s cooldown", d.Round(time.Second))
	}
}
