package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// network serves VNETs, public IPs, load balancers and NICs.
func (s *Server) network(req *request, typ string) {
	id := req.id(1)
	key := id.Key()
	if req.action != "" {
		if typ == "microsoft.network/loadbalancers" && strings.EqualFold(req.action, "health") && req.r.Method == http.MethodGet {
			var exists bool
			s.Store.View(func(st *model.State) { _, exists = st.LoadBalancers[key] })
			if !exists {
				writeErr(req.w, arm.NotFound(id.String()))
				return
			}
			var h any = map[string]any{}
			if v := s.Runtime.LoadBalancerHealth(key); v != nil {
				h = v
			}
			writeJSON(req.w, 200, h)
			return
		}
		notFoundPath(req)
		return
	}
	switch req.r.Method {
	case http.MethodGet:
		var out any
		s.Store.View(func(st *model.State) { out = renderNetwork(st, typ, key) })
		if out == nil {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		writeJSON(req.w, 200, out)
	case http.MethodPut, http.MethodPatch:
		body := req.body
		if req.r.Method == http.MethodPatch {
			// Network resources take only tags by PATCH, as in Azure.
			var patch struct {
				Tags map[string]string `json:"tags"`
			}
			if err := json.Unmarshal(body, &patch); err != nil {
				writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err))
				return
			}
			var cur []byte
			s.Store.View(func(st *model.State) {
				if v := renderNetwork(st, typ, key); v != nil {
					cur, _ = json.Marshal(v)
				}
			})
			if cur == nil {
				writeErr(req.w, arm.NotFound(id.String()))
				return
			}
			var doc map[string]any
			_ = json.Unmarshal(cur, &doc)
			doc["tags"] = patch.Tags
			body, _ = json.Marshal(doc)
		}
		s.put(req, key, func(st *model.State) (created bool, e *arm.Error) {
			switch typ {
			case "microsoft.network/virtualnetworks":
				_, created, e = st.PutVNet(id, body)
			case "microsoft.network/publicipaddresses":
				_, created, e = st.PutPublicIP(id, body)
			case "microsoft.network/loadbalancers":
				_, created, e = st.PutLoadBalancer(id, body)
			case "microsoft.network/networkinterfaces":
				_, created, e = st.PutNIC(id, body)
			}
			return created, e
		}, func(st *model.State) any { return renderNetwork(st, typ, key) })
	case http.MethodDelete:
		s.deleteResource(req, id)
	default:
		methodNotAllowed(req)
	}
}

func (s *Server) deleteResource(req *request, id arm.ID) {
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

func renderNetwork(st *model.State, typ, key string) any {
	switch typ {
	case "microsoft.network/virtualnetworks":
		if v, ok := st.VNets[key]; ok {
			return copyOf(v)
		}
	case "microsoft.network/publicipaddresses":
		if v, ok := st.PublicIPs[key]; ok {
			return renderPIP(st, v)
		}
	case "microsoft.network/loadbalancers":
		if v, ok := st.LoadBalancers[key]; ok {
			return renderLB(st, v)
		}
	case "microsoft.network/networkinterfaces":
		if v, ok := st.NICs[key]; ok {
			return renderNIC(st, v)
		}
	}
	return nil
}

// subnet serves .../virtualNetworks/{vnet}/subnets/{name} by editing the VNET.
func (s *Server) subnet(req *request) {
	vid := req.id(1)
	name := req.rest[3]
	find := func(vn *arm.VirtualNetwork) int {
		for i, sn := range vn.Properties.Subnets {
			if strings.EqualFold(sn.Name, name) {
				return i
			}
		}
		return -1
	}
	switch req.r.Method {
	case http.MethodGet:
		var out any
		s.Store.View(func(st *model.State) {
			if vn, ok := st.VNets[vid.Key()]; ok {
				if i := find(vn); i >= 0 {
					out = copyOf(&vn.Properties.Subnets[i])
				}
			}
		})
		if out == nil {
			writeErr(req.w, arm.NotFound(vid.String()+"/subnets/"+name))
			return
		}
		writeJSON(req.w, 200, out)
	case http.MethodPut, http.MethodDelete:
		var sn arm.Subnet
		if req.r.Method == http.MethodPut {
			if err := json.Unmarshal(req.body, &sn); err != nil {
				writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err))
				return
			}
			sn.Name = name
		}
		var created bool
		seq, ok := s.update(req, func(st *model.State) *arm.Error {
			vn, ok := st.VNets[vid.Key()]
			if !ok {
				return arm.NotFound(vid.String())
			}
			c := copyOf(vn)
			i := find(c)
			if req.r.Method == http.MethodDelete {
				if i < 0 {
					return nil
				}
				c.Properties.Subnets = append(c.Properties.Subnets[:i], c.Properties.Subnets[i+1:]...)
			} else if i < 0 {
				created = true
				c.Properties.Subnets = append(c.Properties.Subnets, sn)
			} else {
				c.Properties.Subnets[i] = sn
			}
			body, _ := json.Marshal(c)
			_, _, e := st.PutVNet(vid, body)
			return e
		})
		if !ok {
			return
		}
		s.startOp(req, vid.Key(), seq, false)
		if req.r.Method == http.MethodDelete {
			req.w.WriteHeader(http.StatusOK)
			return
		}
		var out any
		s.Store.View(func(st *model.State) {
			vn := st.VNets[vid.Key()]
			out = copyOf(&vn.Properties.Subnets[find(vn)])
		})
		writeJSON(req.w, map[bool]int{true: 201, false: 200}[created], out)
	default:
		methodNotAllowed(req)
	}
}

// lbChild serves GET of a load balancer's sub-resources.
func (s *Server) lbChild(req *request) {
	if req.r.Method != http.MethodGet || req.action != "" {
		methodNotAllowed(req)
		return
	}
	lbID := req.id(1)
	kind := strings.ToLower(req.rest[2])
	want := req.id(2).String()
	var out any
	s.Store.View(func(st *model.State) {
		lb, ok := st.LoadBalancers[lbID.Key()]
		if !ok {
			return
		}
		p := renderLB(st, lb).Properties
		switch kind {
		case "frontendipconfigurations":
			out = byID(p.FrontendIPConfigurations, want, func(x *arm.FrontendIPConfiguration) string { return x.ID })
		case "backendaddresspools":
			out = byID(p.BackendAddressPools, want, func(x *arm.BackendAddressPool) string { return x.ID })
		case "loadbalancingrules":
			out = byID(p.LoadBalancingRules, want, func(x *arm.LoadBalancingRule) string { return x.ID })
		case "probes":
			out = byID(p.Probes, want, func(x *arm.Probe) string { return x.ID })
		case "inboundnatrules":
			out = byID(p.InboundNatRules, want, func(x *arm.InboundNatRule) string { return x.ID })
		case "inboundnatpools":
			out = byID(p.InboundNatPools, want, func(x *arm.InboundNatPool) string { return x.ID })
		}
	})
	if out == nil {
		writeErr(req.w, arm.NotFound(want))
		return
	}
	writeJSON(req.w, 200, out)
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

// generic serves resources stored without being acted on.
func (s *Server) generic(req *request) {
	id := req.id(1)
	if req.action != "" {
		if strings.EqualFold(req.action, "listKeys") && req.r.Method == http.MethodPost && id.IsType(arm.TypeStorageAccount) {
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
			return
		}
		notFoundPath(req)
		return
	}
	switch req.r.Method {
	case http.MethodGet:
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
	case http.MethodPut:
		s.put(req, id.Key(), func(st *model.State) (bool, *arm.Error) {
			_, c, e := st.PutGeneric(id, req.body)
			return c, e
		}, func(st *model.State) any { return copyOf(st.Generic[id.Key()]) })
	case http.MethodDelete:
		s.deleteResource(req, id)
	default:
		methodNotAllowed(req)
	}
}

// group serves .../resourceGroups/{name}.
func (s *Server) group(req *request) {
	switch req.r.Method {
	case http.MethodGet, http.MethodHead:
		var out any
		s.Store.View(func(st *model.State) {
			if g, ok := st.ResourceGroups[strings.ToLower(req.group)]; ok {
				out = copyOf(g)
			}
		})
		if out == nil {
			if req.r.Method == http.MethodHead {
				req.w.WriteHeader(http.StatusNotFound)
				return
			}
			writeErr(req.w, arm.Errorf(404, "ResourceGroupNotFound", req.group, "Resource group '%s' could not be found.", req.group))
			return
		}
		if req.r.Method == http.MethodHead {
			req.w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(req.w, 200, out)
	case http.MethodPut:
		var body struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
		}
		if len(req.body) > 0 {
			if err := json.Unmarshal(req.body, &body); err != nil {
				writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err))
				return
			}
		}
		var created bool
		if _, ok := s.update(req, func(st *model.State) *arm.Error {
			_, c, e := st.PutGroup(req.sub, req.group, body.Location, body.Tags)
			created = c
			return e
		}); !ok {
			return
		}
		var out any
		s.Store.View(func(st *model.State) { out = copyOf(st.ResourceGroups[strings.ToLower(req.group)]) })
		writeJSON(req.w, map[bool]int{true: 201, false: 200}[created], out)
	case http.MethodDelete:
		var found bool
		seq, ok := s.update(req, func(st *model.State) *arm.Error {
			f, e := st.DeleteGroup(req.group)
			found = f
			return e
		})
		if !ok {
			return
		}
		if !found {
			writeErr(req.w, arm.Errorf(404, "ResourceGroupNotFound", req.group, "Resource group '%s' could not be found.", req.group))
			return
		}
		s.startOp(req, "group:"+strings.ToLower(req.group), seq, true)
		req.w.WriteHeader(http.StatusAccepted)
	default:
		methodNotAllowed(req)
	}
}

func (s *Server) listGroups(req *request) {
	if req.r.Method != http.MethodGet {
		methodNotAllowed(req)
		return
	}
	var out []any
	s.Store.View(func(st *model.State) {
		var keys []string
		for k := range st.ResourceGroups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, copyOf(st.ResourceGroups[k]))
		}
	})
	writeJSON(req.w, 200, map[string]any{"value": nonNil(out)})
}

// listType serves GET of every resource of a type, in a group or the subscription.
func (s *Server) listType(req *request, typ string) {
	if req.r.Method != http.MethodGet {
		methodNotAllowed(req)
		return
	}
	var out []any
	s.Store.View(func(st *model.State) {
		for _, item := range s.all(st) {
			if strings.EqualFold(item.typ, typ) && (req.group == "" || strings.EqualFold(item.group, req.group)) {
				out = append(out, item.render())
			}
		}
	})
	writeJSON(req.w, 200, map[string]any{"value": nonNil(out)})
}

func (s *Server) listGroupResources(req *request) {
	var out []any
	s.Store.View(func(st *model.State) {
		if _, ok := st.ResourceGroups[strings.ToLower(req.group)]; !ok {
			return
		}
		for _, item := range s.all(st) {
			if strings.EqualFold(item.group, req.group) {
				out = append(out, map[string]any{"id": item.id, "name": item.name, "type": item.typ})
			}
		}
	})
	writeJSON(req.w, 200, map[string]any{"value": nonNil(out)})
}

type listed struct {
	id, name, typ, group string
	render               func() any
}

// all lists every resource in the state, sorted by id.
func (s *Server) all(st *model.State) []listed {
	var out []listed
	add := func(id string, r func() any) {
		pid, err := arm.ParseID(id)
		if err != nil {
			return
		}
		out = append(out, listed{id: id, name: pid.Name(), typ: pid.Type(), group: pid.ResourceGroup, render: r})
	}
	for _, v := range st.VNets {
		v := v
		add(v.ID, func() any { return copyOf(v) })
	}
	for _, v := range st.PublicIPs {
		v := v
		add(v.ID, func() any { return renderPIP(st, v) })
	}
	for _, v := range st.LoadBalancers {
		v := v
		add(v.ID, func() any { return renderLB(st, v) })
	}
	for _, v := range st.NICs {
		v := v
		add(v.ID, func() any { return renderNIC(st, v) })
	}
	for _, v := range st.VMs {
		v := v
		add(v.Model.ID, func() any { return s.renderVM(st, v, false) })
	}
	for _, v := range st.ScaleSets {
		v := v
		add(v.Model.ID, func() any { return s.renderScaleSet(st, v) })
	}
	for _, v := range st.Generic {
		v := v
		add(v.ID, func() any { return copyOf(v) })
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].id) < strings.ToLower(out[j].id) })
	return out
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// listDeployments serves GET .../resourceGroups/{rg}/providers/Microsoft.Resources/deployments.
func (s *Server) listDeployments(req *request) {
	if req.r.Method != http.MethodGet {
		methodNotAllowed(req)
		return
	}
	if s.Deployer == nil {
		writeJSON(req.w, 200, map[string]any{"value": []any{}})
		return
	}
	out, err := s.Deployer.List(req.r.Context(), req.group)
	if err != nil {
		writeErr(req.w, arm.AsError(err))
		return
	}
	writeJSON(req.w, 200, out)
}

// deployment serves .../Microsoft.Resources/deployments/{name}[/{action}].
func (s *Server) deployment(req *request) {
	if s.Deployer == nil {
		writeErr(req.w, arm.Errorf(501, "NotImplemented", "deployments", "This daemon does not serve template deployments."))
		return
	}
	id := req.id(1)
	ctx := req.r.Context()
	var out any
	var err error
	status := 200
	switch {
	case req.action == "" && req.r.Method == http.MethodGet:
		out, err = s.Deployer.Get(ctx, id)
	case req.action == "" && req.r.Method == http.MethodPut:
		out, err = s.Deployer.Put(ctx, id, req.body)
		if err == nil {
			var seq int64
			s.Store.View(func(st *model.State) { seq = st.Seq })
			s.startOp(req, id.Key(), seq, false)
			status = 201
		}
	case req.action == "" && req.r.Method == http.MethodDelete:
		s.deleteResource(req, id)
		return
	case strings.EqualFold(req.action, "whatIf") && req.r.Method == http.MethodPost:
		out, err = s.Deployer.WhatIf(ctx, id, req.body)
	case strings.EqualFold(req.action, "operations") && req.r.Method == http.MethodGet:
		out, err = s.Deployer.Operations(ctx, id)
	default:
		methodNotAllowed(req)
		return
	}
	if err != nil {
		writeErr(req.w, arm.AsError(err))
		return
	}
	writeJSON(req.w, status, out)
}
