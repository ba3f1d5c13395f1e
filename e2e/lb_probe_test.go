package e2e

// End-to-end tests of Azure's health probe semantics: thresholds, the
// states a backend goes through, failover under load, all probed down.

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Azure's probe rules through the whole system: only 200 is healthy (404 and
// 500 mark a backend down), probeThreshold consecutive results change the
// state, detection takes about interval × threshold, and a down backend gets
// no new flows.
func TestLBProbeSemantics(t *testing.T) {
	t.Parallel()
	lbNeedPython(t)
	metrics := lbMetricsAddr(t)
	e := Start(t, Options{ProbeScale: "0.05", Extra: []string{"--metrics-addr", metrics}})
	url := lbCreate(e, "web", 3, lbAppCommand(80))
	const threshold = 3
	interval := 250 * time.Millisecond // 5 s × 0.05
	e.MustCLI("network", "lb", "probe", "create", "--lb-name", "webLB", "-n", "httpProbe", "--protocol", "Http", "--port", "80",
		"--path", "/health", "--interval", "5", "--probe-threshold", fmt.Sprint(threshold), "-o", "none")
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	ns1 := e.Instances("web")[1].Netns

	// Probes come from 168.63.129.16 inside the VNET; clients of the public
	// frontend reach the app from the emulator's Internet address, outside
	// the VNET, not their own.
	if from := e.runIn("web", "1", "cat /root/health-from"); from != "168.63.129.16" {
		t.Errorf("probes come from %q, want 168.63.129.16", from)
	}
	if _, err := lbHit(url, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	var clients []string
	for _, in := range e.Instances("web") {
		clients = append(clients, e.runIn("web", in.InstanceID, "cat /root/client-from 2>/dev/null || true"))
	}
	if !slices.Contains(clients, "198.18.0.1") || slices.Contains(clients, "127.0.0.1") {
		t.Errorf("the app saw clients %q, want the Internet address 198.18.0.1 (the source address is not preserved)", clients)
	}

	// Watch backend 1 throughout: the state may change only after threshold
	// consecutive results of the other kind.
	w := lbWatch(e, "webLB", ns1, threshold)
	defer w.stop()

	for _, code := range []int{404, 500} {
		start := time.Now()
		e.runIn("web", "1", fmt.Sprintf("echo %d > /root/health-code", code))
		at := w.waitState(t, "Down", 20*time.Second)
		took := at.Sub(start)
		t.Logf("HTTP %d: marked down after %v (interval %v × threshold %d = %v)", code, took.Round(time.Millisecond), interval, threshold, interval*threshold)
		if took < interval*(threshold-1) {
			t.Errorf("HTTP %d: down after %v, sooner than %d probes %v apart allow", code, took, threshold, interval)
		}
		if took > interval*threshold+10*time.Second {
			t.Errorf("HTTP %d: down only after %v", code, took)
		}
		v, _ := lbHealth(e, "webLB")
		if b, ok := lbBackendOf(v, "", ns1); !ok || len(b.Probes) != 1 || !strings.Contains(b.Probes[0].LastResult, fmt.Sprint(code)) {
			t.Errorf("HTTP %d: probe view of %s does not name the failure: %+v", code, ns1, b)
		}
		if table := e.MustCLI("lb", "show", "-n", "webLB", "-o", "table"); !regexp.MustCompile(ns1 + `\s+\S+\s+Down\s+HTTP ` + fmt.Sprint(code)).MatchString(table) {
			t.Errorf("HTTP %d: lb show -o table does not show %s down with its last probe result:\n%s", code, ns1, table)
		}
		text, _ := lbScrape(metrics)
		if up, ok := lbMetric(text, "vmss_lb_probe_up", `backend="`+ns1+`"`); !ok || up != 0 {
			t.Errorf("HTTP %d: vmss_lb_probe_up of %s = %v (found %v), want 0", code, ns1, up, ok)
		}
		if !lbHasStatus(lbInstanceView(e, "web", "1"), "HealthProbe/webLB/httpProbe/down") {
			t.Errorf("HTTP %d: instance view of 1 does not show the probe down", code)
		}
		got := lbCount(t, url, 20)
		if got["1"] != 0 || got["0"] != 10 || got["2"] != 10 {
			t.Fatalf("HTTP %d: with backend 1 down got %v, want 10 each from 0 and 2", code, got)
		}

		start = time.Now()
		e.runIn("web", "1", "echo 200 > /root/health-code")
		at = w.waitState(t, "Up", 20*time.Second)
		t.Logf("HTTP 200: marked up after %v", at.Sub(start).Round(time.Millisecond))
		got = lbCount(t, url, 30)
		if got["0"] != 10 || got["1"] != 10 || got["2"] != 10 {
			t.Fatalf("after recovery: got %v, want 10 each", got)
		}
	}

	// An app that does not answer within the timeout (min(interval, 30 s))
	// is down too.
	e.runIn("web", "1", "touch /root/health-hang")
	w.waitState(t, "Down", 20*time.Second)
	v, _ := lbHealth(e, "webLB")
	if b, ok := lbBackendOf(v, "", ns1); !ok || !strings.Contains(b.Probes[0].LastResult, "no answer") {
		t.Errorf("a hanging app: probe view of %s does not say it gave no answer: %+v", ns1, b)
	}
	e.runIn("web", "1", "rm /root/health-hang")
	w.waitState(t, "Up", 20*time.Second)
	if err := w.stop(); err != nil {
		t.Error(err)
	}
}

// lbWatcher samples one backend's probe state and checks the threshold rule
// on every sample.
type lbWatcher struct {
	e        *Env
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	state    string
	since    time.Time
	err      error
	stopOnce sync.Once
}

func lbWatch(e *Env, lbName, backend string, threshold int) *lbWatcher {
	w := &lbWatcher{e: e, done: make(chan struct{})}
	w.wg.Go(func() {
		prev := ""
		for {
			select {
			case <-w.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			v, err := lbHealth(e, lbName)
			if err != nil {
				continue
			}
			b, ok := lbBackendOf(v, "", backend)
			if !ok || len(b.Probes) != 1 {
				continue
			}
			p := b.Probes[0]
			var bad string
			switch {
			case p.State == "Up" && p.Fails >= threshold:
				bad = "still Up after threshold failures"
			case p.State == "Down" && p.OK >= threshold:
				bad = "still Down after threshold successes"
			case prev == "Up" && p.State == "Down" && p.Fails < threshold:
				bad = "went Down with fewer than threshold consecutive failures"
			case prev == "Down" && p.State == "Up" && p.OK < threshold:
				bad = "went Up with fewer than threshold consecutive successes"
			}
			w.mu.Lock()
			if bad != "" && w.err == nil {
				w.err = fmt.Errorf("probe of %s %s (threshold %d): %+v (previous state %s)", backend, bad, threshold, p, prev)
			}
			if p.State != w.state {
				w.state, w.since = p.State, time.Now()
			}
			w.mu.Unlock()
			prev = p.State
		}
	})
	return w
}

// waitState waits until the watched state is want and returns when the
// watcher first saw it.
func (w *lbWatcher) waitState(t testing.TB, want string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		st, since, err := w.state, w.since, w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if st == want {
			return since
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("probe state is not %s after %v", want, timeout)
	return time.Time{}
}

func (w *lbWatcher) stop() error {
	w.stopOnce.Do(func() { close(w.done) })
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Under steady load, a backend whose app breaks (500) gets no new flows once
// its probe marks it down; a backend whose app dies (connection refused) costs
// no failed request at all, since a refused dial moves on to the next backend.
func TestLBFailoverUnderLoad(t *testing.T) {
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, lbAppCommand(80))
	e.MustCLI("network", "lb", "probe", "create", "--lb-name", "webLB", "-n", "httpProbe", "--protocol", "Http", "--port", "80",
		"--path", "/health", "--interval", "5", "--probe-threshold", "2", "-o", "none")
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	ins := e.Instances("web")

	var tBreak, tDown1, tKill, tKilled time.Time
	rs := lbWithLoad(url, 4, func() {
		// The app of instance 1 breaks: answers 500 everywhere.
		tBreak = time.Now()
		e.runIn("web", "1", "echo 500 > /root/app-code; echo 500 > /root/health-code")
		Eventually(t, 20*time.Second, "instance 1 probed down", func() error {
			st, err := lbStates(e, "webLB", "")
			if err != nil || st[ins[1].Netns] != "Down" {
				return fmt.Errorf("states %v %v", st, err)
			}
			tDown1 = time.Now()
			return nil
		})
		time.Sleep(time.Second)

		// The app of instance 2 dies.
		tKill = time.Now()
		e.runIn("web", "2", "kill $(cat /root/app.pid)")
		tKilled = time.Now() // the kill happened somewhere in [tKill, tKilled]
		Eventually(t, 20*time.Second, "instance 2 probed down", func() error {
			st, err := lbStates(e, "webLB", "")
			if err != nil || st[ins[2].Netns] != "Down" {
				return fmt.Errorf("states %v %v", st, err)
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond)
	})

	var before, after, afterFrom1, killWindow int
	var afterErrs []string
	for _, r := range rs {
		switch {
		case r.start.Before(tDown1):
			if r.err != nil {
				before++
			}
		case r.start.After(tKill) && r.start.Before(tKilled.Add(100*time.Millisecond)) && r.err != nil:
			killWindow++ // a request the dying process had accepted (run-command takes a while under load)
		default:
			if r.err != nil {
				after++
				if len(afterErrs) < 10 {
					afterErrs = append(afterErrs, r.start.Format("15:04:05.000")+" "+r.err.Error())
				}
			}
			if r.instance == "1" {
				afterFrom1++
			}
		}
	}
	per, _, _ := lbSummary(rs)
	t.Logf("%d requests %v; errors before instance 1 was probed down (%v after the break): %d; while the kill ran (%v) and 100 ms after: %d; after detection: %d",
		len(rs), per, tDown1.Sub(tBreak).Round(time.Millisecond), before, tKilled.Sub(tKill).Round(time.Millisecond), killWindow, after)
	if after != 0 {
		t.Errorf("%d requests failed after the broken backend was probed down: %v", after, afterErrs)
	}
	if afterFrom1 != 0 {
		t.Errorf("%d new flows went to instance 1 after it was probed down", afterFrom1)
	}
	if per["0"] == 0 {
		t.Errorf("instance 0 answered nothing: %v", per)
	}

	// Instance 1 recovers and returns.
	e.runIn("web", "1", "echo 200 > /root/app-code; echo 200 > /root/health-code")
	lbWaitStates(e, "webLB", "", map[string]string{ins[0].Netns: "Up", ins[1].Netns: "Up", ins[2].Netns: "Down"}, 20*time.Second)
	got := lbCount(t, url, 10)
	if got["0"] != 5 || got["1"] != 5 {
		t.Fatalf("after recovery of 1 with 2 dead: got %v, want 5 each from 0 and 1", got)
	}
}

// All backends probed down: AllProbedDown (default) refuses new flows,
// AllProbedUp sends them to every member.
func TestLBAllProbedDownAndUp(t *testing.T) {
	t.Parallel()
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 2, lbAppCommand(80))
	probe := []string{"network", "lb", "probe", "create", "--lb-name", "webLB", "-n", "httpProbe", "--protocol", "Http", "--port", "80",
		"--path", "/health", "--interval", "5", "--probe-threshold", "2", "-o", "none"}
	e.MustCLI(probe...)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	ins := e.Instances("web")
	for _, in := range ins {
		e.runIn("web", in.InstanceID, "echo 500 > /root/health-code")
	}
	down := map[string]string{ins[0].Netns: "Down", ins[1].Netns: "Down"}
	lbWaitStates(e, "webLB", "", down, 20*time.Second)

	for i := 0; i < 5; i++ {
		if id, err := lbHit(url, netip.Addr{}); err == nil {
			t.Fatalf("AllProbedDown: request %d answered by instance %s, want refused", i, id)
		}
	}
	v, err := lbHealth(e, "webLB")
	if err != nil {
		t.Fatal(err)
	}
	if v.Rules[0].Refused < 5 {
		t.Errorf("AllProbedDown: rule counts %d refused clients, want at least 5", v.Rules[0].Refused)
	}

	e.MustCLI(append(probe, "--no-healthy-backends-behavior", "AllProbedUp")...)
	Eventually(t, 20*time.Second, "AllProbedUp serves", func() error {
		_, err := lbHit(url, netip.Addr{})
		return err
	})
	lbWaitStates(e, "webLB", "", down, time.Second) // still probed down
	got := lbCount(t, url, 20)
	if got["0"] != 10 || got["1"] != 10 {
		t.Fatalf("AllProbedUp: got %v, want 10 each", got)
	}

	// One healthy again: only it gets flows.
	e.runIn("web", "0", "echo 200 > /root/health-code")
	lbWaitStates(e, "webLB", "", map[string]string{ins[0].Netns: "Up", ins[1].Netns: "Down"}, 20*time.Second)
	got = lbCount(t, url, 10)
	if got["0"] != 10 {
		t.Fatalf("AllProbedUp with one backend up: got %v, want all 10 from instance 0", got)
	}
}
