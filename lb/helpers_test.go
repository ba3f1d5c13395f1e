package lb

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/webapp"
)

// fleet is a set of real HTTP backends on distinct 127.x addresses that
// share one port, as scale set instances share a backend port.
type fleet struct {
	t    *testing.T
	base [3]byte // 127.base[0].base[1].*
	port int
	mu   sync.Mutex
	srvs map[string]*backendSrv
}

type backendSrv struct {
	name   string
	addr   netip.Addr
	health atomic.Int32 // status code of /health
	hits   atomic.Int64 // requests to /
	srv    *http.Server
	ln     net.Listener
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	for range 20 {
		f := &fleet{t: t, base: [3]byte{127, byte(100 + rand.IntN(150)), byte(rand.IntN(250))}, port: 20000 + rand.IntN(20000), srvs: map[string]*backendSrv{}}
		ln, err := net.Listen("tcp", f.ip(200).String()+":"+fmt.Sprint(f.port)) // the frontend's address must be free
		if err != nil {
			continue
		}
		ln.Close()
		return f
	}
	t.Fatal("no free address for a test fleet")
	return nil
}

func (f *fleet) ip(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{f.base[0], f.base[1], f.base[2], byte(n)})
}

// frontend is the address rules of this fleet listen on.
func (f *fleet) frontend() netip.Addr { return f.ip(200) }

// start runs backend number n (name "b<n>", address .n+1).
func (f *fleet) start(n int) *backendSrv {
	f.t.Helper()
	b := &backendSrv{name: fmt.Sprintf("b%d", n), addr: f.ip(n + 1)}
	b.health.Store(200)
	app := webapp.Handler(b.name, fmt.Sprint(n))
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(int(b.health.Load()))
			return
		}
		b.hits.Add(1)
		app.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", netip.AddrPortFrom(b.addr, uint16(f.port)).String())
	if err != nil {
		f.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.ln = ln
	b.srv = &http.Server{Handler: mux}
	go b.srv.Serve(ln)
	f.t.Cleanup(func() { b.srv.Close() })
	f.mu.Lock()
	f.srvs[b.name] = b
	f.mu.Unlock()
	return b
}

func (b *backendSrv) member() Backend { return Backend{Name: b.name, Addr: b.addr} }

// stop closes the backend's listener and connections (an instance dying).
func (b *backendSrv) stop() { b.srv.Close() }

// config is a one-rule HTTP load balancer over members.
func (f *fleet) config(probe *Probe, members ...*backendSrv) Config {
	c := Config{
		Pools: []Pool{{Name: "bepool", DrainPeriod: 2 * time.Second}},
		Rules: []Rule{{Name: "http", Frontend: f.frontend(), FrontendPort: f.port, BackendPort: f.port, BackendPool: "bepool"}},
	}
	for _, m := range members {
		c.Pools[0].Backends = append(c.Pools[0].Backends, m.member())
	}
	if probe != nil {
		c.Probes = []Probe{*probe}
		c.Rules[0].Probe = probe.Name
	}
	return c
}

func (f *fleet) url() string { return fmt.Sprintf("http://%s:%d/", f.frontend(), f.port) }

// probe is an Http probe of the fleet's /health. Two results change the
// state, so a single slow answer on a loaded machine (the interval is
// also the timeout) does not flap a backend.
func (f *fleet) probe(interval time.Duration) *Probe {
	return &Probe{Name: "hp", Protocol: Http, Port: f.port, RequestPath: "/health", Interval: interval, ProbeThreshold: 2}
}

func newEngine(t *testing.T) (*Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := New(Options{Name: "lbtest", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, reg
}

// client makes HTTP clients with or without keep-alive, optionally from a
// given source address.
func client(keepAlive bool, from netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 16,
	}}
}

// get fetches url and returns which backend answered ("b0"…).
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	// "Hello from b2 (instance 2)\n"
	f := strings.Fields(string(body))
	if len(f) < 3 {
		return "", fmt.Errorf("unexpected body %q", body)
	}
	return f[2], nil
}

// waitState waits until every named backend of bepool has state.
func waitState(t *testing.T, e *Engine, state State, names ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]State{}
		for _, p := range e.Snapshot().Pools {
			for _, b := range p.Backends {
				got[b.Name] = b.State
			}
		}
		ok := true
		for _, n := range names {
			if got[n] != state {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backends %v not %s within 5s: %v", names, state, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// load runs workers that GET url in a loop until stop is closed, counting
// answers per backend and errors.
type load struct {
	mu     sync.Mutex
	by     map[string]int
	errs   []error
	ok     atomic.Int64
	wg     sync.WaitGroup
	stopCh chan struct{}
}

func startLoad(url string, workers int, keepAlive bool) *load {
	l := &load{by: map[string]int{}, stopCh: make(chan struct{})}
	for range workers {
		c := client(keepAlive, netip.Addr{})
		l.wg.Go(func() {
			defer c.CloseIdleConnections()
			for {
				select {
				case <-l.stopCh:
					return
				default:
				}
				who, err := get(c, url)
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err)
				} else {
					l.by[who]++
					l.ok.Add(1)
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) stop() {
	close(l.stopCh)
	l.wg.Wait()
}

func (l *load) snapshot() (map[string]int, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	by := map[string]int{}
	for k, v := range l.by {
		by[k] = v
	}
	return by, append([]error(nil), l.errs...)
}

// waitServed waits until the load has seen n more successful answers.
func (l *load) waitServed(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d answers", l.ok.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metricValue returns the value of the series of family name whose label
// key has value val (and lb="lbtest").
func metricValue(t *testing.T, reg *prometheus.Registry, name, key, val string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == key && lp.GetValue() == val {
					switch {
					case m.GetCounter() != nil:
						return m.GetCounter().GetValue()
					case m.GetGauge() != nil:
						return m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, key, val)
	return 0
}

func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// dialFrontend opens a raw TCP connection to the fleet's frontend.
func (f *fleet) dialFrontend(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", netip.AddrPortFrom(f.frontend(), uint16(f.port)).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}
