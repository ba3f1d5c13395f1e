package reconcile

import (
	"context"
	"net/netip"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// Kernel is everything the reconciler asks of the machine. Every method is
// idempotent. Package machine implements it with namespaces, bridges,
// cgroups and in-process servers; tests use a fake.
type Kernel interface {
	// EnsureVNet creates or updates a VNET namespace with its bridges and DNS server.
	EnsureVNet(ctx context.Context, v VNetSpec) error
	// DeleteVNet removes a VNET namespace and its servers.
	DeleteVNet(ctx context.Context, netns string) error
	// VNets lists the VNET namespaces that exist.
	VNets(ctx context.Context) ([]string, error)

	// CreateInstance builds an instance's namespaces, files and NIC. It does
	// not start anything in it.
	CreateInstance(ctx context.Context, in InstanceSpec) error
	// StartInstance serves SSH in the instance and starts its workload
	// (extensions). rerun forces extensions to run again (restart, upgrade).
	StartInstance(ctx context.Context, in InstanceSpec, rerun bool) error
	// StopInstance kills every process of the instance and stops serving SSH.
	StopInstance(ctx context.Context, netns string) error
	// DeleteInstance removes an instance entirely.
	DeleteInstance(ctx context.Context, netns string) error
	// Instances observes the instances that exist.
	Instances(ctx context.Context) (map[string]Observed, error)

	// Drain takes an instance out of every load-balancer pool and returns once
	// its established flows are done or the pools' drain periods are over.
	Drain(ctx context.Context, netns string) error
	// ApplyPlan configures DNS, inbound NAT and load balancing. It returns
	// errors by resource key (lower-cased id) for what could not be applied.
	ApplyPlan(ctx context.Context, p *Plan) map[string]error
}

// InstanceLooker is a Kernel that can also observe named instances without
// listing every instance. The reconciler then lists every instance
// (Instances) once per Options.Resync only, and between those full passes
// looks at the instances whose work ended since its last look: the cost of
// a pass that follows a change does not grow with the instances there are.
type InstanceLooker interface {
	// LookInstances observes those of names that exist (a name missing
	// from the answer does not exist).
	LookInstances(ctx context.Context, names []string) (map[string]Observed, error)
}

// Observed is what exists of one instance.
type Observed struct {
	// Complete is true when the instance was fully built (its record written);
	// a partial instance (crash during create) is rebuilt.
	Complete    bool
	BuildGen    int64  // generation it was built for
	RestartGen  int64  // restart generation last applied
	ModelGen    int64  // model generation whose extensions last ran
	Started     bool   // serving in this daemon process (SSH up, workload started)
	Health      string // from the Application Health extension: Healthy, Unhealthy, Unknown, or ""
	Extensions  []arm.ExtensionView
	SSHEndpoint string
	// Probes is what each load-balancer health probe says of the instance.
	Probes []ProbeHealth
}

// ProbeHealth is one load-balancer probe's view of an instance.
type ProbeHealth struct {
	LoadBalancer string // load balancer name
	Probe        string // probe name
	State        string // Up, Down, Unknown or Draining
}

// VNetSpec is a VNET namespace.
type VNetSpec struct {
	Key     string // lower-cased resource id
	Netns   string
	Suffix  string // internal DNS suffix
	Subnets []SubnetSpec
}

// SubnetSpec is one subnet: a bridge with the gateway address.
type SubnetSpec struct {
	Name   string
	Prefix netip.Prefix
	Bridge string
}

// InstanceSpec is everything needed to build and run one instance.
type InstanceSpec struct {
	Key          string // owner: lower-cased set id + "/" + instance id, or the VM id
	Kind         string // "vmss" or "vm"
	Netns        string
	InstanceID   string // scale-set instance id ("" for VMs)
	VMName       string
	ComputerName string
	VNetNetns    string
	Bridge       string
	Addr         netip.Prefix
	Gateway      netip.Addr
	MAC          string
	DNSSuffix    string
	AdminUser    string
	Password     string // "" when password logins are disabled
	PublicKeys   []string
	CustomData   string
	Extensions   []arm.Extension // in provisioning order
	BuildGen     int64
	RestartGen   int64
	ModelGen     int64
	FaultDomain  int
	UpdateDomain int
}

// Plan is the data plane: what DNS answers, what NAT forwards, how load
// balancers balance.
type Plan struct {
	Seq int64
	DNS []DNSZone
	NAT []NATMapping
	LBs []LBPlan
	// Filters are the network security groups of every created instance.
	Filters []FilterPlan
}

// DNSZone is the internal DNS of one VNET.
type DNSZone struct {
	VNetNetns string
	Suffix    string
	Prefixes  []netip.Prefix
	Records   []DNSRecord
	// Public are the names of public IPs with a DNS label
	// (label.location.cloudapp.azure.com), answered in every VNET.
	Public []DNSRecord
}

// DNSRecord maps a computer name to a private IP.
type DNSRecord struct {
	Name string
	IP   netip.Addr
}

// NATMapping forwards a public address:port to a private address:port in a VNET.
type NATMapping struct {
	Owner       string // lower-cased id of the load balancer or public IP that asks for it
	Name        string // NAT pool/rule name and instance, for messages
	Protocol    string // Tcp or Udp
	Public      netip.AddrPort
	VNetNetns   string
	Backend     netip.AddrPort
	Instance    string // netns of the backend instance
	IdleTimeout time.Duration
	TCPReset    bool
	// FallbackPorts, when set, are tried in order if Public's port is taken on
	// the host (a jumpbox's port 22 next to the host's own sshd).
	FallbackPorts []uint16
}

// LBPlan is one load balancer.
type LBPlan struct {
	Key    string
	Name   string
	Pools  []PoolPlan
	Probes []ProbePlan
	Rules  []RulePlan
}

// PoolPlan is a backend pool: its serving members, all in one VNET.
type PoolPlan struct {
	Name      string
	VNetNetns string // where members are dialled and probed from
	// DrainPeriod of members that leave: negative means none (flows are
	// reset at once); zero is lb's own default.
	DrainPeriod time.Duration
	Backends    []BackendPlan
}

// RulePlan is one load-balancing rule.
type RulePlan struct {
	Name         string
	Protocol     string // Tcp, Udp or All
	Public       bool   // frontend in the host namespace (public IP) or in the VNET (internal)
	Frontend     netip.Addr
	FrontendPort int
	BackendPort  int
	VNetNetns    string // internal frontend: the VNET it listens in
	Bridge       string // internal frontend: bridge carrying the address
	Distribution string
	IdleTimeout  time.Duration
	TCPReset     bool
	Pool         string
	Probe        string
	AllDownOpen  bool // the probe's noHealthyBackendsBehavior is AllProbedUp
}

// ProbePlan is a health probe.
type ProbePlan struct {
	Name      string
	Protocol  string // Tcp, Http, Https
	Port      int
	Path      string
	Interval  time.Duration
	Threshold int
}

// BackendPlan is one pool member.
type BackendPlan struct {
	Instance string // netns
	Name     string // VM name, for display
	Addr     netip.Addr
}
