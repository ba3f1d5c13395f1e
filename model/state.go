package model

import (
	"github.com/vmss-emulator/vmss/internal/defaults"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// Config is what the state needs to know about its host. The zero value is not
// usable: use DefaultConfig and change fields.
type Config struct {
	Subscription  string       // subscription id used in resource ids
	ResourceGroup string       // the default resource group, created on first use
	Location      string       // default location
	Prefix        string       // name prefix of every kernel object ("vmss-")
	PublicIPRange netip.Prefix // host addresses handed to public IPs (loopback by default)
	LiftLimits    bool         // ignore Azure's instance limits (100 per placement group, 1000 per set)
	Now           func() time.Time
}

// DefaultConfig is the configuration of a stock daemon.
func DefaultConfig() Config {
	return Config{
		Subscription:  "00000000-0000-0000-0000-000000000000",
		ResourceGroup: "default",
		Location:      "eastus",
		Prefix:        defaults.Prefix,
		PublicIPRange: netip.MustParsePrefix("127.77.0.0/16"),
		Now:           time.Now,
	}
}

// Power states an instance can be asked to be in.
const (
	PowerRunning     = "running"
	PowerStopped     = "stopped"
	PowerDeallocated = "deallocated"
)

// State is the whole desired state. Maps are keyed by lower-cased resource id
// (resource groups by lower-cased name).
type State struct {
	Version        int                              `json:"version"`
	ResourceGroups map[string]*arm.ResourceGroup    `json:"resourceGroups"`
	VNets          map[string]*arm.VirtualNetwork   `json:"virtualNetworks"`
	PublicIPs      map[string]*arm.PublicIPAddress  `json:"publicIPAddresses"`
	LoadBalancers  map[string]*arm.LoadBalancer     `json:"loadBalancers"`
	NICs           map[string]*arm.NetworkInterface `json:"networkInterfaces"`
	VMs            map[string]*VM                   `json:"virtualMachines"`
	ScaleSets      map[string]*ScaleSet             `json:"virtualMachineScaleSets"`
	Generic        map[string]*arm.GenericResource  `json:"genericResources"`
	Deployments    map[string]*Deployment           `json:"deployments"`
	Netns          map[string]string                `json:"netns"` // kernel name -> owner key
	Seq            int64                            `json:"seq"`   // bumped on every change

	cfg Config
	// netnsOwners is Netns inverted (owner key -> kernel name), for
	// claimNetnsWith: built on first use, kept in step by claimNetnsWith
	// and releaseNetns, and built again when Netns changed without them.
	// Not persisted; only used with the state locked for writing.
	netnsOwners map[string]string
}

// ScaleSet is a scale set's model plus the instances it has.
type ScaleSet struct {
	Model     arm.VirtualMachineScaleSet `json:"model"`
	Instances map[string]*Instance       `json:"instances"`
	NextID    int                        `json:"nextInstanceId"`
	ModelGen  int64                      `json:"modelGeneration"`
	// Batch is the pending overprovisioned scale-out: Want of Members must run;
	// the others are deleted once they do.
	Batch *OverprovisionBatch `json:"overprovisionBatch,omitempty"`
	// FaultDomainsDown lists fault domains taken down by fault injection.
	FaultDomainsDown []int     `json:"faultDomainsDown,omitempty"`
	Deleting         bool      `json:"deleting,omitempty"`
	Created          time.Time `json:"created"`
}

// OverprovisionBatch is an overprovisioned scale-out in flight.
type OverprovisionBatch struct {
	Want    int      `json:"want"`
	Members []string `json:"members"`
}

// Instance is one scale-set instance (or the runtime side of a standalone VM).
type Instance struct {
	ID           string         `json:"instanceId"`
	Name         string         `json:"name"`
	ComputerName string         `json:"computerName"`
	FaultDomain  int            `json:"faultDomain"`
	UpdateDomain int            `json:"updateDomain"`
	Subnet       string         `json:"subnet"` // subnet id
	PrivateIP    string         `json:"privateIp"`
	MAC          string         `json:"mac"`
	Netns        string         `json:"netns"`
	NATPorts     map[string]int `json:"natPorts,omitempty"` // lower-cased NAT pool or v2 NAT rule id -> frontend port
	PublicIP     string         `json:"publicIp,omitempty"` // its own public IP (publicIPAddressConfiguration): a host address
	Power        string         `json:"power"`
	Protect      bool           `json:"protectFromScaleIn,omitempty"`
	ProtectSet   bool           `json:"protectFromScaleSetActions,omitempty"`
	ModelGen     int64          `json:"modelGeneration"`
	BuildGen     int64          `json:"buildGeneration"`   // bumped by reimage: the kernel instance is rebuilt
	RestartGen   int64          `json:"restartGeneration"` // bumped by restart
	Created      time.Time      `json:"created"`
	Deleting     bool           `json:"deleting,omitempty"`
	VMID         string         `json:"vmId"`
}

// IDNum is the instance id as a number.
func (in *Instance) IDNum() int {
	n, _ := strconv.Atoi(in.ID) // instance ids are decimal numbers by construction
	return n
}

// VM is a standalone virtual machine plus its runtime wishes.
type VM struct {
	Model      arm.VirtualMachine `json:"model"`
	Netns      string             `json:"netns"`
	Power      string             `json:"power"`
	BuildGen   int64              `json:"buildGeneration"`
	RestartGen int64              `json:"restartGeneration"`
	Created    time.Time          `json:"created"`
	Deleting   bool               `json:"deleting,omitempty"`
}

// Deployment is a template deployment record: the deployment resource's
// properties (provisioningState, outputs, error, ...) and its per-resource
// operations, as the deployment engine reports them. Secure parameter values
// are never stored here.
type Deployment struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Properties map[string]any   `json:"properties"`
	Operations []map[string]any `json:"operations,omitempty"`
}

// New returns an empty state.
func New(cfg Config) *State {
	s := &State{Version: 1}
	s.SetConfig(cfg)
	return s
}

// SetConfig sets the host configuration (after loading a state from disk) and
// makes sure every map exists.
func (s *State) SetConfig(cfg Config) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s.cfg = cfg
	if s.ResourceGroups == nil {
		s.ResourceGroups = map[string]*arm.ResourceGroup{}
	}
	if s.VNets == nil {
		s.VNets = map[string]*arm.VirtualNetwork{}
	}
	if s.PublicIPs == nil {
		s.PublicIPs = map[string]*arm.PublicIPAddress{}
	}
	if s.LoadBalancers == nil {
		s.LoadBalancers = map[string]*arm.LoadBalancer{}
	}
	if s.NICs == nil {
		s.NICs = map[string]*arm.NetworkInterface{}
	}
	if s.VMs == nil {
		s.VMs = map[string]*VM{}
	}
	if s.ScaleSets == nil {
		s.ScaleSets = map[string]*ScaleSet{}
	}
	if s.Generic == nil {
		s.Generic = map[string]*arm.GenericResource{}
	}
	if s.Deployments == nil {
		s.Deployments = map[string]*Deployment{}
	}
	if s.Netns == nil {
		s.Netns = map[string]string{}
	}
}

// Config returns the host configuration.
func (s *State) Config() Config { return s.cfg }

// SortedInstances returns a set's instances ordered by numeric id.
func (ss *ScaleSet) SortedInstances() []*Instance {
	out := make([]*Instance, 0, len(ss.Instances))
	for _, in := range ss.Instances {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IDNum() < out[j].IDNum() })
	return out
}

// Live returns the instances not being deleted, ordered by id.
func (ss *ScaleSet) Live() []*Instance {
	var out []*Instance
	for _, in := range ss.SortedInstances() {
		if !in.Deleting {
			out = append(out, in)
		}
	}
	return out
}

// Capacity is the model's sku.capacity.
func (ss *ScaleSet) Capacity() int {
	if ss.Model.Sku == nil {
		return 0
	}
	return int(arm.IntOr(ss.Model.Sku.Capacity, 0))
}

// Profile returns the VM profile (never nil).
func (ss *ScaleSet) Profile() *arm.ScaleSetVMProfile {
	if ss.Model.Properties == nil || ss.Model.Properties.VirtualMachineProfile == nil {
		return &arm.ScaleSetVMProfile{}
	}
	return ss.Model.Properties.VirtualMachineProfile
}

// FaultDomainCount is platformFaultDomainCount, default 5.
func (ss *ScaleSet) FaultDomainCount() int {
	if ss.Model.Properties == nil {
		return 5
	}
	n := int(arm.IntOr(ss.Model.Properties.PlatformFaultDomainCount, 5))
	if n < 1 {
		return 5
	}
	return n
}

// FaultDomainDown reports whether fd is down by fault injection.
func (ss *ScaleSet) FaultDomainDown(fd int) bool {
	for _, d := range ss.FaultDomainsDown {
		if d == fd {
			return true
		}
	}
	return false
}
