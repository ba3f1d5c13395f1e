package e2e

// End-to-end tests of load balancing through the public (and internal)
// frontend: round-robin, Azure's probe semantics, failover, draining,
// affinity and the places probe state is shown.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

const webapp = "exec vmss webapp --addr :80"

// Three healthy backends, 30 new connections: 10 each. Probe state shows in
// lb show, the API, the instance view and the metrics. A stopped instance
// leaves the rotation and comes back when started.
func TestLBRoundRobinStatusAndStopStart(t *testing.T) {
	metrics := lbMetricsAddr(t)
	e := Start(t, Options{Extra: []string{"--metrics-addr", metrics}})
	url := lbCreate(e, "web", 3, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)

	got := lbCount(t, url, 30)
	if got["0"] != 10 || got["1"] != 10 || got["2"] != 10 {
		t.Fatalf("30 requests over 3 backends: got %v, want 10 each", got)
	}

	// lb show (table and JSON), the API and the metrics agree: 3 backends up.
	table := e.MustCLI("lb", "show", "-n", "webLB", "-o", "table")
	if n := strings.Count(table, " Up "); n != 3 || strings.Count(table, " success ") != 3 {
		t.Errorf("lb show -o table: %d backends Up, want 3 with a successful last probe:\n%s", n, table)
	}
	var shown struct {
		Health lbView `json:"health"`
	}
	e.JSON(&shown, "lb", "show", "-n", "webLB")
	v, err := lbHealth(e, "webLB")
	if err != nil {
		t.Fatal(err)
	}
	for _, view := range []lbView{shown.Health, v} {
		if len(view.Rules) != 1 || len(view.Rules[0].Backends) != 3 {
			t.Fatalf("health view: want 1 rule with 3 backends, got %+v", view)
		}
		for _, b := range view.Rules[0].Backends {
			if b.State != "Up" || len(b.Probes) != 1 || b.Probes[0].State != "Up" || b.Probes[0].Sent < 2 || b.Probes[0].LastResult != "success" {
				t.Errorf("backend %s: want Up with a successful httpProbe, got %+v", b.Name, b)
			}
			if b.Total != 10 {
				t.Errorf("backend %s: %d connections counted, want 10", b.Name, b.Total)
			}
		}
	}
	text, err := lbScrape(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range e.Instances("web") {
		be := `backend="` + in.Netns + `"`
		if up, ok := lbMetric(text, "vmss_lb_probe_up", be, `lb="webLB"`, `probe="httpProbe"`); !ok || up != 1 {
			t.Errorf("metrics: vmss_lb_probe_up for %s = %v (found %v), want 1", in.Netns, up, ok)
		}
		if n, ok := lbMetric(text, "vmss_lb_connections_total", be, `rule="rule80"`); !ok || n != 10 {
			t.Errorf("metrics: vmss_lb_connections_total for %s = %v (found %v), want 10", in.Netns, n, ok)
		}
		view := lbInstanceView(e, "web", in.InstanceID)
		if !lbHasStatus(view, "HealthProbe/webLB/httpProbe/up") {
			t.Errorf("instance view of %s: no HealthProbe/webLB/httpProbe/up status: %s", in.InstanceID, view)
		}
	}

	// Stop instance 1: out of the rotation at once (it drains first).
	e.MustCLI("stop", "-n", "web", "--instance-ids", "1", "-o", "none")
	ns1 := e.Instances("web")[1].Netns
	Eventually(t, 15*time.Second, "instance 1 leaves the pool", func() error {
		st, err := lbStates(e, "webLB", "")
		if err != nil {
			return err
		}
		if _, in := st[ns1]; in || len(st) != 2 {
			return fmt.Errorf("backends %v", st)
		}
		return nil
	})
	got = lbCount(t, url, 20)
	if got["1"] != 0 || got["0"] != 10 || got["2"] != 10 {
		t.Fatalf("with instance 1 stopped: got %v, want 10 each from 0 and 2", got)
	}
	text, _ = lbScrape(metrics)
	if _, ok := lbMetric(text, "vmss_lb_probe_up", `backend="`+ns1+`"`); ok {
		t.Errorf("metrics still report a probe for stopped %s", ns1)
	}

	// Start it again: probed up, then back in the rotation.
	e.MustCLI("start", "-n", "web", "--instance-ids", "1", "-o", "none")
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	got = lbCount(t, url, 30)
	if got["0"] != 10 || got["1"] != 10 || got["2"] != 10 {
		t.Fatalf("after start: got %v, want 10 each", got)
	}
}

// Azure's probe rules through the whole system: only 200 is healthy (404 and
// 500 mark a backend down), probeThreshold consecutive results change the
// state, detection takes about interval × threshold, and a down backend gets
// no new flows.
func TestLBProbeSemantics(t *testing.T) {
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

	// Probes come from 168.63.129.16 inside the VNET; clients reach the app
	// from the proxy's VNET-side address (the gateway), not their own.
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
	if !slices.Contains(clients, "10.0.0.1") || slices.Contains(clients, "127.0.0.1") {
		t.Errorf("the app saw clients %q, want the VNET gateway 10.0.0.1 (the source address is not preserved)", clients)
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

	var tBreak, tDown1, tKill time.Time
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
		case r.start.After(tKill) && r.start.Before(tKill.Add(100*time.Millisecond)) && r.err != nil:
			killWindow++ // a request the dying process had accepted
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
	t.Logf("%d requests %v; errors before instance 1 was probed down (%v after the break): %d; in the 100 ms after the kill: %d; after detection: %d",
		len(rs), per, tDown1.Sub(tBreak).Round(time.Millisecond), before, killWindow, after)
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

// Scale 3 → 10 → 3 under steady load (new connection per request): not one
// request fails; new instances join once probed up, removed ones drain.
func TestLBDrainScaleOutIn(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05", Drain: "2s"})
	url := lbCreate(e, "web", 3, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)

	rs := lbWithLoad(url, 4, func() {
		e.MustCLI("scale", "-n", "web", "--new-capacity", "10", "-o", "none")
		lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
		time.Sleep(500 * time.Millisecond)
		e.MustCLI("scale", "-n", "web", "--new-capacity", "3", "-o", "none")
		Eventually(t, 60*time.Second, "scale-in to 3", func() error {
			if n := len(e.Instances("web")); n != 3 {
				return fmt.Errorf("%d instances", n)
			}
			st, err := lbStates(e, "webLB", "")
			if err != nil || len(st) != 3 {
				return fmt.Errorf("backends %v %v", st, err)
			}
			return nil
		})
	})
	per, errs, nerr := lbSummary(rs)
	t.Logf("%d requests during 3 → 10 → 3: %v", len(rs), per)
	if nerr != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", nerr, len(rs), errs)
	}
	if len(per) < 5 {
		t.Errorf("only instances %v answered; the new ones never joined", per)
	}
	if len(rs) < 200 {
		t.Errorf("only %d requests in the whole run; the load did not run", len(rs))
	}
}

// An internal load balancer (frontend on a private IP of the subnet) answers
// inside the VNET (jumpbox, instances) and has nothing on the host.
func TestLBInternal(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05"})
	pubURL := lbCreate(e, "web", 3, webapp)
	e.MustCLI("network", "lb", "create", "-n", "ilb", "--vnet-name", "webVNET", "--subnet", "webSubnet", "--backend-pool-name", "ipool", "-o", "none")
	e.MustCLI("network", "lb", "probe", "create", "--lb-name", "ilb", "-n", "p80", "--protocol", "Tcp", "--port", "80", "--interval", "5", "-o", "none")
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "ilb", "-n", "r8080", "--frontend-port", "8080", "--backend-port", "80", "--probe-name", "p80", "-o", "none")
	ctx := context.Background()
	var lbRes arm.LoadBalancer
	if _, err := e.Client.Do(ctx, http.MethodGet, e.Client.ResourceID("default", arm.TypeLoadBalancer, "ilb"), nil, &lbRes); err != nil {
		t.Fatal(err)
	}
	front := lbRes.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress
	fa, err := netip.ParseAddr(front)
	if err != nil || !netip.MustParsePrefix("10.0.0.0/24").Contains(fa) {
		t.Fatalf("internal frontend address %q is not in webSubnet", front)
	}

	// The scale set joins the internal pool too (GET, add the pool, PUT).
	lbEditScaleSet(e, "web", func(ss *arm.VirtualMachineScaleSet) {
		ic := &ss.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
		ic.LoadBalancerBackendAddressPools = append(ic.LoadBalancerBackendAddressPools,
			arm.SubResource{ID: e.Client.ResourceID("default", arm.TypeLoadBalancer, "ilb") + "/backendAddressPools/ipool"})
	})
	lbWaitAllUp(e, "ilb", "r8080", "web", 30*time.Second)

	e.MustCLI("vm", "create", "-n", "jumpbox", "--vnet-name", "webVNET", "--subnet", "webSubnet", "--public-ip-address", "jbpip",
		"--ssh-key-values", lbKeyFile(t), "-o", "none")
	jb := e.Prefix + "default-jumpbox"
	if _, err := os.Stat("/run/netns/" + jb); err != nil {
		t.Fatalf("jumpbox namespace: %v", err)
	}
	iurl := "http://" + net.JoinHostPort(front, "8080") + "/"
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		out, err := InNetns(jb, "curl", "-sS", "-m", "5", iurl)
		if err != nil {
			t.Fatalf("curl %s from the jumpbox: %v: %s", iurl, err, out)
		}
		seen[lbInstanceOf(out)]++
	}
	if seen["0"] != 2 || seen["1"] != 2 || seen["2"] != 2 {
		t.Errorf("internal LB from the jumpbox: got %v, want 2 each", seen)
	}
	// An instance reaches the internal frontend too, itself included.
	for i := 0; i < 3; i++ {
		if out, err := InNetns(e.Instances("web")[0].Netns, "curl", "-sS", "-m", "5", iurl); err != nil || lbInstanceOf(out) == "" {
			t.Fatalf("curl %s from instance 0: %v: %s", iurl, err, out)
		}
	}

	// Not from the host: no host interface has the address and no host
	// socket listens on it (no traffic is sent to a private address from the
	// host), and the public frontend has no port 8080.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == fa {
			t.Errorf("the host has the internal frontend address %s on an interface", fa)
		}
	}
	if lbHostListens(t, fa, 8080) {
		t.Errorf("a socket in the host namespace listens on %s:8080", fa)
	}
	pub := strings.TrimSuffix(strings.TrimPrefix(pubURL, "http://"), "/")
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(pub, "8080"), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the public frontend %s answers on port 8080", pub)
	}
	if _, err := lbHit(pubURL, netip.Addr{}); err != nil {
		t.Errorf("public rule still answers: %v", err)
	}
}

// lbHostListens reports whether a TCP socket of the host namespace listens on
// addr:port (from /proc/net/tcp).
func lbHostListens(t testing.TB, addr netip.Addr, port int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	a := addr.As4()
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// SourceIP distribution keeps a client address on one backend; when a
// backend leaves, only its clients move.
func TestLBSourceIPAffinity(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, webapp)
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "webLB", "-n", "rule80", "--frontend-port", "80", "--backend-port", "80",
		"--probe-name", "httpProbe", "--load-distribution", "SourceIP", "-o", "none")
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)

	clients := make([]netip.Addr, 24)
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(20 + i)})
	}
	home := func() map[netip.Addr]string {
		out := map[netip.Addr]string{}
		for _, c := range clients {
			for j := 0; j < 4; j++ {
				id, err := lbHit(url, c)
				if err != nil {
					t.Fatalf("from %s: %v", c, err)
				}
				if prev, ok := out[c]; ok && prev != id {
					t.Fatalf("client %s went to instance %s, then %s", c, prev, id)
				}
				out[c] = id
			}
		}
		return out
	}
	before := home()
	used := map[string]int{}
	for _, id := range before {
		used[id]++
	}
	if len(used) < 2 {
		t.Fatalf("24 client addresses all went to %v; SourceIP should spread clients", used)
	}
	e.MustCLI("stop", "-n", "web", "--instance-ids", "1", "-o", "none")
	Eventually(t, 15*time.Second, "instance 1 leaves", func() error {
		st, err := lbStates(e, "webLB", "")
		if err != nil || len(st) != 2 {
			return fmt.Errorf("backends %v %v", st, err)
		}
		return nil
	})
	after := home()
	for _, c := range clients {
		if before[c] != "1" && after[c] != before[c] {
			t.Errorf("client %s moved from %s to %s though its backend stayed", c, before[c], after[c])
		}
		if after[c] == "1" {
			t.Errorf("client %s still reaches stopped instance 1", c)
		}
	}
}

// lbInstanceView returns the raw instance view of a scale-set instance.
func lbInstanceView(e *Env, set, id string) string {
	e.T.Helper()
	var raw json.RawMessage
	if _, err := e.Client.Do(context.Background(), http.MethodGet, e.Client.ResourceID("default", arm.TypeScaleSet, set)+"/virtualMachines/"+id+"/instanceView", nil, &raw); err != nil {
		e.T.Fatal(err)
	}
	return string(raw)
}

// lbHasStatus reports whether an instance view has a status with code.
func lbHasStatus(view, code string) bool {
	var v struct {
		Statuses []struct {
			Code string `json:"code"`
		} `json:"statuses"`
	}
	if json.Unmarshal([]byte(view), &v) != nil {
		return false
	}
	for _, s := range v.Statuses {
		if strings.EqualFold(s.Code, code) {
			return true
		}
	}
	return false
}

// The public frontend holds 10,000 concurrent connections, each proxied to a
// backend (one request answered on each, all kept open at once). The daemon
// needs two descriptors per connection: where the hard RLIMIT_NOFILE is
// below that and cannot be raised (no CAP_SYS_RESOURCE), as many connections
// as it allows are opened instead.
func TestLBTenThousandConnections(t *testing.T) {
	if raceDaemon {
		t.Skip("a capacity test: built with -race the daemon measures the race detector's overhead; scripts/test.sh runs it again without -race")
	}
	n := 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 2*uint64(n)+1000 {
		raised := syscall.Rlimit{Cur: 2*uint64(n) + 1000, Max: 2*uint64(n) + 1000}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
		} else {
			n = int(lim.Max-1000) / 2
			t.Logf("hard open-file limit %d cannot be raised (%v): %d connections instead of 10000", lim.Max, err, n)
		}
	}
	if cur := (syscall.Rlimit{}); syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur) == nil && cur.Cur < cur.Max {
		up := syscall.Rlimit{Cur: cur.Max, Max: cur.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &cur) })
	}
	if n < 1000 {
		t.Skipf("the open-file limit allows only %d connections", n)
	}
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/") + ":80"

	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var mu sync.Mutex
	per := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			conns[i] = c
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: web\r\n\r\n")); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			per[lbInstanceOf(string(body))]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d connections failed, first: %v", len(failed), n, failed[0])
	}
	if per["0"]+per["1"]+per["2"] != n || per["0"] < n/3-1 || per["1"] < n/3-1 || per["2"] < n/3-1 {
		t.Fatalf("answers per instance %v, want %d spread evenly", per, n)
	}
	v, err := lbHealth(e, "webLB")
	if err != nil {
		t.Fatal(err)
	}
	var active int64
	for _, b := range v.Rules[0].Backends {
		active += b.Active
	}
	if active != int64(n) {
		t.Errorf("the load balancer counts %d active connections, want %d", active, n)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d connections open at once: %v", n, per)
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	Eventually(t, 30*time.Second, "connections close", func() error {
		v, err := lbHealth(e, "webLB")
		if err != nil {
			return err
		}
		for _, b := range v.Rules[0].Backends {
			if b.Active != 0 {
				return fmt.Errorf("backend %s still has %d active", b.Name, b.Active)
			}
		}
		return nil
	})
	if _, err := lbHit(url, netip.Addr{}); err != nil {
		t.Errorf("after the connections closed: %v", err)
	}
}

// Restart, reimage, stop/start and delete-instances under steady load: each
// instance drains before its app goes away and rejoins once probed up, so no
// request fails.
func TestLBNoFailuresThroughInstanceOperations(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05", Drain: "2s"})
	url := lbCreate(e, "web", 4, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)

	rs := lbWithLoad(url, 4, func() {
		for _, op := range [][]string{
			{"restart", "-n", "web", "--instance-ids", "1"},
			{"reimage", "-n", "web", "--instance-ids", "2"},
			{"stop", "-n", "web", "--instance-ids", "3"},
			{"start", "-n", "web", "--instance-ids", "3"},
			{"delete-instances", "-n", "web", "--instance-ids", "0"},
		} {
			e.MustCLI(append(op, "-o", "none")...)
			lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
			time.Sleep(200 * time.Millisecond)
		}
	})
	per, errs, nerr := lbSummary(rs)
	t.Logf("%d requests through restart, reimage, stop, start and delete: %v", len(rs), per)
	if nerr != 0 {
		t.Fatalf("%d of %d requests failed: %v", nerr, len(rs), errs)
	}
	if len(per) != 4 || per["0"] == 0 {
		t.Errorf("answers per instance %v, want all four instances (0 before its deletion)", per)
	}
	if n := len(e.Instances("web")); n != 3 {
		t.Errorf("%d instances left, want 3", n)
	}
}

// A Udp rule: each new flow (client address and port) goes to the next
// healthy backend, and a flow's datagrams stay on its backend.
func TestLBUdpRule(t *testing.T) {
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, lbAppCommand(80))
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "webLB", "-n", "udp9999", "--protocol", "Udp",
		"--frontend-port", "9999", "--backend-port", "9999", "--probe-name", "httpProbe", "-o", "none")
	lbWaitAllUp(e, "webLB", "udp9999", "web", 30*time.Second)
	front := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/") + ":9999"

	ask := func(c net.Conn, msg string) (string, error) {
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(string(buf[:n]), msg) {
			return "", fmt.Errorf("answer %q does not echo %q", buf[:n], msg)
		}
		return lbInstanceOf(string(buf[:n])), nil
	}
	per := map[string]int{}
	for i := 0; i < 6; i++ {
		c, err := net.Dial("udp", front)
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		for j := 0; j < 3; j++ {
			id, err := ask(c, fmt.Sprintf("flow %d datagram %d", i, j))
			if err != nil {
				c.Close()
				t.Fatalf("flow %d datagram %d: %v", i, j, err)
			}
			if first == "" {
				first = id
			} else if id != first {
				t.Errorf("flow %d moved from instance %s to %s", i, first, id)
			}
		}
		c.Close()
		per[first]++
	}
	if per["0"] != 2 || per["1"] != 2 || per["2"] != 2 {
		t.Errorf("6 UDP flows over 3 backends: %v, want 2 each", per)
	}
}

// After a daemon crash (SIGKILL) and restart, the load balancer serves again
// from the same frontend, with the workloads that kept running.
func TestLBAfterDaemonCrash(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	e.Kill()
	if _, err := lbHit(url, netip.Addr{}); err == nil {
		t.Fatal("the frontend answered with the daemon dead")
	}
	e.Serve()
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	got := lbCount(t, url, 30)
	if got["0"] != 10 || got["1"] != 10 || got["2"] != 10 {
		t.Fatalf("after the restart: got %v, want 10 each", got)
	}
}

// Load balancers of the same name in two resource groups both serve.
func TestLBSameNameInTwoGroups(t *testing.T) {
	metrics := lbMetricsAddr(t)
	e := Start(t, Options{ProbeScale: "0.05", Extra: []string{"--metrics-addr", metrics}})
	url1 := lbCreate(e, "web", 2, webapp)
	e.MustCLI("group", "create", "-n", "rg2", "-l", "eastus", "-o", "none")
	e.MustCLI("-g", "rg2", "create", "-n", "web", "--instance-count", "2", "--ssh-key-values", lbKeyFile(t),
		"--lb-rule-port", "80", "--disable-overprovision", "--custom-script", webapp, "-o", "none")
	var pip struct {
		IPAddress string `json:"ipAddress"`
	}
	e.JSON(&pip, "-g", "rg2", "network", "public-ip", "show", "-n", "webLBPublicIP")
	url2 := "http://" + pip.IPAddress + "/"
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	for _, u := range []string{url1, url2} {
		Eventually(t, 30*time.Second, "both load balancers answer", func() error {
			_, err := lbHit(u, netip.Addr{})
			return err
		})
	}
	// Their metrics are told apart by the group.
	text, err := lbScrape(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{`lb="webLB"`, `lb="rg2/webLB"`} {
		if _, ok := lbMetric(text, "vmss_lb_probe_up", l); !ok {
			t.Errorf("metrics have no vmss_lb_probe_up{%s}", l)
		}
	}
}
