package model

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// NATRulePortMapping is one frontend port a version 2 inbound NAT rule gives
// one backend (Azure's InboundNatRulePortMapping).
type NATRulePortMapping struct {
	InboundNatRuleName string `json:"inboundNatRuleName"`
	Protocol           string `json:"protocol"`
	FrontendPort       int    `json:"frontendPort"`
	BackendPort        int    `json:"backendPort"`
}

// QueryNATRulePortMappings answers POST
// …/backendAddressPools/{pool}/queryInboundNatRulePortMapping: the port
// mappings of the version 2 NAT rules on the pool for the backend named by
// body's ipConfiguration.id or ipAddress (exactly one of them).
func (s *State) QueryNATRulePortMappings(poolID arm.ID, body []byte) ([]NATRulePortMapping, *arm.Error) {
	var q struct {
		IPConfiguration *arm.SubResource `json:"ipConfiguration"`
		IPAddress       string           `json:"ipAddress"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, arm.BadRequest(poolID.String(), "The request body is not valid JSON: %v. Send {\"ipConfiguration\":{\"id\":...}} or {\"ipAddress\":\"10.0.0.4\"}.", err)
	}
	byConfig := q.IPConfiguration != nil && q.IPConfiguration.ID != ""
	if byConfig == (q.IPAddress != "") {
		return nil, arm.BadRequest(poolID.String(), "Give exactly one of ipConfiguration.id and ipAddress to query the inbound NAT rule port mappings of backend pool %s.", poolID.Name())
	}
	lb, ok := s.LoadBalancers[poolID.Parent().Key()]
	if !ok || findPool(lb.Properties.BackendAddressPools, poolID.String()) < 0 {
		return nil, arm.NotFound(poolID.String())
	}
	var out []NATRulePortMapping
	found := false
	for _, b := range s.NATRuleBackends(poolID.String()) {
		if byConfig && arm.EqualIDs(b.IPConfigID, q.IPConfiguration.ID) || !byConfig && b.IPAddress == strings.TrimSpace(q.IPAddress) {
			found = true
			out = append(out, b.Mappings...)
		}
	}
	if out == nil {
		out = []NATRulePortMapping{}
	}
	if !found {
		what := q.IPAddress
		if byConfig {
			what = q.IPConfiguration.ID
		}
		return nil, arm.Errorf(404, "NotFound", poolID.String(), "Backend pool %s has no member %s; list the pool's members with GET on the scale set's network interfaces.", poolID.Name(), what)
	}
	return out, nil
}

// NATRuleBackend is one scale-set member of a backend pool with its version
// 2 NAT rule port mappings (sorted by rule name).
type NATRuleBackend struct {
	Name       string // the instance's name ({scale set}_{id})
	IPConfigID string // the instance's ip configuration id
	IPAddress  string
	Mappings   []NATRulePortMapping
}

// NATRuleBackends lists the live scale-set members of a backend pool with
// their port mappings of the version 2 NAT rules on the pool, in ip
// configuration id order.
func (s *State) NATRuleBackends(poolID string) []NATRuleBackend {
	rules, _ := s.NATRulesV2(poolID)
	var out []NATRuleBackend
	for _, ss := range s.ScaleSets {
		for _, nc := range ss.Profile().NICConfigs() {
			for _, ic := range nc.Properties.IPConfigurations {
				if !slices.ContainsFunc(ic.Properties.LoadBalancerBackendAddressPools, func(r arm.SubResource) bool { return arm.EqualIDs(r.ID, poolID) }) {
					continue
				}
				for _, in := range ss.Live() {
					b := NATRuleBackend{
						Name:       in.Name,
						IPConfigID: ss.Model.ID + "/virtualMachines/" + in.ID + "/networkInterfaces/" + nc.Name + "/ipConfigurations/" + ic.Name,
						IPAddress:  in.PrivateIP,
					}
					for _, r := range rules {
						if p, ok := in.NATPorts[arm.KeyOf(r.ID)]; ok {
							b.Mappings = append(b.Mappings, NATRulePortMapping{
								InboundNatRuleName: r.Name, Protocol: r.Properties.Protocol,
								FrontendPort: p, BackendPort: int(arm.IntOr(r.Properties.BackendPort, 0)),
							})
						}
					}
					slices.SortFunc(b.Mappings, func(x, y NATRulePortMapping) int { return strings.Compare(x.InboundNatRuleName, y.InboundNatRuleName) })
					out = append(out, b)
				}
			}
		}
	}
	slices.SortFunc(out, func(x, y NATRuleBackend) int { return strings.Compare(x.IPConfigID, y.IPConfigID) })
	return out
}
