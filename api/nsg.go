package api

import (
	"net/netip"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/nsg"
)

// effectiveNSGs serves POST .../networkInterfaces/{name}/effectiveNetworkSecurityGroups
// (az network nic list-effective-nsg): the NSGs that filter the NIC, its
// subnet's and its own, each with its rules in evaluation order.
func (s *Server) effectiveNSGs(req *request) {
	id := req.id(1)
	var out []map[string]any
	var e *arm.Error
	s.Store.View(func(st *model.State) { out, e = effectiveNSGsOf(st, id) })
	if e != nil {
		writeErr(req.w, e)
		return
	}
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

func effectiveNSGsOf(st *model.State, id arm.ID) ([]map[string]any, *arm.Error) {
	nic, ok := st.NICs[id.Key()]
	if !ok {
		return nil, arm.NotFound(id.String())
	}
	var out []map[string]any
	add := func(ref *arm.SubResource, assoc map[string]any, vnet []netip.Prefix) {
		if ref == nil || ref.ID == "" {
			return
		}
		res, ok := st.Generic[arm.KeyOf(ref.ID)]
		if !ok {
			return
		}
		g, e := nsg.FromProperties(res.ID, res.Properties)
		if e != nil {
			return // validated when stored
		}
		out = append(out, map[string]any{
			"networkSecurityGroup":   map[string]any{"id": res.ID},
			"association":            assoc,
			"effectiveSecurityRules": g.EffectiveJSON(vnet),
		})
	}
	var vnet []netip.Prefix
	for _, ic := range nic.Properties.IPConfigurations {
		if ic.Properties.Subnet == nil {
			continue
		}
		ref, ok := st.LookupSubnet(ic.Properties.Subnet.ID)
		if !ok {
			continue
		}
		for _, p := range ref.VNet.Properties.AddressSpace.AddressPrefixes {
			if pf, err := netip.ParsePrefix(p); err == nil {
				vnet = append(vnet, pf)
			}
		}
		add(ref.Subnet.Properties.NetworkSecurityGroup, map[string]any{"subnet": map[string]any{"id": ic.Properties.Subnet.ID}}, vnet)
		break
	}
	add(nic.Properties.NetworkSecurityGroup, map[string]any{"networkInterface": map[string]any{"id": nic.ID}}, vnet)
	return out, nil
}
