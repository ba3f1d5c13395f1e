package api

import (
	"net/http"
	"net/url"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/autoscale"
	"github.com/vmss-emulator/vmss/model"
)

// Monitor serves Azure Monitor: metrics of scale sets and the activity log
// (of autoscale). Nil means these routes answer 404.
type Monitor interface {
	// Metrics answers GET {resourceID}/providers/Microsoft.Insights/metrics
	// with the request's query; an error is a bad query.
	Metrics(resourceID, region string, q url.Values) (any, error)
	// Definitions answers …/providers/Microsoft.Insights/metricDefinitions.
	Definitions(resourceID string) any
	// Activity answers the activity log for a query with $filter
	// (eventTimestamp ge/le, resourceUri eq, resourceGroupName eq); an error
	// is a bad filter.
	Activity(q url.Values) (any, error)
}

// getMetrics serves GET .../virtualMachineScaleSets/{name}/providers/Microsoft.Insights/metrics.
func (s *Server) getMetrics(req *request) {
	id, region, ok := s.monitored(req)
	if !ok {
		return
	}
	out, err := s.Monitor.Metrics(id.String(), region, req.r.URL.Query())
	if err != nil {
		writeErr(req.w, arm.Errorf(400, "BadRequest", "", "%v", err))
		return
	}
	writeJSON(req.w, 200, out)
}

// getMetricDefinitions serves GET .../providers/Microsoft.Insights/metricDefinitions.
func (s *Server) getMetricDefinitions(req *request) {
	id, _, ok := s.monitored(req)
	if !ok {
		return
	}
	writeJSON(req.w, 200, s.Monitor.Definitions(id.String()))
}

// monitored answers the scale set a metrics request is about, with its
// canonical id and location, or writes the error.
func (s *Server) monitored(req *request) (arm.ID, string, bool) {
	if s.Monitor == nil {
		notFoundPath(req.w, req.r)
		return arm.ID{}, "", false
	}
	id := req.id(1)
	var region string
	var found bool
	s.Store.View(func(st *model.State) {
		if ss, ok := st.ScaleSets[id.Key()]; ok {
			found, region = true, ss.Model.Location
			if cid, err := arm.ParseID(ss.Model.ID); err == nil {
				id = cid
			}
		}
	})
	if !found {
		writeErr(req.w, arm.NotFound(id.String()))
		return arm.ID{}, "", false
	}
	return id, region, true
}

// listActivity serves GET /subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values.
func (s *Server) listActivity(req *request) {
	if s.Monitor == nil {
		notFoundPath(req.w, req.r)
		return
	}
	out, err := s.Monitor.Activity(req.r.URL.Query())
	if err != nil {
		writeErr(req.w, arm.Errorf(400, "BadRequest", "$filter", "%v", err))
		return
	}
	writeJSON(req.w, 200, out)
}

// validateGeneric checks the stored types the emulator acts on: an
// autoscale setting must be one the autoscale engine can run.
func validateGeneric(id arm.ID, body []byte) *arm.Error {
	if !id.IsType(arm.TypeAutoscale) {
		return nil
	}
	if _, err := autoscale.Parse(body); err != nil {
		return arm.Errorf(400, "BadRequest", id.String(), "%v", err)
	}
	return nil
}

// deleteNow deletes a resource Azure deletes synchronously (autoscale
// settings: 200, or 204 when there was none; az fails on 202).
func (s *Server) deleteNow(req *request, id arm.ID) {
	var found bool
	if _, ok := s.update(req, func(st *model.State) *arm.Error {
		f, e := st.Delete(id)
		found = f
		return e
	}); !ok {
		return
	}
	if !found {
		req.w.WriteHeader(http.StatusNoContent)
		return
	}
	req.w.WriteHeader(http.StatusOK)
}
