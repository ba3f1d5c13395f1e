package model

import (
	"encoding/json"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// PutVM creates or updates a standalone virtual machine (a jumpbox, say).
func (s *State) PutVM(id arm.ID, body []byte, patch bool) (*VM, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypeVM, id.Name()); e != nil {
		return nil, false, e
	}
	old, exists := s.VMs[id.Key()]
	if patch && !exists {
		return nil, false, arm.NotFound(id.String())
	}
	if exists && old.Deleting {
		return nil, false, arm.Errorf(409, "OperationNotAllowed", id.String(), "Virtual machine %s is being deleted.", id.Name())
	}
	var probe any
	if e := decode(id.String(), body, &probe); e != nil {
		return nil, false, e
	}
	doc := body
	if exists {
		id = mustParse(old.Model.ID)
		cur, _ := json.Marshal(old.Model) // encoding our own types (no channels, funcs or cyclic values) cannot fail
		merged, err := mergePatch(cur, body)
		if err != nil {
			return nil, false, arm.Errorf(400, "InvalidRequestContent", id.String(), "Could not merge the request into the virtual machine: %v.", err)
		}
		doc = merged
	}
	var m arm.VirtualMachine
	if e := decode(id.String(), doc, &m); e != nil {
		return nil, false, e
	}
	m.ID, m.Name, m.Type = id.String(), id.Name(), arm.TypeVM
	m.Location = s.location(m.Location)
	p := &m.Properties
	if p.OSProfile == nil {
		return nil, false, arm.BadRequest("properties.osProfile", "Required parameter 'osProfile' is missing (null).")
	}
	if p.OSProfile.ComputerName == "" {
		p.OSProfile.ComputerName = id.Name()
	}
	if e := validateOSProfile("properties.osProfile", p.OSProfile); e != nil {
		return nil, false, e
	}
	if exists {
		op := old.Model.Properties.OSProfile
		if op.AdminUsername != p.OSProfile.AdminUsername || op.ComputerName != p.OSProfile.ComputerName {
			return nil, false, arm.Errorf(409, "PropertyChangeNotAllowed", "properties.osProfile",
				"Changing property 'osProfile' (adminUsername, computerName) is not allowed.")
		}
	}
	if p.NetworkProfile == nil || len(p.NetworkProfile.NetworkInterfaces) == 0 {
		return nil, false, arm.BadRequest("properties.networkProfile.networkInterfaces",
			"Virtual machine %s needs a network interface (properties.networkProfile.networkInterfaces[].id).", id.Name())
	}
	for _, r := range p.NetworkProfile.NetworkInterfaces {
		if _, ok := s.NICs[arm.KeyOf(r.ID)]; !ok {
			return nil, false, invalidRef(r.ID, m.ID)
		}
		if o := s.NICOwner(r.ID); o != "" && !arm.EqualIDs(o, m.ID) {
			return nil, false, arm.Errorf(400, "NicInUse", r.ID,
				"Network interface %s is used by virtual machine %s.", r.ID, o)
		}
	}
	if exists {
		p.VMID = old.Model.Properties.VMID
	} else {
		p.VMID = guid("vm", id.Key())
	}
	p.ProvisioningState, p.InstanceView = "", nil
	vm := &VM{Model: m, Power: PowerRunning, Created: s.cfg.Now()}
	if exists {
		vm.Netns, vm.Power, vm.BuildGen, vm.RestartGen, vm.Created = old.Netns, old.Power, old.BuildGen, old.RestartGen, old.Created
	} else {
		vm.Netns = s.claimNetns(id.Key(), id.ResourceGroup, id.Name())
	}
	s.ensureGroup(id)
	s.VMs[id.Key()] = vm
	s.bump()
	return vm, !exists, nil
}

// VMByID returns a VM, or a ResourceNotFound error.
func (s *State) VMByID(id arm.ID) (*VM, *arm.Error) {
	vm, ok := s.VMs[id.Key()]
	if !ok || vm.Deleting {
		return nil, arm.NotFound(id.String())
	}
	return vm, nil
}

// VMAction changes a VM's wishes: "start", "powerOff", "deallocate", "restart", "reimage".
func (s *State) VMAction(id arm.ID, action string) *arm.Error {
	vm, e := s.VMByID(id)
	if e != nil {
		return e
	}
	switch strings.ToLower(action) {
	case "start":
		vm.Power = PowerRunning
	case "poweroff":
		vm.Power = PowerStopped
	case "deallocate":
		vm.Power = PowerDeallocated
	case "restart":
		vm.RestartGen++
		vm.Power = PowerRunning
	case "reimage":
		vm.BuildGen++
		vm.Power = PowerRunning
	default:
		return arm.Errorf(404, "InvalidResourceType", action, "Virtual machines have no action %q.", action)
	}
	s.bump()
	return nil
}

// PrimaryNIC returns a VM's primary NIC and its primary ip configuration.
func (s *State) PrimaryNIC(vm *VM) (*arm.NetworkInterface, *arm.NICIPConfiguration) {
	np := vm.Model.Properties.NetworkProfile
	if np == nil || len(np.NetworkInterfaces) == 0 {
		return nil, nil
	}
	ref := np.NetworkInterfaces[0]
	for _, r := range np.NetworkInterfaces {
		if r.Properties != nil && arm.BoolOr(r.Properties.Primary, false) {
			ref = r
		}
	}
	nic, ok := s.NICs[arm.KeyOf(ref.ID)]
	if !ok || len(nic.Properties.IPConfigurations) == 0 {
		return nic, nil
	}
	c := &nic.Properties.IPConfigurations[0]
	for i := range nic.Properties.IPConfigurations {
		if arm.BoolOr(nic.Properties.IPConfigurations[i].Properties.Primary, false) {
			c = &nic.Properties.IPConfigurations[i]
		}
	}
	return nic, c
}

// RemoveVM drops a deleted VM's record once its kernel objects are gone.
func (s *State) RemoveVM(key string) {
	if vm, ok := s.VMs[key]; ok && vm.Deleting {
		s.releaseNetns(vm.Netns)
		delete(s.VMs, key)
		s.bump()
	}
}
