package api

import (
	"net/http"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// deployer answers the Deployer, or an ARM error when this daemon serves no
// deployments.
func (s *Server) deployer(req *request) (Deployer, bool) {
	if s.Deployer == nil {
		writeErr(req.w, arm.Errorf(501, "NotImplemented", "deployments", "This daemon does not serve template deployments."))
		return nil, false
	}
	return s.Deployer, true
}

// answer writes a deployment engine's result.
func answer(req *request, status int, out any, err error) {
	if err != nil {
		writeErr(req.w, arm.AsError(err))
		return
	}
	writeJSON(req.w, status, out)
}

// listDeployments serves GET .../resourceGroups/{rg}/providers/Microsoft.Resources/deployments.
func (s *Server) listDeployments(req *request) {
	if s.Deployer == nil {
		writeJSON(req.w, 200, map[string]any{"value": []any{}})
		return
	}
	out, err := s.Deployer.List(req.r.Context(), req.group)
	answer(req, 200, out, err)
}

// getDeployment serves GET .../deployments/{name}.
func (s *Server) getDeployment(req *request) {
	if d, ok := s.deployer(req); ok {
		out, err := d.Get(req.r.Context(), req.id(1))
		answer(req, 200, out, err)
	}
}

// putDeployment serves PUT .../deployments/{name}: it validates and starts
// the deployment, a long-running operation.
func (s *Server) putDeployment(req *request) {
	d, ok := s.deployer(req)
	if !ok {
		return
	}
	id := req.id(1)
	out, err := d.Put(req.r.Context(), id, req.body)
	if err == nil {
		var seq int64
		s.Store.View(func(st *model.State) { seq = st.Seq })
		s.startOp(req, id.Key(), seq, false)
	}
	answer(req, http.StatusCreated, out, err)
}

// whatIf serves POST .../deployments/{name}/whatIf.
func (s *Server) whatIf(req *request) {
	if d, ok := s.deployer(req); ok {
		out, err := d.WhatIf(req.r.Context(), req.id(1), req.body)
		answer(req, 200, out, err)
	}
}

// validateDeployment serves POST .../deployments/{name}/validate (az
// deployment group create validates first): 200 with the deployment that
// would run, or the error Put would answer.
func (s *Server) validateDeployment(req *request) {
	if d, ok := s.deployer(req); ok {
		out, err := d.Validate(req.r.Context(), req.id(1), req.body)
		answer(req, 200, out, err)
	}
}

// deploymentOperations serves GET .../deployments/{name}/operations.
func (s *Server) deploymentOperations(req *request) {
	if d, ok := s.deployer(req); ok {
		out, err := d.Operations(req.r.Context(), req.id(1))
		answer(req, 200, out, err)
	}
}
