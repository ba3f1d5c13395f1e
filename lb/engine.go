package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/tcpfd"
)

// Options configure an Engine. The zero value works: host sockets, no
// metrics registration, logs discarded.
type Options struct {
	// Name of the load balancer: the "lb" label of every metric and the
	// prefix of errors.
	Name string
	// Registerer receives the metrics (never the global default registry
	// unless passed here). nil: metrics are kept but not registered.
	Registerer prometheus.Registerer
	// Listen / ListenPacket open frontends of rules that bring no seam of
	// their own. nil means the host namespace.
	Listen       proxy.ListenFunc
	ListenPacket proxy.ListenPacketFunc
	// ConnectTimeout bounds one dial to a backend; zero means 5 s.
	ConnectTimeout time.Duration
	// Logger: nil discards.
	Logger *slog.Logger
}

// Engine is the data plane of one load balancer. Create it with New; all
// methods are safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	mu     sync.RWMutex
	pools  map[string]*pool
	probes map[string]Probe
	rules  map[string]*rule
	closed bool

	wg   sync.WaitGroup // drain and prober goroutines
	stop chan struct{}  // closed by Close
}

type pool struct {
	cfg     Pool      // Backends unused
	members []*member // sorted by name; replaced, never edited in place (readers hold e.mu.RLock briefly)
	probes  []string  // probes used by rules on this pool
}

// member is a backend in a pool.
type member struct {
	name     string
	addr     netip.Addr
	pool     string
	draining atomic.Bool
	probers  map[string]*prober // by probe name; guarded by Engine.mu

	active, total, failed atomic.Int64
	bytesIn, bytesOut     atomic.Int64

	drained chan struct{} // cap 1: pinged when active reaches 0 during a drain
	removed chan struct{} // closed once the member is gone
}

// release ends one flow's claim on m.
func (m *member) release() {
	if m.active.Add(-1) == 0 && m.draining.Load() {
		select {
		case m.drained <- struct{}{}:
		default:
		}
	}
}

// upFor reports whether probe marks m up ("" means no probe: up).
func (m *member) upFor(probe string) bool {
	if probe == "" {
		return true
	}
	pr := m.probers[probe]
	return pr != nil && pr.up.Load()
}

type rule struct {
	*proxy.Frontend
	cfg     atomic.Pointer[Rule]
	key     string
	rr      atomic.Uint64
	total   atomic.Int64
	refused atomic.Int64
	series  sync.Map // *member → *series: looked up once, not per flow
}

// series are a rule's Prometheus series for one backend. Looking them up
// hashes the label values under the vector's lock; a flow takes them from
// the rule's cache instead.
type series struct {
	rule              string // the rule's name when looked up (a renamed rule looks up again)
	conns             prometheus.Counter
	active            prometheus.Gauge
	bytesIn, bytesOut prometheus.Counter
}

// seriesFor returns the series of rule name for m.
func (r *rule) seriesFor(mx *metrics, name string, m *member) *series {
	if v, ok := r.series.Load(m); ok && v.(*series).rule == name {
		return v.(*series)
	}
	s := &series{rule: name,
		conns:    mx.conns.WithLabelValues(name, m.name),
		active:   mx.active.WithLabelValues(name, m.name),
		bytesIn:  mx.bytes.WithLabelValues(name, m.name, "in"),
		bytesOut: mx.bytes.WithLabelValues(name, m.name, "out"),
	}
	r.series.Store(m, s)
	return s
}

// New creates an Engine with nothing configured; call Apply.
func New(opts Options) (*Engine, error) {
	m, err := newMetrics(opts.Name, opts.Registerer)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	return &Engine{
		opts: opts, log: log, m: m,
		pools: map[string]*pool{}, probes: map[string]Probe{}, rules: map[string]*rule{},
		stop: make(chan struct{}),
	}, nil
}

var errClosed = errors.New("lb: engine is closed")

func (e *Engine) errorf(format string, a ...any) error {
	return fmt.Errorf("lb %s: "+format, append([]any{e.opts.Name}, a...)...)
}

// Apply makes the engine match desired. Invalid input, or a frontend that
// cannot be opened (e.g. a *proxy.AddrInUseError), changes nothing.
//
//   - Rules: a rule whose frontend address, port and protocol are unchanged
//     keeps its socket and established flows; its other settings apply to
//     new flows. A rule removed, or whose frontend changed, is closed and
//     its flows reset.
//   - Pools: members not in desired are drained (pool's DrainPeriod);
//     new members are added (Unknown until probed up when a rule probes
//     them). A member may not change its address: remove it first.
//   - Probes: changed settings restart the probe's probers, which keep
//     the backends' current state until new results arrive.
func (e *Engine) Apply(ctx context.Context, desired Config) error {
	desired.Pools = slices.Clone(desired.Pools)
	desired.Probes = slices.Clone(desired.Probes)
	desired.Rules = slices.Clone(desired.Rules)
	if err := desired.normalize(); err != nil {
		return e.errorf("invalid configuration: %w", err)
	}
	retired, err := e.applyLocked(ctx, desired)
	// Rules are closed outside the lock: their flows' connect callbacks
	// take it.
	for _, r := range retired {
		r.Close()
	}
	return err
}

func (e *Engine) applyLocked(ctx context.Context, desired Config) (retired []*rule, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	if err := e.checkMembersLocked(desired.Pools); err != nil {
		return nil, err
	}
	e.renameRulesLocked(desired.Rules)
	// Open new frontends first: a failure here changes nothing.
	fresh, err := e.openRulesLocked(ctx, desired.Rules)
	if err != nil {
		for _, r := range fresh {
			retired = append(retired, r)
		}
		return retired, err
	}
	retired = e.retireRulesLocked(desired.Rules, fresh)
	e.probes = map[string]Probe{}
	for _, p := range desired.Probes {
		e.probes[p.Name] = p
	}
	e.applyPoolsLocked(desired.Pools, probesByPool(desired.Rules))
	for name, r := range fresh {
		e.rules[name] = r
		r.Start()
	}
	return retired, nil
}

// checkMembersLocked refuses members that change address or come back
// while still draining.
func (e *Engine) checkMembersLocked(pools []Pool) error {
	var errs []error
	for _, p := range pools {
		cur := e.pools[p.Name]
		if cur == nil {
			continue
		}
		for _, b := range p.Backends {
			if m := findMember(cur.members, b.Name); m != nil && m.addr != b.Addr {
				errs = append(errs, e.errorf("pool %s member %s changes address %s → %s; remove it first", p.Name, b.Name, m.addr, b.Addr))
			} else if m != nil && m.draining.Load() {
				errs = append(errs, e.errorf("pool %s member %s is still draining; wait for it or use another name", p.Name, b.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// renameRulesLocked lets a renamed rule on the same frontend keep its socket.
func (e *Engine) renameRulesLocked(rules []Rule) {
	byKey := map[string]string{}
	for name, r := range e.rules {
		byKey[r.key] = name
	}
	names := map[string]bool{}
	for _, rc := range rules {
		names[rc.Name] = true
	}
	for _, rc := range rules {
		if old, ok := byKey[frontKey(rc)]; ok && e.rules[rc.Name] == nil && !names[old] {
			e.rules[rc.Name] = e.rules[old]
			e.rules[rc.Name].series.Clear()
			delete(e.rules, old)
			e.m.forgetRule(old)
		}
	}
}

// openRulesLocked opens the frontends of new rules and of rules whose
// frontend changed. On error the rules it opened are returned for closing.
func (e *Engine) openRulesLocked(ctx context.Context, rules []Rule) (map[string]*rule, error) {
	fresh := map[string]*rule{}
	var errs []error
	for _, rc := range rules {
		if cur := e.rules[rc.Name]; cur != nil && cur.key == frontKey(rc) {
			continue
		}
		r, err := e.openRule(ctx, rc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[rc.Name] = r
	}
	return fresh, errors.Join(errs...)
}

// retireRulesLocked detaches the rules that go away (or move), for the
// caller to close once the lock is released, and gives the rules that stay
// their new settings.
func (e *Engine) retireRulesLocked(rules []Rule, fresh map[string]*rule) (retired []*rule) {
	wantRules := map[string]Rule{}
	for _, rc := range rules {
		wantRules[rc.Name] = rc
	}
	for name, r := range e.rules {
		if _, keep := wantRules[name]; !keep || fresh[name] != nil {
			retired = append(retired, r)
			delete(e.rules, name)
			e.m.forgetRule(name)
		}
	}
	for name, rc := range wantRules {
		if r := e.rules[name]; r != nil {
			rc := rc
			r.cfg.Store(&rc)
		}
	}
	return retired
}

// probesByPool lists the probes the rules use, per backend pool.
func probesByPool(rules []Rule) map[string][]string {
	usedBy := map[string][]string{}
	for _, rc := range rules {
		if rc.Probe != "" && !slices.Contains(usedBy[rc.BackendPool], rc.Probe) {
			usedBy[rc.BackendPool] = append(usedBy[rc.BackendPool], rc.Probe)
		}
	}
	return usedBy
}

// applyPoolsLocked removes pools not wanted, drains members that leave,
// adds new members and (re)starts their probers.
func (e *Engine) applyPoolsLocked(pools []Pool, usedBy map[string][]string) {
	wantPools := map[string]Pool{}
	for _, p := range pools {
		wantPools[p.Name] = p
	}
	for name, p := range e.pools {
		if _, keep := wantPools[name]; !keep {
			for _, m := range p.members {
				e.removeLocked(p, m)
			}
			delete(e.pools, name)
		}
	}
	for name, pc := range wantPools {
		p := e.pools[name]
		if p == nil {
			p = &pool{}
			e.pools[name] = p
		}
		pc.Backends = nil
		p.cfg = pc
		p.probes = usedBy[name]
		want := map[string]Backend{}
		for _, b := range pools[indexPool(pools, name)].Backends {
			want[b.Name] = b
		}
		for _, m := range p.members {
			if _, keep := want[m.name]; !keep && !m.draining.Load() {
				e.startDrainLocked(p, m, 0)
			}
		}
		for _, b := range want {
			if findMember(p.members, b.Name) == nil {
				e.addLocked(p, b)
			}
		}
		for _, m := range p.members {
			e.syncProbersLocked(p, m)
		}
	}
}

func indexPool(ps []Pool, name string) int {
	return slices.IndexFunc(ps, func(p Pool) bool { return p.Name == name })
}

func findMember(ms []*member, name string) *member {
	for _, m := range ms {
		if m.name == name {
			return m
		}
	}
	return nil
}

func frontKey(r Rule) string { return r.network() + " " + r.frontend().String() }

// openRule opens a rule's frontend socket; Start serves it.
func (e *Engine) openRule(ctx context.Context, rc Rule) (*rule, error) {
	r := &rule{key: frontKey(rc)}
	r.cfg.Store(&rc)
	spec := proxy.FrontendSpec{
		Network: rc.network(), Addr: rc.frontend().String(), Owner: "load-balancing rule " + rc.Name,
		Listen: rc.Listen, ListenPacket: rc.ListenPacket,
		ConnectTCP: e.connectTCP(r), ConnectOnLoop: true, ConnectUDP: e.connectUDP(r), Logger: e.log,
	}
	if spec.Listen == nil {
		spec.Listen = e.opts.Listen
	}
	if spec.ListenPacket == nil {
		spec.ListenPacket = e.opts.ListenPacket
	}
	fe, err := proxy.OpenFrontend(ctx, spec)
	if err != nil {
		return nil, e.errorf("%w", err)
	}
	r.Frontend = fe
	return r, nil
}

// candidates returns the members a new flow of rule cfg from client may
// go to, best first, and the pool's dial seam.
func (e *Engine) candidates(r *rule, cfg *Rule, client netip.AddrPort) ([]*member, proxy.DialFunc) {
	e.mu.RLock()
	p := e.pools[cfg.BackendPool]
	if p == nil {
		e.mu.RUnlock()
		return nil, nil
	}
	members, dial := p.members, p.cfg.Dial
	healthy := make([]*member, 0, len(members))
	live := 0
	for _, m := range members {
		if m.draining.Load() {
			continue
		}
		live++
		if m.upFor(cfg.Probe) {
			healthy = append(healthy, m)
		}
	}
	if len(healthy) == 0 && live > 0 && cfg.NoHealthyBackendsBehavior == AllProbedUp {
		for _, m := range members {
			if !m.draining.Load() {
				healthy = append(healthy, m)
			}
		}
	}
	e.mu.RUnlock()
	if dial == nil {
		dial = proxy.HostDial
	}
	switch cfg.LoadDistribution {
	case SourceIP:
		return byAffinity(healthy, client.Addr(), cfg.protocol(), false), dial
	case SourceIPProtocol:
		return byAffinity(healthy, client.Addr(), cfg.protocol(), true), dial
	}
	if len(healthy) == 0 {
		return nil, dial
	}
	return rotate(healthy, r.rr.Add(1)-1), dial
}

// claim counts a new flow on m unless m started draining meanwhile.
func claim(m *member) bool {
	m.active.Add(1)
	if m.draining.Load() {
		m.release()
		return false
	}
	return true
}

func clientAddr(c net.Conn) netip.AddrPort {
	if a, ok := c.(interface{ RemoteAddrPort() netip.AddrPort }); ok {
		ap := a.RemoteAddrPort() // no allocation (proxy's accepted connections)
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (e *Engine) connectTCP(r *rule) proxy.ConnectFunc {
	return func(ctx context.Context, client net.Conn) (proxy.Target, error) {
		cfg := r.cfg.Load()
		cands, dial := e.candidates(r, cfg, clientAddr(client))
		for _, m := range cands {
			if !claim(m) {
				continue
			}
			backend := netip.AddrPortFrom(m.addr, uint16(cfg.BackendPort)).String()
			c, err := proxy.DialTCP(ctx, dial, backend, e.opts.ConnectTimeout)
			if errors.Is(err, tcpfd.ErrWouldBlock) {
				// On an event loop, which may not wait: the proxy calls
				// again on a goroutine of the client's own, which is to
				// take the turn this call took.
				m.release()
				if cfg.LoadDistribution != SourceIP && cfg.LoadDistribution != SourceIPProtocol {
					r.rr.Add(^uint64(0))
				}
				return proxy.Target{}, err
			}
			if err != nil {
				m.release()
				m.failed.Add(1)
				e.m.failed.WithLabelValues(cfg.Name, m.name).Inc()
				e.log.Debug("backend dial failed; trying the next", "rule", cfg.Name, "backend", m.name, "addr", backend, "err", err)
				continue
			}
			return e.target(cfg, r, m, c), nil
		}
		r.refused.Add(1)
		e.m.refused.WithLabelValues(cfg.Name).Inc()
		return proxy.Target{}, e.errorf("rule %s: no backend available for %s", cfg.Name, client.RemoteAddr())
	}
}

// target accounts a new flow of r to m and returns its pipe settings.
func (e *Engine) target(cfg *Rule, r *rule, m *member, c net.Conn) proxy.Target {
	r.total.Add(1)
	m.total.Add(1)
	ms := r.seriesFor(e.m, cfg.Name, m)
	ms.conns.Inc()
	active, in, out := ms.active, ms.bytesIn, ms.bytesOut
	active.Inc()
	return proxy.Target{
		Key:  m.name,
		Conn: c,
		Pipe: proxy.PipeConfig{
			IdleTimeout: cfg.idle(),
			ResetOnIdle: cfg.EnableTCPReset,
			// SSH behind a rule: OpenSSH keeps Nagle on during its handshake.
			QuickAck: cfg.BackendPort == 22,
			Progress: func(up, down int64) {
				if up > 0 {
					m.bytesIn.Add(up)
					in.Add(float64(up))
				}
				if down > 0 {
					m.bytesOut.Add(down)
					out.Add(float64(down))
				}
			},
		},
		Done: func(proxy.Result) {
			active.Dec()
			m.release()
		},
	}
}

func (e *Engine) connectUDP(r *rule) proxy.UDPConnectFunc {
	return func(ctx context.Context, client netip.AddrPort) (proxy.UDPTarget, error) {
		cfg := r.cfg.Load()
		cands, dial := e.candidates(r, cfg, client)
		for _, m := range cands {
			if !claim(m) {
				continue
			}
			backend := netip.AddrPortFrom(m.addr, uint16(cfg.BackendPort)).String()
			c, err := dial(ctx, "udp", backend)
			if err != nil {
				m.release()
				m.failed.Add(1)
				e.m.failed.WithLabelValues(cfg.Name, m.name).Inc()
				continue
			}
			t := e.target(cfg, r, m, c)
			idle := cfg.idle()
			if idle == 0 {
				idle = DefaultIdleTimeout
			}
			return proxy.UDPTarget{Key: m.name, Conn: c, IdleTimeout: idle, Done: func(up, down int64) {
				t.Pipe.Progress(up, down)
				t.Done(proxy.Result{})
			}}, nil
		}
		r.refused.Add(1)
		e.m.refused.WithLabelValues(cfg.Name).Inc()
		return proxy.UDPTarget{}, e.errorf("rule %s: no backend available for %s", cfg.Name, client)
	}
}

// AddBackend adds b to pool. With a probe on the pool's rules it gets new
// flows once probed up; without one at once. Adding a present member with
// the same address is a no-op.
func (e *Engine) AddBackend(poolName string, b Backend) error {
	if b.Name == "" || !b.Addr.IsValid() {
		return e.errorf("pool %s: a backend needs a name and an IP address (got %q, %v)", poolName, b.Name, b.Addr)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errClosed
	}
	p := e.pools[poolName]
	if p == nil {
		return e.errorf("backend pool %q does not exist; Apply a configuration that has it first", poolName)
	}
	if m := findMember(p.members, b.Name); m != nil {
		switch {
		case m.draining.Load():
			return e.errorf("pool %s member %s is still draining; wait for it or use another name", poolName, b.Name)
		case m.addr != b.Addr:
			return e.errorf("pool %s member %s has address %s, not %s; remove it first", poolName, b.Name, m.addr, b.Addr)
		}
		return nil
	}
	m := e.addLocked(p, b)
	e.syncProbersLocked(p, m)
	return nil
}

func (e *Engine) addLocked(p *pool, b Backend) *member {
	m := &member{name: b.Name, addr: b.Addr, pool: p.cfg.Name, probers: map[string]*prober{},
		drained: make(chan struct{}, 1), removed: make(chan struct{})}
	ms := append(slices.Clone(p.members), m)
	slices.SortFunc(ms, func(a, b *member) int { return strings.Compare(a.name, b.name) })
	p.members = ms
	return m
}

// syncProbersLocked runs exactly the probers m needs. A prober whose probe
// settings changed is replaced by one that starts from its state.
func (e *Engine) syncProbersLocked(p *pool, m *member) {
	for name, pr := range m.probers {
		cfg, used := e.probes[name]
		if used && slices.Contains(p.probes, name) && cfg == pr.probe && m.addr == pr.addr {
			continue
		}
		pr.halt()
		delete(m.probers, name)
		if used && slices.Contains(p.probes, name) {
			h := pr.health()
			e.startProberLocked(p, m, cfg, &h)
		} else {
			e.m.probeUp.DeleteLabelValues(name, p.cfg.Name, m.name)
		}
	}
	for _, name := range p.probes {
		if m.probers[name] == nil {
			e.startProberLocked(p, m, e.probes[name], nil)
		}
	}
}

func (e *Engine) startProberLocked(p *pool, m *member, cfg Probe, inherit *health) {
	dial := p.cfg.ProbeDial
	if dial == nil {
		dial = p.cfg.Dial
	}
	if dial == nil {
		dial = proxy.HostDial
	}
	up := e.m.probeUp.WithLabelValues(cfg.Name, p.cfg.Name, m.name)
	okDur := e.m.probeDur.WithLabelValues(cfg.Name, "success")
	failDur := e.m.probeDur.WithLabelValues(cfg.Name, "failure")
	pr := newProber(cfg, m.addr, dial, inherit, func(ok bool, d time.Duration, h health) {
		if ok {
			okDur.Observe(d.Seconds())
		} else {
			failDur.Observe(d.Seconds())
		}
		if h.State == Up {
			up.Set(1)
		} else {
			up.Set(0)
		}
	})
	m.probers[cfg.Name] = pr
	e.wg.Go(pr.run)
}

// Drain takes backend out of pool's rotation at once, lets its established
// flows run for period (zero: the pool's DrainPeriod; negative: none),
// then resets them and removes the backend. The returned channel is
// closed when the backend is gone. Draining a draining backend returns
// the same channel.
func (e *Engine) Drain(poolName, backend string, period time.Duration) (<-chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	p := e.pools[poolName]
	if p == nil {
		return nil, e.errorf("backend pool %q does not exist", poolName)
	}
	m := findMember(p.members, backend)
	if m == nil {
		return nil, e.errorf("backend pool %s has no member %q", poolName, backend)
	}
	if !m.draining.Load() {
		e.startDrainLocked(p, m, period)
	}
	return m.removed, nil
}

// RemoveBackend removes backend from pool at once, resetting its flows,
// and returns when it is gone.
func (e *Engine) RemoveBackend(poolName, backend string) error {
	done, err := e.Drain(poolName, backend, -1)
	if err != nil {
		return err
	}
	<-done
	return nil
}

func (e *Engine) startDrainLocked(p *pool, m *member, period time.Duration) {
	if period == 0 {
		period = p.cfg.DrainPeriod
	}
	if period == 0 {
		period = DefaultDrainPeriod
	}
	m.draining.Store(true)
	e.wg.Go(func() {
		if period > 0 && m.active.Load() > 0 {
			t := time.NewTimer(period)
			defer t.Stop()
		wait:
			for m.active.Load() > 0 {
				select {
				case <-m.drained:
				case <-t.C:
					break wait
				case <-e.stop:
					break wait
				}
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if cur := e.pools[m.pool]; cur != nil && findMember(cur.members, m.name) == m {
			e.removeLocked(cur, m)
		}
	})
}

// removeLocked resets m's flows on every rule of its pool, stops its
// probers and drops it from the pool.
func (e *Engine) removeLocked(p *pool, m *member) {
	m.draining.Store(true)
	for _, r := range e.rules {
		if r.cfg.Load().BackendPool == p.cfg.Name {
			r.CloseTo(m.name)
			r.series.Delete(m)
			e.m.forgetRuleBackend(r.cfg.Load().Name, m.name)
		}
	}
	for name, pr := range m.probers {
		pr.halt()
		delete(m.probers, name)
	}
	e.m.forgetProbes(p.cfg.Name, m.name)
	p.members = slices.DeleteFunc(slices.Clone(p.members), func(x *member) bool { return x == m })
	close(m.removed)
}

// Close stops every rule (flows reset), prober and drain, and waits for
// all of the engine's goroutines. Metrics are unregistered.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop) // drains stop waiting
	rules := make([]*rule, 0, len(e.rules))
	for name, r := range e.rules {
		rules = append(rules, r)
		delete(e.rules, name)
	}
	e.mu.Unlock()
	for _, r := range rules {
		r.Close()
	}
	e.mu.Lock()
	for name, p := range e.pools {
		for _, m := range slices.Clone(p.members) {
			e.removeLocked(p, m)
		}
		delete(e.pools, name)
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.m.unregister()
	return nil
}
