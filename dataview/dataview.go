package dataview

import (
	"net/netip"
	"time"
)

// Backend states, as the load balancer's engine reports them.
const (
	StateUp       = "Up"
	StateDown     = "Down"
	StateUnknown  = "Unknown"
	StateDraining = "Draining"
)

// LoadBalancer is a load balancer's runtime view (GET …/loadBalancers/{name}/health,
// `vmss lb show`): each rule with its backends' probe state and connections,
// the pools, and the inbound NAT forwards the load balancer asks for. Rules
// and Pools are nil when the load balancer has no engine running.
type LoadBalancer struct {
	Rules []Rule       `json:"rules"`
	Pools []Pool       `json:"pools"`
	NAT   []NATForward `json:"nat"`
}

// Rule is one load-balancing rule with the members of its pool as this
// rule's probe sees them.
type Rule struct {
	Name              string         `json:"name"`
	Frontend          netip.AddrPort `json:"frontend"`
	BackendPort       int            `json:"backendPort"`
	Probe             string         `json:"probe"`
	LoadDistribution  string         `json:"loadDistribution"`
	ActiveConnections int            `json:"activeConnections"`
	TotalConnections  int64          `json:"totalConnections"`
	Refused           int64          `json:"refused"`
	Backends          []RuleBackend  `json:"backends"`
}

// RuleBackend is one member of a rule's pool. State is what the rule's probe
// says (Draining wins; the member's overall state when the rule has no probe).
type RuleBackend struct {
	Name              string        `json:"name"`
	Address           netip.Addr    `json:"address"`
	State             string        `json:"state"`
	ActiveConnections int64         `json:"activeConnections"`
	TotalConnections  int64         `json:"totalConnections"`
	Probes            []ProbeResult `json:"probes"`
}

// Pool is one backend pool.
type Pool struct {
	Name     string    `json:"name"`
	Backends []Backend `json:"backends"`
}

// Backend is one member of a pool. State: Draining, else Up when every probe
// of the pool's rules says up (or there is none), Down when one says down,
// else Unknown.
type Backend struct {
	Name              string        `json:"name"`
	Address           netip.Addr    `json:"address"`
	State             string        `json:"state"`
	Probes            []ProbeResult `json:"probes,omitempty"`
	ActiveConnections int64         `json:"activeConnections"`
	TotalConnections  int64         `json:"totalConnections"`
	FailedConnects    int64         `json:"failedConnects"`
	BytesIn           int64         `json:"bytesIn"`  // client → backend
	BytesOut          int64         `json:"bytesOut"` // backend → client
}

// ProbeResult is one probe's view of one backend.
type ProbeResult struct {
	Probe            string        `json:"probe"`
	State            string        `json:"state"`
	LastResult       string        `json:"lastResult,omitempty"` // "success" or the failure
	LastProbeTime    time.Time     `json:"lastProbeTime,omitzero"`
	LastDuration     time.Duration `json:"lastDuration"`
	ConsecutiveOK    int           `json:"consecutiveSuccesses"`
	ConsecutiveFails int           `json:"consecutiveFailures"`
	ProbesSent       int64         `json:"probesSent"`
}

// NATForward is one inbound NAT forward (a NAT pool's or rule's port of one
// instance).
type NATForward struct {
	Name              string         `json:"name"`
	Frontend          netip.AddrPort `json:"frontend"`
	Backend           netip.AddrPort `json:"backend"`
	ActiveConnections int            `json:"activeConnections"`
	TotalConnections  int64          `json:"totalConnections"`
}

// InstanceProbe is what one load balancer's health probe says of one
// instance: State is Up, Down, Unknown, or Draining while the instance
// leaves the pool; LastResult is "success" or the last failure.
type InstanceProbe struct {
	LoadBalancer string
	Probe        string
	State        string
	LastResult   string
}
