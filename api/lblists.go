package api

import (
	"encoding/json"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// listLBChildren serves GET .../loadBalancers/{name}/{collection}
// (inboundNatRules, probes, ...): the collection as a list, as the SDKs'
// list pagers read it.
func (s *Server) listLBChildren(c lbChild) func(*request) {
	return func(req *request) {
		id := req.id(1)
		var props *arm.LoadBalancerProperties
		s.Store.View(func(st *model.State) {
			if lb, ok := st.LoadBalancers[id.Key()]; ok {
				p := renderLB(st, lb).Properties
				props = &p
			}
		})
		if props == nil {
			writeErr(req.w, arm.NotFound(id.String()))
			return
		}
		b, err := json.Marshal(props)
		if err != nil {
			writeErr(req.w, arm.AsError(err))
			return
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			writeErr(req.w, arm.AsError(err))
			return
		}
		list := fields[c.name]
		if len(list) == 0 || string(list) == "null" {
			list = json.RawMessage("[]")
		}
		writeJSON(req.w, 200, map[string]json.RawMessage{"value": list})
	}
}
