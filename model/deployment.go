package model

import "github.com/vmss-emulator/vmss/arm"

// PutDeployment stores (or replaces) a deployment record, creating its
// resource group on first use as resource PUTs do. The record's id and name
// are set from id.
func (s *State) PutDeployment(id arm.ID, d *Deployment) *arm.Error {
	if e := s.checkScope(id); e != nil {
		return e
	}
	if !id.IsType(arm.TypeDeployment) {
		return arm.BadRequest(id.String(), "%s is not a deployment id.", id)
	}
	d.ID, d.Name = id.String(), id.Name()
	s.ensureGroup(id)
	s.Deployments[id.Key()] = d
	s.bump()
	return nil
}
