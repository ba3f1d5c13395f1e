package model

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// Probe defaults (Azure's).
const (
	DefaultProbeInterval  = 15
	DefaultProbeThreshold = 1
	DefaultIdleTimeout    = 4
)

// PutLoadBalancer creates or replaces a load balancer.
func (s *State) PutLoadBalancer(id arm.ID, body []byte) (*arm.LoadBalancer, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypeLoadBalancer, id.Name()); e != nil {
		return nil, false, e
	}
	var lb arm.LoadBalancer
	if e := decode(id.String(), body, &lb); e != nil {
		return nil, false, e
	}
	old, exists := s.LoadBalancers[id.Key()]
	if exists {
		id = mustParse(old.ID)
	}
	lb.ID, lb.Name, lb.Type = id.String(), id.Name(), arm.TypeLoadBalancer
	lb.Location = s.location(lb.Location)
	p := &lb.Properties
	p.InboundNatRules = dropDerivedNatRules(p.InboundNatRules, p.InboundNatPools)
	for i := range p.BackendAddressPools {
		// shown, not stored: members are the NICs and scale sets that join the pool
		p.BackendAddressPools[i].Properties.LoadBalancerBackendAddresses = nil
	}

	c := &lbCheck{lb: &lb, names: map[string]map[string]bool{}, ports: map[portUse]map[int64]string{}}
	refs, e := s.checkFrontends(c)
	if e != nil {
		return nil, false, e
	}
	if e := s.assignFrontendAddresses(&lb, old, refs); e != nil { // old is nil for a new one
		return nil, false, e
	}
	for _, check := range []func() *arm.Error{c.pools, c.probes, c.rules, c.natPools, c.natRules} {
		if e := check(); e != nil {
			return nil, false, e
		}
	}
	if exists {
		if e := s.checkLBChildrenInUse(old, &lb); e != nil {
			return nil, false, e
		}
		lb.Properties.ResourceGUID = old.Properties.ResourceGUID
	} else {
		lb.Properties.ResourceGUID = guid("lb", id.Key())
	}
	p.ProvisioningState = "Succeeded"
	if e := s.reassignRulePorts(id.Key(), &lb); e != nil {
		return nil, false, e
	}
	s.ensureGroup(id)
	s.LoadBalancers[id.Key()] = &lb
	s.bump()
	return &lb, !exists, nil
}

// checkFrontends checks the frontends of the load balancer c checks: unique
// names, a public IP (that exists and no one else uses) or a subnet (that
// exists), not both. It returns each internal frontend's subnet.
func (s *State) checkFrontends(c *lbCheck) ([]SubnetRef, *arm.Error) {
	lb, p := c.lb, &c.lb.Properties
	refs := make([]SubnetRef, len(p.FrontendIPConfigurations))
	for i := range p.FrontendIPConfigurations {
		f := &p.FrontendIPConfigurations[i]
		if e := c.uniq("frontendIPConfigurations", f.Name); e != nil {
			return nil, e
		}
		f.ID = sub(lb.ID, "frontendIPConfigurations", f.Name)
		fp := &f.Properties
		fp.LoadBalancingRules, fp.InboundNatPools, fp.InboundNatRules = nil, nil, nil
		fp.ProvisioningState = "Succeeded"
		switch {
		case fp.PublicIPAddress != nil && fp.Subnet != nil:
			return nil, arm.BadRequest(f.ID, "Frontend %s has both a public IP and a subnet; give one.", f.Name)
		case fp.PublicIPAddress != nil:
			if _, ok := s.PublicIPs[arm.KeyOf(fp.PublicIPAddress.ID)]; !ok {
				return nil, invalidRef(fp.PublicIPAddress.ID, f.ID)
			}
			if u := s.PublicIPUser(fp.PublicIPAddress.ID); u != "" && !strings.HasPrefix(strings.ToLower(u), strings.ToLower(lb.ID)+"/") {
				return nil, arm.Errorf(400, "PublicIPAddressInUse", f.ID,
					"Public IP address %s is already used by %s.", fp.PublicIPAddress.ID, u)
			}
			fp.PrivateIPAddress, fp.PrivateIPAllocationMethod = "", ""
		case fp.Subnet != nil:
			ref, ok := s.LookupSubnet(fp.Subnet.ID)
			if !ok {
				return nil, invalidRef(fp.Subnet.ID, f.ID)
			}
			fp.Subnet.ID = ref.Subnet.ID
			refs[i] = ref
		default:
			return nil, arm.BadRequest(f.ID, "Frontend %s needs properties.publicIPAddress (public) or properties.subnet (internal).", f.Name)
		}
	}
	return refs, nil
}

// assignFrontendAddresses gives the internal frontends of lb their private
// addresses from one allocator: the old load balancer's (nil for a new one)
// addresses are free for this request; static addresses first, then
// dynamic frontends keep their address when it is still free, then new
// dynamic frontends get the lowest free ones. At most one frontend may use
// each address.
func (s *State) assignFrontendAddresses(lb *arm.LoadBalancer, old *arm.LoadBalancer, refs []SubnetRef) *arm.Error {
	p := &lb.Properties
	oldPriv := map[string]string{}
	alloc := s.Allocator()
	if old != nil {
		for _, f := range old.Properties.FrontendIPConfigurations {
			oldPriv[strings.ToLower(f.Name)] = f.Properties.PrivateIPAddress
			if f.Properties.Subnet != nil {
				alloc.Release(f.Properties.Subnet.ID, f.Properties.PrivateIPAddress)
			}
		}
	}
	var keep, dynamic []int
	for i := range p.FrontendIPConfigurations {
		f := &p.FrontendIPConfigurations[i]
		fp := &f.Properties
		if fp.Subnet == nil {
			continue
		}
		if fp.PrivateIPAddress != "" && !strings.EqualFold(fp.PrivateIPAllocationMethod, "Dynamic") {
			a, e := alloc.Static(f.ID, refs[i], fp.PrivateIPAddress)
			if e != nil {
				if e.Code == "PrivateIPAddressInUse" {
					e.Message = "Frontend " + f.Name + ": " + e.Message
				}
				return e
			}
			fp.PrivateIPAddress, fp.PrivateIPAllocationMethod = a.String(), "Static"
			continue
		}
		keep = append(keep, i)
	}
	for _, i := range keep {
		fp := &p.FrontendIPConfigurations[i].Properties
		prev, err := netip.ParseAddr(oldPriv[strings.ToLower(p.FrontendIPConfigurations[i].Name)])
		if err == nil && refs[i].Prefix.Contains(prev) && !alloc.InUse(fp.Subnet.ID, prev) {
			alloc.Take(fp.Subnet.ID, prev.String())
			fp.PrivateIPAddress, fp.PrivateIPAllocationMethod = prev.String(), "Dynamic"
			continue
		}
		dynamic = append(dynamic, i)
	}
	for _, i := range dynamic {
		fp := &p.FrontendIPConfigurations[i].Properties
		a, e := alloc.Dynamic(refs[i])
		if e != nil {
			return e
		}
		fp.PrivateIPAddress, fp.PrivateIPAllocationMethod = a.String(), "Dynamic"
	}
	for i := range p.FrontendIPConfigurations {
		for j := i + 1; j < len(p.FrontendIPConfigurations); j++ {
			a, b := p.FrontendIPConfigurations[i].Properties, p.FrontendIPConfigurations[j].Properties
			if a.PrivateIPAddress != "" && a.PrivateIPAddress == b.PrivateIPAddress {
				return arm.Errorf(400, "PrivateIPAddressInUse", p.FrontendIPConfigurations[j].ID,
					"Frontends %s and %s both ask for %s.", p.FrontendIPConfigurations[i].Name, p.FrontendIPConfigurations[j].Name, a.PrivateIPAddress)
			}
		}
	}
	return nil
}

// reassignRulePorts stores lb under key and gives the scale sets' instances
// their ports of its version 2 NAT rules (a rule added to a pool that
// instances already join maps them at once; a removed rule frees its ports).
// When a rule's range is too small for its pool the load balancer and every
// instance's ports are left as they were, and the error is returned.
func (s *State) reassignRulePorts(key string, lb *arm.LoadBalancer) *arm.Error {
	prev, had := s.LoadBalancers[key]
	backup := map[*Instance]map[string]int{}
	for _, ss := range s.ScaleSets {
		for _, in := range ss.Instances {
			backup[in] = maps.Clone(in.NATPorts)
		}
	}
	s.LoadBalancers[key] = lb
	for _, k := range slices.Sorted(maps.Keys(s.ScaleSets)) {
		ss := s.ScaleSets[k]
		if ss.Deleting {
			continue
		}
		inUse, e := s.assignNATRulePorts(ss, nil)
		if e == nil {
			// Ports of this load balancer's rules that no longer apply are freed
			// (NAT pools keep theirs: they change only with the scale set).
			prefix := strings.ToLower(lb.ID) + "/inboundnatrules/"
			for _, in := range ss.Instances {
				for k := range in.NATPorts {
					if strings.HasPrefix(k, prefix) && !inUse[k] {
						delete(in.NATPorts, k)
					}
				}
			}
			continue
		}
		for in, ports := range backup {
			in.NATPorts = ports
		}
		if had {
			s.LoadBalancers[key] = prev
		} else {
			delete(s.LoadBalancers, key)
		}
		return e
	}
	return nil
}

// lbCheck validates and normalizes the children of one load balancer PUT:
// names unique per kind, references resolved to the children's ids, each
// frontend port used once per frontend and protocol.
type lbCheck struct {
	lb    *arm.LoadBalancer
	names map[string]map[string]bool // kind -> lower-case names
	ports map[portUse]map[int64]string
}

type portUse struct{ frontend, proto string }

// uniq records a child's name; empty and repeated names are errors.
func (c *lbCheck) uniq(kind, name string) *arm.Error {
	if name == "" {
		return arm.BadRequest("properties."+kind, "Every entry of %s needs a name.", kind)
	}
	if c.names[kind] == nil {
		c.names[kind] = map[string]bool{}
	}
	if c.names[kind][strings.ToLower(name)] {
		return arm.Errorf(400, "DuplicateResourceName", name, "Load balancer %s has two %s named %s.", c.lb.Name, kind, name)
	}
	c.names[kind][strings.ToLower(name)] = true
	return nil
}

// claim gives frontend ports lo-hi of a protocol to who.
func (c *lbCheck) claim(front, proto string, lo, hi int64, who string) *arm.Error {
	k := portUse{strings.ToLower(front), strings.ToLower(proto)}
	if c.ports[k] == nil {
		c.ports[k] = map[int64]string{}
	}
	for pt := lo; pt <= hi; pt++ {
		if other, ok := c.ports[k][pt]; ok {
			return arm.Errorf(400, "LoadBalancerFrontendPortConflict", who,
				"%s uses frontend port %d (%s), which %s already uses on the same frontend.", who, pt, proto, other)
		}
		c.ports[k][pt] = who
	}
	return nil
}

// frontendRef resolves a child's frontend reference to the frontend's id.
func (c *lbCheck) frontendRef(ref *arm.SubResource, owner string) *arm.Error {
	fs := c.lb.Properties.FrontendIPConfigurations
	i := -1
	if ref != nil {
		i = findSub(fs, ref.ID)
	}
	if i < 0 {
		return invalidRefOpt(ref, owner, "frontendIPConfiguration")
	}
	ref.ID = fs[i].ID
	return nil
}

// pools normalizes the backend address pools.
func (c *lbCheck) pools() *arm.Error {
	p := &c.lb.Properties
	for i := range p.BackendAddressPools {
		bp := &p.BackendAddressPools[i]
		if e := c.uniq("backendAddressPools", bp.Name); e != nil {
			return e
		}
		bp.ID = sub(c.lb.ID, "backendAddressPools", bp.Name)
		if d := bp.Properties.DrainPeriodInSeconds; d != nil && (*d < 0 || *d > 3600) {
			return arm.BadRequest(bp.ID, "drainPeriodInSeconds must be 0-3600, got %d.", *d)
		}
		bp.Properties.BackendIPConfigurations, bp.Properties.LoadBalancingRules = nil, nil
		bp.Properties.ProvisioningState = "Succeeded"
	}
	return nil
}

// probes normalizes the health probes.
func (c *lbCheck) probes() *arm.Error {
	p := &c.lb.Properties
	for i := range p.Probes {
		pr := &p.Probes[i]
		if e := c.uniq("probes", pr.Name); e != nil {
			return e
		}
		pr.ID = sub(c.lb.ID, "probes", pr.Name)
		if e := normalizeProbe(pr); e != nil {
			return e
		}
	}
	return nil
}

// rules checks the load-balancing rules: references, protocol, ports,
// idle timeout, distribution.
func (c *lbCheck) rules() *arm.Error {
	p := &c.lb.Properties
	for i := range p.LoadBalancingRules {
		r := &p.LoadBalancingRules[i]
		if e := c.uniq("loadBalancingRules", r.Name); e != nil {
			return e
		}
		r.ID = sub(c.lb.ID, "loadBalancingRules", r.Name)
		rp := &r.Properties
		if e := c.frontendRef(rp.FrontendIPConfiguration, r.ID); e != nil {
			return e
		}
		if rp.BackendAddressPool != nil {
			j := findPool(p.BackendAddressPools, rp.BackendAddressPool.ID)
			if j < 0 {
				return invalidRef(rp.BackendAddressPool.ID, r.ID)
			}
			rp.BackendAddressPool.ID = p.BackendAddressPools[j].ID
		}
		if rp.Probe != nil {
			j := findProbe(p.Probes, rp.Probe.ID)
			if j < 0 {
				return invalidRef(rp.Probe.ID, r.ID)
			}
			rp.Probe.ID = p.Probes[j].ID
		}
		proto, e := normProto(r.ID, rp.Protocol, true)
		if e != nil {
			return e
		}
		rp.Protocol = proto
		fpt, e := port(r.ID, "frontendPort", rp.FrontendPort, proto == "All")
		if e != nil {
			return e
		}
		bpt, e := port(r.ID, "backendPort", rp.BackendPort, proto == "All")
		if e != nil {
			return e
		}
		rp.FrontendPort, rp.BackendPort = arm.IntPtr(fpt), arm.IntPtr(bpt)
		if e := idle(r.ID, &rp.IdleTimeoutInMinutes); e != nil {
			return e
		}
		switch strings.ToLower(rp.LoadDistribution) {
		case "", "default":
			rp.LoadDistribution = "Default"
		case "sourceip":
			rp.LoadDistribution = "SourceIP"
		case "sourceipprotocol":
			rp.LoadDistribution = "SourceIPProtocol"
		default:
			return arm.BadRequest(r.ID, "loadDistribution %q is not valid: use Default, SourceIP or SourceIPProtocol.", rp.LoadDistribution)
		}
		for _, pr := range protosOf(proto) {
			if e := c.claim(rp.FrontendIPConfiguration.ID, pr, fpt, fpt, "load balancing rule "+r.Name); e != nil {
				return e
			}
		}
		rp.ProvisioningState = "Succeeded"
	}
	return nil
}

// natPools checks the inbound NAT pools (a load balancer has NAT pools or
// NAT rules, not both).
func (c *lbCheck) natPools() *arm.Error {
	p := &c.lb.Properties
	if len(p.InboundNatPools) > 0 && len(p.InboundNatRules) > 0 {
		// Azure: a load balancer uses either NAT pools (scale sets) or NAT rules.
		return arm.Errorf(400, "LoadBalancerCannotHaveBothInboundNatRulesAndPools", c.lb.ID,
			"Load balancer %s has both inboundNatPools and inboundNatRules; Azure allows one kind per load balancer. Use two load balancers or one kind.", c.lb.Name)
	}
	for i := range p.InboundNatPools {
		np := &p.InboundNatPools[i]
		if e := c.uniq("inboundNatPools", np.Name); e != nil {
			return e
		}
		np.ID = sub(c.lb.ID, "inboundNatPools", np.Name)
		pp := &np.Properties
		if e := c.frontendRef(pp.FrontendIPConfiguration, np.ID); e != nil {
			return e
		}
		proto, e := normProto(np.ID, pp.Protocol, false)
		if e != nil {
			return e
		}
		pp.Protocol = proto
		lo, e := port(np.ID, "frontendPortRangeStart", pp.FrontendPortRangeStart, false)
		if e != nil {
			return e
		}
		hi, e := port(np.ID, "frontendPortRangeEnd", pp.FrontendPortRangeEnd, false)
		if e != nil {
			return e
		}
		if hi < lo {
			return arm.BadRequest(np.ID, "frontendPortRangeEnd %d is below frontendPortRangeStart %d.", hi, lo)
		}
		bpt, e := port(np.ID, "backendPort", pp.BackendPort, false)
		if e != nil {
			return e
		}
		pp.FrontendPortRangeStart, pp.FrontendPortRangeEnd, pp.BackendPort = arm.IntPtr(lo), arm.IntPtr(hi), arm.IntPtr(bpt)
		if e := idle(np.ID, &pp.IdleTimeoutInMinutes); e != nil {
			return e
		}
		if e := c.claim(pp.FrontendIPConfiguration.ID, proto, lo, hi, "inbound NAT pool "+np.Name); e != nil {
			return e
		}
		pp.ProvisioningState = "Succeeded"
	}
	return nil
}

// natRules checks the inbound NAT rules.
func (c *lbCheck) natRules() *arm.Error {
	p := &c.lb.Properties
	for i := range p.InboundNatRules {
		nr := &p.InboundNatRules[i]
		if e := c.uniq("inboundNatRules", nr.Name); e != nil {
			return e
		}
		nr.ID = sub(c.lb.ID, "inboundNatRules", nr.Name)
		rp := &nr.Properties
		if e := c.frontendRef(rp.FrontendIPConfiguration, nr.ID); e != nil {
			return e
		}
		proto, e := normProto(nr.ID, rp.Protocol, false)
		if e != nil {
			return e
		}
		rp.Protocol = proto
		if rp.BackendAddressPool != nil || rp.FrontendPortRangeStart != nil || rp.FrontendPortRangeEnd != nil {
			if e := c.natRuleV2(nr); e != nil {
				return e
			}
			continue
		}
		fpt, e := port(nr.ID, "frontendPort", rp.FrontendPort, false)
		if e != nil {
			return e
		}
		bpt, e := port(nr.ID, "backendPort", rp.BackendPort, false)
		if e != nil {
			return e
		}
		rp.FrontendPort, rp.BackendPort = arm.IntPtr(fpt), arm.IntPtr(bpt)
		if e := idle(nr.ID, &rp.IdleTimeoutInMinutes); e != nil {
			return e
		}
		if e := c.claim(rp.FrontendIPConfiguration.ID, proto, fpt, fpt, "inbound NAT rule "+nr.Name); e != nil {
			return e
		}
		rp.BackendIPConfiguration = nil
		rp.ProvisioningState = "Succeeded"
	}
	return nil
}

// natRuleV2 checks a version 2 inbound NAT rule: a backend pool and a
// frontend port range (Azure's rules: the range is required with a pool, and
// frontendPort must then be absent or 0). Each member of the pool gets one
// port of the range (model assigns them with the scale set's instances).
func (c *lbCheck) natRuleV2(nr *arm.InboundNatRule) *arm.Error {
	p := &c.lb.Properties
	rp := &nr.Properties
	if rp.FrontendPortRangeStart == nil || rp.FrontendPortRangeEnd == nil {
		return arm.Errorf(400, "MissedInboundNatRuleV2Properties", nr.ID,
			"For inbound Nat rule V2 properties FrontendPortRangeStart, FrontendPortRangeEnd should not be null (rule %s).", nr.Name)
	}
	if rp.FrontendPort != nil && *rp.FrontendPort != 0 {
		return arm.Errorf(400, "UnsupportedSetOfInboundNatRulePropertiesWhenFrontendPortIsSpecified", nr.ID,
			"If FrontendPort %d is set, properties FrontendPortRangeStart, FrontendPortRangeEnd should be null (rule %s).", int64(*rp.FrontendPort), nr.Name)
	}
	if rp.BackendAddressPool == nil {
		return arm.BadRequest(nr.ID, "Inbound NAT rule %s has a frontend port range but no backendAddressPool; give the pool whose members the ports map to, or use frontendPort.", nr.Name)
	}
	j := findPool(p.BackendAddressPools, rp.BackendAddressPool.ID)
	if j < 0 {
		return invalidRef(rp.BackendAddressPool.ID, nr.ID)
	}
	rp.BackendAddressPool.ID = p.BackendAddressPools[j].ID
	lo, e := port(nr.ID, "frontendPortRangeStart", rp.FrontendPortRangeStart, false)
	if e != nil {
		return e
	}
	hi, e := port(nr.ID, "frontendPortRangeEnd", rp.FrontendPortRangeEnd, false)
	if e != nil {
		return e
	}
	if hi < lo {
		return arm.BadRequest(nr.ID, "frontendPortRangeEnd %d is below frontendPortRangeStart %d.", hi, lo)
	}
	bpt, e := port(nr.ID, "backendPort", rp.BackendPort, false)
	if e != nil {
		return e
	}
	rp.FrontendPort = nil
	rp.FrontendPortRangeStart, rp.FrontendPortRangeEnd, rp.BackendPort = arm.IntPtr(lo), arm.IntPtr(hi), arm.IntPtr(bpt)
	if e := idle(nr.ID, &rp.IdleTimeoutInMinutes); e != nil {
		return e
	}
	if e := c.claim(rp.FrontendIPConfiguration.ID, rp.Protocol, lo, hi, "inbound NAT rule "+nr.Name); e != nil {
		return e
	}
	rp.BackendIPConfiguration = nil
	rp.ProvisioningState = "Succeeded"
	return nil
}

// checkLBChildrenInUse refuses to remove backend pools and NAT pools that
// scale sets or NICs use.
func (s *State) checkLBChildrenInUse(old, lb *arm.LoadBalancer) *arm.Error {
	p := &lb.Properties
	// Pools and NAT pools that scale sets or NICs use may not disappear.
	for _, bp := range old.Properties.BackendAddressPools {
		if findPool(p.BackendAddressPools, bp.ID) < 0 {
			if u := s.poolUser(bp.ID); u != "" {
				return arm.Errorf(400, "InUseBackendAddressPoolCannotBeDeleted", bp.ID,
					"Backend pool %s is used by %s and cannot be removed. Remove the reference first.", bp.Name, u)
			}
		}
	}
	for _, np := range old.Properties.InboundNatPools {
		found := false
		for _, n := range p.InboundNatPools {
			if strings.EqualFold(n.Name, np.Name) {
				found = true
			}
		}
		if !found {
			if u := s.poolUser(np.ID); u != "" {
				return arm.Errorf(400, "InUseInboundNatPoolCannotBeDeleted", np.ID,
					"Inbound NAT pool %s is used by %s and cannot be removed. Remove the reference first.", np.Name, u)
			}
		}
	}
	return nil
}

// normalizeProbe validates a probe and fills Azure's defaults.
func normalizeProbe(pr *arm.Probe) *arm.Error {
	pp := &pr.Properties
	switch strings.ToLower(pp.Protocol) {
	case "tcp":
		pp.Protocol = "Tcp"
		if pp.RequestPath != "" {
			return arm.BadRequest(pr.ID, "Probe %s uses Tcp; requestPath is only for Http and Https probes.", pr.Name)
		}
	case "http", "https":
		if strings.EqualFold(pp.Protocol, "http") {
			pp.Protocol = "Http"
		} else {
			pp.Protocol = "Https"
		}
		if pp.RequestPath == "" {
			return arm.BadRequest(pr.ID, "Probe %s uses %s and needs a requestPath such as /.", pr.Name, pp.Protocol)
		}
		if !strings.HasPrefix(pp.RequestPath, "/") {
			pp.RequestPath = "/" + pp.RequestPath
		}
	default:
		return arm.BadRequest(pr.ID, "Probe %s: protocol %q is not valid: use Tcp, Http or Https.", pr.Name, pp.Protocol)
	}
	pt, e := port(pr.ID, "port", pp.Port, false)
	if e != nil {
		return e
	}
	pp.Port = arm.IntPtr(pt)
	iv := arm.IntOr(pp.IntervalInSeconds, DefaultProbeInterval)
	if iv < 1 || iv > 2147483647 {
		return arm.BadRequest(pr.ID, "Probe %s: intervalInSeconds must be at least 1 (Azure's minimum is 5), got %d.", pr.Name, iv)
	}
	pp.IntervalInSeconds = arm.IntPtr(iv)
	if pp.NumberOfProbes != nil && *pp.NumberOfProbes < 1 {
		return arm.BadRequest(pr.ID, "Probe %s: numberOfProbes must be at least 1.", pr.Name)
	}
	if pp.ProbeThreshold != nil && (*pp.ProbeThreshold < 1 || *pp.ProbeThreshold > 100) {
		return arm.BadRequest(pr.ID, "Probe %s: probeThreshold must be 1-100.", pr.Name)
	}
	switch strings.ToLower(pp.NoHealthyBackendsBehavior) {
	case "":
	case "allprobeddown":
		pp.NoHealthyBackendsBehavior = "AllProbedDown"
	case "allprobedup":
		pp.NoHealthyBackendsBehavior = "AllProbedUp"
	default:
		return arm.BadRequest(pr.ID, "Probe %s: noHealthyBackendsBehavior %q is not valid: use AllProbedDown or AllProbedUp.", pr.Name, pp.NoHealthyBackendsBehavior)
	}
	pp.LoadBalancingRules = nil
	pp.ProvisioningState = "Succeeded"
	return nil
}

// ProbeThreshold is the number of consecutive results that change a probe's
// state: probeThreshold, else numberOfProbes, else 1.
func ProbeThreshold(p *arm.ProbeP) int {
	if p.ProbeThreshold != nil {
		return int(*p.ProbeThreshold)
	}
	if p.NumberOfProbes != nil {
		return int(*p.NumberOfProbes)
	}
	return DefaultProbeThreshold
}

func (s *State) poolUser(poolID string) string {
	for _, ss := range s.ScaleSets {
		for _, nc := range ss.Profile().NICConfigs() {
			for _, ic := range nc.Properties.IPConfigurations {
				for _, r := range append(append([]arm.SubResource{}, ic.Properties.LoadBalancerBackendAddressPools...), ic.Properties.LoadBalancerInboundNatPools...) {
					if arm.EqualIDs(r.ID, poolID) {
						return ss.Model.ID
					}
				}
			}
		}
	}
	for _, nic := range s.NICs {
		for _, c := range nic.Properties.IPConfigurations {
			for _, r := range append(append([]arm.SubResource{}, c.Properties.LoadBalancerBackendAddressPools...), c.Properties.LoadBalancerInboundNatRules...) {
				if arm.EqualIDs(r.ID, poolID) {
					return nic.ID
				}
			}
		}
	}
	return ""
}

func findSub(fs []arm.FrontendIPConfiguration, id string) int {
	for i := range fs {
		if arm.EqualIDs(fs[i].ID, id) {
			return i
		}
	}
	return -1
}

func findPool(ps []arm.BackendAddressPool, id string) int {
	for i := range ps {
		if arm.EqualIDs(ps[i].ID, id) {
			return i
		}
	}
	return -1
}

func findProbe(ps []arm.Probe, id string) int {
	for i := range ps {
		if arm.EqualIDs(ps[i].ID, id) {
			return i
		}
	}
	return -1
}

func invalidRef(ref, by string) *arm.Error {
	return arm.Errorf(400, "InvalidResourceReference", by,
		"Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", ref, by)
}

func invalidRefOpt(r *arm.SubResource, by, field string) *arm.Error {
	if r == nil {
		return arm.BadRequest(by, "%s needs %s.", by, field)
	}
	return invalidRef(r.ID, by)
}

func normProto(target, p string, allowAll bool) (string, *arm.Error) {
	switch strings.ToLower(p) {
	case "tcp":
		return "Tcp", nil
	case "udp":
		return "Udp", nil
	case "all":
		if allowAll {
			return "All", nil
		}
	}
	return "", arm.BadRequest(target, "protocol %q is not valid for %s: use Tcp or Udp.", p, target)
}

func protosOf(p string) []string {
	if p == "All" {
		return []string{"Tcp", "Udp"}
	}
	return []string{p}
}

func port(target, field string, v *arm.Int, zeroOK bool) (int64, *arm.Error) {
	if v == nil {
		if zeroOK {
			return 0, nil
		}
		return 0, arm.BadRequest(target, "%s needs %s (1-65535).", target, field)
	}
	n := int64(*v)
	if n == 0 && zeroOK {
		return 0, nil
	}
	if n < 1 || n > 65535 {
		return 0, arm.BadRequest(target, "%s of %s must be 1-65535, got %d.", field, target, n)
	}
	return n, nil
}

func idle(target string, v **arm.Int) *arm.Error {
	n := arm.IntOr(*v, DefaultIdleTimeout)
	if n < 4 || n > 100 {
		return arm.BadRequest(target, "idleTimeoutInMinutes of %s must be 4-100, got %d.", target, n)
	}
	*v = arm.IntPtr(n)
	return nil
}

// dropDerivedNatRules removes the per-instance rules ({pool}.{n}) a GET shows
// for NAT pools, so a GET-modify-PUT round trip is accepted.
func dropDerivedNatRules(rules []arm.InboundNatRule, pools []arm.InboundNatPool) []arm.InboundNatRule {
	var out []arm.InboundNatRule
	for _, r := range rules {
		derived := false
		for _, p := range pools {
			if rest, ok := strings.CutPrefix(strings.ToLower(r.Name), strings.ToLower(p.Name)+"."); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
				derived = true
			}
		}
		if !derived {
			out = append(out, r)
		}
	}
	return out
}
