package api

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// getSubscription serves GET /subscriptions/{sub}.
func (s *Server) getSubscription(req *request) {
	cfg := s.config()
	writeJSON(req.w, 200, map[string]any{
		"id":             "/subscriptions/" + cfg.Subscription,
		"subscriptionId": cfg.Subscription,
		"displayName":    "vmss emulator",
		"state":          "Enabled",
		"tenantId":       "00000000-0000-0000-0000-000000000000",
	})
}

// listProviders serves GET /subscriptions/{sub}/providers.
func (s *Server) listProviders(req *request) {
	var out []map[string]any
	for ns, types := range map[string][]string{
		"Microsoft.Compute":   {"virtualMachineScaleSets", "virtualMachines", "availabilitySets"},
		"Microsoft.Network":   {"virtualNetworks", "publicIPAddresses", "loadBalancers", "networkInterfaces", "networkSecurityGroups"},
		"Microsoft.Storage":   {"storageAccounts"},
		"Microsoft.Insights":  {"autoscaleSettings"},
		"Microsoft.Resources": {"deployments", "resourceGroups"},
	} {
		var rts []map[string]any
		for _, t := range types {
			rts = append(rts, map[string]any{"resourceType": t, "apiVersions": []string{"2024-03-01", "2023-09-01", "2016-03-30"}})
		}
		out = append(out, map[string]any{"namespace": ns, "registrationState": "Registered", "resourceTypes": rts})
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

// opStatus serves GET .../providers/{ns}/locations/{loc}/operations/{op}.
func (s *Server) opStatus(req *request) {
	opID := req.r.PathValue("op")
	v, ok := s.ops.Load(opID)
	if !ok {
		writeErr(req.w, arm.Errorf(404, "OperationNotFound", opID, "No operation %s (operations are kept while the daemon runs).", opID))
		return
	}
	op := v.(*operation)
	status, errBody := "InProgress", (*arm.Error)(nil)
	if s.Runtime.Applied() >= op.Seq {
		pending, err := s.pending(op.Key)
		if !pending {
			status = "Succeeded"
			if err != nil {
				status = "Failed"
				errBody = &arm.Error{Code: "OperationFailed", Message: err.Error(), Target: op.Key}
				var ae *arm.Error
				if errors.As(err, &ae) {
					errBody = ae
				}
			}
		}
	}
	body := map[string]any{
		"name":      op.ID,
		"status":    status,
		"startTime": op.Started.UTC().Format(time.RFC3339Nano),
	}
	if status != "InProgress" {
		op.mu.Lock()
		if op.ended.IsZero() {
			op.ended = time.Now()
		}
		body["endTime"] = op.ended.UTC().Format(time.RFC3339Nano)
		op.mu.Unlock()
	}
	if errBody != nil {
		body["error"] = errBody
	}
	writeJSON(req.w, 200, body)
}

func (s *Server) findGroup(name string) any {
	var out any
	s.Store.View(func(st *model.State) {
		if g, ok := st.ResourceGroups[strings.ToLower(name)]; ok {
			out = copyOf(g)
		}
	})
	return out
}

func groupNotFound(name string) *arm.Error {
	return arm.Errorf(404, "ResourceGroupNotFound", name, "Resource group '%s' could not be found.", name)
}

// getGroup serves GET .../resourceGroups/{rg}.
func (s *Server) getGroup(req *request) {
	out := s.findGroup(req.group)
	if out == nil {
		writeErr(req.w, groupNotFound(req.group))
		return
	}
	writeJSON(req.w, 200, out)
}

// groupExists serves HEAD .../resourceGroups/{rg} (az group exists).
func (s *Server) groupExists(req *request) {
	if s.findGroup(req.group) == nil {
		req.w.WriteHeader(http.StatusNotFound)
		return
	}
	req.w.WriteHeader(http.StatusNoContent)
}

// putGroup serves PUT .../resourceGroups/{rg}.
func (s *Server) putGroup(req *request) {
	var body struct {
		Location string            `json:"location"`
		Tags     map[string]string `json:"tags"`
	}
	if len(req.body) > 0 {
		if err := json.Unmarshal(req.body, &body); err != nil {
			writeErr(req.w, invalidContent(err))
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
	writeJSON(req.w, createdStatus(created), s.findGroup(req.group))
}

// deleteGroup serves DELETE .../resourceGroups/{rg}.
func (s *Server) deleteGroup(req *request) {
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
		writeErr(req.w, groupNotFound(req.group))
		return
	}
	s.startOp(req, "group:"+strings.ToLower(req.group), seq, true)
	req.w.WriteHeader(http.StatusAccepted)
}

// listGroups serves GET /subscriptions/{sub}/resourceGroups.
func (s *Server) listGroups(req *request) {
	var out []any
	s.Store.View(func(st *model.State) {
		for _, k := range slices.Sorted(maps.Keys(st.ResourceGroups)) {
			out = append(out, copyOf(st.ResourceGroups[k]))
		}
	})
	writeJSON(req.w, 200, map[string]any{"value": nonNil(out)})
}

// listType serves GET .../providers/{ns}/{type}: every resource of a type, in
// a group or the subscription.
func (s *Server) listType(req *request) {
	typ := req.r.PathValue("ns") + "/" + req.r.PathValue("type")
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
