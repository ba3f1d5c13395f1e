package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// decode parses a request body into v, naming the JSON problem.
func decode(target string, body []byte, v any) *arm.Error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return arm.Errorf(400, "InvalidRequestContent", target, "The request body is empty; send the resource as JSON.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return arm.Errorf(400, "InvalidRequestContent", target, "The request content was invalid and could not be deserialized: %v.", err)
	}
	return nil
}

// guid derives a stable GUID-shaped string from parts.
func guid(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	x := hex.EncodeToString(h[:16])
	return fmt.Sprintf("%s-%s-%s-%s-%s", x[0:8], x[8:12], x[12:16], x[16:20], x[20:32])
}

// DNSSuffix is the internal DNS suffix of a VNET, in Azure's
// {random}.internal.cloudapp.net form, stable for the VNET's id.
func DNSSuffix(vnetID string) string {
	h := sha256.Sum256([]byte(strings.ToLower(vnetID)))
	const alphabet = "abcdefghijklmnopqrstuvwxyz"
	var b [24]byte
	for i := range b {
		b[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(b[:]) + ".bx.internal.cloudapp.net"
}

// mergePatch applies an RFC 7386 JSON merge patch to a JSON document.
func mergePatch(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	return json.Marshal(mergeValue(d, p))
}

func mergeValue(d, p any) any {
	pm, ok := p.(map[string]any)
	if !ok {
		return p
	}
	dm, ok := d.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		// ARM property names compare case-insensitively; keep the stored spelling.
		key := k
		for dk := range dm {
			if strings.EqualFold(dk, k) {
				key = dk
				break
			}
		}
		if v == nil {
			delete(dm, key)
			continue
		}
		dm[key] = mergeValue(dm[key], v)
	}
	return dm
}

// ensureGroup makes sure the resource group of id exists, creating it in the
// default location when it does not (az would need `group create`; the emulator
// creates groups on first use).
func (s *State) ensureGroup(id arm.ID) {
	k := strings.ToLower(id.ResourceGroup)
	if _, ok := s.ResourceGroups[k]; ok {
		return
	}
	rg := &arm.ResourceGroup{
		ID:       arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}.String(),
		Name:     id.ResourceGroup,
		Type:     arm.TypeResourceGroup,
		Location: s.cfg.Location,
	}
	rg.Properties.ProvisioningState = "Succeeded"
	s.ResourceGroups[k] = rg
}

// checkScope validates the subscription and resource group of an id.
func (s *State) checkScope(id arm.ID) *arm.Error {
	if !strings.EqualFold(id.Subscription, s.cfg.Subscription) {
		return arm.Errorf(404, "SubscriptionNotFound", id.Subscription,
			"The subscription '%s' could not be found. This emulator serves subscription %s.", id.Subscription, s.cfg.Subscription)
	}
	if g, ok := s.ResourceGroups[strings.ToLower(id.ResourceGroup)]; ok && g.Properties.ProvisioningState == "Deleting" {
		return arm.Errorf(409, "ResourceGroupBeingDeleted", id.ResourceGroup,
			"The resource group '%s' is in deprovisioning state and cannot perform this operation.", id.ResourceGroup)
	}
	return ValidateResourceGroupName(id.ResourceGroup)
}

func (s *State) location(loc string) string {
	if loc == "" {
		return s.cfg.Location
	}
	return loc
}

// claimNetns reserves an instance's kernel name for owner.
func (s *State) claimNetns(owner string, parts ...string) string {
	return s.claimNetnsWith(s.cfg.Prefix, owner, parts...)
}

// claimNetnsWith returns the kernel name owner holds, or reserves a new
// one for it: prefix plus parts, with a numeric suffix when that is taken.
// It costs the same whatever the names there are (claiming a name for
// each of n instances must not cost n²).
func (s *State) claimNetnsWith(prefix, owner string, parts ...string) string {
	idx := s.netnsIndex()
	if n, ok := idx[owner]; ok {
		return n
	}
	n := uniqueNetns(netnsName(prefix, parts...), s.Netns)
	s.Netns[n] = owner
	idx[owner] = n
	return n
}

// netnsIndex returns netnsOwners, built again when it does not match Netns
// (first use, a state loaded or restored, Netns changed directly). Should
// Netns hold one owner under several names, the index keeps the least.
func (s *State) netnsIndex() map[string]string {
	if s.netnsOwners != nil && len(s.netnsOwners) == len(s.Netns) {
		return s.netnsOwners
	}
	idx := make(map[string]string, len(s.Netns))
	for n, o := range s.Netns {
		if cur, ok := idx[o]; !ok || n < cur {
			idx[o] = n
		}
	}
	s.netnsOwners = idx
	return idx
}

// VNetPrefix is the name prefix of VNET namespaces for an instance prefix:
// "vmss-" gives "vmssvnet-". It differs from the instance prefix so that
// instances and VNETs are told apart by name alone.
func VNetPrefix(prefix string) string { return strings.TrimRight(prefix, "-_.") + "vnet-" }

// releaseNetns frees a kernel name.
func (s *State) releaseNetns(name string) {
	owner, ok := s.Netns[name]
	if !ok {
		return
	}
	delete(s.Netns, name)
	if s.netnsOwners != nil && s.netnsOwners[owner] == name {
		delete(s.netnsOwners, owner)
	}
}

func (s *State) bump() { s.Seq++ }

// sub builds the id of a sub-resource of a parent id string.
func sub(parent, typ, name string) string { return parent + "/" + typ + "/" + name }
