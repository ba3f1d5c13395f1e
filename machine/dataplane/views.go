package dataplane

import (
	"github.com/vmss-emulator/vmss/dataview"
	"github.com/vmss-emulator/vmss/lb"
)

// LoadBalancer is a load balancer's runtime view: each rule with its
// backends' probe state and connections, the pools, and its NAT forwards.
func (p *Plane) LoadBalancer(key string) *dataview.LoadBalancer {
	e := p.balancers.get(key)
	owner := p.forwards.owners()
	out := &dataview.LoadBalancer{}
	if e != nil {
		snap := e.Snapshot()
		out.Rules = ruleViews(snap)
		out.Pools = make([]dataview.Pool, 0, len(snap.Pools))
		for _, pool := range snap.Pools {
			out.Pools = append(out.Pools, poolView(pool))
		}
	}
	for _, s := range p.forwards.table.Snapshot() {
		if owner[s.Public.String()] != key {
			continue
		}
		out.NAT = append(out.NAT, dataview.NATForward{Name: s.Name, Frontend: s.Public, Backend: s.Backend,
			ActiveConnections: s.Active, TotalConnections: s.Connections})
	}
	return out
}

// ruleViews are the rules of an engine, each with its pool's members as the
// rule's probe sees them.
func ruleViews(snap lb.Snapshot) []dataview.Rule {
	pools := map[string]lb.PoolStatus{}
	for _, p := range snap.Pools {
		pools[p.Name] = p
	}
	var rules []dataview.Rule
	for _, r := range snap.Rules {
		var bs []dataview.RuleBackend
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
			bs = append(bs, dataview.RuleBackend{Name: b.Name, Address: b.Addr, State: state,
				ActiveConnections: b.ActiveConnections, TotalConnections: b.TotalConnections, Probes: probeViews(b.Probes)})
		}
		rules = append(rules, dataview.Rule{Name: r.Name, Frontend: r.Frontend, BackendPort: r.BackendPort, Probe: r.Probe,
			LoadDistribution: string(r.LoadDistribution), ActiveConnections: r.ActiveConnections,
			TotalConnections: r.TotalConnections, Refused: r.Refused, Backends: bs})
	}
	return rules
}

func poolView(p lb.PoolStatus) dataview.Pool {
	out := dataview.Pool{Name: p.Name, Backends: make([]dataview.Backend, 0, len(p.Backends))}
	for _, b := range p.Backends {
		out.Backends = append(out.Backends, dataview.Backend{Name: b.Name, Address: b.Addr, State: string(b.State),
			Probes: probeViews(b.Probes), ActiveConnections: b.ActiveConnections, TotalConnections: b.TotalConnections,
			FailedConnects: b.FailedConnects, BytesIn: b.BytesIn, BytesOut: b.BytesOut})
	}
	return out
}

func probeViews(ps []lb.ProbeStatus) []dataview.ProbeResult {
	if ps == nil {
		return nil
	}
	out := make([]dataview.ProbeResult, 0, len(ps))
	for _, s := range ps {
		out = append(out, dataview.ProbeResult{Probe: s.Probe, State: string(s.State), LastResult: s.LastResult,
			LastProbeTime: s.LastProbeTime, LastDuration: s.LastDuration, ConsecutiveOK: s.ConsecutiveOK,
			ConsecutiveFails: s.ConsecutiveFails, ProbesSent: s.ProbesSent})
	}
	return out
}

// Probes reports what each load-balancer health probe says of an instance
// (by namespace), load balancers in key order: Draining while the instance
// leaves the pool. None when the instance is in no probed pool.
func (p *Plane) Probes(netns string) []dataview.InstanceProbe {
	var out []dataview.InstanceProbe
	for _, e := range p.balancers.sorted() {
		snap := e.Snapshot()
		for _, pool := range snap.Pools {
			for _, b := range pool.Backends {
				if b.Name != netns {
					continue
				}
				for _, ps := range b.Probes {
					state := ps.State
					if b.State == lb.Draining {
						state = lb.Draining
					}
					out = append(out, dataview.InstanceProbe{LoadBalancer: snap.Name, Probe: ps.Probe,
						State: string(state), LastResult: ps.LastResult})
				}
			}
		}
	}
	return out
}
