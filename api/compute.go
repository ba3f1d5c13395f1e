package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// scaleSet serves .../virtualMachineScaleSets/{name}[/{action}].
func (s *Server) scaleSet(req *request) {
	id := req.id(1)
	key := id.Key()
	switch {
	case req.action == "" && req.r.Method == http.MethodGet:
		var out any
		var e *arm.Error
		s.Store.View(func(st *model.State) {
			ss, err := st.ScaleSetByID(id)
			if err != nil {
				if x, ok := st.ScaleSets[key]; ok {
					out = s.renderScaleSet(st, x) // still deleting: show it
					return
				}
				e = err
				return
			}
			out = s.renderScaleSet(st, ss)
		})
		if e != nil {
			writeErr(req.w, e)
			return
		}
		writeJSON(req.w, 200, out)
	case req.action == "" && (req.r.Method == http.MethodPut || req.r.Method == http.MethodPatch):
		s.put(req, key, func(st *model.State) (bool, *arm.Error) {
			_, c, e := st.PutScaleSet(id, req.body, req.r.Method == http.MethodPatch)
			return c, e
		}, func(st *model.State) any { return s.renderScaleSet(st, st.ScaleSets[key]) })
	case req.action == "" && req.r.Method == http.MethodDelete:
		s.deleteResource(req, id)
	case strings.EqualFold(req.action, "virtualMachines") && req.r.Method == http.MethodGet:
		s.listInstances(req, id)
	case strings.EqualFold(req.action, "instanceView") && req.r.Method == http.MethodGet:
		s.scaleSetInstanceView(req, id)
	case req.r.Method == http.MethodPost:
		s.scaleSetAction(req, id)
	default:
		methodNotAllowed(req)
	}
}

func (s *Server) listInstances(req *request, id arm.ID) {
	view := strings.Contains(strings.ToLower(req.r.URL.Query().Get("$expand")), "instanceview")
	var out []*arm.ScaleSetVM
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, ok := st.ScaleSets[id.Key()]
		if !ok {
			e = arm.NotFound(id.String())
			return
		}
		for _, in := range ss.SortedInstances() {
			out = append(out, s.renderInstance(st, ss, in, view))
		}
	})
	if e != nil {
		writeErr(req.w, e)
		return
	}
	if out == nil {
		out = []*arm.ScaleSetVM{}
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

func (s *Server) scaleSetInstanceView(req *request, id arm.ID) {
	var out any
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, err := st.ScaleSetByID(id)
		if err != nil {
			e = err
			return
		}
		counts := map[string]int{}
		for _, in := range ss.Live() {
			rt := s.Runtime.Instance(in.Netns)
			counts["PowerState/"+rt.PowerState]++
			counts["ProvisioningState/"+strings.ToLower(rt.ProvisioningState)]++
		}
		var sum []map[string]any
		for code, n := range counts {
			sum = append(sum, map[string]any{"code": code, "count": n})
		}
		out = map[string]any{
			"virtualMachine":   map[string]any{"statusesSummary": sum},
			"statuses":         []arm.InstanceViewStatus{provStatus(s.renderScaleSet(st, ss).Properties.ProvisioningState, "")},
			"faultDomainsDown": ss.FaultDomainsDown,
		}
	})
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, out)
}

// scaleSetAction serves POST .../virtualMachineScaleSets/{name}/{action}.
func (s *Server) scaleSetAction(req *request, id arm.ID) {
	var ids arm.InstanceIDs
	if len(strings.TrimSpace(string(req.body))) > 0 {
		if err := json.Unmarshal(req.body, &ids); err != nil {
			writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "instanceIds", "The request body must be {\"instanceIds\": [\"0\", ...]}: %v.", err))
			return
		}
	}
	action := strings.ToLower(req.action)
	seq, ok := s.update(req, func(st *model.State) *arm.Error {
		var e *arm.Error
		switch action {
		case "delete":
			_, e = st.DeleteInstances(id, ids.InstanceIDs)
		case "start":
			_, e = st.SetPower(id, ids.InstanceIDs, model.PowerRunning)
		case "poweroff":
			_, e = st.SetPower(id, ids.InstanceIDs, model.PowerStopped)
		case "deallocate":
			_, e = st.SetPower(id, ids.InstanceIDs, model.PowerDeallocated)
		case "restart":
			_, e = st.Restart(id, ids.InstanceIDs)
		case "reimage", "reimageall":
			_, e = st.Reimage(id, ids.InstanceIDs)
		case "manualupgrade":
			_, e = st.UpgradeInstances(id, ids.InstanceIDs)
		case "injectfault":
			var f struct {
				FaultDomain *int   `json:"faultDomain"`
				State       string `json:"state"`
			}
			if err := json.Unmarshal(req.body, &f); err != nil || f.FaultDomain == nil {
				return arm.BadRequest("faultDomain", "injectFault takes {\"faultDomain\": N, \"state\": \"down\"|\"up\"}.")
			}
			switch strings.ToLower(f.State) {
			case "down":
				e = st.SetFaultDomain(id, *f.FaultDomain, true)
			case "up":
				e = st.SetFaultDomain(id, *f.FaultDomain, false)
			default:
				return arm.BadRequest("state", "state must be down or up, got %q.", f.State)
			}
		default:
			return arm.Errorf(404, "InvalidResourceType", req.action,
				"Scale sets have no action %q. Actions: delete, start, powerOff, restart, reimage, deallocate, manualUpgrade, injectFault.", req.action)
		}
		return e
	})
	if !ok {
		return
	}
	s.startOp(req, id.Key(), seq, false)
	req.w.WriteHeader(http.StatusAccepted)
}

// scaleSetVM serves .../virtualMachineScaleSets/{name}/virtualMachines/{id}[/{action}].
func (s *Server) scaleSetVM(req *request) {
	setID := req.id(1)
	instID := req.rest[3]
	switch {
	case req.action == "" && req.r.Method == http.MethodGet, strings.EqualFold(req.action, "instanceView") && req.r.Method == http.MethodGet:
		onlyView := req.action != ""
		view := onlyView || strings.Contains(strings.ToLower(req.r.URL.Query().Get("$expand")), "instanceview")
		var out any
		var e *arm.Error
		s.Store.View(func(st *model.State) {
			ss, ok := st.ScaleSets[setID.Key()]
			if !ok {
				e = arm.NotFound(setID.String())
				return
			}
			in, ok := ss.Instances[instID]
			if !ok {
				e = arm.NotFound(setID.String() + "/virtualMachines/" + instID)
				return
			}
			vm := s.renderInstance(st, ss, in, view)
			if onlyView {
				out = vm.Properties.InstanceView
				return
			}
			out = vm
		})
		if e != nil {
			writeErr(req.w, e)
			return
		}
		writeJSON(req.w, 200, out)
	case req.action == "" && req.r.Method == http.MethodDelete:
		seq, ok := s.update(req, func(st *model.State) *arm.Error {
			_, e := st.DeleteInstances(setID, []string{instID})
			return e
		})
		if ok {
			s.startOp(req, setID.Key(), seq, false)
			req.w.WriteHeader(http.StatusAccepted)
		}
	case req.action == "" && (req.r.Method == http.MethodPut || req.r.Method == http.MethodPatch):
		// Only the protection policy of an instance can change.
		var body struct {
			Properties struct {
				ProtectionPolicy *struct {
					ProtectFromScaleIn         *arm.Bool `json:"protectFromScaleIn"`
					ProtectFromScaleSetActions *arm.Bool `json:"protectFromScaleSetActions"`
				} `json:"protectionPolicy"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(req.body, &body); err != nil {
			writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err))
			return
		}
		pp := body.Properties.ProtectionPolicy
		if pp == nil {
			writeErr(req.w, arm.BadRequest("properties.protectionPolicy", "Only properties.protectionPolicy of a scale-set instance can be updated."))
			return
		}
		var a, b *bool
		if pp.ProtectFromScaleIn != nil {
			v := bool(*pp.ProtectFromScaleIn)
			a = &v
		}
		if pp.ProtectFromScaleSetActions != nil {
			v := bool(*pp.ProtectFromScaleSetActions)
			b = &v
		}
		if _, ok := s.update(req, func(st *model.State) *arm.Error {
			_, e := st.SetProtection(setID, instID, a, b)
			return e
		}); !ok {
			return
		}
		var out any
		s.Store.View(func(st *model.State) {
			ss := st.ScaleSets[setID.Key()]
			out = s.renderInstance(st, ss, ss.Instances[instID], false)
		})
		writeJSON(req.w, 200, out)
	case strings.EqualFold(req.action, "runCommand") && req.r.Method == http.MethodPost:
		var netns string
		s.Store.View(func(st *model.State) {
			if ss, ok := st.ScaleSets[setID.Key()]; ok {
				if in, ok := ss.Instances[instID]; ok && !in.Deleting {
					netns = in.Netns
				}
			}
		})
		if netns == "" {
			writeErr(req.w, arm.NotFound(setID.String()+"/virtualMachines/"+instID))
			return
		}
		s.runCommand(req, netns)
	case req.r.Method == http.MethodPost:
		// Per-instance actions are the set's actions for one id.
		req.body, _ = json.Marshal(arm.InstanceIDs{InstanceIDs: []string{instID}})
		s.scaleSetAction(req, setID)
	default:
		methodNotAllowed(req)
	}
}

// vm serves .../virtualMachines/{name}[/{action}].
func (s *Server) vm(req *request) {
	id := req.id(1)
	key := id.Key()
	switch {
	case req.r.Method == http.MethodGet && (req.action == "" || strings.EqualFold(req.action, "instanceView")):
		view := req.action != "" || strings.Contains(strings.ToLower(req.r.URL.Query().Get("$expand")), "instanceview")
		var out any
		s.Store.View(func(st *model.State) {
			if vm, ok := st.VMs[key]; ok {
				r := s.renderVM(st, vm, view)
				if req.action != "" {
					out = r.Properties.InstanceView
				} else {
					out = r
				}
			}
		})
		if out == nil {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		writeJSON(req.w, 200, out)
	case req.action == "" && (req.r.Method == http.MethodPut || req.r.Method == http.MethodPatch):
		s.put(req, key, func(st *model.State) (bool, *arm.Error) {
			_, c, e := st.PutVM(id, req.body, req.r.Method == http.MethodPatch)
			return c, e
		}, func(st *model.State) any { return s.renderVM(st, st.VMs[key], false) })
	case req.action == "" && req.r.Method == http.MethodDelete:
		s.deleteResource(req, id)
	case strings.EqualFold(req.action, "runCommand") && req.r.Method == http.MethodPost:
		var netns string
		s.Store.View(func(st *model.State) {
			if vm, ok := st.VMs[key]; ok && !vm.Deleting {
				netns = vm.Netns
			}
		})
		if netns == "" {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		s.runCommand(req, netns)
	case req.r.Method == http.MethodPost:
		seq, ok := s.update(req, func(st *model.State) *arm.Error { return st.VMAction(id, req.action) })
		if ok {
			s.startOp(req, key, seq, false)
			req.w.WriteHeader(http.StatusAccepted)
		}
	default:
		methodNotAllowed(req)
	}
}

// runCommand serves the RunShellScript command of az vm/vmss run-command
// invoke: {"commandId": "RunShellScript", "script": ["line", ...]}. It answers
// synchronously with Azure's shape: value[0].message holds stdout and stderr.
func (s *Server) runCommand(req *request, netns string) {
	var body struct {
		CommandID string   `json:"commandId"`
		Script    []string `json:"script"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request body must be {\"commandId\": \"RunShellScript\", \"script\": [...]}: %v.", err))
		return
	}
	if !strings.EqualFold(body.CommandID, "RunShellScript") {
		writeErr(req.w, arm.BadRequest("commandId", "Command id %q is not available on Linux instances here: use RunShellScript.", body.CommandID))
		return
	}
	stdout, stderr, code, err := s.Runtime.RunCommand(req.r.Context(), netns, strings.Join(body.Script, "\n"))
	if err != nil {
		writeErr(req.w, arm.Errorf(409, "OperationNotAllowed", netns, "Could not run the command: %v.", err))
		return
	}
	state := "succeeded"
	if code != 0 {
		state = "failed"
	}
	writeJSON(req.w, 200, map[string]any{"value": []map[string]any{{
		"code":          "ProvisioningState/" + state,
		"level":         "Info",
		"displayStatus": "Provisioning " + state,
		"message":       "Enable " + state + ": \n[stdout]\n" + stdout + "\n[stderr]\n" + stderr,
		"exitCode":      code,
		"stdout":        stdout,
		"stderr":        stderr,
	}}})
}
