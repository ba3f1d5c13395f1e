package model

import (
	"net/netip"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// PutNIC creates or replaces a network interface.
func (s *State) PutNIC(id arm.ID, body []byte) (*arm.NetworkInterface, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypeNIC, id.Name()); e != nil {
		return nil, false, e
	}
	var nic arm.NetworkInterface
	if e := decode(id.String(), body, &nic); e != nil {
		return nil, false, e
	}
	old, exists := s.NICs[id.Key()]
	if exists {
		id = mustParse(old.ID)
	}
	nic.ID, nic.Name, nic.Type = id.String(), id.Name(), arm.TypeNIC
	nic.Location = s.location(nic.Location)
	if len(nic.Properties.IPConfigurations) == 0 {
		return nil, false, arm.BadRequest("properties.ipConfigurations", "Network interface %s needs at least one ip configuration.", id.Name())
	}
	var vnet string
	seen := map[string]bool{}
	refs := make([]SubnetRef, len(nic.Properties.IPConfigurations))
	for i := range nic.Properties.IPConfigurations {
		c := &nic.Properties.IPConfigurations[i]
		if c.Name == "" {
			return nil, false, arm.BadRequest("properties.ipConfigurations", "Every ip configuration of %s needs a name.", id.Name())
		}
		if seen[strings.ToLower(c.Name)] {
			return nil, false, arm.Errorf(400, "DuplicateResourceName", c.Name, "Network interface %s has two ip configurations named %s.", id.Name(), c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		c.ID = sub(nic.ID, "ipConfigurations", c.Name)
		cp := &c.Properties
		if cp.Subnet == nil {
			return nil, false, arm.BadRequest(c.ID, "ip configuration %s needs properties.subnet.id.", c.Name)
		}
		ref, ok := s.LookupSubnet(cp.Subnet.ID)
		if !ok {
			return nil, false, invalidRef(cp.Subnet.ID, c.ID)
		}
		if vnet != "" && !arm.EqualIDs(vnet, ref.VNet.ID) {
			return nil, false, arm.Errorf(400, "IpConfigurationsOfNicInDifferentVnets", c.ID,
				"All ip configurations of network interface %s must be in one virtual network.", id.Name())
		}
		vnet = ref.VNet.ID
		cp.Subnet.ID = ref.Subnet.ID
		refs[i] = ref
		if cp.PublicIPAddress != nil {
			if _, ok := s.PublicIPs[arm.KeyOf(cp.PublicIPAddress.ID)]; !ok {
				return nil, false, invalidRef(cp.PublicIPAddress.ID, c.ID)
			}
			if u := s.PublicIPUser(cp.PublicIPAddress.ID); u != "" && !strings.HasPrefix(strings.ToLower(u), strings.ToLower(nic.ID)+"/") {
				return nil, false, arm.Errorf(400, "PublicIPAddressInUse", c.ID,
					"Public IP address %s is already used by %s.", cp.PublicIPAddress.ID, u)
			}
		}
		for _, r := range cp.LoadBalancerBackendAddressPools {
			if !s.lbChildExists(r.ID, "backendAddressPools") {
				return nil, false, invalidRef(r.ID, c.ID)
			}
		}
		for _, r := range cp.LoadBalancerInboundNatRules {
			if !s.lbChildExists(r.ID, "inboundNatRules") {
				return nil, false, invalidRef(r.ID, c.ID)
			}
		}
		if i == 0 && cp.Primary == nil {
			cp.Primary = arm.BoolPtr(true)
		}
		cp.ProvisioningState = "Succeeded"
	}
	if e := s.allocateNICAddresses(&nic, old, refs); e != nil {
		return nil, false, e
	}
	if nic.Properties.NetworkSecurityGroup != nil {
		if _, ok := s.Generic[arm.KeyOf(nic.Properties.NetworkSecurityGroup.ID)]; !ok {
			return nil, false, invalidRef(nic.Properties.NetworkSecurityGroup.ID, nic.ID)
		}
	}
	nic.Properties.MacAddress = strings.ToUpper(strings.ReplaceAll(MACFor(nic.ID), ":", "-"))
	nic.Properties.VirtualMachine = nil
	if exists {
		nic.Properties.ResourceGUID = old.Properties.ResourceGUID
	} else {
		nic.Properties.ResourceGUID = guid("nic", id.Key())
	}
	nic.Properties.ProvisioningState = "Succeeded"
	s.ensureGroup(id)
	s.NICs[id.Key()] = &nic
	s.bump()
	return &nic, !exists, nil
}

// lbChildExists reports whether a load balancer sub-resource id resolves.
func (s *State) lbChildExists(id, kind string) bool {
	pid, err := arm.ParseID(id)
	if err != nil || len(pid.Types) != 2 || !strings.EqualFold(pid.Types[1], kind) {
		return false
	}
	lb, ok := s.LoadBalancers[pid.Parent().Key()]
	if !ok {
		return false
	}
	switch strings.ToLower(kind) {
	case "backendaddresspools":
		return findPool(lb.Properties.BackendAddressPools, id) >= 0
	case "inboundnatpools":
		for _, p := range lb.Properties.InboundNatPools {
			if arm.EqualIDs(p.ID, id) {
				return true
			}
		}
	case "inboundnatrules":
		for _, p := range lb.Properties.InboundNatRules {
			if arm.EqualIDs(p.ID, id) {
				return true
			}
		}
	}
	return false
}

// NICOwner returns the VM using a NIC, "" when none does.
func (s *State) NICOwner(nicID string) string {
	for _, vm := range s.VMs {
		if vm.Model.Properties.NetworkProfile == nil {
			continue
		}
		for _, r := range vm.Model.Properties.NetworkProfile.NetworkInterfaces {
			if arm.EqualIDs(r.ID, nicID) {
				return vm.Model.ID
			}
		}
	}
	return ""
}

// allocateNICAddresses gives every ip configuration of nic its private
// address from one allocator: the old NIC's addresses are free for this
// request; static addresses first, then dynamic configurations keep their
// address when it is still free, then new dynamic ones get the lowest free
// ones. old is nil for a new NIC.
func (s *State) allocateNICAddresses(nic, old *arm.NetworkInterface, refs []SubnetRef) *arm.Error {
	alloc := s.Allocator()
	oldIP := map[string]string{}
	if old != nil {
		for _, c := range old.Properties.IPConfigurations {
			oldIP[strings.ToLower(c.Name)] = c.Properties.PrivateIPAddress
			if c.Properties.Subnet != nil {
				alloc.Release(c.Properties.Subnet.ID, c.Properties.PrivateIPAddress)
			}
		}
	}
	cs := nic.Properties.IPConfigurations
	var keep, dynamic []int
	for i := range cs {
		cp := &cs[i].Properties
		if strings.EqualFold(cp.PrivateIPAllocationMethod, "Static") || (cp.PrivateIPAddress != "" && !strings.EqualFold(cp.PrivateIPAllocationMethod, "Dynamic")) {
			a, e := alloc.Static(cs[i].ID, refs[i], cp.PrivateIPAddress)
			if e != nil {
				return e
			}
			cp.PrivateIPAddress, cp.PrivateIPAllocationMethod = a.String(), "Static"
			continue
		}
		keep = append(keep, i)
	}
	for _, i := range keep {
		cp := &cs[i].Properties
		prev, err := netip.ParseAddr(oldIP[strings.ToLower(cs[i].Name)])
		if err == nil && refs[i].Prefix.Contains(prev) && !alloc.InUse(refs[i].Subnet.ID, prev) {
			alloc.Take(refs[i].Subnet.ID, prev.String())
			cp.PrivateIPAddress, cp.PrivateIPAllocationMethod = prev.String(), "Dynamic"
			continue
		}
		dynamic = append(dynamic, i)
	}
	for _, i := range dynamic {
		cp := &cs[i].Properties
		a, e := alloc.Dynamic(refs[i])
		if e != nil {
			return e
		}
		cp.PrivateIPAddress, cp.PrivateIPAllocationMethod = a.String(), "Dynamic"
	}
	return nil
}
