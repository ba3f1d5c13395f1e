package model

import (
	"slices"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// resolveInstances maps requested instance ids to live instances. An empty
// list means every live instance. An unknown id fails the whole request.
func resolveInstances(ss *ScaleSet, ids []string) ([]*Instance, *arm.Error) {
	if len(ids) == 0 {
		return ss.Live(), nil
	}
	var out []*Instance
	seen := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "*" {
			return ss.Live(), nil
		}
		in, ok := ss.Instances[id]
		if !ok || in.Deleting {
			var valid []string
			for _, l := range ss.Live() {
				valid = append(valid, l.ID)
			}
			return nil, arm.Errorf(400, "InvalidParameter", "instanceIds",
				"The instance id %q is not in scale set %s (its instances are: %s).", id, ss.Model.Name, strings.Join(valid, ", "))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, in)
		}
	}
	return out, nil
}

// ScaleSetByID returns a scale set, or a ResourceNotFound error.
func (s *State) ScaleSetByID(id arm.ID) (*ScaleSet, *arm.Error) {
	ss, ok := s.ScaleSets[id.Key()]
	if !ok || ss.Deleting {
		return nil, arm.NotFound(id.String())
	}
	return ss, nil
}

// DeleteInstances removes instances by id (az vmss delete-instances). It is
// never blocked by scale-in protection, and it lowers the capacity.
func (s *State) DeleteInstances(id arm.ID, ids []string) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, arm.BadRequest("instanceIds", "Give the instance ids to delete, for example {\"instanceIds\": [\"1\", \"3\"]}.")
	}
	ins, e := resolveInstances(ss, ids)
	if e != nil {
		return nil, e
	}
	for _, in := range ins {
		in.Deleting = true
		if ss.Batch != nil && slices.Contains(ss.Batch.Members, in.ID) && ss.Batch.Want > 0 {
			ss.Batch.Want--
		}
	}
	c := int64(ss.EffectiveCount())
	ss.Model.Sku.Capacity = &[]arm.Int{arm.Int(c)}[0]
	s.bump()
	return ins, nil
}

// SetPower asks instances to be running, stopped or deallocated.
func (s *State) SetPower(id arm.ID, ids []string, power string) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	ins, e := resolveInstances(ss, ids)
	if e != nil {
		return nil, e
	}
	for _, in := range ins {
		in.Power = power
	}
	s.bump()
	return ins, nil
}

// Restart asks instances to restart (processes killed, workload started again).
func (s *State) Restart(id arm.ID, ids []string) ([]*Instance, *arm.Error) {
	return s.bumpInstances(id, ids, func(in *Instance) {
		in.RestartGen++
		in.Power = PowerRunning
	})
}

// Reimage asks instances to be rebuilt from the latest model, keeping id, name and IP.
func (s *State) Reimage(id arm.ID, ids []string) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	return s.bumpInstances(id, ids, func(in *Instance) {
		in.BuildGen++
		in.ModelGen = ss.ModelGen
		in.Power = PowerRunning
	})
}

// UpgradeInstances applies the latest model to instances (manualUpgrade).
func (s *State) UpgradeInstances(id arm.ID, ids []string) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	return s.bumpInstances(id, ids, func(in *Instance) { in.ModelGen = ss.ModelGen })
}

func (s *State) bumpInstances(id arm.ID, ids []string, f func(*Instance)) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	ins, e := resolveInstances(ss, ids)
	if e != nil {
		return nil, e
	}
	for _, in := range ins {
		f(in)
	}
	s.bump()
	return ins, nil
}

// SetProtection sets an instance's protection policy.
func (s *State) SetProtection(id arm.ID, instanceID string, fromScaleIn, fromSetActions *bool) (*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	ins, e := resolveInstances(ss, []string{instanceID})
	if e != nil {
		return nil, e
	}
	in := ins[0]
	if fromScaleIn != nil {
		in.Protect = *fromScaleIn
	}
	if fromSetActions != nil {
		in.ProtectSet = *fromSetActions
		if in.ProtectSet {
			in.Protect = true
		}
	}
	s.bump()
	return in, nil
}

// SetFaultDomain takes a fault domain down or brings it back (emulator-only
// fault injection). Instances stay in the model.
func (s *State) SetFaultDomain(id arm.ID, fd int, down bool) *arm.Error {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return e
	}
	if fd < 0 || fd >= ss.FaultDomainCount() {
		return arm.BadRequest("faultDomain", "Fault domain %d does not exist: scale set %s has fault domains 0-%d.", fd, ss.Model.Name, ss.FaultDomainCount()-1)
	}
	var out []int
	for _, d := range ss.FaultDomainsDown {
		if d != fd {
			out = append(out, d)
		}
	}
	if down {
		out = append(out, fd)
	}
	sort.Ints(out)
	ss.FaultDomainsDown = out
	s.bump()
	return nil
}

// DeleteScaleSet marks a scale set and its instances for deletion; the
// reconciler removes the record once the instances are gone.
func (s *State) DeleteScaleSet(id arm.ID) *arm.Error {
	ss, ok := s.ScaleSets[id.Key()]
	if !ok {
		return arm.NotFound(id.String())
	}
	ss.Deleting = true
	ss.Batch = nil
	for _, in := range ss.Instances {
		in.Deleting = true
	}
	s.bump()
	return nil
}

// ResolveBatch settles a pending overprovisioned scale-out. running says which
// members are running; settled says whether every member has finished trying
// (running or failed). When enough members run, the first Want of them (by
// id) stay and the others are deleted; when all have settled without enough
// running, running ones are preferred and the rest deleted. It reports the
// deleted extras.
func (s *State) ResolveBatch(id arm.ID, running map[string]bool, settled bool) []*Instance {
	ss, ok := s.ScaleSets[id.Key()]
	if !ok || ss.Batch == nil {
		return nil
	}
	var members []*Instance
	for _, mid := range ss.Batch.Members {
		if in, ok := ss.Instances[mid]; ok && !in.Deleting {
			members = append(members, in)
		}
	}
	nRunning := 0
	for _, in := range members {
		if running[in.ID] {
			nRunning++
		}
	}
	if nRunning < ss.Batch.Want && !settled {
		return nil
	}
	sort.SliceStable(members, func(i, j int) bool {
		ri, rj := running[members[i].ID], running[members[j].ID]
		if ri != rj {
			return ri
		}
		return members[i].IDNum() < members[j].IDNum()
	})
	var extras []*Instance
	for i, in := range members {
		if i >= ss.Batch.Want {
			in.Deleting = true
			extras = append(extras, in)
		}
	}
	ss.Batch = nil
	s.bump()
	return extras
}

// RemoveInstance drops a deleted instance's record once the kernel objects are
// gone, releasing its address, ports and kernel name. When the last instance of
// a set being deleted goes, the set goes too.
func (s *State) RemoveInstance(setKey, instanceID string) {
	ss, ok := s.ScaleSets[setKey]
	if !ok {
		return
	}
	if in, ok := ss.Instances[instanceID]; ok && in.Deleting {
		s.releaseNetns(in.Netns)
		delete(ss.Instances, instanceID)
		s.bump()
	}
	if ss.Deleting && len(ss.Instances) == 0 {
		delete(s.ScaleSets, setKey)
		s.bump()
	}
}

// ReplaceInstances deletes instances and creates as many new ones from the
// latest model (automatic repairs' Replace action): the replacements get new
// ids, and the capacity does not change.
func (s *State) ReplaceInstances(id arm.ID, ids []string) ([]*Instance, *arm.Error) {
	ss, e := s.ScaleSetByID(id)
	if e != nil {
		return nil, e
	}
	work := ss.clone()
	ins, e := resolveInstances(work, ids)
	if e != nil {
		return nil, e
	}
	for _, in := range ins {
		in.Deleting = true
	}
	if e := s.scaleOutExact(work, len(ins)); e != nil {
		return nil, e
	}
	if e := s.assignInstancePublicIPs(work); e != nil {
		return nil, e
	}
	s.commitScaleSet(id.Key(), work)
	return ins, nil
}

// scaleOutExact adds k instances without overprovisioning.
func (s *State) scaleOutExact(ss *ScaleSet, k int) *arm.Error {
	p := ss.Model.Properties
	saved := p.Overprovision
	p.Overprovision = arm.BoolPtr(false)
	defer func() { p.Overprovision = saved }()
	return s.scaleOut(ss, k)
}
