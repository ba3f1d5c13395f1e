package dataplane_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/machine/dataplane"
	"github.com/vmss-emulator/vmss/machine/machinetest"
	"github.com/vmss-emulator/vmss/reconcile"
)

var _ dataplane.Network = (*machinetest.Network)(nil)

const (
	vnetA   = "vmsst-vnet-a"
	lbKey   = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/loadbalancers/weblb"
	pipKey  = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/publicipaddresses/jbpip"
	ctxWait = 10 * time.Second
)

func newPlane(t *testing.T) (*dataplane.Plane, *machinetest.Network) {
	t.Helper()
	fn := machinetest.NewNetwork()
	p := dataplane.New(dataplane.Config{Network: fn})
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p, fn
}

// backend is a TCP server on loopback that answers each line with its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := io.WriteString(c, name+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// freePort returns a port free on 127.0.0.1 now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// ask connects to addr, sends a line and returns the answer.
func ask(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ctxWait)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ctxWait))
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// holdFlowTo opens connections to addr until one is answered by want, and
// returns that one open (the others are closed).
func holdFlowTo(t *testing.T, addr, want string) net.Conn {
	t.Helper()
	for range 20 {
		c, err := net.DialTimeout("tcp", addr, ctxWait)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ctxWait))
		if _, err := io.WriteString(c, "hi\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(line) == want {
			c.SetDeadline(time.Time{})
			return c
		}
		c.Close()
	}
	t.Fatalf("no connection to %s reached %s", addr, want)
	return nil
}

func loop(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

func TestNATForwardsIntoOpenVNetsOnly(t *testing.T) {
	p, fn := newPlane(t)
	fn.Route(vnetA, "10.0.0.4:22", backend(t, "web0"))
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", nil); err != nil {
		t.Fatal(err)
	}
	open, closed := freePort(t), freePort(t)
	plan := &reconcile.Plan{NAT: []reconcile.NATMapping{
		{Owner: lbKey, Name: "natpool.0", Protocol: "Tcp", Public: loop(open), VNetNetns: vnetA,
			Backend: netip.MustParseAddrPort("10.0.0.4:22"), Instance: "web_0"},
		{Owner: lbKey, Name: "natpool.1", Protocol: "Tcp", Public: loop(closed), VNetNetns: "vmsst-vnet-not-yet",
			Backend: netip.MustParseAddrPort("10.1.0.4:22"), Instance: "other_0"},
	}}
	if errs := p.Apply(context.Background(), plan); len(errs) != 0 {
		t.Fatalf("apply: %v", errs)
	}
	if got, err := ask(t, loop(open).String()); err != nil || got != "web0" {
		t.Fatalf("through NAT: %q, %v; want web0", got, err)
	}
	if _, err := ask(t, loop(closed).String()); err == nil {
		t.Fatalf("a mapping into a VNET that is not open is forwarded")
	}
	if d := fn.Dials(); len(d) != 1 || d[0].VNet != vnetA || d[0].Addr != "10.0.0.4:22" || d[0].Src != dataplane.InternetSource {
		t.Fatalf("dials into the VNET: %+v; want one to 10.0.0.4:22 from the Internet address %v", d, dataplane.InternetSource)
	}
	view := p.LoadBalancer(lbKey)
	if len(view.NAT) != 1 || view.NAT[0].Name != "natpool.0" || view.NAT[0].Frontend != loop(open) || view.NAT[0].TotalConnections != 1 {
		t.Fatalf("NAT view: %+v", view.NAT)
	}
	if len(p.LoadBalancer(pipKey).NAT) != 0 {
		t.Fatalf("another owner sees the load balancer's forwards")
	}
	// A plan without the mapping stops forwarding it.
	if errs := p.Apply(context.Background(), &reconcile.Plan{}); len(errs) != 0 {
		t.Fatal(errs)
	}
	if _, err := ask(t, loop(open).String()); err == nil {
		t.Fatalf("a removed mapping still forwards")
	}
}

func TestNATFallsBackWhenThePortIsTakenOnTheHost(t *testing.T) {
	p, fn := newPlane(t)
	fn.Route(vnetA, "10.0.0.9:22", backend(t, "jumpbox"))
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", nil); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0") // the host's own sshd
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := uint16(taken.Addr().(*net.TCPAddr).Port)
	fallback := freePort(t)
	jump := reconcile.NATMapping{Owner: pipKey, Name: "jumpbox ssh", Protocol: "Tcp", Public: loop(takenPort),
		VNetNetns: vnetA, Backend: netip.MustParseAddrPort("10.0.0.9:22"), Instance: "jumpbox", FallbackPorts: []uint16{fallback}}
	if errs := p.Apply(context.Background(), &reconcile.Plan{NAT: []reconcile.NATMapping{jump}}); len(errs) != 0 {
		t.Fatalf("apply: %v", errs)
	}
	if ep := p.Endpoint("jumpbox"); ep != loop(fallback).String() {
		t.Fatalf("endpoint %q, want the fallback %s", ep, loop(fallback))
	}
	if got, err := ask(t, loop(fallback).String()); err != nil || got != "jumpbox" {
		t.Fatalf("through the fallback port: %q, %v", got, err)
	}
	// The port that worked stays in use when the first one frees up.
	taken.Close()
	if errs := p.Apply(context.Background(), &reconcile.Plan{NAT: []reconcile.NATMapping{jump}}); len(errs) != 0 {
		t.Fatalf("apply again: %v", errs)
	}
	if ep := p.Endpoint("jumpbox"); ep != loop(fallback).String() {
		t.Fatalf("endpoint moved to %q; want it to stay on %s", ep, loop(fallback))
	}

	// Every candidate taken: the mapping fails for its owner, with a reason
	// on the VM; the other mappings are forwarded.
	block := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	b1, b2 := block(), block()
	jump2 := jump
	jump2.Instance, jump2.Name = "jumpbox2", "jumpbox2 ssh"
	jump2.Public = loop(uint16(b1.Addr().(*net.TCPAddr).Port))
	jump2.FallbackPorts = []uint16{uint16(b2.Addr().(*net.TCPAddr).Port)}
	errs := p.Apply(context.Background(), &reconcile.Plan{NAT: []reconcile.NATMapping{jump, jump2}})
	if errs[pipKey] == nil || !strings.Contains(errs[pipKey].Error(), "fallback ports") {
		t.Fatalf("errors %v; want the owner told every port is taken", errs)
	}
	if err := p.EndpointError("jumpbox2"); err == nil || p.Endpoint("jumpbox2") != "" {
		t.Fatalf("jumpbox2: endpoint %q, error %v; want none and a reason", p.Endpoint("jumpbox2"), err)
	}
	if p.Endpoint("jumpbox") != loop(fallback).String() || p.EndpointError("jumpbox") != nil {
		t.Fatalf("jumpbox lost its endpoint: %q %v", p.Endpoint("jumpbox"), p.EndpointError("jumpbox"))
	}
	p.Forget("jumpbox2")
	if p.EndpointError("jumpbox2") != nil {
		t.Fatalf("a forgotten instance keeps its endpoint error")
	}
}

func lbPlan(frontend netip.AddrPort, backends ...reconcile.BackendPlan) reconcile.LBPlan {
	return reconcile.LBPlan{
		Key: lbKey, Name: "webLB",
		Pools:  []reconcile.PoolPlan{{Name: "pool", VNetNetns: vnetA, DrainPeriod: time.Minute, Backends: backends}},
		Probes: []reconcile.ProbePlan{{Name: "tcp22", Protocol: "Tcp", Port: 22, Interval: 20 * time.Millisecond, Threshold: 1}},
		Rules: []reconcile.RulePlan{{Name: "rule22", Protocol: "Tcp", Public: true, Frontend: frontend.Addr(),
			FrontendPort: int(frontend.Port()), BackendPort: 22, Distribution: "Default", Pool: "pool", Probe: "tcp22"}},
	}
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ctxWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLBBalancesOverProbedBackendsAndReportsThem(t *testing.T) {
	p, fn := newPlane(t)
	fn.Route(vnetA, "10.0.0.4:22", backend(t, "web0"))
	fn.Route(vnetA, "10.0.0.5:22", backend(t, "web1"))
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", nil); err != nil {
		t.Fatal(err)
	}
	front := loop(freePort(t))
	plan := &reconcile.Plan{LBs: []reconcile.LBPlan{lbPlan(front,
		reconcile.BackendPlan{Instance: "web_0", Addr: netip.MustParseAddr("10.0.0.4")},
		reconcile.BackendPlan{Instance: "web_1", Addr: netip.MustParseAddr("10.0.0.5")},
		reconcile.BackendPlan{Instance: "web_2", Addr: netip.MustParseAddr("10.0.0.6")}, // nothing answers
	)}}
	if errs := p.Apply(context.Background(), plan); len(errs) != 0 {
		t.Fatalf("apply: %v", errs)
	}
	probe := func(netns string) string {
		ps := p.Probes(netns)
		if len(ps) != 1 {
			return fmt.Sprint(ps)
		}
		return ps[0].LoadBalancer + "/" + ps[0].Probe + "/" + ps[0].State
	}
	waitFor(t, "probes to settle", func() bool {
		return probe("web_0") == "webLB/tcp22/Up" && probe("web_1") == "webLB/tcp22/Up" && probe("web_2") == "webLB/tcp22/Down"
	})
	seen := map[string]int{}
	for range 6 {
		got, err := ask(t, front.String())
		if err != nil {
			t.Fatal(err)
		}
		seen[got]++
	}
	if seen["web0"] == 0 || seen["web1"] == 0 || len(seen) != 2 {
		t.Fatalf("answers %v; want both healthy backends and only them", seen)
	}
	for _, d := range fn.Dials() {
		if d.Addr == "10.0.0.6:22" && d.Src != dataplane.ProbeSource {
			t.Fatalf("a connection went to the probed-down backend: %+v", d)
		}
		if d.Src != dataplane.ProbeSource && d.Src != dataplane.InternetSource {
			t.Fatalf("a flow of a public frontend came from %v, want the Internet address %v: %+v", d.Src, dataplane.InternetSource, d)
		}
	}
	if !slices.ContainsFunc(fn.Dials(), func(d machinetest.Dial) bool { return d.Src == dataplane.ProbeSource }) {
		t.Fatalf("no probe came from %s", dataplane.ProbeSource)
	}
	view := p.LoadBalancer(lbKey)
	if len(view.Rules) != 1 || view.Rules[0].Name != "rule22" || view.Rules[0].TotalConnections != 6 || len(view.Rules[0].Backends) != 3 {
		t.Fatalf("rules view: %+v", view.Rules)
	}
	states := map[string]string{}
	for _, b := range view.Rules[0].Backends {
		states[b.Name] = b.State
	}
	if states["web_0"] != "Up" || states["web_2"] != "Down" {
		t.Fatalf("backend states %v", states)
	}
	if len(view.Pools) != 1 || len(view.Pools[0].Backends) != 3 {
		t.Fatalf("pools view: %+v", view.Pools)
	}

	// Drain takes the instance out while its flow runs: its probe state
	// says Draining, new connections go to the other backend, and Drain
	// returns once the flow ends (the pool's drain period is long).
	held := holdFlowTo(t, front.String(), "web0")
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background(), "web_0") }()
	waitFor(t, "web_0 to drain", func() bool { return probe("web_0") == "webLB/tcp22/Draining" })
	for range 3 {
		if got, err := ask(t, front.String()); err != nil || got != "web1" {
			t.Fatalf("while draining: %q, %v; want web1", got, err)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while a flow was established", err)
	default:
	}
	held.Close()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if got := p.Probes("web_0"); len(got) != 0 {
		t.Fatalf("a drained instance is still probed: %+v", got)
	}
	// An instance without flows leaves at once: Drain does not wait for
	// the pool's drain period (a minute).
	idle, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Drain(idle, "web_1"); err != nil {
		t.Fatalf("Drain of an instance without flows: %v", err)
	}
	if got := p.Probes("web_1"); len(got) != 0 {
		t.Fatalf("a drained idle instance is still probed: %+v", got)
	}

	// A plan without the load balancer closes its engine.
	if errs := p.Apply(context.Background(), &reconcile.Plan{}); len(errs) != 0 {
		t.Fatal(errs)
	}
	if _, err := ask(t, front.String()); err == nil {
		t.Fatalf("a removed load balancer still answers")
	}
	if v := p.LoadBalancer(lbKey); v.Rules != nil || v.Pools != nil || len(p.Probes("web_1")) != 0 {
		t.Fatalf("a removed load balancer is still reported: %+v", v)
	}
}

func TestLBInternalFrontendAndProtocolAll(t *testing.T) {
	p, fn := newPlane(t)
	fn.Route(vnetA, "10.0.0.4:22", backend(t, "web0"))
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", nil); err != nil {
		t.Fatal(err)
	}
	inner := netip.MustParseAddrPort("10.0.0.100:2222")
	fn.Route(vnetA, inner.String(), loop(freePort(t)).String())
	lp := lbPlan(inner, reconcile.BackendPlan{Instance: "web_0", Addr: netip.MustParseAddr("10.0.0.4")})
	lp.Rules[0].Public, lp.Rules[0].Protocol = false, "All"
	lp.Rules[0].VNetNetns, lp.Rules[0].Bridge = vnetA, "vmssbr0"
	lp.Probes, lp.Rules[0].Probe = nil, ""
	if errs := p.Apply(context.Background(), &reconcile.Plan{LBs: []reconcile.LBPlan{lp}}); len(errs) != 0 {
		t.Fatalf("apply: %v", errs)
	}
	want := machinetest.Frontend{VNet: vnetA, Bridge: "vmssbr0", IP: inner.Addr()}
	if f := fn.Frontends(); len(f) == 0 || f[0] != want {
		t.Fatalf("frontend addresses %+v; want %+v", f, want)
	}
	var names []string
	for _, r := range p.LoadBalancer(lbKey).Rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"rule22/tcp", "rule22/udp"}) {
		t.Fatalf("rules %v; want one per protocol", names)
	}
	host, _ := fn.Dialer(vnetA, netip.Addr{})(context.Background(), "tcp", inner.String())
	if host == nil {
		t.Fatalf("the internal frontend does not listen inside the VNET")
	}
	if _, err := host.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the internal frontend's flow to reach the backend", func() bool {
		return slices.ContainsFunc(fn.Dials(), func(d machinetest.Dial) bool { return d.Addr == "10.0.0.4:22" })
	})
	host.Close()
	for _, d := range fn.Dials() {
		if d.Addr == "10.0.0.4:22" && d.Src.IsValid() {
			t.Fatalf("an internal frontend's flow came from %v, want the gateway (the kernel's choice) inside the VNET", d.Src)
		}
	}

	// A frontend address that cannot be added fails the load balancer, by key.
	fn.FrontendErr = errors.New("bridge gone")
	errs := p.Apply(context.Background(), &reconcile.Plan{LBs: []reconcile.LBPlan{lp}})
	if err := errs[lbKey]; err == nil || !strings.Contains(err.Error(), "bridge gone") {
		t.Fatalf("errors %v; want the frontend's failure for %s", errs, lbKey)
	}
}

func TestLBPoolWithoutVNetRefuses(t *testing.T) {
	p, _ := newPlane(t)
	front := loop(freePort(t))
	lp := lbPlan(front, reconcile.BackendPlan{Instance: "web_0", Addr: netip.MustParseAddr("10.0.0.4")})
	lp.Probes, lp.Rules[0].Probe = nil, ""
	if errs := p.Apply(context.Background(), &reconcile.Plan{LBs: []reconcile.LBPlan{lp}}); len(errs) != 0 {
		t.Fatalf("apply: %v", errs)
	}
	if got, err := ask(t, front.String()); err == nil {
		t.Fatalf("a pool whose VNET is not open answered %q", got)
	}
}

func TestDNSServersFollowTheVNets(t *testing.T) {
	p, fn := newPlane(t)
	prefixes := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", prefixes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the DNS server", func() bool { return fn.DNS(vnetA) != nil })
	first := fn.DNS(vnetA)
	plan := &reconcile.Plan{DNS: []reconcile.DNSZone{
		{VNetNetns: vnetA, Records: []reconcile.DNSRecord{{Name: "web000000", IP: netip.MustParseAddr("10.0.0.4")}}},
		{VNetNetns: "vmsst-vnet-not-yet", Records: []reconcile.DNSRecord{{Name: "x", IP: netip.MustParseAddr("10.1.0.4")}}},
	}}
	if errs := p.Apply(context.Background(), plan); len(errs) != 0 {
		t.Fatal(errs)
	}
	if r := first.Records(); len(r) != 1 || r[0].Name != "web000000" || r[0].IP != netip.MustParseAddr("10.0.0.4") {
		t.Fatalf("records %+v", r)
	}
	// The same VNET again keeps its server; a new suffix replaces it.
	if err := p.OpenVNet(vnetA, "abc.internal.cloudapp.net", prefixes); err != nil {
		t.Fatal(err)
	}
	if fn.DNS(vnetA) != first {
		t.Fatalf("an unchanged VNET got a new DNS server")
	}
	if err := p.OpenVNet(vnetA, "xyz.internal.cloudapp.net", prefixes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new DNS server", func() bool { s := fn.DNS(vnetA); return s != nil && s != first })
	p.CloseVNet(vnetA)
	if fn.IsOpen(vnetA) || fn.DNS(vnetA) != nil {
		t.Fatalf("a closed VNET is still open or served")
	}
}
