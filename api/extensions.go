package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// scaleSetExtension serves .../virtualMachineScaleSets/{set}/extensions/{name}
// (Azure's VirtualMachineScaleSetExtensions API): PUT adds or replaces the
// extension by name in the set's extensionProfile, DELETE removes it, GET
// answers it without protected settings. Changing the profile this way is a
// scale-set model change like any other (upgrade policy applies).
func (s *Server) scaleSetExtension(req *request) {
	setID := req.id(1)
	name := req.rest[3]
	extID := setID.String() + "/extensions/" + name
	if req.action != "" {
		notFoundPath(req)
		return
	}
	find := func(exts []arm.Extension) int {
		for i, e := range exts {
			if strings.EqualFold(e.Name, name) {
				return i
			}
		}
		return -1
	}
	render := func() any {
		var out any
		s.Store.View(func(st *model.State) {
			ss, ok := st.ScaleSets[setID.Key()]
			if !ok || ss.Profile().ExtensionProfile == nil {
				return
			}
			exts := ss.Profile().ExtensionProfile.Extensions
			if i := find(exts); i >= 0 {
				e := copyOf(&exts[i])
				e.Properties.ProtectedSettings = nil
				e.ID, e.Type = extID, arm.TypeScaleSetExt
				e.Properties.ProvisioningState = s.provisioningState(setID.Key(), st.Seq, "Updating")
				out = e
			}
		})
		return out
	}
	switch req.r.Method {
	case http.MethodGet:
		out := render()
		if out == nil {
			writeErr(req.w, arm.NotFound(extID))
			return
		}
		writeJSON(req.w, 200, out)
	case http.MethodPut, http.MethodDelete:
		var ext arm.Extension
		if req.r.Method == http.MethodPut {
			if err := json.Unmarshal(req.body, &ext); err != nil {
				writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", extID, "The request content was invalid and could not be deserialized: %v.", err))
				return
			}
			ext.ID, ext.Type, ext.Name = "", "", name
			ext.Properties.ProvisioningState = ""
		}
		var created, found bool
		seq, ok := s.update(req, func(st *model.State) *arm.Error {
			ss, ok := st.ScaleSets[setID.Key()]
			if !ok || ss.Deleting {
				return arm.NotFound(setID.String())
			}
			var exts []arm.Extension
			if ep := ss.Profile().ExtensionProfile; ep != nil {
				exts = copyOf(ep).Extensions
			}
			i := find(exts)
			found = i >= 0
			switch {
			case req.r.Method == http.MethodDelete && i < 0:
				return nil
			case req.r.Method == http.MethodDelete:
				exts = append(exts[:i], exts[i+1:]...)
			case i < 0:
				created = true
				exts = append(exts, ext)
			default:
				exts[i] = ext
			}
			if exts == nil {
				exts = []arm.Extension{}
			}
			body, _ := json.Marshal(map[string]any{"properties": map[string]any{"virtualMachineProfile": map[string]any{
				"extensionProfile": map[string]any{"extensions": exts}}}})
			_, _, e := st.PutScaleSet(setID, body, true)
			return e
		})
		if !ok {
			return
		}
		if req.r.Method == http.MethodDelete {
			if !found {
				req.w.WriteHeader(http.StatusNoContent)
				return
			}
			s.startOp(req, setID.Key(), seq, false)
			req.w.WriteHeader(http.StatusAccepted)
			return
		}
		s.startOp(req, setID.Key(), seq, false)
		writeJSON(req.w, map[bool]int{true: 201, false: 200}[created], render())
	default:
		methodNotAllowed(req)
	}
}
