package api

import (
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// queryNATRulePortMapping answers POST
// …/loadBalancers/{lb}/backendAddressPools/{pool}/queryInboundNatRulePortMapping
// (body {"ipConfiguration":{"id":…}} or {"ipAddress":"…"}) with the
// version 2 inbound NAT rules' port mappings of that backend.
func (s *Server) queryNATRulePortMapping(req *request) {
	id := req.id(2)
	var out []model.NATRulePortMapping
	var e *arm.Error
	s.Store.View(func(st *model.State) { out, e = st.QueryNATRulePortMappings(id, req.body) })
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, map[string]any{"inboundNatRulePortMappings": out})
}
