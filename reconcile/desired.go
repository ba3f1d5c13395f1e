package reconcile

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// BridgeName is the bridge of a subnet inside its VNET namespace: stable for
// the subnet's name, at most 15 characters.
func BridgeName(subnet string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(subnet)))
	return fmt.Sprintf("vmssbr%08x", h.Sum32())
}

// VNetSpecs returns every VNET of the state.
func VNetSpecs(st *model.State) []VNetSpec {
	var out []VNetSpec
	for key, vn := range st.VNets {
		v := VNetSpec{Key: key, Netns: st.VNetNetns(key), Suffix: model.DNSSuffix(vn.ID)}
		for _, sn := range vn.Properties.Subnets {
			p, err := netip.ParsePrefix(sn.Prefix())
			if err != nil {
				continue
			}
			v.Subnets = append(v.Subnets, SubnetSpec{Name: sn.Name, Prefix: p, Bridge: BridgeName(sn.Name)})
		}
		sort.Slice(v.Subnets, func(i, j int) bool { return v.Subnets[i].Name < v.Subnets[j].Name })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Netns < out[j].Netns })
	return out
}

// Desired is one instance the state wants, with what it wants of it.
type Desired struct {
	Spec      InstanceSpec
	Power     string // model.PowerRunning, ...
	Deleting  bool
	FaultDown bool   // its fault domain is down (fault injection)
	SetKey    string // owning scale set or VM (lower-cased id)
	// HealthProbe is the load-balancer probe the scale set watches
	// (networkProfile.healthProbe), as "loadbalancer/probe" lower-cased;
	// "" when health comes from the Application Health extension.
	HealthProbe string
}

// Run reports whether the instance should be running now.
func (d *Desired) Run() bool { return !d.Deleting && !d.FaultDown && d.Power == model.PowerRunning }

// DesiredInstances returns every instance of every scale set and VM in the
// state, ordered by kernel name.
func DesiredInstances(st *model.State) []*Desired {
	var out []*Desired
	nets := &netCache{vnets: vnetNetnsIndex(st), subnets: map[string]*subnetNet{}}
	for key, ss := range st.ScaleSets {
		vp := ss.Profile()
		var exts []arm.Extension
		if vp.ExtensionProfile != nil {
			exts, _ = model.ExtensionOrder(vp.ExtensionProfile.Extensions) // the API validated the order when it stored the profile
		}
		for _, in := range ss.SortedInstances() {
			sp := InstanceSpec{
				Key:          key + "/" + in.ID,
				Kind:         "vmss",
				Netns:        in.Netns,
				InstanceID:   in.ID,
				VMName:       in.Name,
				ComputerName: in.ComputerName,
				MAC:          in.MAC,
				Extensions:   exts,
				BuildGen:     in.BuildGen,
				RestartGen:   in.RestartGen,
				ModelGen:     in.ModelGen,
				FaultDomain:  in.FaultDomain,
				UpdateDomain: in.UpdateDomain,
			}
			if vp.OSProfile != nil {
				sp.AdminUser = vp.OSProfile.AdminUsername
				sp.CustomData = vp.OSProfile.CustomData
				if model.PasswordAuth(vp.OSProfile) {
					sp.Password = vp.OSProfile.AdminPassword
				}
				sp.PublicKeys = model.PublicKeys(vp.OSProfile)
			}
			fillNet(st, nets, &sp, in.Subnet, in.PrivateIP)
			out = append(out, &Desired{
				Spec:        sp,
				Power:       in.Power,
				Deleting:    in.Deleting,
				FaultDown:   ss.FaultDomainDown(in.FaultDomain),
				SetKey:      key,
				HealthProbe: healthProbeOf(vp),
			})
		}
	}
	for key, vm := range st.VMs {
		os := vm.Model.Properties.OSProfile
		sp := InstanceSpec{
			Key:        key,
			Kind:       "vm",
			Netns:      vm.Netns,
			VMName:     vm.Model.Name,
			BuildGen:   vm.BuildGen,
			RestartGen: vm.RestartGen,
		}
		if os != nil {
			sp.ComputerName = os.ComputerName
			sp.AdminUser = os.AdminUsername
			sp.CustomData = os.CustomData
			if model.PasswordAuth(os) {
				sp.Password = os.AdminPassword
			}
			sp.PublicKeys = model.PublicKeys(os)
		}
		nic, ipc := st.PrimaryNIC(vm)
		if nic != nil && ipc != nil && ipc.Properties.Subnet != nil {
			sp.MAC = strings.ToLower(strings.ReplaceAll(nic.Properties.MacAddress, "-", ":"))
			fillNet(st, nets, &sp, ipc.Properties.Subnet.ID, ipc.Properties.PrivateIPAddress)
		}
		out = append(out, &Desired{Spec: sp, Power: vm.Power, Deleting: vm.Deleting, SetKey: key})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Netns < out[j].Spec.Netns })
	return out
}

// vnetNetnsIndex maps each owner key of st.Netns (a VNET's among them) to
// its namespace: State.VNetNetns searches every namespace, instances'
// included, which made a pass over n instances cost n².
func vnetNetnsIndex(st *model.State) map[string]string {
	idx := make(map[string]string, len(st.Netns))
	for n, owner := range st.Netns {
		if old, ok := idx[owner]; !ok || n < old { // stable if an owner has two
			idx[owner] = n
		}
	}
	return idx
}

// subnetNet is what instances of one subnet share.
type subnetNet struct {
	ok        bool
	vnetNetns string
	bridge    string
	bits      int
	gateway   netip.Addr
	suffix    string
}

// netCache remembers, for one pass, each subnet's network: looking a subnet
// up parses ids and hashes names, too much to do for every instance of
// every pass.
type netCache struct {
	vnets   map[string]string
	subnets map[string]*subnetNet
}

func (c *netCache) subnet(st *model.State, id string) *subnetNet {
	if n, ok := c.subnets[id]; ok {
		return n
	}
	n := &subnetNet{}
	if ref, ok := st.LookupSubnet(id); ok {
		*n = subnetNet{ok: true, vnetNetns: c.vnets[strings.ToLower(ref.VNet.ID)], bridge: BridgeName(ref.Subnet.Name),
			bits: ref.Prefix.Bits(), gateway: model.Gateway(ref.Prefix), suffix: model.DNSSuffix(ref.VNet.ID)}
	}
	c.subnets[id] = n
	return n
}

func fillNet(st *model.State, c *netCache, sp *InstanceSpec, subnetID, ip string) {
	n := c.subnet(st, subnetID)
	if !n.ok {
		return
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	sp.VNetNetns = n.vnetNetns
	sp.Bridge = n.bridge
	sp.Addr = netip.PrefixFrom(a, n.bits)
	sp.Gateway = n.gateway
	sp.DNSSuffix = n.suffix
}

// PlanOptions tune BuildPlan.
type PlanOptions struct {
	// ProbeIntervalScale multiplies probe intervals (1 = as configured); tests
	// use small values for sub-second probes.
	ProbeIntervalScale float64
	// DefaultDrain is the drain period of pools that set none.
	DefaultDrain time.Duration
	// JumpboxFallbackPorts are tried when port 22 of a VM's public IP is taken.
	JumpboxFallbackPorts []uint16
}

// BuildPlan computes the data plane from the state. serving says which
// instances (by kernel name) take traffic: created, started and not leaving.
// DNS lists every created instance (serving or not, as Azure keeps names of
// stopped VMs).
func BuildPlan(st *model.State, serving, exists map[string]bool, o PlanOptions) *Plan {
	return buildPlan(st, DesiredInstances(st), serving, exists, o)
}

// buildPlan is BuildPlan with the instances st wants (DesiredInstances).
func buildPlan(st *model.State, desired []*Desired, serving, exists map[string]bool, o PlanOptions) *Plan {
	if o.ProbeIntervalScale <= 0 {
		o.ProbeIntervalScale = 1
	}
	b := &planner{st: st, serving: serving, exists: exists, o: o,
		byKey: map[string]*Desired{}, poolMembers: map[string][]*Desired{}}
	for _, d := range desired {
		b.byKey[d.Spec.Key] = d
	}
	for setKey, ss := range st.ScaleSets {
		b.scaleSet(setKey, ss)
		b.instancePublicIPs(setKey, ss)
	}
	b.standaloneNICs()
	sort.Slice(b.nat, func(i, j int) bool {
		return b.nat[i].Public.String()+b.nat[i].Protocol < b.nat[j].Public.String()+b.nat[j].Protocol
	})
	return &Plan{Seq: st.Seq, DNS: dnsZones(st, desired, exists), NAT: b.nat, LBs: b.lbPlans(),
		Filters: securityFilters(st, desired, exists)}
}

// dnsZones are the internal DNS of every VNET: one record per created
// instance with a computer name.
func dnsZones(st *model.State, desired []*Desired, exists map[string]bool) []DNSZone {
	zones := map[string]*DNSZone{}
	var public []DNSRecord
	for _, r := range st.PublicDNSRecords() {
		public = append(public, DNSRecord{Name: r.FQDN, IP: r.IP})
	}
	for _, v := range VNetSpecs(st) {
		z := &DNSZone{VNetNetns: v.Netns, Suffix: v.Suffix, Public: public}
		for _, sn := range v.Subnets {
			z.Prefixes = append(z.Prefixes, sn.Prefix)
		}
		zones[v.Netns] = z
	}
	for _, d := range desired {
		z := zones[d.Spec.VNetNetns]
		if z == nil || d.Deleting || !exists[d.Spec.Netns] || d.Spec.ComputerName == "" {
			continue
		}
		z.Records = append(z.Records, DNSRecord{Name: strings.ToLower(d.Spec.ComputerName), IP: d.Spec.Addr.Addr()})
	}
	var out []DNSZone
	for _, z := range zones {
		sort.Slice(z.Records, func(i, j int) bool { return z.Records[i].Name < z.Records[j].Name })
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VNetNetns < out[j].VNetNetns })
	return out
}

// planner collects inbound NAT mappings and backend pool members while it
// walks scale sets and standalone NICs, then builds the load balancers.
type planner struct {
	st              *model.State
	serving, exists map[string]bool
	o               PlanOptions
	byKey           map[string]*Desired   // instance spec key -> desired instance
	poolMembers     map[string][]*Desired // backend pool key -> members
	nat             []NATMapping
}

// frontAddr is a frontend's address and whether it is public; ok is false
// when it has none (yet).
func (b *planner) frontAddr(f *arm.FrontendIPConfiguration) (addr netip.Addr, public, ok bool) {
	if f.Properties.PublicIPAddress != nil {
		pip, found := b.st.PublicIPs[arm.KeyOf(f.Properties.PublicIPAddress.ID)]
		if !found {
			return netip.Addr{}, false, false
		}
		a, err := netip.ParseAddr(pip.Properties.IPAddress)
		return a, true, err == nil
	}
	a, err := netip.ParseAddr(f.Properties.PrivateIPAddress)
	return a, false, err == nil
}

// scaleSet adds a scale set's live instances to the backend pools its NIC
// configurations name, and maps its inbound NAT pools.
func (b *planner) scaleSet(setKey string, ss *model.ScaleSet) {
	for _, nc := range ss.Profile().NICConfigs() {
		for _, ic := range nc.Properties.IPConfigurations {
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				for _, in := range ss.Live() {
					if d := b.byKey[setKey+"/"+in.ID]; d != nil {
						b.poolMembers[arm.KeyOf(r.ID)] = append(b.poolMembers[arm.KeyOf(r.ID)], d)
					}
				}
			}
			for _, r := range ic.Properties.LoadBalancerInboundNatPools {
				b.natPool(setKey, ss, r.ID)
			}
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				rules, lb := b.st.NATRulesV2(r.ID)
				for _, rule := range rules {
					b.natRuleV2(setKey, ss, lb, rule)
				}
			}
		}
	}
}

// natRuleV2 maps each instance's port of a version 2 inbound NAT rule (one
// frontend port per member of the rule's backend pool) to its backend port.
func (b *planner) natRuleV2(setKey string, ss *model.ScaleSet, lb *arm.LoadBalancer, rule *arm.InboundNatRule) {
	fi := findFrontend(lb, rule.Properties.FrontendIPConfiguration)
	if fi == nil {
		return
	}
	addr, _, ok := b.frontAddr(fi)
	if !ok {
		return
	}
	rp := rule.Properties
	for _, in := range ss.Live() {
		d := b.byKey[setKey+"/"+in.ID]
		port, has := in.NATPorts[arm.KeyOf(rule.ID)]
		if d == nil || !has || !b.exists[in.Netns] {
			continue
		}
		b.nat = append(b.nat, NATMapping{
			Owner:       mustParent(rule.ID),
			Name:        rule.Name + " → " + in.Name,
			Protocol:    rp.Protocol,
			Public:      netip.AddrPortFrom(addr, uint16(port)),
			VNetNetns:   d.Spec.VNetNetns,
			Backend:     netip.AddrPortFrom(d.Spec.Addr.Addr(), uint16(arm.IntOr(rp.BackendPort, 22))),
			Instance:    in.Netns,
			IdleTimeout: time.Duration(arm.IntOr(rp.IdleTimeoutInMinutes, 4)) * time.Minute,
			TCPReset:    arm.BoolOr(rp.EnableTCPReset, false),
		})
	}
}

// natPool maps each existing instance's port of an inbound NAT pool to its
// backend port.
func (b *planner) natPool(setKey string, ss *model.ScaleSet, poolID string) {
	pool := b.st.NATPool(poolID)
	if pool == nil {
		return
	}
	lbID := mustParent(pool.ID)
	lb := b.st.LoadBalancers[lbID]
	if lb == nil {
		return
	}
	fi := findFrontend(lb, pool.Properties.FrontendIPConfiguration)
	if fi == nil {
		return
	}
	addr, _, ok := b.frontAddr(fi)
	if !ok {
		return
	}
	for _, in := range ss.Live() {
		d := b.byKey[setKey+"/"+in.ID]
		port, has := in.NATPorts[arm.KeyOf(poolID)]
		if d == nil || !has || !b.exists[in.Netns] {
			continue
		}
		b.nat = append(b.nat, NATMapping{
			Owner:       lbID,
			Name:        pool.Name + " → " + in.Name,
			Protocol:    pool.Properties.Protocol,
			Public:      netip.AddrPortFrom(addr, uint16(port)),
			VNetNetns:   d.Spec.VNetNetns,
			Backend:     netip.AddrPortFrom(d.Spec.Addr.Addr(), uint16(arm.IntOr(pool.Properties.BackendPort, 22))),
			Instance:    in.Netns,
			IdleTimeout: time.Duration(arm.IntOr(pool.Properties.IdleTimeoutInMinutes, 4)) * time.Minute,
			TCPReset:    arm.BoolOr(pool.Properties.EnableTCPReset, false),
		})
	}
}

// standaloneNICs adds VMs' NICs to backend pools, and maps their inbound NAT
// rules and instance-level public IPs.
func (b *planner) standaloneNICs() {
	vmByNIC := map[string]*Desired{}
	for key, vm := range b.st.VMs {
		if vm.Model.Properties.NetworkProfile == nil {
			continue
		}
		for _, r := range vm.Model.Properties.NetworkProfile.NetworkInterfaces {
			if d := b.byKey[key]; d != nil {
				vmByNIC[arm.KeyOf(r.ID)] = d
			}
		}
	}
	for nicKey, nic := range b.st.NICs {
		d := vmByNIC[nicKey]
		if d == nil || d.Deleting {
			continue
		}
		for _, ic := range nic.Properties.IPConfigurations {
			ip, err := netip.ParseAddr(ic.Properties.PrivateIPAddress)
			if err != nil {
				continue
			}
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				dd := *d
				dd.Spec.Addr = netip.PrefixFrom(ip, d.Spec.Addr.Bits())
				b.poolMembers[arm.KeyOf(r.ID)] = append(b.poolMembers[arm.KeyOf(r.ID)], &dd)
			}
			for _, r := range ic.Properties.LoadBalancerInboundNatRules {
				b.natRule(d, ip, r.ID)
			}
			if ic.Properties.PublicIPAddress != nil && b.exists[d.Spec.Netns] {
				b.publicIP(d, ip, ic.Properties.PublicIPAddress.ID)
			}
		}
	}
}

// natRule maps an inbound NAT rule's frontend port to a VM's NIC.
func (b *planner) natRule(d *Desired, ip netip.Addr, ruleID string) {
	lbKey := mustParent(ruleID)
	lb := b.st.LoadBalancers[lbKey]
	if lb == nil || !b.exists[d.Spec.Netns] {
		return
	}
	for _, nr := range lb.Properties.InboundNatRules {
		if !arm.EqualIDs(nr.ID, ruleID) || nr.Properties.BackendAddressPool != nil {
			continue // a version 2 rule maps its pool's members (natRuleV2)
		}
		fi := findFrontend(lb, nr.Properties.FrontendIPConfiguration)
		if fi == nil {
			continue
		}
		addr, _, ok := b.frontAddr(fi)
		if !ok {
			continue
		}
		b.nat = append(b.nat, NATMapping{
			Owner: lbKey, Name: nr.Name + " → " + d.Spec.VMName, Protocol: nr.Properties.Protocol,
			Public:    netip.AddrPortFrom(addr, uint16(arm.IntOr(nr.Properties.FrontendPort, 0))),
			VNetNetns: d.Spec.VNetNetns, Backend: netip.AddrPortFrom(ip, uint16(arm.IntOr(nr.Properties.BackendPort, 0))),
			Instance: d.Spec.Netns, IdleTimeout: time.Duration(arm.IntOr(nr.Properties.IdleTimeoutInMinutes, 4)) * time.Minute,
			TCPReset: arm.BoolOr(nr.Properties.EnableTCPReset, false),
		})
	}
}

// publicIP maps port 22 of a VM's own public IP to the VM: a VM's public IP
// exposes SSH only (the emulator has no NSG enforcement), with the
// jumpbox's fallback ports when the host holds 22.
func (b *planner) publicIP(d *Desired, ip netip.Addr, pipID string) {
	pip, ok := b.st.PublicIPs[arm.KeyOf(pipID)]
	if !ok {
		return
	}
	addr, err := netip.ParseAddr(pip.Properties.IPAddress)
	if err != nil {
		return
	}
	b.nat = append(b.nat, NATMapping{
		Owner: strings.ToLower(pip.ID), Name: pip.Name + " → " + d.Spec.VMName + ":22", Protocol: "Tcp",
		Public: netip.AddrPortFrom(addr, 22), VNetNetns: d.Spec.VNetNetns, Backend: netip.AddrPortFrom(ip, 22),
		Instance: d.Spec.Netns, IdleTimeout: 4 * time.Minute, FallbackPorts: b.o.JumpboxFallbackPorts,
	})
}

// lbPlans are the load balancers, in key order: pools, probes and rules.
func (b *planner) lbPlans() []LBPlan {
	var lbKeys []string
	for k := range b.st.LoadBalancers {
		lbKeys = append(lbKeys, k)
	}
	sort.Strings(lbKeys)
	var out []LBPlan
	for _, k := range lbKeys {
		lb := b.st.LoadBalancers[k]
		lp := LBPlan{Key: k, Name: lb.Name}
		for _, bp := range lb.Properties.BackendAddressPools {
			lp.Pools = append(lp.Pools, b.poolPlan(bp))
		}
		allUp := map[string]bool{}
		for _, pr := range lb.Properties.Probes {
			iv := time.Duration(float64(time.Duration(arm.IntOr(pr.Properties.IntervalInSeconds, model.DefaultProbeInterval))*time.Second) * b.o.ProbeIntervalScale)
			lp.Probes = append(lp.Probes, ProbePlan{
				Name: pr.Name, Protocol: pr.Properties.Protocol, Port: int(arm.IntOr(pr.Properties.Port, 0)),
				Path: pr.Properties.RequestPath, Interval: iv, Threshold: model.ProbeThreshold(&pr.Properties),
			})
			allUp[strings.ToLower(pr.ID)] = pr.Properties.NoHealthyBackendsBehavior == "AllProbedUp"
		}
		for _, r := range lb.Properties.LoadBalancingRules {
			if rp, ok := b.rulePlan(lb, r, allUp); ok {
				lp.Rules = append(lp.Rules, rp)
			}
		}
		out = append(out, lp)
	}
	return out
}

// poolPlan is a backend pool with its serving members in the pool's VNET
// (the first member's), ordered by address.
func (b *planner) poolPlan(bp arm.BackendAddressPool) PoolPlan {
	pp := PoolPlan{Name: bp.Name, DrainPeriod: b.o.DefaultDrain}
	if d := bp.Properties.DrainPeriodInSeconds; d != nil {
		pp.DrainPeriod = time.Duration(*d) * time.Second
		if *d == 0 {
			pp.DrainPeriod = -1 // no drain: flows are reset at once (zero would mean the default)
		}
	}
	for _, d := range b.poolMembers[arm.KeyOf(bp.ID)] {
		if pp.VNetNetns == "" {
			pp.VNetNetns = d.Spec.VNetNetns
		}
		if !b.serving[d.Spec.Netns] || d.Spec.VNetNetns != pp.VNetNetns {
			continue
		}
		pp.Backends = append(pp.Backends, BackendPlan{Instance: d.Spec.Netns, Name: d.Spec.VMName, Addr: d.Spec.Addr.Addr()})
	}
	sort.Slice(pp.Backends, func(i, j int) bool { return pp.Backends[i].Addr.Less(pp.Backends[j].Addr) })
	return pp
}

// rulePlan is a load-balancing rule; ok is false while its frontend has no
// address. allUp says which probes (by lower-cased id) open all backends
// when every one is down.
func (b *planner) rulePlan(lb *arm.LoadBalancer, r arm.LoadBalancingRule, allUp map[string]bool) (RulePlan, bool) {
	fi := findFrontend(lb, r.Properties.FrontendIPConfiguration)
	if fi == nil {
		return RulePlan{}, false
	}
	addr, public, ok := b.frontAddr(fi)
	if !ok {
		return RulePlan{}, false
	}
	rp := RulePlan{
		Name: r.Name, Protocol: r.Properties.Protocol, Public: public, Frontend: addr,
		FrontendPort: int(arm.IntOr(r.Properties.FrontendPort, 0)), BackendPort: int(arm.IntOr(r.Properties.BackendPort, 0)),
		Distribution: r.Properties.LoadDistribution,
		IdleTimeout:  time.Duration(arm.IntOr(r.Properties.IdleTimeoutInMinutes, 4)) * time.Minute,
		TCPReset:     arm.BoolOr(r.Properties.EnableTCPReset, false),
	}
	if !public && fi.Properties.Subnet != nil {
		if ref, ok := b.st.LookupSubnet(fi.Properties.Subnet.ID); ok {
			rp.VNetNetns = b.st.VNetNetns(strings.ToLower(ref.VNet.ID))
			rp.Bridge = BridgeName(ref.Subnet.Name)
		}
	}
	if r.Properties.BackendAddressPool != nil {
		if id, err := arm.ParseID(r.Properties.BackendAddressPool.ID); err == nil {
			rp.Pool = id.Name()
		}
	}
	if r.Properties.Probe != nil {
		if id, err := arm.ParseID(r.Properties.Probe.ID); err == nil {
			rp.Probe = id.Name()
		}
		rp.AllDownOpen = allUp[strings.ToLower(r.Properties.Probe.ID)]
	}
	return rp, true
}

func findFrontend(lb *arm.LoadBalancer, ref *arm.SubResource) *arm.FrontendIPConfiguration {
	if ref == nil {
		return nil
	}
	for i := range lb.Properties.FrontendIPConfigurations {
		if arm.EqualIDs(lb.Properties.FrontendIPConfigurations[i].ID, ref.ID) {
			return &lb.Properties.FrontendIPConfigurations[i]
		}
	}
	return nil
}

func mustParent(id string) string {
	pid, err := arm.ParseID(id)
	if err != nil {
		return ""
	}
	return pid.Parent().Key()
}

// healthProbeOf names the load-balancer probe of a scale set's
// networkProfile.healthProbe as "loadbalancer/probe" (lower-cased), or "".
func healthProbeOf(vp *arm.ScaleSetVMProfile) string {
	if vp == nil || vp.NetworkProfile == nil || vp.NetworkProfile.HealthProbe == nil || vp.NetworkProfile.HealthProbe.ID == "" {
		return ""
	}
	id, err := arm.ParseID(vp.NetworkProfile.HealthProbe.ID)
	if err != nil {
		return ""
	}
	return probeKey(id.Parent().Name(), id.Name())
}

func probeKey(lb, probe string) string { return strings.ToLower(lb + "/" + probe) }

// instanceHealth is an instance's health as automatic repairs and rolling
// upgrades see it: from the scale set's load-balancer probe when it names
// one (Up is Healthy, Down Unhealthy, else Unknown), else from the
// Application Health extension ("" when neither reports).
func instanceHealth(healthProbe string, o Observed) string {
	if healthProbe == "" {
		return o.Health
	}
	for _, p := range o.Probes {
		if probeKey(p.LoadBalancer, p.Probe) != healthProbe {
			continue
		}
		switch p.State {
		case "Up":
			return "Healthy"
		case "Down":
			return "Unhealthy"
		}
		return "Unknown"
	}
	return "Unknown"
}
