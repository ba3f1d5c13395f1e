package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// Scale-set extensions (Azure's VirtualMachineScaleSetExtensions API) live
// in the set's extensionProfile: PUT .../virtualMachineScaleSets/{set}/extensions/{ext}
// adds or replaces the extension by name, DELETE removes it, GET answers it
// without protected settings. Changing the profile this way is a scale-set
// model change like any other (upgrade policy applies).

func extensionIndex(exts []arm.Extension, name string) int {
	return slices.IndexFunc(exts, func(e arm.Extension) bool { return strings.EqualFold(e.Name, name) })
}

// findExtension renders extension {ext} of the set in the path; nil when
// there is none.
func (s *Server) findExtension(req *request) any {
	setID := req.id(1)
	var out any
	s.Store.View(func(st *model.State) {
		ss, ok := st.ScaleSets[setID.Key()]
		if !ok || ss.Profile().ExtensionProfile == nil {
			return
		}
		exts := ss.Profile().ExtensionProfile.Extensions
		if i := extensionIndex(exts, req.r.PathValue("ext")); i >= 0 {
			e := copyOf(&exts[i])
			e.Properties.ProtectedSettings = nil
			e.ID, e.Type = req.id(2).String(), arm.TypeScaleSetExt
			e.Properties.ProvisioningState = s.provisioningState(setID.Key(), st.Seq, "Updating")
			out = e
		}
	})
	return out
}

// getExtension serves GET .../virtualMachineScaleSets/{name}/extensions/{ext}.
func (s *Server) getExtension(req *request) {
	out := s.findExtension(req)
	if out == nil {
		writeErr(req.w, arm.NotFound(req.id(2).String()))
		return
	}
	writeJSON(req.w, 200, out)
}

// editExtensions changes the extension list of the set in the path and
// patches the set with it, starting an operation; edit answers whether it
// changed anything. It answers an error and false when the change failed.
func (s *Server) editExtensions(req *request, edit func(exts []arm.Extension, i int) ([]arm.Extension, bool)) (changed, ok bool) {
	setID := req.id(1)
	seq, ok := s.update(req, func(st *model.State) *arm.Error {
		ss, ok := st.ScaleSets[setID.Key()]
		if !ok || ss.Deleting {
			return arm.NotFound(setID.String())
		}
		var exts []arm.Extension
		if ep := ss.Profile().ExtensionProfile; ep != nil {
			exts = copyOf(ep).Extensions
		}
		exts, changed = edit(exts, extensionIndex(exts, req.r.PathValue("ext")))
		if !changed {
			return nil
		}
		if exts == nil {
			exts = []arm.Extension{}
		}
		body, err := json.Marshal(map[string]any{"properties": map[string]any{"virtualMachineProfile": map[string]any{
			"extensionProfile": map[string]any{"extensions": exts}}}})
		if err != nil {
			return arm.Errorf(500, "InternalServerError", setID.String(), "Could not encode the extension profile: %v.", err)
		}
		_, _, e := st.PutScaleSet(setID, body, true)
		return e
	})
	if ok && changed {
		s.startOp(req, setID.Key(), seq, false)
	}
	return changed, ok
}

// putExtension serves PUT .../virtualMachineScaleSets/{name}/extensions/{ext}.
func (s *Server) putExtension(req *request) {
	var ext arm.Extension
	if err := json.Unmarshal(req.body, &ext); err != nil {
		writeErr(req.w, arm.Errorf(400, "InvalidRequestContent", req.id(2).String(), "The request content was invalid and could not be deserialized: %v.", err))
		return
	}
	ext.ID, ext.Type, ext.Name = "", "", req.r.PathValue("ext")
	ext.Properties.ProvisioningState = ""
	var created bool
	if _, ok := s.editExtensions(req, func(exts []arm.Extension, i int) ([]arm.Extension, bool) {
		if i < 0 {
			created = true
			return append(exts, ext), true
		}
		exts[i] = ext
		return exts, true
	}); ok {
		writeJSON(req.w, createdStatus(created), s.findExtension(req))
	}
}

// deleteExtension serves DELETE .../virtualMachineScaleSets/{name}/extensions/{ext}:
// 202 and an operation, or 204 when there is no such extension.
func (s *Server) deleteExtension(req *request) {
	changed, ok := s.editExtensions(req, func(exts []arm.Extension, i int) ([]arm.Extension, bool) {
		if i < 0 {
			return exts, false
		}
		return slices.Delete(exts, i, i+1), true
	})
	switch {
	case !ok:
	case !changed:
		req.w.WriteHeader(http.StatusNoContent)
	default:
		req.w.WriteHeader(http.StatusAccepted)
	}
}
