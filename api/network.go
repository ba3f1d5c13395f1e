package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// networkType is a top-level Microsoft.Network type with its own routes.
type networkType struct {
	name   string // path segment, e.g. virtualNetworks
	put    func(st *model.State, id arm.ID, body []byte) (created bool, e *arm.Error)
	render func(st *model.State, key string) any // nil when there is none
}

var networkTypes = []networkType{
	{"virtualNetworks",
		func(st *model.State, id arm.ID, body []byte) (bool, *arm.Error) {
			_, c, e := st.PutVNet(id, body)
			return c, e
		},
		func(st *model.State, key string) any {
			if v, ok := st.VNets[key]; ok {
				return copyOf(v)
			}
			return nil
		}},
	{"publicIPAddresses",
		func(st *model.State, id arm.ID, body []byte) (bool, *arm.Error) {
			_, c, e := st.PutPublicIP(id, body)
			return c, e
		},
		func(st *model.State, key string) any {
			if v, ok := st.PublicIPs[key]; ok {
				return renderPIP(st, v)
			}
			return nil
		}},
	{"loadBalancers",
		func(st *model.State, id arm.ID, body []byte) (bool, *arm.Error) {
			_, c, e := st.PutLoadBalancer(id, body)
			return c, e
		},
		func(st *model.State, key string) any {
			if v, ok := st.LoadBalancers[key]; ok {
				return renderLB(st, v)
			}
			return nil
		}},
	{"networkInterfaces",
		func(st *model.State, id arm.ID, body []byte) (bool, *arm.Error) {
			_, c, e := st.PutNIC(id, body)
			return c, e
		},
		func(st *model.State, key string) any {
			if v, ok := st.NICs[key]; ok {
				return renderNIC(st, v)
			}
			return nil
		}},
}

// getNetwork serves GET .../Microsoft.Network/{type}/{name}.
func (s *Server) getNetwork(t networkType) func(*request) {
	return func(req *request) {
		id := req.id(1)
		var out any
		s.Store.View(func(st *model.State) { out = t.render(st, id.Key()) })
		if out == nil {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		writeJSON(req.w, 200, out)
	}
}

// putNetwork serves PUT .../Microsoft.Network/{type}/{name}.
func (s *Server) putNetwork(t networkType) func(*request) {
	return func(req *request) {
		id := req.id(1)
		s.put(req, id.Key(), func(st *model.State) (bool, *arm.Error) { return t.put(st, id, req.body) },
			func(st *model.State) any { return t.render(st, id.Key()) })
	}
}

// patchNetwork serves PATCH .../Microsoft.Network/{type}/{name}: network
// resources take only tags by PATCH, as in Azure.
func (s *Server) patchNetwork(t networkType) func(*request) {
	return func(req *request) {
		var patch struct {
			Tags map[string]string `json:"tags"`
		}
		if err := json.Unmarshal(req.body, &patch); err != nil {
			writeErr(req.w, invalidContent(err))
			return
		}
		id := req.id(1)
		var cur []byte
		var err error
		s.Store.View(func(st *model.State) {
			if v := t.render(st, id.Key()); v != nil {
				cur, err = json.Marshal(v)
			}
		})
		if err != nil {
			writeErr(req.w, arm.Errorf(500, "InternalServerError", id.String(), "Could not encode the current resource: %v.", err))
			return
		}
		if cur == nil {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(cur, &doc); err != nil {
			writeErr(req.w, arm.Errorf(500, "InternalServerError", id.String(), "Could not decode the current resource: %v.", err))
			return
		}
		doc["tags"] = patch.Tags
		body, err := json.Marshal(doc)
		if err != nil {
			writeErr(req.w, arm.Errorf(500, "InternalServerError", id.String(), "Could not encode the patched resource: %v.", err))
			return
		}
		s.put(req, id.Key(), func(st *model.State) (bool, *arm.Error) { return t.put(st, id, body) },
			func(st *model.State) any { return t.render(st, id.Key()) })
	}
}

// deleteResource serves DELETE of a top-level resource: 202 and an operation,
// or 204 when there is nothing to delete.
func (s *Server) deleteResource(req *request) {
	id := req.id(1)
	var found bool
	seq, ok := s.update(req, func(st *model.State) *arm.Error {
		f, e := st.Delete(id)
		found = f
		return e
	})
	if !ok {
		return
	}
	if !found {
		req.w.WriteHeader(http.StatusNoContent)
		return
	}
	s.startOp(req, id.Key(), seq, true)
	req.w.WriteHeader(http.StatusAccepted)
}

// subnetIndex is the index of subnet name in vn, -1 when there is none.
func subnetIndex(vn *arm.VirtualNetwork, name string) int {
	return slices.IndexFunc(vn.Properties.Subnets, func(sn arm.Subnet) bool { return strings.EqualFold(sn.Name, name) })
}

// findSubnet renders subnet {subnet} of the virtual network in the path.
func (s *Server) findSubnet(req *request) *arm.Subnet {
	var out *arm.Subnet
	s.Store.View(func(st *model.State) {
		if vn, ok := st.VNets[req.id(1).Key()]; ok {
			if i := subnetIndex(vn, req.r.PathValue("subnet")); i >= 0 {
				out = copyOf(&vn.Properties.Subnets[i])
			}
		}
	})
	return out
}

// getSubnet serves GET .../virtualNetworks/{name}/subnets/{subnet}.
func (s *Server) getSubnet(req *request) {
	out := s.findSubnet(req)
	if out == nil {
		writeErr(req.w, arm.NotFound(req.id(2).String()))
		return
	}
	writeJSON(req.w, 200, out)
}

// editSubnets changes the subnets of the virtual network in the path and
// puts it; edit answers whether it changed anything.
func (s *Server) editSubnets(req *request, edit func(subnets []arm.Subnet, i int) ([]arm.Subnet, bool)) bool {
	vid, name := req.id(1), req.r.PathValue("subnet")
	seq, ok := s.update(req, func(st *model.State) *arm.Error {
		vn, ok := st.VNets[vid.Key()]
		if !ok {
			return arm.NotFound(vid.String())
		}
		c := copyOf(vn)
		subnets, changed := edit(c.Properties.Subnets, subnetIndex(c, name))
		if !changed {
			return nil
		}
		c.Properties.Subnets = subnets
		body, err := json.Marshal(c)
		if err != nil {
			return arm.Errorf(500, "InternalServerError", vid.String(), "Could not encode the virtual network: %v.", err)
		}
		_, _, e := st.PutVNet(vid, body)
		return e
	})
	if ok {
		s.startOp(req, vid.Key(), seq, false)
	}
	return ok
}

// putSubnet serves PUT .../virtualNetworks/{name}/subnets/{subnet} by
// editing the virtual network.
func (s *Server) putSubnet(req *request) {
	var sn arm.Subnet
	if err := json.Unmarshal(req.body, &sn); err != nil {
		writeErr(req.w, invalidContent(err))
		return
	}
	sn.Name = req.r.PathValue("subnet")
	var created bool
	if !s.editSubnets(req, func(subnets []arm.Subnet, i int) ([]arm.Subnet, bool) {
		if i < 0 {
			created = true
			return append(subnets, sn), true
		}
		subnets[i] = sn
		return subnets, true
	}) {
		return
	}
	writeJSON(req.w, createdStatus(created), s.findSubnet(req))
}

// deleteSubnet serves DELETE .../virtualNetworks/{name}/subnets/{subnet}.
func (s *Server) deleteSubnet(req *request) {
	if s.editSubnets(req, func(subnets []arm.Subnet, i int) ([]arm.Subnet, bool) {
		if i < 0 {
			return subnets, false
		}
		return slices.Delete(subnets, i, i+1), true
	}) {
		req.w.WriteHeader(http.StatusOK)
	}
}

// lbChild is a kind of load balancer sub-resource, served read-only.
type lbChild struct {
	name string // path segment, e.g. probes
	find func(p *arm.LoadBalancerProperties, id string) any
}

var lbChildren = []lbChild{
	{"frontendIPConfigurations", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.FrontendIPConfigurations, id, func(x *arm.FrontendIPConfiguration) string { return x.ID })
	}},
	{"backendAddressPools", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.BackendAddressPools, id, func(x *arm.BackendAddressPool) string { return x.ID })
	}},
	{"loadBalancingRules", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.LoadBalancingRules, id, func(x *arm.LoadBalancingRule) string { return x.ID })
	}},
	{"probes", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.Probes, id, func(x *arm.Probe) string { return x.ID })
	}},
	{"inboundNatRules", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.InboundNatRules, id, func(x *arm.InboundNatRule) string { return x.ID })
	}},
	{"inboundNatPools", func(p *arm.LoadBalancerProperties, id string) any {
		return byID(p.InboundNatPools, id, func(x *arm.InboundNatPool) string { return x.ID })
	}},
}

// getLBChild serves GET .../loadBalancers/{name}/{kind}/{child}.
func (s *Server) getLBChild(c lbChild) func(*request) {
	return func(req *request) {
		want := req.id(2).String()
		var out any
		s.Store.View(func(st *model.State) {
			if lb, ok := st.LoadBalancers[req.id(1).Key()]; ok {
				out = c.find(&renderLB(st, lb).Properties, want)
			}
		})
		if out == nil {
			writeErr(req.w, arm.NotFound(want))
			return
		}
		writeJSON(req.w, 200, out)
	}
}

// byID returns the element of list whose id is want (case-insensitively),
// nil when there is none.
func byID[T any](list []T, want string, id func(*T) string) any {
	for i := range list {
		if arm.EqualIDs(id(&list[i]), want) {
			return &list[i]
		}
	}
	return nil
}

// lbHealth serves GET .../loadBalancers/{name}/health (emulator only): rules,
// backends, probe state and connections.
func (s *Server) lbHealth(req *request) {
	id := req.id(1)
	var exists bool
	s.Store.View(func(st *model.State) { _, exists = st.LoadBalancers[id.Key()] })
	if !exists {
		writeErr(req.w, arm.NotFound(id.String()))
		return
	}
	var h any = map[string]any{}
	if v := s.Runtime.LoadBalancerHealth(id.Key()); v != nil {
		h = v
	}
	writeJSON(req.w, 200, h)
}

// genericTypes are stored without being acted on.
var genericTypes = map[string]bool{
	"microsoft.network/networksecuritygroups": true,
	"microsoft.storage/storageaccounts":       true,
	"microsoft.insights/autoscalesettings":    true,
	"microsoft.compute/availabilitysets":      true,
}

// genericID is the id in the path when its type is stored without being
// acted on; otherwise it answers InvalidResourceType.
func genericID(req *request) (arm.ID, bool) {
	id := req.id(1)
	if typ := strings.ToLower(id.Type()); !genericTypes[typ] {
		writeErr(req.w, unservedType(typ))
		return id, false
	}
	return id, true
}

// getGeneric serves GET .../providers/{ns}/{type}/{name} of genericTypes.
func (s *Server) getGeneric(req *request) {
	id, ok := genericID(req)
	if !ok {
		return
	}
	var out any
	s.Store.View(func(st *model.State) {
		if g, ok := st.Generic[id.Key()]; ok {
			out = copyOf(g)
		}
	})
	if out == nil {
		writeErr(req.w, arm.NotFound(id.String()))
		return
	}
	writeJSON(req.w, 200, out)
}

// putGeneric serves PUT .../providers/{ns}/{type}/{name} of genericTypes.
func (s *Server) putGeneric(req *request) {
	id, ok := genericID(req)
	if !ok {
		return
	}
	s.put(req, id.Key(), func(st *model.State) (bool, *arm.Error) {
		_, c, e := st.PutGeneric(id, req.body)
		return c, e
	}, func(st *model.State) any { return copyOf(st.Generic[id.Key()]) })
}

// deleteGeneric serves DELETE .../providers/{ns}/{type}/{name} of genericTypes.
func (s *Server) deleteGeneric(req *request) {
	if _, ok := genericID(req); ok {
		s.deleteResource(req)
	}
}

// listKeys serves POST .../storageAccounts/{name}/listKeys.
func (s *Server) listKeys(req *request) {
	id := req.id(1)
	var exists bool
	s.Store.View(func(st *model.State) { _, exists = st.Generic[id.Key()] })
	if !exists {
		writeErr(req.w, arm.NotFound(id.String()))
		return
	}
	k1, k2 := model.StorageKey(id.String(), 1), model.StorageKey(id.String(), 2)
	// Storage API versions before 2016-01-01 answer {key1, key2};
	// templates of that age read listKeys(...).key1.
	if v := req.r.URL.Query().Get("api-version"); v < "2016-01-01" {
		writeJSON(req.w, 200, map[string]any{"key1": k1, "key2": k2})
		return
	}
	writeJSON(req.w, 200, map[string]any{"keys": []map[string]any{
		{"keyName": "key1", "value": k1, "permissions": "FULL"},
		{"keyName": "key2", "value": k2, "permissions": "FULL"},
	}})
}
