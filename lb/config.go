package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/proxy"
)

// Defaults (Azure's unless marked).
const (
	DefaultIdleTimeout   = 4 * time.Minute
	DefaultProbeInterval = 15 * time.Second
	MaxProbeTimeout      = 30 * time.Second
	// DefaultDrainPeriod is the emulator's choice when a pool sets none:
	// long enough for typical requests to finish, short enough for a
	// scale-in to complete promptly.
	DefaultDrainPeriod = 30 * time.Second
	// DefaultConnectTimeout bounds a dial to one backend before the next
	// is tried.
	DefaultConnectTimeout = 5 * time.Second
)

// Protocol of a rule or probe, in ARM spelling.
type Protocol string

// Protocols.
const (
	Tcp   Protocol = "Tcp"
	Udp   Protocol = "Udp"
	Http  Protocol = "Http"  // probes only
	Https Protocol = "Https" // probes only
)

// Distribution is a rule's loadDistribution.
type Distribution string

// Distributions.
const (
	Default          Distribution = "Default" // round-robin over healthy backends (emulator)
	SourceIP         Distribution = "SourceIP"
	SourceIPProtocol Distribution = "SourceIPProtocol"
)

// NoHealthyBehavior is a rule's noHealthyBackendsBehavior.
type NoHealthyBehavior string

// Behaviours when every probed backend is down.
const (
	AllProbedDown NoHealthyBehavior = "AllProbedDown" // refuse new flows (default)
	AllProbedUp   NoHealthyBehavior = "AllProbedUp"   // send to every member
)

// Config is the desired state of one load balancer.
type Config struct {
	Pools  []Pool
	Probes []Probe
	Rules  []Rule
}

// Pool is a backend address pool. Its members live in one VNET.
type Pool struct {
	Name     string
	Backends []Backend
	// Dial reaches members (inside the VNET). nil dials from the host.
	Dial proxy.DialFunc
	// ProbeDial is used for probes. nil means Dial.
	ProbeDial proxy.DialFunc
	// DrainPeriod (ARM drainPeriodInSeconds) is how long a removed
	// member's established flows may continue. Zero means
	// DefaultDrainPeriod; negative means close them at once.
	DrainPeriod time.Duration
}

// Backend is one member: an instance's NIC.
type Backend struct {
	Name string     // unique in the pool, e.g. "vmss_3"
	Addr netip.Addr // private IP
}

// Probe is a health probe.
type Probe struct {
	Name        string
	Protocol    Protocol // Tcp, Http or Https
	Port        int
	RequestPath string // Http/Https: required, e.g. "/health"
	// Interval between probes (intervalInSeconds). Zero means 15 s;
	// sub-second values are allowed (tests). The timeout of one probe is
	// min(Interval, 30 s).
	Interval time.Duration
	// ProbeThreshold consecutive results change a backend's state. Zero
	// means NumberOfProbes, and 1 when that is zero too.
	ProbeThreshold int
	NumberOfProbes int
}

func (p Probe) interval() time.Duration {
	if p.Interval <= 0 {
		return DefaultProbeInterval
	}
	return p.Interval
}

func (p Probe) timeout() time.Duration { return min(p.interval(), MaxProbeTimeout) }

func (p Probe) threshold() int {
	switch {
	case p.ProbeThreshold > 0:
		return p.ProbeThreshold
	case p.NumberOfProbes > 0:
		return p.NumberOfProbes
	}
	return 1
}

// Rule is a load-balancing rule.
type Rule struct {
	Name string
	// Frontend is the frontend IP: a 127.x host address for a public load
	// balancer, or a private IP with Listen set for an internal one.
	Frontend     netip.Addr
	FrontendPort int
	BackendPort  int
	Protocol     Protocol // Tcp or Udp; empty means Tcp
	BackendPool  string
	Probe        string // probe name; empty: members count as up
	// IdleTimeout (idleTimeoutInMinutes): zero means 4 min, negative
	// disables it. Durations below a minute are allowed (tests).
	IdleTimeout    time.Duration
	EnableTCPReset bool
	// LoadDistribution: empty means Default.
	LoadDistribution Distribution
	// NoHealthyBackendsBehavior: empty means AllProbedDown.
	NoHealthyBackendsBehavior NoHealthyBehavior
	// Listen / ListenPacket open the frontend socket, e.g. inside the VNET
	// for an internal load balancer. nil means Options.Listen, then the
	// host. A changed seam on an existing frontend is not picked up.
	Listen       proxy.ListenFunc
	ListenPacket proxy.ListenPacketFunc
}

func (r Rule) protocol() Protocol {
	if r.Protocol == "" {
		return Tcp
	}
	return r.Protocol
}

func (r Rule) network() string {
	if r.protocol() == Udp {
		return "udp"
	}
	return "tcp"
}

func (r Rule) frontend() netip.AddrPort {
	return netip.AddrPortFrom(r.Frontend, uint16(r.FrontendPort))
}

func (r Rule) idle() time.Duration {
	switch {
	case r.IdleTimeout == 0:
		return DefaultIdleTimeout
	case r.IdleTimeout < 0:
		return 0
	}
	return r.IdleTimeout
}

func (r Rule) distribution() Distribution {
	if r.LoadDistribution == "" {
		return Default
	}
	return r.LoadDistribution
}

// canon returns the ARM spelling of s among choices, matched
// case-insensitively (templates are not consistent), or "" if none.
func canon[S ~string](s S, choices ...S) S {
	for _, c := range choices {
		if strings.EqualFold(string(s), string(c)) {
			return c
		}
	}
	return ""
}

// normalize fills ARM spellings and checks the configuration. It returns
// every problem, joined.
func (c *Config) normalize() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	pools := map[string]bool{}
	for _, p := range c.Pools {
		if p.Name == "" || pools[p.Name] {
			bad("backend pool %q: names must be unique and non-empty", p.Name)
		}
		pools[p.Name] = true
		seen := map[string]bool{}
		for _, b := range p.Backends {
			if b.Name == "" || seen[b.Name] {
				bad("backend pool %s: member %q: names must be unique and non-empty", p.Name, b.Name)
			}
			seen[b.Name] = true
			if !b.Addr.IsValid() {
				bad("backend pool %s: member %s has no IP address", p.Name, b.Name)
			}
		}
	}
	probes := map[string]bool{}
	for i := range c.Probes {
		p := &c.Probes[i]
		if p.Name == "" || probes[p.Name] {
			bad("probe %q: names must be unique and non-empty", p.Name)
		}
		probes[p.Name] = true
		if p.Protocol = canon(p.Protocol, Tcp, Http, Https); p.Protocol == "" {
			bad("probe %s: protocol must be Tcp, Http or Https", p.Name)
		}
		if p.Port < 1 || p.Port > 65535 {
			bad("probe %s: port %d out of 1-65535", p.Name, p.Port)
		}
		if p.Protocol != Tcp && !strings.HasPrefix(p.RequestPath, "/") {
			bad("probe %s: %s probes need a requestPath starting with /, e.g. /health", p.Name, p.Protocol)
		}
		if p.ProbeThreshold < 0 || p.NumberOfProbes < 0 {
			bad("probe %s: probeThreshold and numberOfProbes must not be negative", p.Name)
		}
	}
	names := map[string]bool{}
	fronts := map[string]string{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Name == "" || names[r.Name] {
			bad("load-balancing rule %q: names must be unique and non-empty", r.Name)
		}
		names[r.Name] = true
		if r.Protocol = canon(r.protocol(), Tcp, Udp); r.Protocol == "" {
			bad("load-balancing rule %s: protocol must be Tcp or Udp (All/HA ports is not emulated)", r.Name)
		}
		if r.LoadDistribution = canon(r.distribution(), Default, SourceIP, SourceIPProtocol); r.LoadDistribution == "" {
			bad("load-balancing rule %s: loadDistribution must be Default, SourceIP or SourceIPProtocol", r.Name)
		}
		if r.NoHealthyBackendsBehavior == "" {
			r.NoHealthyBackendsBehavior = AllProbedDown
		}
		if r.NoHealthyBackendsBehavior = canon(r.NoHealthyBackendsBehavior, AllProbedDown, AllProbedUp); r.NoHealthyBackendsBehavior == "" {
			bad("load-balancing rule %s: noHealthyBackendsBehavior must be AllProbedDown or AllProbedUp", r.Name)
		}
		if !r.Frontend.IsValid() {
			bad("load-balancing rule %s: no frontend IP", r.Name)
		}
		if r.FrontendPort < 1 || r.FrontendPort > 65534 || r.BackendPort < 1 || r.BackendPort > 65535 {
			bad("load-balancing rule %s: frontend port %d / backend port %d out of range (1-65534 / 1-65535)", r.Name, r.FrontendPort, r.BackendPort)
		}
		if !pools[r.BackendPool] {
			bad("load-balancing rule %s: backend pool %q does not exist", r.Name, r.BackendPool)
		}
		if r.Probe != "" && !probes[r.Probe] {
			bad("load-balancing rule %s: probe %q does not exist", r.Name, r.Probe)
		}
		k := r.network() + " " + r.frontend().String()
		if other, dup := fronts[k]; dup {
			bad("load-balancing rules %s and %s both use frontend %s/%s; give one another frontend port", other, r.Name, r.frontend(), r.network())
		}
		fronts[k] = r.Name
	}
	return errors.Join(errs...)
}
