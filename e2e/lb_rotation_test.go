package e2e

// End-to-end tests of round-robin through the public frontend: rotation,
// stop and start, the places probe state is shown, a daemon crash, and
// two load balancers of one name in two groups.

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const webapp = "exec vmss webapp --addr :80"

// Three healthy backends, 30 new connections: 10 each. Probe state shows in
// lb show, the API, the instance view and the metrics. A stopped instance
// leaves the rotation and comes back when started.
func TestLBRoundRobinStatusAndStopStart(t *testing.T) {
	t.Parallel()
	metrics := lbMetricsAddr(t)
	e := Start(t, Options{Extra: []string{"--metrics-addr", metrics}})
	url := lbCreateUp(e, "web", 3, webapp)

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

// After a daemon crash (SIGKILL) and restart, the load balancer serves again
// from the same frontend, with the workloads that kept running.
func TestLBAfterDaemonCrash(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreateUp(e, "web", 3, webapp)
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
	t.Parallel()
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
