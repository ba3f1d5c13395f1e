package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// getScaleSet serves GET .../virtualMachineScaleSets/{name}.
func (s *Server) getScaleSet(req *request) {
	id := req.id(1)
	var out any
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, err := st.ScaleSetByID(id)
		if err != nil {
			if x, ok := st.ScaleSets[id.Key()]; ok {
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
}

// putScaleSet serves PUT and PATCH .../virtualMachineScaleSets/{name}.
func (s *Server) putScaleSet(req *request) {
	id := req.id(1)
	key := id.Key()
	s.put(req, key, func(st *model.State) (bool, *arm.Error) {
		_, c, e := st.PutScaleSet(id, req.body, req.r.Method == http.MethodPatch)
		return c, e
	}, func(st *model.State) any { return s.renderScaleSet(st, st.ScaleSets[key]) })
}

// listInstances serves GET .../virtualMachineScaleSets/{name}/virtualMachines.
func (s *Server) listInstances(req *request) {
	id := req.id(1)
	view := expandsInstanceView(req)
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
	writePage(s, req, out)
}

func expandsInstanceView(req *request) bool {
	return strings.Contains(strings.ToLower(req.r.URL.Query().Get("$expand")), "instanceview")
}

// scaleSetInstanceView serves GET .../virtualMachineScaleSets/{name}/instanceView.
func (s *Server) scaleSetInstanceView(req *request) {
	id := req.id(1)
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

// instancesAction changes the instances ids of the scale set id.
type instancesAction func(st *model.State, id arm.ID, ids []string) *arm.Error

// setActions are the POST actions of a scale set on its instances: POST
// {set}/{action} with {"instanceIds": [...]} (none: all), and POST
// {set}/virtualMachines/{instance}/{action} for one instance.
var setActions = []struct {
	name string
	do   instancesAction
}{
	{"delete", func(st *model.State, id arm.ID, ids []string) *arm.Error {
		_, e := st.DeleteInstances(id, ids)
		return e
	}},
	{"start", power(model.PowerRunning)},
	{"powerOff", power(model.PowerStopped)},
	{"deallocate", power(model.PowerDeallocated)},
	{"restart", func(st *model.State, id arm.ID, ids []string) *arm.Error { _, e := st.Restart(id, ids); return e }},
	{"reimage", reimage},
	{"reimageAll", reimage},
	{"manualUpgrade", func(st *model.State, id arm.ID, ids []string) *arm.Error {
		_, e := st.UpgradeInstances(id, ids)
		return e
	}},
}

func power(p string) instancesAction {
	return func(st *model.State, id arm.ID, ids []string) *arm.Error { _, e := st.SetPower(id, ids, p); return e }
}

func reimage(st *model.State, id arm.ID, ids []string) *arm.Error {
	_, e := st.Reimage(id, ids)
	return e
}

// setAction serves POST .../virtualMachineScaleSets/{name}/{action}.
func (s *Server) setAction(do instancesAction) func(*request) {
	return func(req *request) {
		var ids arm.InstanceIDs
		if len(bytes.TrimSpace(req.body)) > 0 {
			if err := json.Unmarshal(req.body, &ids); err != nil {
				writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "instanceIds", "The request body must be {\"instanceIds\": [\"0\", ...]}: %v.", err))
				return
			}
		}
		id := req.id(1)
		s.accept(req, id, func(st *model.State) *arm.Error { return do(st, id, ids.InstanceIDs) })
	}
}

// instanceAction serves POST .../virtualMachines/{instance}/{action}: the
// set's action for one instance.
func (s *Server) instanceAction(do instancesAction) func(*request) {
	return func(req *request) {
		id := req.id(1)
		s.accept(req, id, func(st *model.State) *arm.Error { return do(st, id, []string{req.r.PathValue("instance")}) })
	}
}

// noSetAction answers a POST action scale sets do not have.
func (s *Server) noSetAction(req *request) {
	action := req.r.PathValue("action")
	writeErr(req.w, arm.Errorf(404, "InvalidResourceType", action,
		"Scale sets have no action %q. Actions: delete, start, powerOff, restart, reimage, deallocate, manualUpgrade, injectFault.", action))
}

// injectFault serves POST .../virtualMachineScaleSets/{name}/injectFault
// {"faultDomain": N, "state": "down"|"up"} (emulator only).
func (s *Server) injectFault(req *request) {
	var f struct {
		FaultDomain *int   `json:"faultDomain"`
		State       string `json:"state"`
	}
	if err := json.Unmarshal(req.body, &f); err != nil || f.FaultDomain == nil {
		writeErr(req.w, arm.BadRequest("faultDomain", "injectFault takes {\"faultDomain\": N, \"state\": \"down\"|\"up\"}."))
		return
	}
	down, ok := map[string]bool{"down": true, "up": false}[strings.ToLower(f.State)]
	if !ok {
		writeErr(req.w, arm.BadRequest("state", "state must be down or up, got %q.", f.State))
		return
	}
	id := req.id(1)
	s.accept(req, id, func(st *model.State) *arm.Error { return st.SetFaultDomain(id, *f.FaultDomain, down) })
}

// accept applies a change to the resource id, starts its long-running
// operation and answers 202 Accepted.
func (s *Server) accept(req *request, id arm.ID, f func(st *model.State) *arm.Error) {
	seq, ok := s.update(req, f)
	if !ok {
		return
	}
	s.startOp(req, id.Key(), seq, false)
	req.w.WriteHeader(http.StatusAccepted)
}

// findInstance renders instance {instance} of the set in the path.
func (s *Server) findInstance(req *request, view bool) (*arm.ScaleSetVM, *arm.Error) {
	setID, instID := req.id(1), req.r.PathValue("instance")
	var out *arm.ScaleSetVM
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
		out = s.renderInstance(st, ss, in, view)
	})
	return out, e
}

// getInstance serves GET .../virtualMachineScaleSets/{name}/virtualMachines/{instance}.
func (s *Server) getInstance(req *request) {
	vm, e := s.findInstance(req, expandsInstanceView(req))
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, vm)
}

// getInstanceView serves GET .../virtualMachines/{instance}/instanceView.
func (s *Server) getInstanceView(req *request) {
	vm, e := s.findInstance(req, true)
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, vm.Properties.InstanceView)
}

// deleteInstance serves DELETE .../virtualMachineScaleSets/{name}/virtualMachines/{instance}.
func (s *Server) deleteInstance(req *request) {
	id := req.id(1)
	s.accept(req, id, func(st *model.State) *arm.Error {
		_, e := st.DeleteInstances(id, []string{req.r.PathValue("instance")})
		return e
	})
}

// protectInstance serves PUT and PATCH .../virtualMachines/{instance}: only
// the protection policy of an instance can change.
func (s *Server) protectInstance(req *request) {
	var body struct {
		Properties struct {
			ProtectionPolicy *struct {
				ProtectFromScaleIn         *arm.Bool `json:"protectFromScaleIn"`
				ProtectFromScaleSetActions *arm.Bool `json:"protectFromScaleSetActions"`
			} `json:"protectionPolicy"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		writeErr(req.w, invalidContent(err))
		return
	}
	pp := body.Properties.ProtectionPolicy
	if pp == nil {
		writeErr(req.w, arm.BadRequest("properties.protectionPolicy", "Only properties.protectionPolicy of a scale-set instance can be updated."))
		return
	}
	setID, instID := req.id(1), req.r.PathValue("instance")
	if _, ok := s.update(req, func(st *model.State) *arm.Error {
		_, e := st.SetProtection(setID, instID, boolPtr(pp.ProtectFromScaleIn), boolPtr(pp.ProtectFromScaleSetActions))
		return e
	}); !ok {
		return
	}
	vm, e := s.findInstance(req, false)
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, vm)
}

// instanceRunCommand serves POST .../virtualMachines/{instance}/runCommand.
func (s *Server) instanceRunCommand(req *request) {
	setID, instID := req.id(1), req.r.PathValue("instance")
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
}

// findVM renders the virtual machine in the path; nil when there is none.
func (s *Server) findVM(req *request, view bool) *arm.VirtualMachine {
	var out *arm.VirtualMachine
	s.Store.View(func(st *model.State) {
		if vm, ok := st.VMs[req.id(1).Key()]; ok {
			out = s.renderVM(st, vm, view)
		}
	})
	return out
}

// getVM serves GET .../virtualMachines/{name}.
func (s *Server) getVM(req *request) {
	vm := s.findVM(req, expandsInstanceView(req))
	if vm == nil {
		writeErr(req.w, arm.NotFound(req.id(1).String()))
		return
	}
	writeJSON(req.w, 200, vm)
}

// getVMInstanceView serves GET .../virtualMachines/{name}/instanceView.
func (s *Server) getVMInstanceView(req *request) {
	vm := s.findVM(req, true)
	if vm == nil {
		writeErr(req.w, arm.NotFound(req.id(1).String()))
		return
	}
	writeJSON(req.w, 200, vm.Properties.InstanceView)
}

// putVM serves PUT and PATCH .../virtualMachines/{name}.
func (s *Server) putVM(req *request) {
	id := req.id(1)
	key := id.Key()
	s.put(req, key, func(st *model.State) (bool, *arm.Error) {
		_, c, e := st.PutVM(id, req.body, req.r.Method == http.MethodPatch)
		return c, e
	}, func(st *model.State) any { return s.renderVM(st, st.VMs[key], false) })
}

// vmAction serves POST .../virtualMachines/{name}/{action} (start, powerOff, ...).
func (s *Server) vmAction(req *request) {
	id := req.id(1)
	s.accept(req, id, func(st *model.State) *arm.Error { return st.VMAction(id, req.r.PathValue("action")) })
}

// vmRunCommand serves POST .../virtualMachines/{name}/runCommand.
func (s *Server) vmRunCommand(req *request) {
	id := req.id(1)
	var netns string
	s.Store.View(func(st *model.State) {
		if vm, ok := st.VMs[id.Key()]; ok && !vm.Deleting {
			netns = vm.Netns
		}
	})
	if netns == "" {
		writeErr(req.w, arm.NotFound(id.String()))
		return
	}
	s.runCommand(req, netns)
}

// runCommandParam is one of a run command's parameters.
type runCommandParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// runCommandScript is the shell script that runs script with the command's
// parameters as positional parameters ($1, $2, ... in order, as az's
// `--scripts 'echo $1 $2' --parameters hello world` expects). They are set
// with `set --` in the script itself, which reaches the shell on a pipe, so
// values stay out of argv.
func runCommandScript(script []string, params []runCommandParam) string {
	var b strings.Builder
	if len(params) > 0 {
		b.WriteString("set --")
		for _, p := range params {
			b.WriteString(" '" + strings.ReplaceAll(p.Value, "'", `'\''`) + "'")
		}
		b.WriteString("\n")
	}
	b.WriteString(strings.Join(script, "\n"))
	return b.String()
}

// runCommand serves the RunShellScript command of az vm/vmss run-command
// invoke: {"commandId": "RunShellScript", "script": ["line", ...],
// "parameters": [{"name", "value"}, ...]}. It answers synchronously with
// Azure's shape: value[0].message holds stdout and stderr.
func (s *Server) runCommand(req *request, netns string) {
	var body struct {
		CommandID  string            `json:"commandId"`
		Script     []string          `json:"script"`
		Parameters []runCommandParam `json:"parameters"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", "", "The request body must be {\"commandId\": \"RunShellScript\", \"script\": [...]}: %v.", err))
		return
	}
	if !strings.EqualFold(body.CommandID, "RunShellScript") {
		writeErr(req.w, arm.BadRequest("commandId", "Command id %q is not available on Linux instances here: use RunShellScript.", body.CommandID))
		return
	}
	stdout, stderr, code, err := s.Runtime.RunCommand(req.r.Context(), netns, runCommandScript(body.Script, body.Parameters))
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

func boolPtr(b *arm.Bool) *bool {
	if b == nil {
		return nil
	}
	v := bool(*b)
	return &v
}
