package lb

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Snapshot is the observable state of an engine (`vmss lb show`, API).
type Snapshot struct {
	Name  string       `json:"name"`
	Rules []RuleStatus `json:"rules"`
	Pools []PoolStatus `json:"pools"`
}

// RuleStatus is one load-balancing rule.
type RuleStatus struct {
	Name                      string            `json:"name"`
	Protocol                  Protocol          `json:"protocol"`
	Frontend                  netip.AddrPort    `json:"frontend"`
	BackendPort               int               `json:"backendPort"`
	BackendPool               string            `json:"backendPool"`
	Probe                     string            `json:"probe,omitempty"`
	LoadDistribution          Distribution      `json:"loadDistribution"`
	NoHealthyBackendsBehavior NoHealthyBehavior `json:"noHealthyBackendsBehavior"`
	IdleTimeout               time.Duration     `json:"idleTimeout"`
	EnableTCPReset            bool              `json:"enableTcpReset"`
	ActiveConnections         int               `json:"activeConnections"`
	TotalConnections          int64             `json:"totalConnections"`
	Refused                   int64             `json:"refused"`
}

// PoolStatus is one backend pool.
type PoolStatus struct {
	Name     string          `json:"name"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one member of a pool.
type BackendStatus struct {
	Name string     `json:"name"`
	Addr netip.Addr `json:"address"`
	// State: Draining, else Up when every probe of the pool's rules says
	// up (or there is none), Down when one says down, else Unknown.
	State             State         `json:"state"`
	Probes            []ProbeStatus `json:"probes,omitempty"`
	ActiveConnections int64         `json:"activeConnections"`
	TotalConnections  int64         `json:"totalConnections"`
	FailedConnects    int64         `json:"failedConnects"`
	BytesIn           int64         `json:"bytesIn"`  // client → backend
	BytesOut          int64         `json:"bytesOut"` // backend → client
}

// Draining is the state of a backend leaving its pool.
const Draining State = "Draining"

// ProbeStatus is one probe's view of one backend.
type ProbeStatus struct {
	Probe            string        `json:"probe"`
	State            State         `json:"state"`
	LastResult       string        `json:"lastResult,omitempty"` // "success" or the failure
	LastProbeTime    time.Time     `json:"lastProbeTime,omitzero"`
	LastDuration     time.Duration `json:"lastDuration"`
	ConsecutiveOK    int           `json:"consecutiveSuccesses"`
	ConsecutiveFails int           `json:"consecutiveFailures"`
	ProbesSent       int64         `json:"probesSent"`
}

// Snapshot returns the current state, sorted by name.
func (e *Engine) Snapshot() Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s := Snapshot{Name: e.opts.Name, Rules: []RuleStatus{}, Pools: []PoolStatus{}}
	for _, r := range e.rules {
		c := r.cfg.Load()
		s.Rules = append(s.Rules, RuleStatus{
			Name: c.Name, Protocol: c.protocol(), Frontend: c.frontend(), BackendPort: c.BackendPort,
			BackendPool: c.BackendPool, Probe: c.Probe, LoadDistribution: c.LoadDistribution,
			NoHealthyBackendsBehavior: c.NoHealthyBackendsBehavior, IdleTimeout: c.idle(), EnableTCPReset: c.EnableTCPReset,
			ActiveConnections: r.Active(), TotalConnections: r.total.Load(), Refused: r.refused.Load(),
		})
	}
	slices.SortFunc(s.Rules, func(a, b RuleStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range e.pools {
		ps := PoolStatus{Name: p.cfg.Name, Backends: []BackendStatus{}}
		for _, m := range p.members {
			bs := BackendStatus{Name: m.name, Addr: m.addr, State: Up,
				ActiveConnections: m.active.Load(), TotalConnections: m.total.Load(), FailedConnects: m.failed.Load(),
				BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load()}
			for _, name := range p.probes {
				pr := m.probers[name]
				if pr == nil {
					continue
				}
				h := pr.health()
				st := ProbeStatus{Probe: name, State: h.State, LastProbeTime: h.LastAt, LastDuration: h.LastDuration,
					ConsecutiveOK: h.OKRun, ConsecutiveFails: h.FailRun, ProbesSent: h.ProbesSent}
				if !h.LastAt.IsZero() {
					st.LastResult = "success"
					if !h.LastOK {
						st.LastResult = h.LastErr
					}
				}
				bs.Probes = append(bs.Probes, st)
				switch {
				case h.State == Down:
					bs.State = Down
				case h.State == Unknown && bs.State == Up:
					bs.State = Unknown
				}
			}
			if m.draining.Load() {
				bs.State = Draining
			}
			ps.Backends = append(ps.Backends, bs)
		}
		s.Pools = append(s.Pools, ps)
	}
	slices.SortFunc(s.Pools, func(a, b PoolStatus) int { return strings.Compare(a.Name, b.Name) })
	return s
}
