package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/nat/natport"
)

// Limits Azure enforces on a scale set.
const (
	MaxSinglePlacementGroup = 100
	MaxScaleSet             = 1000
)

// PutScaleSet creates a scale set, or merges body into an existing one (Azure
// merges a partial PUT of a scale set, which is how a template that carries only
// the sku scales an existing set). patch requires the set to exist. Capacity
// changes scale out or in following Azure's rules.
func (s *State) PutScaleSet(id arm.ID, body []byte, patch bool) (*ScaleSet, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypeScaleSet, id.Name()); e != nil {
		return nil, false, e
	}
	old, exists := s.ScaleSets[id.Key()]
	if patch && !exists {
		return nil, false, arm.NotFound(id.String())
	}
	if exists && old.Deleting {
		return nil, false, arm.Errorf(409, "OperationNotAllowed", id.String(), "Scale set %s is being deleted.", id.Name())
	}
	doc := body
	var probe any
	if e := decode(id.String(), body, &probe); e != nil {
		return nil, false, e
	}
	if _, ok := probe.(map[string]any); !ok {
		return nil, false, arm.Errorf(400, "InvalidRequestContent", id.String(), "The request body must be a JSON object.")
	}
	if exists {
		id = mustParse(old.Model.ID)
		cur, _ := json.Marshal(old.Model) // encoding our own types (no channels, funcs or cyclic values) cannot fail
		merged, err := mergePatch(cur, body)
		if err != nil {
			return nil, false, arm.Errorf(400, "InvalidRequestContent", id.String(), "Could not merge the request into the scale set: %v.", err)
		}
		doc = merged
	}
	var m arm.VirtualMachineScaleSet
	if e := decode(id.String(), doc, &m); e != nil {
		return nil, false, e
	}
	if e := s.normalizeScaleSet(id, &m, old); e != nil {
		return nil, false, e
	}
	capacity := int(arm.IntOr(m.Sku.Capacity, 0))
	if e := s.checkLimits(&m, capacity); e != nil {
		return nil, false, e
	}

	ss := &ScaleSet{Instances: map[string]*Instance{}, Created: s.cfg.Now()}
	if exists {
		// Work on a copy of the instance records: nothing changes unless all succeeds.
		ss = old.clone()
	}
	// Encoding our own types (no channels, funcs or cycles) cannot fail.
	prevProfile, _ := json.Marshal(ss.Profile())
	ss.Model = m
	if newProfile, _ := json.Marshal(ss.Profile()); !exists || !bytes.Equal(prevProfile, newProfile) {
		ss.ModelGen++
	}
	if e := s.resize(ss, capacity); e != nil {
		return nil, false, e
	}
	if e := s.assignNATPorts(ss, nil); e != nil {
		return nil, false, e
	}
	if e := s.assignInstancePublicIPs(ss); e != nil {
		return nil, false, e
	}
	s.applyUpgradePolicy(ss)
	s.ensureGroup(id)
	s.commitScaleSet(id.Key(), ss)
	return ss, !exists, nil
}

// Scale sets a scale set's capacity (az vmss scale).
func (s *State) Scale(id arm.ID, capacity int64) (*ScaleSet, *arm.Error) {
	body, _ := json.Marshal(map[string]any{"sku": map[string]any{"capacity": capacity}}) // always encodes
	ss, _, e := s.PutScaleSet(id, body, true)
	return ss, e
}

func (s *State) normalizeScaleSet(id arm.ID, m *arm.VirtualMachineScaleSet, old *ScaleSet) *arm.Error {
	m.ID, m.Name, m.Type = id.String(), id.Name(), arm.TypeScaleSet
	m.Location = s.location(m.Location)
	if e := normalizeSku(m); e != nil {
		return e
	}
	if m.Properties == nil {
		m.Properties = &arm.ScaleSetProperties{}
	}
	p := m.Properties
	if e := normalizeScaleSetPolicies(p); e != nil {
		return e
	}
	vp := p.VirtualMachineProfile
	if vp == nil {
		return arm.BadRequest("properties.virtualMachineProfile", "Required parameter 'virtualMachineProfile' is missing (null).")
	}
	if e := normalizeScaleSetOSProfile(id, vp, old); e != nil {
		return e
	}
	if e := s.validateScaleSetNICs(m.ID, vp); e != nil {
		return e
	}
	if hp := vp.NetworkProfile.HealthProbe; hp != nil && !s.lbChildExists(hp.ID, "probes") && !s.probeExists(hp.ID) {
		return invalidRef(hp.ID, m.ID)
	}
	if vp.ExtensionProfile != nil {
		if e := validateExtensions("properties.virtualMachineProfile.extensionProfile.extensions", vp.ExtensionProfile.Extensions); e != nil {
			return e
		}
	}
	if p.UpgradePolicy.Mode == "Rolling" && vp.NetworkProfile.HealthProbe == nil && !hasHealthExtension(vp) {
		return arm.BadRequest("properties.upgradePolicy.mode",
			"Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe or health extension was not provided.")
	}
	p.ProvisioningState = ""
	if old != nil {
		p.UniqueID, p.TimeCreated = old.Model.Properties.UniqueID, old.Model.Properties.TimeCreated
	} else {
		p.UniqueID = guid("vmss", id.Key())
		p.TimeCreated = s.cfg.Now().UTC().Format("2006-01-02T15:04:05.0000000Z")
	}
	return nil
}

// normalizeSku checks the capacity and fills the sku's defaults.
func normalizeSku(m *arm.VirtualMachineScaleSet) *arm.Error {
	if m.Sku == nil {
		return arm.BadRequest("sku", "Required parameter 'sku' is missing (null): give sku.name and sku.capacity.")
	}
	if m.Sku.Capacity == nil {
		return arm.BadRequest("sku.capacity", "Required parameter 'sku.capacity' is missing (null).")
	}
	if *m.Sku.Capacity < 0 {
		return arm.BadRequest("sku.capacity", "The capacity %d is not valid: it must be 0 or more.", *m.Sku.Capacity)
	}
	if m.Sku.Name == "" {
		m.Sku.Name = "Standard_DS1_v2"
	}
	if m.Sku.Tier == "" {
		m.Sku.Tier = "Standard"
	}
	return nil
}

// normalizeScaleSetPolicies fills and checks orchestration, overprovisioning,
// placement, fault domains, upgrade and scale-in policies.
func normalizeScaleSetPolicies(p *arm.ScaleSetProperties) *arm.Error {
	if p.OrchestrationMode != "" && !strings.EqualFold(p.OrchestrationMode, "Uniform") {
		return arm.BadRequest("properties.orchestrationMode", "Orchestration mode %q is not emulated: only Uniform scale sets are.", p.OrchestrationMode)
	}
	if p.Overprovision == nil {
		p.Overprovision = arm.BoolPtr(true)
	}
	if p.SinglePlacementGroup == nil {
		p.SinglePlacementGroup = arm.BoolPtr(true)
	}
	if p.PlatformFaultDomainCount == nil {
		p.PlatformFaultDomainCount = arm.IntPtr(5)
	}
	if n := *p.PlatformFaultDomainCount; n < 1 || n > 5 {
		return arm.BadRequest("properties.platformFaultDomainCount", "platformFaultDomainCount must be 1-5, got %d.", n)
	}
	if p.UpgradePolicy == nil {
		p.UpgradePolicy = &arm.UpgradePolicy{}
	}
	switch strings.ToLower(p.UpgradePolicy.Mode) {
	case "", "manual":
		p.UpgradePolicy.Mode = "Manual"
	case "automatic":
		p.UpgradePolicy.Mode = "Automatic"
	case "rolling":
		p.UpgradePolicy.Mode = "Rolling"
	default:
		return arm.BadRequest("properties.upgradePolicy.mode", "Upgrade mode %q is not valid: use Manual, Automatic or Rolling.", p.UpgradePolicy.Mode)
	}
	if p.ScaleInPolicy != nil {
		for _, r := range p.ScaleInPolicy.Rules {
			switch strings.ToLower(r) {
			case "default", "newestvm", "oldestvm":
			default:
				return arm.BadRequest("properties.scaleInPolicy.rules", "Scale-in rule %q is not valid: use Default, NewestVM or OldestVM.", r)
			}
		}
	}
	return nil
}

// normalizeScaleSetOSProfile fills the computer name prefix and checks the
// OS profile; admin and prefix cannot change on an existing set.
func normalizeScaleSetOSProfile(id arm.ID, vp *arm.ScaleSetVMProfile, old *ScaleSet) *arm.Error {
	base := "properties.virtualMachineProfile.osProfile"
	if vp.OSProfile == nil {
		return arm.BadRequest(base, "Required parameter 'osProfile' is missing (null).")
	}
	if vp.OSProfile.ComputerNamePrefix == "" {
		n := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return -1
		}, id.Name())
		if len(n) > 9 {
			n = n[:9]
		}
		if n == "" {
			n = "vmss"
		}
		vp.OSProfile.ComputerNamePrefix = n
	}
	if e := ValidateComputerNamePrefix(vp.OSProfile.ComputerNamePrefix); e != nil {
		return e
	}
	if e := validateOSProfile(base, vp.OSProfile); e != nil {
		return e
	}
	if old != nil {
		op := old.Profile().OSProfile
		if op != nil && (op.AdminUsername != vp.OSProfile.AdminUsername || op.ComputerNamePrefix != vp.OSProfile.ComputerNamePrefix) {
			return arm.Errorf(409, "PropertyChangeNotAllowed", base,
				"Changing property 'osProfile' (adminUsername, computerNamePrefix) is not allowed on an existing scale set.")
		}
	}
	return nil
}

// validateScaleSetNICs checks the network interface configurations: named,
// with ip configurations on subnets of one VNET, and load balancer pools
// that exist. setID is the scale set's id.
func (s *State) validateScaleSetNICs(setID string, vp *arm.ScaleSetVMProfile) *arm.Error {
	ncs := vp.NICConfigs()
	if len(ncs) == 0 {
		return arm.BadRequest("properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations",
			"The scale set needs at least one network interface configuration with an ip configuration on a subnet.")
	}
	var vnet string
	for i := range ncs {
		nc := &ncs[i]
		if nc.Name == "" {
			return arm.BadRequest("networkInterfaceConfigurations", "Every network interface configuration needs a name.")
		}
		if len(nc.Properties.IPConfigurations) == 0 {
			return arm.BadRequest("networkInterfaceConfigurations["+nc.Name+"]", "Network interface configuration %s needs an ip configuration.", nc.Name)
		}
		for j := range nc.Properties.IPConfigurations {
			ic := &nc.Properties.IPConfigurations[j]
			target := "networkInterfaceConfigurations[" + nc.Name + "].ipConfigurations[" + ic.Name + "]"
			if ic.Properties.Subnet == nil {
				return arm.BadRequest(target, "ip configuration %s needs properties.subnet.id.", ic.Name)
			}
			ref, ok := s.LookupSubnet(ic.Properties.Subnet.ID)
			if !ok {
				return invalidRef(ic.Properties.Subnet.ID, setID)
			}
			if vnet != "" && !arm.EqualIDs(vnet, ref.VNet.ID) {
				return arm.BadRequest(target, "All network interface configurations of a scale set must use one virtual network.")
			}
			vnet = ref.VNet.ID
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				if !s.lbChildExists(r.ID, "backendAddressPools") {
					return invalidRef(r.ID, setID)
				}
			}
			for _, r := range ic.Properties.LoadBalancerInboundNatPools {
				if !s.lbChildExists(r.ID, "inboundNatPools") {
					return invalidRef(r.ID, setID)
				}
			}
			if e := validatePublicIPConfig(target, ic); e != nil {
				return e
			}
		}
	}
	return nil
}

func (s *State) probeExists(id string) bool {
	pid, err := arm.ParseID(id)
	if err != nil || len(pid.Types) != 2 {
		return false
	}
	lb, ok := s.LoadBalancers[pid.Parent().Key()]
	return ok && findProbe(lb.Properties.Probes, id) >= 0
}

func hasHealthExtension(vp *arm.ScaleSetVMProfile) bool {
	if vp.ExtensionProfile == nil {
		return false
	}
	for _, e := range vp.ExtensionProfile.Extensions {
		if strings.HasPrefix(strings.ToLower(e.Properties.Type), "applicationhealth") {
			return true
		}
	}
	return false
}

func (s *State) checkLimits(m *arm.VirtualMachineScaleSet, capacity int) *arm.Error {
	if s.cfg.LiftLimits {
		return nil
	}
	spg := arm.BoolOr(m.Properties.SinglePlacementGroup, true)
	if spg && capacity > MaxSinglePlacementGroup {
		return arm.Errorf(400, "InvalidParameter", "sku.capacity",
			"The capacity %d exceeds the maximum of %d virtual machines in a scale set with singlePlacementGroup=true. Set properties.singlePlacementGroup to false (up to %d), or start the daemon with --lift-limits.",
			capacity, MaxSinglePlacementGroup, MaxScaleSet)
	}
	if capacity > MaxScaleSet {
		return arm.Errorf(400, "InvalidParameter", "sku.capacity",
			"The capacity %d exceeds the maximum of %d virtual machines in a scale set. Use several scale sets, or start the daemon with --lift-limits.",
			capacity, MaxScaleSet)
	}
	return nil
}

// EffectiveCount is the number of instances the set counts toward its
// capacity: live instances less the overprovisioned extras still pending.
func (ss *ScaleSet) EffectiveCount() int {
	live := ss.Live()
	if ss.Batch == nil {
		return len(live)
	}
	members := 0
	for _, id := range ss.Batch.Members {
		if in, ok := ss.Instances[id]; ok && !in.Deleting {
			members++
		}
	}
	extras := members - ss.Batch.Want
	if extras < 0 {
		extras = 0
	}
	return len(live) - extras
}

// resize scales ss to capacity.
func (s *State) resize(ss *ScaleSet, capacity int) *arm.Error {
	cur := ss.EffectiveCount()
	switch {
	case capacity > cur:
		return s.scaleOut(ss, capacity-cur)
	case capacity < cur:
		return s.scaleIn(ss, cur-capacity)
	}
	return nil
}

func (s *State) scaleOut(ss *ScaleSet, k int) *arm.Error {
	ic := ss.Profile().PrimaryIPConfig()
	ref, ok := s.LookupSubnet(ic.Properties.Subnet.ID)
	if !ok {
		return invalidRef(ic.Properties.Subnet.ID, ss.Model.ID)
	}
	alloc := s.Allocator()
	// Instances of this set in the working copy may hold addresses the stored state does not.
	for _, in := range ss.Instances {
		if arm.EqualIDs(in.Subnet, ref.Subnet.ID) {
			alloc.Take(ref.Subnet.ID, in.PrivateIP)
		}
	}
	extras := 0
	if arm.BoolOr(ss.Model.Properties.Overprovision, true) {
		extras = k
	}
	var added []*Instance
	for i := 0; i < k+extras; i++ {
		ip, e := alloc.Dynamic(ref)
		if e != nil {
			if i < k {
				e.Message = "Scaling out by " + strconv.Itoa(k) + " does not fit: " + e.Message
				return e
			}
			break // extras are best effort
		}
		n := ss.NextID
		ss.NextID++
		in := &Instance{
			ID:           strconv.Itoa(n),
			Name:         VMName(ss.Model.Name, n),
			ComputerName: ComputerName(ss.Profile().OSProfile.ComputerNamePrefix, n),
			FaultDomain:  n % ss.FaultDomainCount(),
			UpdateDomain: n % 5,
			Subnet:       ref.Subnet.ID,
			PrivateIP:    ip.String(),
			Power:        PowerRunning,
			ModelGen:     ss.ModelGen,
			Created:      s.cfg.Now(),
			VMID:         guid("vm", ss.Model.ID, strconv.Itoa(n)),
		}
		in.MAC = MACFor(ss.Model.ID + "/" + in.ID)
		ss.Instances[in.ID] = in
		added = append(added, in)
	}
	if err := s.assignNATPorts(ss, added[k:]); err != nil {
		return err
	}
	if extras > 0 && len(added) > k {
		members := []string{}
		if ss.Batch != nil {
			members = append(members, ss.Batch.Members...)
			k += ss.Batch.Want
		}
		for _, in := range added {
			if _, ok := ss.Instances[in.ID]; ok {
				members = append(members, in.ID)
			}
		}
		ss.Batch = &OverprovisionBatch{Want: k, Members: members}
	}
	return nil
}

func (s *State) scaleIn(ss *ScaleSet, n int) *arm.Error {
	if ss.Batch != nil {
		take := n
		if take > ss.Batch.Want {
			take = ss.Batch.Want
		}
		ss.Batch.Want -= take
		n -= take
	}
	if n == 0 {
		return nil
	}
	var live []*Instance
	for _, in := range ss.Live() {
		if ss.Batch != nil && slices.Contains(ss.Batch.Members, in.ID) {
			continue // pending members go with the batch
		}
		live = append(live, in)
	}
	pick, e := SelectScaleIn(live, n, ss.ScaleInPolicy())
	if e != nil {
		return e
	}
	for _, in := range pick {
		in.Deleting = true
	}
	return nil
}

// assignNATPorts gives every live instance a frontend port in each NAT pool its
// ip configurations reference (natport.AssignPoolPorts: start + id when free,
// else the lowest free port; ports stay stable). Instances in bestEffort
// (overprovisioned extras) that find no free port are dropped instead of
// failing the operation.
func (s *State) assignNATPorts(ss *ScaleSet, bestEffort []*Instance) *arm.Error {
	pools := map[string]*arm.InboundNatPool{}
	for _, nc := range ss.Profile().NICConfigs() {
		for _, ic := range nc.Properties.IPConfigurations {
			for _, r := range ic.Properties.LoadBalancerInboundNatPools {
				if p := s.NATPool(r.ID); p != nil {
					pools[arm.KeyOf(r.ID)] = p
				}
			}
		}
	}
	optional := map[string]bool{}
	for _, in := range bestEffort {
		optional[in.ID] = true
	}
	for key, pool := range pools {
		for k, other := range s.ScaleSets {
			if k == strings.ToLower(ss.Model.ID) || other.Deleting {
				continue
			}
			for _, nc := range other.Profile().NICConfigs() {
				for _, ic := range nc.Properties.IPConfigurations {
					for _, r := range ic.Properties.LoadBalancerInboundNatPools {
						if arm.KeyOf(r.ID) == key {
							return arm.Errorf(400, "InboundNatPoolInUse", pool.ID,
								"Inbound NAT pool %s is already used by scale set %s; give each scale set its own NAT pool.", pool.Name, other.Model.Name)
						}
					}
				}
			}
		}
		np := natport.Pool{
			Name:                   pool.Name,
			FrontendPortRangeStart: int(arm.IntOr(pool.Properties.FrontendPortRangeStart, 0)),
			FrontendPortRangeEnd:   int(arm.IntOr(pool.Properties.FrontendPortRangeEnd, 0)),
			BackendPort:            int(arm.IntOr(pool.Properties.BackendPort, 0)),
		}
		var required, extra []int
		existing := map[int]int{}
		for _, in := range ss.SortedInstances() {
			if in.Deleting {
				delete(in.NATPorts, key)
				continue
			}
			if p, ok := in.NATPorts[key]; ok {
				existing[in.IDNum()] = p
			}
			if optional[in.ID] {
				extra = append(extra, in.IDNum())
			} else {
				required = append(required, in.IDNum())
			}
		}
		if room := np.Size() - len(required); room < len(extra) {
			if room < 0 {
				room = 0
			}
			for _, n := range extra[room:] {
				delete(ss.Instances, strconv.Itoa(n)) // an extra that cannot get a port is not created
			}
			extra = extra[:room]
		}
		ports, err := natport.AssignPoolPorts(np, append(required, extra...), existing)
		if err != nil {
			var ne *natport.Error
			if errors.As(err, &ne) {
				return arm.Errorf(400, ne.Code, pool.ID, "%s", ne.Message)
			}
			return arm.BadRequest(pool.ID, "%v", err)
		}
		for n, p := range ports {
			setPort(ss.Instances[strconv.Itoa(n)], key, p)
		}
	}
	rules, e := s.assignNATRulePorts(ss, optional)
	if e != nil {
		return e
	}
	// Pools and rules no longer referenced give their ports back.
	for _, in := range ss.Instances {
		for k := range in.NATPorts {
			if _, ok := pools[k]; !ok && !rules[k] {
				delete(in.NATPorts, k)
			}
		}
	}
	return nil
}

// NATRulesV2 are the version 2 inbound NAT rules (backendAddressPool and a
// frontend port range) that target a backend pool, with their load balancer.
func (s *State) NATRulesV2(poolID string) ([]*arm.InboundNatRule, *arm.LoadBalancer) {
	pid, err := arm.ParseID(poolID)
	if err != nil || len(pid.Types) != 2 {
		return nil, nil
	}
	lb, ok := s.LoadBalancers[pid.Parent().Key()]
	if !ok {
		return nil, nil
	}
	var out []*arm.InboundNatRule
	for i := range lb.Properties.InboundNatRules {
		r := &lb.Properties.InboundNatRules[i]
		if r.Properties.BackendAddressPool != nil && arm.EqualIDs(r.Properties.BackendAddressPool.ID, poolID) {
			out = append(out, r)
		}
	}
	return out, lb
}

// assignNATRulePorts gives every live instance one frontend port of each
// version 2 NAT rule that targets a backend pool its ip configurations join
// (natport.AssignRulePorts: kept for the instance's life, new instances take
// the lowest free port, ports held by other scale sets' instances in the same
// pool are skipped). Overprovisioned extras (optional) that find no port are
// not created. It returns the keys of the rules in use.
func (s *State) assignNATRulePorts(ss *ScaleSet, optional map[string]bool) (map[string]bool, *arm.Error) {
	rules := map[string]*arm.InboundNatRule{}
	for _, nc := range ss.Profile().NICConfigs() {
		for _, ic := range nc.Properties.IPConfigurations {
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				rs, _ := s.NATRulesV2(r.ID)
				for _, rule := range rs {
					rules[arm.KeyOf(rule.ID)] = rule
				}
			}
		}
	}
	inUse := map[string]bool{}
	for key, rule := range rules {
		inUse[key] = true
		reserved := map[int]bool{}
		for k, other := range s.ScaleSets {
			if k == strings.ToLower(ss.Model.ID) || other.Deleting {
				continue
			}
			for _, in := range other.Live() {
				if p, ok := in.NATPorts[key]; ok {
					reserved[p] = true
				}
			}
		}
		np := natport.Pool{
			Name:                   rule.Name,
			FrontendPortRangeStart: int(arm.IntOr(rule.Properties.FrontendPortRangeStart, 0)),
			FrontendPortRangeEnd:   int(arm.IntOr(rule.Properties.FrontendPortRangeEnd, 0)),
			BackendPort:            int(arm.IntOr(rule.Properties.BackendPort, 0)),
		}
		var required, extra []string
		existing := map[string]int{}
		for _, in := range ss.SortedInstances() {
			if in.Deleting {
				delete(in.NATPorts, key)
				continue
			}
			if p, ok := in.NATPorts[key]; ok {
				existing[in.ID] = p
			}
			if optional[in.ID] {
				extra = append(extra, in.ID)
			} else {
				required = append(required, in.ID)
			}
		}
		free := np.Size() - len(reserved) - len(required)
		if free < len(extra) {
			if free < 0 {
				free = 0
			}
			for _, id := range extra[free:] {
				delete(ss.Instances, id) // an extra that cannot get a port is not created
			}
			extra = extra[:free]
		}
		ports, err := natport.AssignRulePorts(np, append(required, extra...), existing, reserved)
		if err != nil {
			var ne *natport.Error
			if errors.As(err, &ne) {
				return nil, arm.Errorf(400, ne.Code, rule.ID, "%s", ne.Message)
			}
			return nil, arm.BadRequest(rule.ID, "%v", err)
		}
		for id, p := range ports {
			setPort(ss.Instances[id], key, p)
		}
	}
	return inUse, nil
}

func setPort(in *Instance, key string, p int) {
	if in.NATPorts == nil {
		in.NATPorts = map[string]int{}
	}
	in.NATPorts[key] = p
}

// NATPool resolves an inbound NAT pool id.
func (s *State) NATPool(id string) *arm.InboundNatPool {
	pid, err := arm.ParseID(id)
	if err != nil || len(pid.Types) != 2 {
		return nil
	}
	lb, ok := s.LoadBalancers[pid.Parent().Key()]
	if !ok {
		return nil
	}
	for i := range lb.Properties.InboundNatPools {
		if arm.EqualIDs(lb.Properties.InboundNatPools[i].ID, id) {
			return &lb.Properties.InboundNatPools[i]
		}
	}
	return nil
}

// applyUpgradePolicy moves instances to the latest model when the policy says
// so: Automatic moves every instance to the latest model at once; Manual and
// Rolling leave them (the reconciler moves a Rolling set in batches).
func (s *State) applyUpgradePolicy(ss *ScaleSet) {
	if ss.Model.Properties.UpgradePolicy.Mode == "Manual" {
		return
	}
	if ss.Model.Properties.UpgradePolicy.Mode == "Automatic" {
		for _, in := range ss.Instances {
			in.ModelGen = ss.ModelGen
		}
	}
}

func (s *State) commitScaleSet(key string, ss *ScaleSet) {
	for _, in := range ss.Instances {
		if in.Netns == "" {
			in.Netns = s.claimNetns(key+"/"+in.ID, mustParse(ss.Model.ID).ResourceGroup, in.Name)
		}
	}
	s.ScaleSets[key] = ss
	s.bump()
}

func (ss *ScaleSet) clone() *ScaleSet {
	// Round-tripping our own types (no channels, funcs or cycles) cannot fail.
	data, _ := json.Marshal(ss)
	var c ScaleSet
	_ = json.Unmarshal(data, &c)
	if c.Instances == nil {
		c.Instances = map[string]*Instance{}
	}
	return &c
}
