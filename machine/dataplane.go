package machine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/lb"
	"github.com/vmss-emulator/vmss/nat"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/vnet"
)

// probeSource is where load-balancer probes come from, as in Azure.
var probeSource = vnet.DNSAddr

// ApplyPlan configures DNS records, inbound NAT and load balancers. What
// cannot be applied is reported by resource key; the rest is applied.
func (h *Machine) ApplyPlan(ctx context.Context, p *reconcile.Plan) map[string]error {
	errs := map[string]error{}
	h.applyDNS(p)
	h.applyNAT(ctx, p, errs)
	h.applyLBs(ctx, p, errs)
	return errs
}

func (h *Machine) applyDNS(p *reconcile.Plan) {
	for _, z := range p.DNS {
		h.mu.Lock()
		d := h.dnsSrv[z.VNetNetns]
		h.mu.Unlock()
		if d == nil {
			continue
		}
		recs := make([]dns.Record, 0, len(z.Records))
		for _, r := range z.Records {
			recs = append(recs, dns.Record{Name: r.Name, IP: r.IP})
		}
		if err := d.srv.SetRecords(recs); err != nil {
			h.log.Error("DNS records", "vnet", z.VNetNetns, "err", err)
		}
	}
}

// dialer returns a dial function into a VNET namespace; nil when the VNET is
// not open (its mappings are skipped until it is).
func (h *Machine) dialer(vnetNetns string) proxy.DialFunc {
	ns := h.space(vnetNetns)
	if ns == nil {
		return nil
	}
	return proxy.DialFunc(ns.Dialer(netip.Addr{}))
}

func natKey(m reconcile.NATMapping) string { return m.Instance + "|" + m.Public.String() }

// applyNAT forwards every mapping it can. A public port already taken on the
// host fails only its own mapping (reported for its owner); a VM's SSH
// mapping falls back to its alternative ports.
func (h *Machine) applyNAT(ctx context.Context, p *reconcile.Plan, errs map[string]error) {
	type entry struct {
		m     reconcile.NATMapping
		ports []uint16 // candidate ports, first is current
		err   error    // why the mapping is not forwarded
	}
	var entries []*entry
	attempts := 1 // each failed attempt drops one candidate port
	h.mu.Lock()
	for _, m := range p.NAT {
		e := &entry{m: m, ports: []uint16{m.Public.Port()}}
		if len(m.FallbackPorts) > 0 {
			e.ports = append(e.ports, m.FallbackPorts...)
			if chosen, ok := h.natChosen[natKey(m)]; ok {
				// Keep the port that worked last time first.
				e.ports = append([]uint16{chosen}, e.ports...)
			}
		}
		attempts += len(e.ports)
		entries = append(entries, e)
	}
	h.mu.Unlock()
	for attempt := 0; attempt < attempts; attempt++ {
		var ms []nat.Mapping
		var live []*entry
		for _, e := range entries {
			if len(e.ports) == 0 {
				continue
			}
			dial := h.dialer(e.m.VNetNetns)
			if dial == nil {
				continue
			}
			ms = append(ms, nat.Mapping{
				Name: e.m.Name, Protocol: nat.Protocol(e.m.Protocol),
				Public:  netip.AddrPortFrom(e.m.Public.Addr(), e.ports[0]),
				Backend: e.m.Backend, Dial: dial,
				IdleTimeout: e.m.IdleTimeout, EnableTCPReset: e.m.TCPReset,
			})
			live = append(live, e)
		}
		err := h.nat.Apply(ctx, ms)
		if err == nil {
			h.mu.Lock()
			h.natOwner = map[string]string{}
			// A VM's SSH endpoint is where its mapping is forwarded now, or
			// why it is not; VMs without a mapping have neither.
			h.endpoints = map[string]string{}
			h.endpointErr = map[string]error{}
			chosen := map[string]uint16{}
			for _, e := range entries {
				if len(e.m.FallbackPorts) == 0 {
					continue
				}
				if e.err != nil {
					h.endpointErr[e.m.Instance] = e.err
					continue
				}
				if len(e.ports) > 0 {
					chosen[natKey(e.m)] = e.ports[0]
				}
			}
			for _, e := range live {
				h.natOwner[netip.AddrPortFrom(e.m.Public.Addr(), e.ports[0]).String()] = e.m.Owner
				if len(e.m.FallbackPorts) > 0 {
					h.endpoints[e.m.Instance] = netip.AddrPortFrom(e.m.Public.Addr(), e.ports[0]).String()
				}
			}
			h.natChosen = chosen
			h.mu.Unlock()
			return
		}
		var inUse *proxy.AddrInUseError
		if !errors.As(err, &inUse) {
			h.log.Error("inbound NAT", "err", err)
			for _, e := range live {
				errs[e.m.Owner] = err
			}
			return
		}
		// Drop or move the mapping whose port is taken, and try again.
		moved := false
		for _, e := range live {
			if netip.AddrPortFrom(e.m.Public.Addr(), e.ports[0]).String() != inUse.Addr {
				continue
			}
			moved = true
			if len(e.ports) > 1 {
				h.log.Info("port taken on the host, using another", "mapping", e.m.Name, "taken", inUse.Addr, "next", e.ports[1])
				e.ports = e.ports[1:]
				break
			}
			e.err = fmt.Errorf("%s: %w", e.m.Name, err)
			if len(e.m.FallbackPorts) > 0 {
				e.err = fmt.Errorf("%s: port %d and the fallback ports %v are all taken on the host: %w", e.m.Name, e.m.Public.Port(), e.m.FallbackPorts, err)
			}
			errs[e.m.Owner] = e.err
			e.ports = nil
			break
		}
		if !moved {
			// The taken address is none of the mappings' own (cannot be
			// retried away): report it for every mapping.
			h.log.Error("inbound NAT", "err", err)
			for _, e := range live {
				errs[e.m.Owner] = err
			}
			return
		}
	}
}

func (h *Machine) applyLBs(ctx context.Context, p *reconcile.Plan, errs map[string]error) {
	want := map[string]bool{}
	for _, lp := range p.LBs {
		want[lp.Key] = true
		h.mu.Lock()
		e := h.engines[lp.Key]
		h.mu.Unlock()
		if e == nil {
			var err error
			e, err = lb.New(lb.Options{Name: h.engineName(lp), Registerer: h.cfg.Registerer, Logger: h.log.With("lb", lp.Name)})
			if err != nil {
				errs[lp.Key] = err
				continue
			}
			h.mu.Lock()
			h.engines[lp.Key] = e
			h.mu.Unlock()
		}
		cfg, err := h.lbConfig(ctx, lp)
		if err == nil {
			err = e.Apply(ctx, cfg)
		}
		if err != nil {
			errs[lp.Key] = err
			h.log.Error("load balancer", "lb", lp.Name, "err", err)
		}
	}
	h.mu.Lock()
	var gone []*lb.Engine
	for k, e := range h.engines {
		if !want[k] {
			gone = append(gone, e)
			delete(h.engines, k)
		}
	}
	h.mu.Unlock()
	for _, e := range gone {
		_ = e.Close()
	}
}

// engineName names a new engine (the "lb" label of its metrics): the load
// balancer's name, or group/name when an engine of another resource group
// already has that name (the metrics would collide).
func (h *Machine) engineName(lp reconcile.LBPlan) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.engines {
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

func (h *Machine) lbConfig(ctx context.Context, lp reconcile.LBPlan) (lb.Config, error) {
	var cfg lb.Config
	for _, pp := range lp.Pools {
		pool := lb.Pool{Name: pp.Name, DrainPeriod: pp.DrainPeriod}
		if pp.VNetNetns != "" {
			if ns := h.space(pp.VNetNetns); ns != nil {
				pool.Dial = proxy.DialFunc(ns.Dialer(netip.Addr{}))
				pool.ProbeDial = proxy.DialFunc(ns.Dialer(probeSource))
			}
		}
		if pool.Dial == nil {
			pool.Dial = refuse
			pool.ProbeDial = refuse
		}
		for _, b := range pp.Backends {
			pool.Backends = append(pool.Backends, lb.Backend{Name: b.Instance, Addr: b.Addr})
		}
		cfg.Pools = append(cfg.Pools, pool)
	}
	for _, pr := range lp.Probes {
		cfg.Probes = append(cfg.Probes, lb.Probe{Name: pr.Name, Protocol: lb.Protocol(pr.Protocol), Port: pr.Port,
			RequestPath: pr.Path, Interval: pr.Interval, ProbeThreshold: pr.Threshold})
	}
	for _, r := range lp.Rules {
		protos := []string{r.Protocol}
		if strings.EqualFold(r.Protocol, "All") {
			protos = []string{"Tcp", "Udp"}
		}
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
				if err := h.vnets.AddFrontendIP(ctx, r.VNetNetns, r.Bridge, r.Frontend); err != nil {
					return cfg, fmt.Errorf("internal frontend %s of rule %s: %w", r.Frontend, r.Name, err)
				}
				path := nsnet.Path(r.VNetNetns)
				rule.Listen = func(ctx context.Context, network, addr string) (net.Listener, error) {
					return nsnet.ListenTCP(ctx, path, addr)
				}
				rule.ListenPacket = func(ctx context.Context, network, addr string) (net.PacketConn, error) {
					return nsnet.ListenUDP(ctx, path, addr)
				}
			}
			cfg.Rules = append(cfg.Rules, rule)
		}
	}
	return cfg, nil
}

func refuse(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("the backend pool has no VNET yet")
}

// Drain takes an instance out of every pool and waits for its flows (up to
// the pools' drain periods).
func (h *Machine) Drain(ctx context.Context, netns string) error {
	h.mu.Lock()
	engines := make([]*lb.Engine, 0, len(h.engines))
	for _, e := range h.engines {
		engines = append(engines, e)
	}
	h.mu.Unlock()
	var waits []<-chan struct{}
	for _, e := range engines {
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

// LoadBalancerHealth is a load balancer's runtime view: each rule with its
// backends' probe state and connections, the pools, and its NAT forwards.
func (h *Machine) LoadBalancerHealth(key string) any {
	h.mu.Lock()
	e := h.engines[key]
	owner := map[string]string{}
	for k, v := range h.natOwner {
		owner[k] = v
	}
	h.mu.Unlock()
	out := map[string]any{}
	if e != nil {
		snap := e.Snapshot()
		pools := map[string]lb.PoolStatus{}
		for _, p := range snap.Pools {
			pools[p.Name] = p
		}
		var rules []map[string]any
		for _, r := range snap.Rules {
			var bs []map[string]any
			for _, b := range pools[r.BackendPool].Backends {
				state := string(b.State)
				for _, ps := range b.Probes {
					if ps.Probe == r.Probe {
						state = string(ps.State)
					}
				}
				if b.State == lb.Draining {
					state = string(lb.Draining)
				}
				bs = append(bs, map[string]any{"name": b.Name, "address": b.Addr, "state": state, "activeConnections": b.ActiveConnections,
					"totalConnections": b.TotalConnections, "probes": b.Probes})
			}
			rules = append(rules, map[string]any{"name": r.Name, "frontend": r.Frontend, "backendPort": r.BackendPort, "probe": r.Probe,
				"loadDistribution": r.LoadDistribution, "activeConnections": r.ActiveConnections, "totalConnections": r.TotalConnections,
				"refused": r.Refused, "backends": bs})
		}
		out["rules"] = rules
		out["pools"] = snap.Pools
	}
	var nats []map[string]any
	for _, s := range h.nat.Snapshot() {
		if owner[s.Public.String()] != key {
			continue
		}
		nats = append(nats, map[string]any{"name": s.Name, "frontend": s.Public, "backend": s.Backend, "activeConnections": s.Active, "totalConnections": s.Connections})
	}
	out["nat"] = nats
	return out
}

// ProbeStatuses reports what each load-balancer health probe says of an
// instance (by namespace), as instance-view statuses: code
// HealthProbe/{lb}/{probe}/{up|down|unknown|draining}, the last result as the
// message. None when the instance is in no probed pool.
func (h *Machine) ProbeStatuses(netns string) []arm.InstanceViewStatus {
	h.mu.Lock()
	keys := sortedKeys(h.engines)
	engines := make([]*lb.Engine, 0, len(keys))
	for _, k := range keys {
		engines = append(engines, h.engines[k])
	}
	h.mu.Unlock()
	var out []arm.InstanceViewStatus
	for _, e := range engines {
		snap := e.Snapshot()
		for _, p := range snap.Pools {
			for _, b := range p.Backends {
				if b.Name != netns {
					continue
				}
				for _, ps := range b.Probes {
					state := ps.State
					if b.State == lb.Draining {
						state = lb.Draining
					}
					level := "Info"
					if state == lb.Down {
						level = "Warning"
					}
					out = append(out, arm.InstanceViewStatus{
						Code:          "HealthProbe/" + snap.Name + "/" + ps.Probe + "/" + strings.ToLower(string(state)),
						Level:         level,
						DisplayStatus: fmt.Sprintf("Load balancer %s, probe %s: %s", snap.Name, ps.Probe, state),
						Message:       ps.LastResult,
					})
				}
			}
		}
	}
	return out
}

// Endpoint is where a VM's public SSH answers (its public IP's port 22, or
// the fallback port when the host's own sshd holds 22).
func (h *Machine) Endpoint(netns string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endpoints[netns]
}

// EndpointError says why a VM's public IP does not forward SSH (nil when it
// does, or when the VM has no public IP).
func (h *Machine) EndpointError(netns string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endpointErr[netns]
}

var _ reconcile.Kernel = (*Machine)(nil)
