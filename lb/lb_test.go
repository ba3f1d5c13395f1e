package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/tcpfd"
)

func TestRoundRobinExact(t *testing.T) {
	f := newFleet(t)
	b0, b1, b2 := f.start(0), f.start(1), f.start(2)
	e, reg := newEngine(t)
	if err := e.Apply(context.Background(), f.config(f.probe(50*time.Millisecond), b0, b1, b2)); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Up, "b0", "b1", "b2")
	c := client(false, netip.Addr{})
	count := map[string]int{}
	for i := range 30 {
		who, err := get(c, f.url())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		count[who]++
	}
	if count["b0"] != 10 || count["b1"] != 10 || count["b2"] != 10 {
		t.Fatalf("30 requests over 3 healthy backends: %v, want 10 each", count)
	}
	// Metrics agree with what the clients saw.
	for _, b := range []string{"b0", "b1", "b2"} {
		if got := metricValue(t, reg, "vmss_lb_connections_total", "backend", b); got != 10 {
			t.Errorf("vmss_lb_connections_total{backend=%s} = %v, want 10", b, got)
		}
		if got := metricValue(t, reg, "vmss_lb_probe_up", "backend", b); got != 1 {
			t.Errorf("vmss_lb_probe_up{backend=%s} = %v, want 1", b, got)
		}
	}
	if n := seriesCount(t, reg, "vmss_lb_bytes_total"); n != 6 {
		t.Errorf("vmss_lb_bytes_total series = %d, want 3 backends × 2 directions", n)
	}
	snap := e.Snapshot()
	if snap.Rules[0].TotalConnections != 30 || snap.Pools[0].Backends[0].BytesOut == 0 || snap.Pools[0].Backends[0].Probes[0].LastResult != "success" {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestSourceIPAffinity(t *testing.T) {
	for _, dist := range []Distribution{SourceIP, SourceIPProtocol} {
		t.Run(string(dist), func(t *testing.T) {
			f := newFleet(t)
			bs := []*backendSrv{f.start(0), f.start(1), f.start(2)}
			e, _ := newEngine(t)
			cfg := f.config(nil, bs...)
			cfg.Rules[0].LoadDistribution = dist
			if err := e.Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			used := map[string]bool{}
			for i := range 20 {
				c := client(false, f.ip(100+i))
				first := ""
				for j := range 4 {
					who, err := get(c, f.url())
					if err != nil {
						t.Fatal(err)
					}
					if j == 0 {
						first = who
					} else if who != first {
						t.Fatalf("client %v: request %d went to %s, first to %s", f.ip(100+i), j, who, first)
					}
				}
				used[first] = true
			}
			if len(used) < 2 {
				t.Fatalf("20 client addresses all landed on %v", used)
			}
		})
	}
}

func TestHealthThreshold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		results   string // o = success, x = failure
		want      State
	}{
		{"first success with threshold 1", 1, "o", Up},
		{"first failure with threshold 1", 1, "x", Down},
		{"unknown needs threshold successes", 3, "oo", Unknown},
		{"three successes", 3, "ooo", Up},
		{"interrupted run starts over", 3, "ooxoo", Unknown},
		{"up stays up below threshold failures", 2, "oox", Up},
		{"down after threshold failures", 2, "ooxx", Down},
		{"flapping never reaches threshold", 2, "ooxoxoxo", Up},
		{"back up", 2, "ooxxoo", Up},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := health{State: Unknown}
			for _, r := range tc.results {
				h = h.observe(r == 'o', tc.threshold)
			}
			if h.State != tc.want {
				t.Fatalf("after %s: %s, want %s", tc.results, h.State, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		p    Probe
		want int
	}{{Probe{}, 1}, {Probe{NumberOfProbes: 2}, 2}, {Probe{ProbeThreshold: 3, NumberOfProbes: 2}, 3}} {
		if got := tc.p.threshold(); got != tc.want {
			t.Errorf("threshold of %+v = %d, want %d", tc.p, got, tc.want)
		}
	}
	if (Probe{}).interval() != 15*time.Second || (Probe{Interval: time.Minute}).timeout() != 30*time.Second || (Probe{Interval: 5 * time.Second}).timeout() != 5*time.Second {
		t.Error("interval default 15 s and timeout min(interval, 30 s) not honoured")
	}
}

func TestProbeOnce(t *testing.T) {
	code := func(c int) http.HandlerFunc { return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(c) } }
	serve := func(h http.Handler, tlsOn bool) netip.AddrPort {
		srv := httptest.NewUnstartedServer(h)
		if tlsOn {
			srv.StartTLS() // self-signed
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return netip.MustParseAddrPort(srv.Listener.Addr().String())
	}
	hang := netip.MustParseAddrPort(func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0") // accepts (backlog) but never answers
		t.Cleanup(func() { ln.Close() })
		return ln.Addr().String()
	}())
	reset := netip.MustParseAddrPort(func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				proxy.Reset(c)
			}
		}()
		return ln.Addr().String()
	}())
	closedPort := netip.MustParseAddrPort(func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ln.Close()
		return ln.Addr().String()
	}())
	for _, tc := range []struct {
		name    string
		proto   Protocol
		target  netip.AddrPort
		healthy bool
		errHas  string
	}{
		{"http 200", Http, serve(code(200), false), true, ""},
		{"http 404", Http, serve(code(404), false), false, "HTTP 404"},
		{"http 500", Http, serve(code(500), false), false, "HTTP 500"},
		{"http 204 is not 200", Http, serve(code(204), false), false, "HTTP 204"},
		{"https 200 with a self-signed certificate", Https, serve(code(200), true), true, ""},
		{"http no answer", Http, hang, false, "no answer"},
		{"http reset", Http, reset, false, ""},
		{"tcp handshake", Tcp, serve(code(500), false), true, ""},
		{"tcp refused", Tcp, closedPort, false, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Probe{Protocol: tc.proto, Port: int(tc.target.Port()), RequestPath: "/health", Interval: 200 * time.Millisecond}
			start := time.Now()
			err := probeOnce(context.Background(), p, tc.target.Addr(), proxy.HostDial)
			if (err == nil) != tc.healthy || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("probe: %v, want healthy=%v (error containing %q)", err, tc.healthy, tc.errHas)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("probe took %v; timeout is min(interval, 30s) = 200ms", el)
			}
		})
	}
}

// countingDial wraps a dial seam and records the most connections open at once.
type countingDial struct {
	mu         sync.Mutex
	open, peak int
	dials      int
}

type countedConn struct {
	net.Conn
	d    *countingDial
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

func (d *countingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := proxy.HostDial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.open++
	d.dials++
	d.peak = max(d.peak, d.open)
	d.mu.Unlock()
	return &countedConn{Conn: c, d: d}, nil
}

func TestProbeOneInFlight(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // far slower than the interval
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	ap := netip.MustParseAddrPort(slow.Listener.Addr().String())
	var d countingDial
	// A 20 ms interval is also a 20 ms timeout: every probe fails, and the
	// next starts only after the previous one gave up.
	pr := newProber(Probe{Name: "p", Protocol: Http, Port: int(ap.Port()), RequestPath: "/", Interval: 20 * time.Millisecond, ProbeThreshold: 2},
		ap.Addr(), d.dial, nil, nil)
	go pr.run()
	time.Sleep(300 * time.Millisecond)
	pr.halt()
	h := pr.health()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.peak != 1 || d.open != 0 {
		t.Fatalf("peak %d probes in flight (open now %d), want 1", d.peak, d.open)
	}
	if d.dials < 5 || h.State != Down || h.FailRun < 2 || !strings.Contains(h.LastErr, "no answer") {
		t.Fatalf("%d probes, state %s after %d failures (%s); want Down on timeouts", d.dials, h.State, h.FailRun, h.LastErr)
	}
}

func TestFailoverUnderLoad(t *testing.T) {
	f := newFleet(t)
	b0, b1, b2 := f.start(0), f.start(1), f.start(2)
	e, _ := newEngine(t)
	probe := f.probe(40 * time.Millisecond)
	probe.Protocol = Tcp
	if err := e.Apply(context.Background(), f.config(probe, b0, b1, b2)); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Up, "b0", "b1", "b2")
	l := startLoad(f.url(), 3, false)
	defer l.stop()
	l.waitServed(t, 100)
	b1.stop()
	waitState(t, e, Down, "b1")
	_, errsAtDetection := l.snapshot()
	before, _ := l.snapshot()
	l.waitServed(t, 300)
	after, errs := l.snapshot()
	if len(errs) != len(errsAtDetection) {
		t.Fatalf("%d new errors after the failure was detected: %v", len(errs)-len(errsAtDetection), errs[len(errsAtDetection):])
	}
	if after["b1"] != before["b1"] {
		t.Fatalf("b1 got %d new requests after it was marked down", after["b1"]-before["b1"])
	}
	if after["b0"] == before["b0"] || after["b2"] == before["b2"] {
		t.Fatalf("healthy backends not used: before %v after %v", before, after)
	}
	t.Logf("errors before detection: %d (refused dials are retried on the next backend)", len(errsAtDetection))
}

// rawGet sends one HTTP/1.1 request on an existing connection.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("request on established connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return strings.Fields(string(b))[2]
}

func TestEstablishedFlowSurvivesProbeDown(t *testing.T) {
	f := newFleet(t)
	b0, b1 := f.start(0), f.start(1)
	e, _ := newEngine(t)
	if err := e.Apply(context.Background(), f.config(f.probe(40*time.Millisecond), b0, b1)); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Up, "b0", "b1")
	c, br := f.dialFrontend(t)
	first := rawGet(t, c, br)
	srv := map[string]*backendSrv{"b0": b0, "b1": b1}[first]
	srv.health.Store(500)
	waitState(t, e, Down, first)
	if again := rawGet(t, c, br); again != first {
		t.Fatalf("established flow moved from %s to %s", first, again)
	}
	for range 6 {
		if who, err := get(client(false, netip.Addr{}), f.url()); err != nil || who == first {
			t.Fatalf("new flow went to %s (%v), the down backend is %s", who, err, first)
		}
	}
}

func TestNoHealthyBackends(t *testing.T) {
	f := newFleet(t)
	b0, b1 := f.start(0), f.start(1)
	b0.health.Store(404)
	b1.health.Store(500)
	e, _ := newEngine(t)
	cfg := f.config(f.probe(40*time.Millisecond), b0, b1)
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Down, "b0", "b1")
	// AllProbedDown (default): new flows are refused.
	c, err := net.Dial("tcp", netip.AddrPortFrom(f.frontend(), uint16(f.port)).String())
	if err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("AllProbedDown: %v, want the client reset", err)
	}
	if e.Snapshot().Rules[0].Refused == 0 {
		t.Fatal("refused flow not counted")
	}
	// AllProbedUp: send to all members (the rule keeps its listener).
	cfg.Rules[0].NoHealthyBackendsBehavior = "allprobedup"
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for range 6 {
		who, err := get(client(false, netip.Addr{}), f.url())
		if err != nil {
			t.Fatalf("AllProbedUp: %v", err)
		}
		count[who]++
	}
	if count["b0"] != 3 || count["b1"] != 3 {
		t.Fatalf("AllProbedUp spread %v, want 3 and 3", count)
	}
}

// TestPoolChangesUnderLoad adds and drains backends under steady load and
// requires zero failed requests, with keep-alive off and on.
func TestPoolChangesUnderLoad(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			f := newFleet(t)
			b0, b1 := f.start(0), f.start(1)
			e, _ := newEngine(t)
			probe := f.probe(50 * time.Millisecond)
			cfg := f.config(probe, b0, b1)
			cfg.Pools[0].DrainPeriod = 300 * time.Millisecond
			if err := e.Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			waitState(t, e, Up, "b0", "b1")
			l := startLoad(f.url(), 4, keepAlive)
			l.waitServed(t, 100)

			// Scale out: b2 joins once probed up.
			b2 := f.start(2)
			if err := e.AddBackend("bepool", b2.member()); err != nil {
				t.Fatal(err)
			}
			waitState(t, e, Up, "b2")
			l.waitServed(t, 200)

			// Scale in b0 with Drain; stop its server only once it is gone.
			done, err := e.Drain("bepool", "b0", 0)
			if err != nil {
				t.Fatal(err)
			}
			<-done
			hitsAtRemoval := b0.hits.Load()
			b0.stop()
			l.waitServed(t, 200)

			// Scale in b1 through Apply (member dropped from desired), add b3.
			b3 := f.start(3)
			cfg.Pools[0].Backends = []Backend{b2.member(), b3.member()}
			if err := e.Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			waitState(t, e, Up, "b3")
			deadline := time.Now().Add(5 * time.Second)
			for len(e.Snapshot().Pools[0].Backends) != 2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			b1AtRemoval := b1.hits.Load()
			b1.stop()
			l.waitServed(t, 200)
			l.stop()

			by, errs := l.snapshot()
			if b1.hits.Load() != b1AtRemoval {
				t.Fatalf("b1 served after it was removed")
			}
			if len(errs) != 0 {
				t.Fatalf("%d failed requests during pool changes (first: %v); served %v", len(errs), errs[0], by)
			}
			// Without keep-alive every request is a new flow, so both new
			// backends take part; with it, clients move only when their
			// connection ends, so only the pair is sure to be used.
			if (!keepAlive && (by["b2"] == 0 || by["b3"] == 0)) || by["b2"]+by["b3"] == 0 {
				t.Fatalf("added backends served too little: %v", by)
			}
			if b0.hits.Load() != hitsAtRemoval {
				t.Fatalf("b0 served after it was removed")
			}
			if names := e.Snapshot().Pools[0].Backends; len(names) != 2 || names[0].Name != "b2" || names[1].Name != "b3" {
				t.Fatalf("pool after changes: %+v", names)
			}
			t.Logf("served %v with 0 errors", by)
		})
	}
}

func TestDrainClosesLingeringFlows(t *testing.T) {
	f := newFleet(t)
	b0 := f.start(0)
	e, _ := newEngine(t)
	if err := e.Apply(context.Background(), f.config(nil, b0)); err != nil {
		t.Fatal(err)
	}
	c, br := f.dialFrontend(t)
	rawGet(t, c, br)
	start := time.Now()
	done, _ := e.Drain("bepool", "b0", 200*time.Millisecond)
	// During the drain period the established flow still works.
	if who := rawGet(t, c, br); who != "b0" {
		t.Fatalf("during drain: %s", who)
	}
	<-done
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("drain finished after %v with a flow open, period 200ms", el)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("flow after drain period: %v, want reset", err)
	}
	if len(e.Snapshot().Pools[0].Backends) != 0 {
		t.Fatal("drained backend still in the pool")
	}
	// An idle backend is removed at once.
	b1 := f.start(1)
	e.AddBackend("bepool", b1.member())
	start = time.Now()
	if err := e.RemoveBackend("bepool", "b1"); err != nil || time.Since(start) > time.Second {
		t.Fatalf("RemoveBackend: %v after %v", err, time.Since(start))
	}
}

func TestIdleTimeoutRule(t *testing.T) {
	f := newFleet(t)
	b0 := f.start(0)
	e, _ := newEngine(t)
	cfg := f.config(nil, b0)
	cfg.Rules[0].IdleTimeout = 150 * time.Millisecond
	cfg.Rules[0].EnableTCPReset = true
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", netip.AddrPortFrom(f.frontend(), uint16(f.port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rawGet(t, c, bufio.NewReader(c))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("idle flow with enableTcpReset: %v, want ECONNRESET", err)
	}
}

func TestUDPRule(t *testing.T) {
	f := newFleet(t)
	var members []Backend
	for i := range 2 {
		ip := f.ip(i + 1)
		uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(f.port))))
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		go func() {
			buf := make([]byte, 100)
			for {
				n, from, err := uc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				uc.WriteToUDPAddrPort(append([]byte(fmt.Sprintf("u%d:", i)), buf[:n]...), from)
			}
		}()
		members = append(members, Backend{Name: fmt.Sprintf("u%d", i), Addr: ip})
	}
	e, _ := newEngine(t)
	cfg := Config{
		Pools: []Pool{{Name: "bepool", Backends: members}},
		Rules: []Rule{{Name: "dns", Protocol: "udp", Frontend: f.frontend(), FrontendPort: f.port, BackendPort: f.port, BackendPool: "bepool"}},
	}
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i := range 4 {
		c, err := net.Dial("udp", netip.AddrPortFrom(f.frontend(), uint16(f.port)).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 2 { // a flow sticks to its backend
			c.Write([]byte("q"))
			buf := make([]byte, 100)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			count[string(buf[:n])]++
		}
	}
	if count["u0:q"] != 4 || count["u1:q"] != 4 {
		t.Fatalf("UDP flows %v, want 2 flows (4 answers) per backend", count)
	}
	if s := e.Snapshot(); s.Rules[0].ActiveConnections != 4 || s.Rules[0].Protocol != Udp {
		t.Fatalf("snapshot %+v", s.Rules[0])
	}
}

func TestApplyReconciles(t *testing.T) {
	f := newFleet(t)
	b0 := f.start(0)
	e, _ := newEngine(t)
	cfg := f.config(nil, b0)
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	c, br := f.dialFrontend(t)
	rawGet(t, c, br)

	// Same frontend, other settings, and a rename: the flow survives.
	cfg.Rules[0].LoadDistribution = SourceIP
	cfg.Rules[0].IdleTimeout = time.Minute
	cfg.Rules[0].Name = "http-renamed"
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	rawGet(t, c, br)
	if s := e.Snapshot(); len(s.Rules) != 1 || s.Rules[0].Name != "http-renamed" || s.Rules[0].LoadDistribution != SourceIP || s.Rules[0].ActiveConnections != 1 {
		t.Fatalf("after Apply: %+v", s.Rules)
	}

	// Invalid input changes nothing.
	bad := cfg
	bad.Rules = append([]Rule(nil), cfg.Rules...)
	bad.Rules[0].BackendPool = "nope"
	bad.Rules = append(bad.Rules, Rule{Name: "x", Frontend: f.frontend(), FrontendPort: f.port, BackendPort: 1, BackendPool: "bepool"})
	err := e.Apply(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), `backend pool "nope" does not exist`) || !strings.Contains(err.Error(), "both use frontend") {
		t.Fatalf("invalid config: %v", err)
	}
	rawGet(t, c, br)

	// A frontend taken by another program: a clear error, nothing changed.
	taken, err := net.Listen("tcp", netip.AddrPortFrom(f.frontend(), uint16(f.port+1)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	clash := cfg
	clash.Rules = append([]Rule(nil), cfg.Rules...)
	clash.Rules[0].FrontendPort = f.port + 1
	err = e.Apply(context.Background(), clash)
	var inUse *proxy.AddrInUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), fmt.Sprintf("%s:%d/tcp for load-balancing rule http-renamed is already in use by another program", f.frontend(), f.port+1)) {
		t.Fatalf("port in use: %v", err)
	}
	rawGet(t, c, br)

	// Moving the frontend closes the old socket and its flows.
	taken.Close()
	moved := clash
	if err := e.Apply(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("flow of a moved frontend still open")
	}
	if _, err := get(client(false, netip.Addr{}), fmt.Sprintf("http://%s:%d/", f.frontend(), f.port+1)); err != nil {
		t.Fatalf("moved frontend: %v", err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFleet(t)
	b0, b1 := f.start(0), f.start(1)
	started := runtime.NumGoroutine()
	e, err := New(Options{Name: "leak"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config(f.probe(10*time.Millisecond), b0, b1)
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Up, "b0", "b1")
	c, _ := net.Dial("tcp", netip.AddrPortFrom(f.frontend(), uint16(f.port)).String())
	rawGet(t, c, bufio.NewReader(c))
	e.Drain("bepool", "b0", time.Hour)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("flow open after Close")
	}
	c.Close()
	// Backend servers keep their own goroutines; everything else must end.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > started && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > started {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before the engine (base %d):\n%s", n, started, base, buf[:runtime.Stack(buf, true)])
	}
	if err := e.Apply(context.Background(), cfg); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
}

// A rule's series are looked up once per backend and cached; a rename, a
// rename back, and a backend removed and added again under its name still
// count every flow in the series of the current names.
func TestMetricsFollowRenamesAndReadds(t *testing.T) {
	f := newFleet(t)
	b0 := f.start(0)
	e, reg := newEngine(t)
	cfg := f.config(nil, b0)
	apply := func(name string, members ...*backendSrv) {
		t.Helper()
		c := f.config(nil, members...)
		c.Rules[0].Name = name
		if err := e.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	requests := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := get(client(false, netip.Addr{}), f.url()); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
	}
	conns := func(rule string) float64 {
		t.Helper()
		return metricValue(t, reg, "vmss_lb_connections_total", "rule", rule)
	}
	apply(cfg.Rules[0].Name, b0)
	requests(3)
	apply("renamed", b0)
	apply("http", b0) // back to the first name, whose series were dropped, with no flow between
	requests(4)
	if got := conns("http"); got != 4 {
		t.Fatalf("after renaming back: vmss_lb_connections_total{rule=http} = %v, want 4", got)
	}
	apply("renamed", b0)
	requests(2)
	if got := conns("renamed"); got != 2 {
		t.Fatalf("after a rename: vmss_lb_connections_total{rule=renamed} = %v, want 2", got)
	}
	apply("http", b0)
	requests(1)
	if err := e.RemoveBackend("bepool", b0.name); err != nil {
		t.Fatal(err)
	}
	e.mu.RLock()
	cached := 0
	for _, r := range e.rules {
		r.series.Range(func(any, any) bool { cached++; return true })
	}
	e.mu.RUnlock()
	if cached != 0 {
		t.Fatalf("%d cached series of a removed backend", cached)
	}
	apply("http", b0)
	requests(5)
	if got := conns("http"); got != 5 { // a removed backend's series are dropped
		t.Fatalf("after the backend came back: vmss_lb_connections_total{rule=http} = %v, want 5", got)
	}
	if got := metricValue(t, reg, "vmss_lb_bytes_total", "rule", "http"); got == 0 {
		t.Fatal("no bytes counted after the backend came back")
	}
}

// A backend whose connect would block on the proxy's event loop (its
// handshake did not complete within connect(2)) is dialled again where the
// proxy may wait: the client is served by the backend round-robin chose,
// and no failed connect is counted.
func TestDialThatWouldBlockIsNotAFailure(t *testing.T) {
	if os.Getenv("VMSS_PROXY_LOOPS") == "0" {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted and dialled on goroutines, where a dial may wait")
	}
	f := newFleet(t)
	b0, b1 := f.start(0), f.start(1)
	e, _ := newEngine(t)
	cfg := f.config(f.probe(50*time.Millisecond), b0, b1)
	var wouldBlock, waited atomic.Int32
	cfg.Pools[0].Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !tcpfd.MayWait(ctx) {
			wouldBlock.Add(1)
			return nil, fmt.Errorf("dial %s: %w", addr, tcpfd.ErrWouldBlock)
		}
		waited.Add(1)
		return proxy.HostDial(ctx, network, addr)
	}
	cfg.Pools[0].ProbeDial = proxy.HostDial
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, Up, "b0", "b1")
	count := map[string]int{}
	for i := range 4 {
		who, err := get(client(false, netip.Addr{}), f.url())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		count[who]++
	}
	if count["b0"] != 2 || count["b1"] != 2 {
		t.Fatalf("4 requests: %v, want 2 each", count)
	}
	if wouldBlock.Load() != 4 || waited.Load() != 4 {
		t.Fatalf("dials without waiting %d, waiting %d; want 4 and 4 (each client first on the event loop)", wouldBlock.Load(), waited.Load())
	}
	for _, b := range e.Snapshot().Pools[0].Backends {
		if b.FailedConnects != 0 {
			t.Fatalf("backend %s: %d failed connects counted for dials that would block", b.Name, b.FailedConnects)
		}
	}
}
