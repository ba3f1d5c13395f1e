package api

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// copyOf deep-copies v through JSON so rendering never touches the state.
func copyOf[T any](v *T) *T {
	// Round-tripping our own types (no channels, funcs or cycles) cannot fail.
	data, _ := json.Marshal(v)
	var c T
	_ = json.Unmarshal(data, &c)
	return &c
}

// stripSecrets removes what Azure never returns: passwords, custom data and
// protected settings.
func stripSecrets(p *arm.OSProfile) {
	if p == nil {
		return
	}
	p.AdminPassword = ""
	p.CustomData = ""
}

func stripExtensionSecrets(ep *arm.ExtensionProfile) {
	if ep == nil {
		return
	}
	for i := range ep.Extensions {
		ep.Extensions[i].Properties.ProtectedSettings = nil
	}
}

// provisioningState of a resource from the runtime: Succeeded when applied,
// else verb (Creating, Updating, Deleting), or Failed.
func (s *Server) provisioningState(key string, seq int64, verb string) string {
	pending, err := s.Runtime.Pending(key)
	switch {
	case pending || s.Runtime.Applied() < seq:
		return verb
	case err != nil:
		return "Failed"
	}
	return "Succeeded"
}

func (s *Server) renderScaleSet(st *model.State, ss *model.ScaleSet) *arm.VirtualMachineScaleSet {
	m := copyOf(&ss.Model)
	if vp := m.Properties.VirtualMachineProfile; vp != nil {
		stripSecrets(vp.OSProfile)
		stripExtensionSecrets(vp.ExtensionProfile)
	}
	verb := "Updating"
	if ss.Deleting {
		verb = "Deleting"
	} else if len(ss.Instances) > 0 && allCreating(s, ss) {
		verb = "Creating"
	}
	m.Properties.ProvisioningState = s.provisioningState(strings.ToLower(ss.Model.ID), st.Seq, verb)
	return m
}

func allCreating(s *Server, ss *model.ScaleSet) bool {
	for _, in := range ss.Instances {
		if s.Runtime.Instance(in.Netns).ProvisioningState != "Creating" {
			return false
		}
	}
	return true
}

// powerCode maps a power state to Azure's status code.
func powerStatus(p string) arm.InstanceViewStatus {
	display := map[string]string{
		"starting": "VM starting", "running": "VM running", "stopping": "VM stopping",
		"stopped": "VM stopped", "deallocating": "VM deallocating", "deallocated": "VM deallocated", "unknown": "VM status unknown",
	}[p]
	if display == "" {
		display = "VM " + p
	}
	return arm.InstanceViewStatus{Code: "PowerState/" + p, Level: "Info", DisplayStatus: display}
}

func provStatus(p string, errMsg string) arm.InstanceViewStatus {
	st := arm.InstanceViewStatus{Code: "ProvisioningState/" + strings.ToLower(p), Level: "Info", DisplayStatus: "Provisioning " + strings.ToLower(p)}
	if p == "Failed" {
		st.Level, st.Message = "Error", errMsg
	}
	if p == "Succeeded" {
		st.DisplayStatus = "Provisioning succeeded"
		st.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return st
}

func (s *Server) renderInstance(st *model.State, ss *model.ScaleSet, in *model.Instance, view bool) *arm.ScaleSetVM {
	rt := s.Runtime.Instance(in.Netns)
	prov := rt.ProvisioningState
	if in.Deleting {
		prov = "Deleting"
	}
	if prov == "" {
		prov = "Creating"
	}
	vp := ss.Profile()
	os := &arm.OSProfile{ComputerName: in.ComputerName}
	if vp.OSProfile != nil {
		os.AdminUsername = vp.OSProfile.AdminUsername
		if vp.OSProfile.LinuxConfiguration != nil {
			os.LinuxConfiguration = copyOf(vp.OSProfile.LinuxConfiguration)
		}
	}
	vm := &arm.ScaleSetVM{
		ID:         ss.Model.ID + "/virtualMachines/" + in.ID,
		Name:       in.Name,
		Type:       arm.TypeScaleSetVM,
		Location:   ss.Model.Location,
		InstanceID: in.ID,
		Sku:        &arm.Sku{Name: ss.Model.Sku.Name, Tier: ss.Model.Sku.Tier},
		Properties: arm.ScaleSetVMProps{
			LatestModelApplied:   in.ModelGen == ss.ModelGen,
			VMID:                 in.VMID,
			ProvisioningState:    prov,
			OSProfile:            os,
			TimeCreated:          in.Created.UTC().Format(time.RFC3339Nano),
			PrivateIPAddress:     in.PrivateIP,
			PlatformFaultDomain:  in.FaultDomain,
			PlatformUpdateDomain: in.UpdateDomain,
			PowerState:           rt.PowerState,
			Netns:                in.Netns,
			HealthState:          rt.Health,
		},
	}
	vm.Properties.PublicIPAddress = in.PublicIP
	if nics := model.InstanceNICs(ss, in); len(nics) > 0 {
		np := &arm.VMNetworkProfile{}
		for _, nic := range nics {
			ref := arm.VMNICReference{ID: nic.ID}
			ref.Properties = &struct {
				Primary *arm.Bool `json:"primary,omitempty"`
			}{Primary: nic.Properties.Primary}
			np.NetworkInterfaces = append(np.NetworkInterfaces, ref)
		}
		vm.Properties.NetworkProfile = np
	}
	if in.Protect || in.ProtectSet {
		vm.Properties.ProtectionPolicy = &arm.ProtectionPolicy{ProtectFromScaleIn: arm.BoolPtr(in.Protect), ProtectFromScaleSetActions: arm.BoolPtr(in.ProtectSet)}
	}
	if view {
		vm.Properties.InstanceView = instanceView(in.ComputerName, in.FaultDomain, in.UpdateDomain, prov, rt)
	}
	return vm
}

func instanceView(computer string, fd, ud int, prov string, rt InstanceStatus) *arm.VMInstanceView {
	v := &arm.VMInstanceView{
		ComputerName:         computer,
		OSName:               "linux",
		PlatformFaultDomain:  &fd,
		PlatformUpdateDomain: &ud,
		Statuses:             []arm.InstanceViewStatus{provStatus(prov, rt.Error)},
		Extensions:           rt.Extensions,
	}
	if rt.PowerState != "" {
		v.Statuses = append(v.Statuses, powerStatus(rt.PowerState))
	}
	v.Statuses = append(v.Statuses, rt.Statuses...)
	if rt.Health != "" {
		v.VMHealth = &arm.VMHealth{Status: arm.InstanceViewStatus{Code: "HealthState/" + strings.ToLower(rt.Health), Level: "Info", DisplayStatus: "The VM is reporting itself as " + strings.ToLower(rt.Health)}}
	}
	return v
}

func (s *Server) renderVM(st *model.State, vm *model.VM, view bool) *arm.VirtualMachine {
	m := copyOf(&vm.Model)
	stripSecrets(m.Properties.OSProfile)
	rt := s.Runtime.Instance(vm.Netns)
	verb := "Updating"
	if vm.Deleting {
		verb = "Deleting"
	} else if rt.ProvisioningState == "Creating" || rt.ProvisioningState == "" {
		verb = "Creating"
	}
	m.Properties.ProvisioningState = s.provisioningState(strings.ToLower(vm.Model.ID), st.Seq, verb)
	if view {
		m.Properties.InstanceView = instanceView(vm.Model.Properties.OSProfile.ComputerName, 0, 0, m.Properties.ProvisioningState, rt)
	}
	return m
}

func renderPIP(st *model.State, p *arm.PublicIPAddress) *arm.PublicIPAddress {
	c := copyOf(p)
	if u := st.PublicIPUser(p.ID); u != "" {
		c.Properties.IPConfiguration = &arm.SubResource{ID: u}
	}
	return c
}

func renderNIC(st *model.State, n *arm.NetworkInterface) *arm.NetworkInterface {
	c := copyOf(n)
	if o := st.NICOwner(n.ID); o != "" {
		c.Properties.VirtualMachine = &arm.SubResource{ID: o}
	}
	if len(c.Properties.IPConfigurations) > 0 && c.Properties.IPConfigurations[0].Properties.Subnet != nil {
		if ref, ok := st.LookupSubnet(c.Properties.IPConfigurations[0].Properties.Subnet.ID); ok {
			c.Properties.DNSSettings, _ = json.Marshal(map[string]any{"internalDomainNameSuffix": model.DNSSuffix(ref.VNet.ID)}) // a map of strings always encodes
		}
	}
	return c
}

// renderLB fills the read-only cross references of a load balancer: which
// rules use each frontend, pool and probe, and which ip configurations are in
// each pool.
func renderLB(st *model.State, lb *arm.LoadBalancer) *arm.LoadBalancer {
	c := copyOf(lb)
	p := &c.Properties
	for i := range p.FrontendIPConfigurations {
		f := &p.FrontendIPConfigurations[i]
		for _, r := range p.LoadBalancingRules {
			if arm.EqualIDs(r.Properties.FrontendIPConfiguration.ID, f.ID) {
				f.Properties.LoadBalancingRules = append(f.Properties.LoadBalancingRules, arm.SubResource{ID: r.ID})
			}
		}
		for _, r := range p.InboundNatPools {
			if arm.EqualIDs(r.Properties.FrontendIPConfiguration.ID, f.ID) {
				f.Properties.InboundNatPools = append(f.Properties.InboundNatPools, arm.SubResource{ID: r.ID})
			}
		}
		for _, r := range p.InboundNatRules {
			if arm.EqualIDs(r.Properties.FrontendIPConfiguration.ID, f.ID) {
				f.Properties.InboundNatRules = append(f.Properties.InboundNatRules, arm.SubResource{ID: r.ID})
			}
		}
	}
	for i := range p.Probes {
		for _, r := range p.LoadBalancingRules {
			if r.Properties.Probe != nil && arm.EqualIDs(r.Properties.Probe.ID, p.Probes[i].ID) {
				p.Probes[i].Properties.LoadBalancingRules = append(p.Probes[i].Properties.LoadBalancingRules, arm.SubResource{ID: r.ID})
			}
		}
	}
	for i := range p.BackendAddressPools {
		bp := &p.BackendAddressPools[i]
		for _, r := range p.LoadBalancingRules {
			if r.Properties.BackendAddressPool != nil && arm.EqualIDs(r.Properties.BackendAddressPool.ID, bp.ID) {
				bp.Properties.LoadBalancingRules = append(bp.Properties.LoadBalancingRules, arm.SubResource{ID: r.ID})
			}
		}
		for _, m := range PoolMembers(st, bp.ID) {
			bp.Properties.BackendIPConfigurations = append(bp.Properties.BackendIPConfigurations, arm.SubResource{ID: m})
		}
		if rules, _ := st.NATRulesV2(bp.ID); len(rules) > 0 {
			for _, b := range st.NATRuleBackends(bp.ID) {
				a := arm.BackendAddress{Name: b.Name, Properties: arm.BackendAddressP{
					IPAddress: b.IPAddress, NetworkInterfaceIPConfiguration: &arm.SubResource{ID: b.IPConfigID},
				}}
				for _, m := range b.Mappings {
					a.Properties.InboundNatRulesPortMapping = append(a.Properties.InboundNatRulesPortMapping,
						arm.NatRulePortMapping{InboundNatRuleName: m.InboundNatRuleName, FrontendPort: m.FrontendPort, BackendPort: m.BackendPort})
				}
				bp.Properties.LoadBalancerBackendAddresses = append(bp.Properties.LoadBalancerBackendAddresses, a)
			}
		}
	}
	p.InboundNatRules = append(p.InboundNatRules, derivedNatRules(st, c)...)
	for i := range p.InboundNatRules {
		nr := &p.InboundNatRules[i]
		if nr.Properties.BackendIPConfiguration != nil {
			continue
		}
		for _, nic := range st.NICs {
			for _, ic := range nic.Properties.IPConfigurations {
				for _, r := range ic.Properties.LoadBalancerInboundNatRules {
					if arm.EqualIDs(r.ID, nr.ID) {
						nr.Properties.BackendIPConfiguration = &arm.SubResource{ID: ic.ID}
					}
				}
			}
		}
	}
	return c
}

// PoolMembers lists the ip configuration ids in a backend pool: each live
// scale-set instance whose model references it, and each NIC ip configuration.
func PoolMembers(st *model.State, poolID string) []string {
	var out []string
	for _, ss := range st.ScaleSets {
		for _, nc := range ss.Profile().NICConfigs() {
			for _, ic := range nc.Properties.IPConfigurations {
				for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
					if !arm.EqualIDs(r.ID, poolID) {
						continue
					}
					for _, in := range ss.Live() {
						out = append(out, ss.Model.ID+"/virtualMachines/"+in.ID+"/networkInterfaces/"+nc.Name+"/ipConfigurations/"+ic.Name)
					}
				}
			}
		}
	}
	for _, nic := range st.NICs {
		for _, ic := range nic.Properties.IPConfigurations {
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				if arm.EqualIDs(r.ID, poolID) {
					out = append(out, ic.ID)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// derivedNatRules are the per-instance NAT rules Azure shows on a load
// balancer for each scale-set instance of an inbound NAT pool, named
// {pool}.{instanceId}, as az vmss list-instance-connection-info reads them.
func derivedNatRules(st *model.State, lb *arm.LoadBalancer) []arm.InboundNatRule {
	var out []arm.InboundNatRule
	for _, pool := range lb.Properties.InboundNatPools {
		key := arm.KeyOf(pool.ID)
		for _, ss := range st.ScaleSets {
			for _, nc := range ss.Profile().NICConfigs() {
				for _, ic := range nc.Properties.IPConfigurations {
					uses := false
					for _, r := range ic.Properties.LoadBalancerInboundNatPools {
						uses = uses || arm.KeyOf(r.ID) == key
					}
					if !uses {
						continue
					}
					for _, in := range ss.Live() {
						port, ok := in.NATPorts[key]
						if !ok {
							continue
						}
						name := pool.Name + "." + in.ID
						out = append(out, arm.InboundNatRule{
							ID:   lb.ID + "/inboundNatRules/" + name,
							Name: name,
							Properties: arm.InboundNatRuleP{
								FrontendIPConfiguration: pool.Properties.FrontendIPConfiguration,
								BackendIPConfiguration:  &arm.SubResource{ID: ss.Model.ID + "/virtualMachines/" + in.ID + "/networkInterfaces/" + nc.Name + "/ipConfigurations/" + ic.Name},
								Protocol:                pool.Properties.Protocol,
								FrontendPort:            arm.IntPtr(int64(port)),
								BackendPort:             pool.Properties.BackendPort,
								IdleTimeoutInMinutes:    pool.Properties.IdleTimeoutInMinutes,
								EnableTCPReset:          pool.Properties.EnableTCPReset,
								ProvisioningState:       "Succeeded",
							},
						})
					}
				}
			}
		}
	}
	return out
}
