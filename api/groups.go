package api

import (
	"encoding/json"
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
	writeJSON(req.w, 200, s.subscriptionBody())
}

// opStatus serves GET .../providers/{ns}/locations/{loc}/operations/{op}.
func (s *Server) opStatus(req *request) {
	opID := req.r.PathValue("op")
	v, ok := s.ops.Load(opID)
	if !ok {
		writeErr(req.w, arm.Errorf(404, "OperationNotFound", opID, "No operation %s (operations are kept while the daemon runs, for an hour after they finish).", opID))
		return
	}
	op := v.(*operation)
	status, errBody, ended := s.opResult(op)
	body := map[string]any{
		"name":      op.ID,
		"status":    status,
		"startTime": op.Started.UTC().Format(time.RFC3339Nano),
	}
	if status != "InProgress" {
		body["endTime"] = ended.UTC().Format(time.RFC3339Nano)
	}
	if errBody != nil {
		body["error"] = errBody
	}
	if status == "InProgress" {
		// Pollers wait this long before asking again; without it az waits 30 s.
		req.w.Header().Set("Retry-After", "1")
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
	writePage(s, req, out)
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
	writePage(s, req, out)
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
	writePage(s, req, out)
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
