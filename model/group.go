package model

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// PutGroup creates or updates a resource group.
func (s *State) PutGroup(sub, name, location string, tags map[string]string) (*arm.ResourceGroup, bool, *arm.Error) {
	if !strings.EqualFold(sub, s.cfg.Subscription) {
		return nil, false, arm.Errorf(404, "SubscriptionNotFound", sub, "The subscription '%s' could not be found.", sub)
	}
	if e := ValidateResourceGroupName(name); e != nil {
		return nil, false, e
	}
	k := strings.ToLower(name)
	old, exists := s.ResourceGroups[k]
	if exists && old.Properties.ProvisioningState == "Deleting" {
		return nil, false, arm.Errorf(409, "ResourceGroupBeingDeleted", name, "The resource group '%s' is in deprovisioning state and cannot perform this operation.", name)
	}
	if exists && location != "" && !strings.EqualFold(location, old.Location) {
		return nil, false, arm.Errorf(409, "InvalidResourceGroupLocation", name,
			"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", location, old.Location)
	}
	rg := &arm.ResourceGroup{ID: arm.ID{Subscription: s.cfg.Subscription, ResourceGroup: name}.String(), Name: name, Type: arm.TypeResourceGroup, Location: s.location(location), Tags: tags}
	if exists {
		rg.ID, rg.Name, rg.Location = old.ID, old.Name, old.Location
	}
	rg.Properties.ProvisioningState = "Succeeded"
	s.ResourceGroups[k] = rg
	s.bump()
	return rg, !exists, nil
}

// StorageKey is the emulated access key n of a storage account: stable, base64,
// 64 bytes like Azure's.
func StorageKey(accountID string, n int) string {
	a := sha256.Sum256([]byte(strings.ToLower(accountID) + "/key" + strconv.Itoa(n)))
	b := sha256.Sum256(a[:])
	return base64.StdEncoding.EncodeToString(append(a[:], b[:]...))
}
