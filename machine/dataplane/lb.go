package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/lb"
	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/vnet"
)

// ProbeSource is where load-balancer probes come from, as in Azure.
var ProbeSource = vnet.DNSAddr

// InternetSource is where flows forwarded from public frontends (load
// balancers with a public IP, inbound NAT) come from inside the VNET: an
// address outside it, so network security groups see Internet traffic as
// on Azure. Internal load balancers dial from the subnet's gateway, inside
// the VNET.
var InternetSource = vnet.InternetAddr

// balancers are the load balancers' engines, by resource key.
type balancers struct {
	reg prometheus.Registerer

	mu      sync.Mutex
	engines map[string]*lb.Engine
}

func (b *balancers) get(key string) *lb.Engine {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.engines[key]
}

// sorted returns the engines in key order.
func (b *balancers) sorted() []*lb.Engine {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.engines))
	for k := range b.engines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*lb.Engine, 0, len(keys))
	for _, k := range keys {
		out = append(out, b.engines[k])
	}
	return out
}

func (b *balancers) closeAll() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, e := range b.engines {
		errs = append(errs, e.Close())
	}
	return errs
}

// applyLBs gives each planned load balancer its configuration (an engine
// is started for a new one) and closes the engines of the others.
func (p *Plane) applyLBs(ctx context.Context, plans []reconcile.LBPlan, errs map[string]error) {
	want := map[string]bool{}
	for _, lp := range plans {
		want[lp.Key] = true
		e, err := p.engine(lp)
		if err != nil {
			errs[lp.Key] = err
			continue
		}
		cfg, err := p.lbConfig(ctx, lp)
		if err == nil {
			err = e.Apply(ctx, cfg)
		}
		if err != nil {
			errs[lp.Key] = err
			p.log.Error("load balancer", "lb", lp.Name, "err", err)
		}
	}
	b := &p.balancers
	b.mu.Lock()
	var gone []*lb.Engine
	for k, e := range b.engines {
		if !want[k] {
			gone = append(gone, e)
			delete(b.engines, k)
		}
	}
	b.mu.Unlock()
	for _, e := range gone {
		_ = e.Close() // the load balancer is gone; its engine's errors have no one to go to
	}
}

// engine returns the engine of a load balancer, starting it when new.
func (p *Plane) engine(lp reconcile.LBPlan) (*lb.Engine, error) {
	b := &p.balancers
	if e := b.get(lp.Key); e != nil {
		return e, nil
	}
	e, err := lb.New(lb.Options{Name: b.engineName(lp), Registerer: b.reg, Logger: p.log.With("lb", lp.Name)})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.engines[lp.Key] = e
	b.mu.Unlock()
	return e, nil
}

// engineName names a new engine (the "lb" label of its metrics): the load
// balancer's name, or group/name when an engine of another resource group
// already has that name (the metrics would collide).
func (b *balancers) engineName(lp reconcile.LBPlan) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.engines {
		if e.Snapshot().Name == lp.Name {
			group := "?"
			if id, err := arm.ParseID(lp.Key); err == nil {
				group = id.ResourceGroup
			}
			return group + "/" + lp.Name
		}
	}
	return lp.Name
}

// lbConfig is the engine configuration of a planned load balancer.
func (p *Plane) lbConfig(ctx context.Context, lp reconcile.LBPlan) (lb.Config, error) {
	var cfg lb.Config
	public := false
	for _, r := range lp.Rules {
		public = public || r.Public
	}
	for _, pp := range lp.Pools {
		cfg.Pools = append(cfg.Pools, p.lbPool(pp, public))
	}
	for _, pr := range lp.Probes {
		cfg.Probes = append(cfg.Probes, lb.Probe{Name: pr.Name, Protocol: lb.Protocol(pr.Protocol), Port: pr.Port,
			RequestPath: pr.Path, Interval: pr.Interval, ProbeThreshold: pr.Threshold})
	}
	for _, r := range lp.Rules {
		rules, err := p.lbRules(ctx, r)
		if err != nil {
			return cfg, err
		}
		cfg.Rules = append(cfg.Rules, rules...)
	}
	return cfg, nil
}

// lbPool is a backend pool dialled and probed inside its VNET; a pool
// whose VNET is not open yet refuses connections. A public load balancer's
// flows come from InternetSource.
func (p *Plane) lbPool(pp reconcile.PoolPlan, public bool) lb.Pool {
	pool := lb.Pool{Name: pp.Name, DrainPeriod: pp.DrainPeriod}
	src := netip.Addr{}
	if public {
		src = InternetSource
	}
	if pp.VNetNetns != "" {
		if dial := p.net.Dialer(pp.VNetNetns, src); dial != nil {
			pool.Dial = dial
			pool.ProbeDial = p.net.Dialer(pp.VNetNetns, ProbeSource)
		}
	}
	if pool.Dial == nil {
		pool.Dial = refuse
		pool.ProbeDial = refuse
	}
	for _, b := range pp.Backends {
		pool.Backends = append(pool.Backends, lb.Backend{Name: b.Instance, Addr: b.Addr})
	}
	return pool
}

// lbRules are the engine rules of one planned rule: protocol All becomes a
// Tcp and a Udp rule; an internal frontend gets its address on the subnet's
// bridge and listens inside the VNET (skipped while it has no VNET).
func (p *Plane) lbRules(ctx context.Context, r reconcile.RulePlan) ([]lb.Rule, error) {
	protos := []string{r.Protocol}
	if strings.EqualFold(r.Protocol, "All") {
		protos = []string{"Tcp", "Udp"}
	}
	var out []lb.Rule
	for _, proto := range protos {
		rule := lb.Rule{
			Name: r.Name, Frontend: r.Frontend, FrontendPort: r.FrontendPort, BackendPort: r.BackendPort,
			Protocol: lb.Protocol(proto), BackendPool: r.Pool, Probe: r.Probe, IdleTimeout: r.IdleTimeout,
			EnableTCPReset: r.TCPReset, LoadDistribution: lb.Distribution(r.Distribution),
		}
		if len(protos) > 1 {
			rule.Name = r.Name + "/" + strings.ToLower(proto)
		}
		if r.AllDownOpen {
			rule.NoHealthyBackendsBehavior = lb.AllProbedUp
		}
		if !r.Public {
			if r.VNetNetns == "" {
				continue
			}
			if err := p.net.AddFrontendIP(ctx, r.VNetNetns, r.Bridge, r.Frontend); err != nil {
				return out, fmt.Errorf("internal frontend %s of rule %s: %w", r.Frontend, r.Name, err)
			}
			vn := r.VNetNetns
			rule.Listen = func(ctx context.Context, network, addr string) (net.Listener, error) {
				return p.net.ListenTCP(ctx, vn, addr)
			}
			rule.ListenPacket = func(ctx context.Context, network, addr string) (net.PacketConn, error) {
				return p.net.ListenUDP(ctx, vn, addr)
			}
		}
		out = append(out, rule)
	}
	return out, nil
}

func refuse(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("the backend pool has no VNET yet")
}

// Drain takes an instance out of every pool and waits for its flows (up to
// the pools' drain periods).
func (p *Plane) Drain(ctx context.Context, netns string) error {
	var waits []<-chan struct{}
	for _, e := range p.balancers.sorted() {
		for _, pool := range e.Snapshot().Pools {
			for _, b := range pool.Backends {
				if b.Name != netns {
					continue
				}
				ch, err := e.Drain(pool.Name, netns, 0)
				if err != nil {
					if !inPool(e, pool.Name, netns) {
						continue // a concurrent plan drained and removed it meanwhile
					}
					return err
				}
				waits = append(waits, ch)
			}
		}
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// inPool reports whether backend is still a member of the engine's pool.
func inPool(e *lb.Engine, pool, backend string) bool {
	for _, p := range e.Snapshot().Pools {
		if p.Name != pool {
			continue
		}
		for _, b := range p.Backends {
			if b.Name == backend {
				return true
			}
		}
	}
	return false
}
