package model

import (
	"encoding/json"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/nsg"
)

// PutGeneric stores a resource kept as its ARM body: network security
// groups (their rules validated here, enforced by the data plane), storage
// accounts, autoscale settings, availability sets.
func (s *State) PutGeneric(id arm.ID, body []byte) (*arm.GenericResource, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(id.Type(), id.Name()); e != nil {
		return nil, false, e
	}
	var g arm.GenericResource
	if e := decode(id.String(), body, &g); e != nil {
		return nil, false, e
	}
	old, exists := s.Generic[id.Key()]
	if exists {
		id = mustParse(old.ID)
	}
	g.ID, g.Name, g.Type = id.String(), id.Name(), id.Type()
	if strings.EqualFold(id.Type(), arm.TypeNSG) {
		if _, e := nsg.FromProperties(g.ID, g.Properties); e != nil {
			return nil, false, e
		}
	}
	g.Location = s.location(g.Location)
	props := map[string]any{}
	if len(g.Properties) > 0 {
		if err := json.Unmarshal(g.Properties, &props); err != nil || props == nil { // "properties": null
			props = map[string]any{}
		}
	}
	props["provisioningState"] = "Succeeded"
	g.Properties, _ = json.Marshal(props) // a map decoded from JSON always encodes
	s.ensureGroup(id)
	s.Generic[id.Key()] = &g
	s.bump()
	return &g, !exists, nil
}

// Delete removes a resource by id. Scale sets and VMs are marked and removed by
// the reconciler once their instances are gone; network resources in use are
// refused with Azure's in-use errors. A resource that does not exist is not an
// error (ARM answers 204).
func (s *State) Delete(id arm.ID) (found bool, err *arm.Error) {
	k := id.Key()
	switch {
	case id.IsType(arm.TypeScaleSet):
		if _, ok := s.ScaleSets[k]; !ok {
			return false, nil
		}
		return true, s.DeleteScaleSet(id)
	case id.IsType(arm.TypeVM):
		vm, ok := s.VMs[k]
		if !ok {
			return false, nil
		}
		vm.Deleting = true
		s.bump()
		return true, nil
	case id.IsType(arm.TypeNIC):
		if _, ok := s.NICs[k]; !ok {
			return false, nil
		}
		if o := s.NICOwner(id.String()); o != "" {
			return true, arm.Errorf(400, "NicInUse", id.String(),
				"Network interface %s is used by virtual machine %s. Delete the virtual machine first.", id.Name(), o)
		}
		delete(s.NICs, k)
	case id.IsType(arm.TypeLoadBalancer):
		lb, ok := s.LoadBalancers[k]
		if !ok {
			return false, nil
		}
		for _, bp := range lb.Properties.BackendAddressPools {
			if u := s.poolUser(bp.ID); u != "" {
				return true, arm.Errorf(400, "InUseLoadBalancerCannotBeDeleted", id.String(),
					"Load balancer %s is in use by %s (backend pool %s). Delete or update that resource first.", id.Name(), u, bp.Name)
			}
		}
		for _, np := range lb.Properties.InboundNatPools {
			if u := s.poolUser(np.ID); u != "" {
				return true, arm.Errorf(400, "InUseLoadBalancerCannotBeDeleted", id.String(),
					"Load balancer %s is in use by %s (inbound NAT pool %s). Delete or update that resource first.", id.Name(), u, np.Name)
			}
		}
		for _, nr := range lb.Properties.InboundNatRules {
			if u := s.poolUser(nr.ID); u != "" {
				return true, arm.Errorf(400, "InUseLoadBalancerCannotBeDeleted", id.String(),
					"Load balancer %s is in use by %s (inbound NAT rule %s). Delete or update that resource first.", id.Name(), u, nr.Name)
			}
		}
		delete(s.LoadBalancers, k)
	case id.IsType(arm.TypePublicIP):
		if _, ok := s.PublicIPs[k]; !ok {
			return false, nil
		}
		if u := s.PublicIPUser(id.String()); u != "" {
			return true, arm.Errorf(400, "PublicIPAddressCannotBeDeleted", id.String(),
				"Public IP address %s can not be deleted since it is still allocated to resource %s. Delete or update that resource first.", id.Name(), u)
		}
		delete(s.PublicIPs, k)
	case id.IsType(arm.TypeVirtualNetwork):
		vn, ok := s.VNets[k]
		if !ok {
			return false, nil
		}
		for _, sn := range vn.Properties.Subnets {
			if u := s.subnetInUse(sn.ID); u != "" {
				return true, arm.Errorf(400, "InUseSubnetCannotBeDeleted", sn.ID,
					"Subnet %s is in use by %s and cannot be deleted. Delete that resource first.", sn.Name, u)
			}
		}
		delete(s.VNets, k)
		// The kernel name stays claimed until the reconciler has removed the namespace.
	case id.IsType(arm.TypeDeployment):
		if _, ok := s.Deployments[k]; !ok {
			return false, nil
		}
		delete(s.Deployments, k)
	default:
		if _, ok := s.Generic[k]; !ok {
			return false, nil
		}
		delete(s.Generic, k)
	}
	s.bump()
	return true, nil
}

// ReleaseVNetNetns frees the kernel name of a deleted VNET after the reconciler
// removed its namespace.
func (s *State) ReleaseVNetNetns(name string) {
	if owner, ok := s.Netns[name]; ok {
		if _, live := s.VNets[owner]; !live {
			s.releaseNetns(name)
			s.bump()
		}
	}
}

// DeleteGroup starts deleting a resource group and everything in it. Scale sets
// and VMs go first (the reconciler removes their instances), then the rest;
// FinishGroupDeletes completes the work.
func (s *State) DeleteGroup(name string) (bool, *arm.Error) {
	g, ok := s.ResourceGroups[strings.ToLower(name)]
	if !ok {
		return false, nil
	}
	g.Properties.ProvisioningState = "Deleting"
	for _, ss := range s.ScaleSets {
		if inGroup(ss.Model.ID, name) {
			ss.Deleting, ss.Batch = true, nil
			for _, in := range ss.Instances {
				in.Deleting = true
			}
		}
	}
	for _, vm := range s.VMs {
		if inGroup(vm.Model.ID, name) {
			vm.Deleting = true
		}
	}
	s.bump()
	s.FinishGroupDeletes()
	return true, nil
}

// FinishGroupDeletes removes what is left of groups being deleted once their
// scale sets and VMs are gone. It reports whether anything changed.
func (s *State) FinishGroupDeletes() bool {
	changed := false
	for gk, g := range s.ResourceGroups {
		if g.Properties.ProvisioningState != "Deleting" {
			continue
		}
		busy := false
		for _, ss := range s.ScaleSets {
			busy = busy || inGroup(ss.Model.ID, g.Name)
		}
		for _, vm := range s.VMs {
			busy = busy || inGroup(vm.Model.ID, g.Name)
		}
		if busy {
			continue
		}
		dropInGroup(s.NICs, g.Name, func(v *arm.NetworkInterface) string { return v.ID })
		dropInGroup(s.LoadBalancers, g.Name, func(v *arm.LoadBalancer) string { return v.ID })
		dropInGroup(s.PublicIPs, g.Name, func(v *arm.PublicIPAddress) string { return v.ID })
		dropInGroup(s.VNets, g.Name, func(v *arm.VirtualNetwork) string { return v.ID })
		dropInGroup(s.Generic, g.Name, func(v *arm.GenericResource) string { return v.ID })
		dropInGroup(s.Deployments, g.Name, func(v *Deployment) string { return v.ID })
		delete(s.ResourceGroups, gk)
		changed = true
	}
	if changed {
		s.bump()
	}
	return changed
}

// dropInGroup deletes the entries of m whose id is in group.
func dropInGroup[V any](m map[string]V, group string, id func(V) string) {
	for k, v := range m {
		if inGroup(id(v), group) {
			delete(m, k)
		}
	}
}

func inGroup(id, group string) bool {
	pid, err := arm.ParseID(id)
	return err == nil && strings.EqualFold(pid.ResourceGroup, group)
}
