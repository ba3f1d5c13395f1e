package nsg

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// Direction is the direction of traffic a rule applies to, seen from the
// VM.
type Direction string

// Directions.
const (
	Inbound  Direction = "Inbound"
	Outbound Direction = "Outbound"
)

// Access is what a matching rule does.
type Access string

// Accesses.
const (
	Allow Access = "Allow"
	Deny  Access = "Deny"
)

// Service tags the emulator gives addresses to.
const (
	TagVirtualNetwork    = "VirtualNetwork"
	TagAzureLoadBalancer = "AzureLoadBalancer"
	TagInternet          = "Internet"
)

// AzureLoadBalancer is the address of the AzureLoadBalancer tag: the source
// of health probes (and of the VNET's DNS).
var AzureLoadBalancer = netip.MustParseAddr("168.63.129.16")

// Rule is one security rule. Prefixes are "*", a CIDR, an address or a
// service tag; ports are "*", "N" or "N-M".
type Rule struct {
	Name        string
	Default     bool // one of Azure's default rules
	Priority    int
	Direction   Direction
	Access      Access
	Protocol    string // Tcp, Udp, Icmp, Esp, Ah or *
	Sources     []string
	SourcePorts []string
	Dests       []string
	DestPorts   []string
	// Unmatched names the service tags or application security groups of
	// the rule that the emulator has no addresses for; such a prefix
	// matches nothing.
	Unmatched []string
}

// Group is a network security group: its id and its own rules.
type Group struct {
	ID    string
	Rules []Rule
}

// armRule is the ARM shape of a security rule.
type armRule struct {
	Name       string `json:"name"`
	Properties struct {
		Description                     string          `json:"description"`
		Protocol                        string          `json:"protocol"`
		SourcePortRange                 string          `json:"sourcePortRange"`
		SourcePortRanges                []string        `json:"sourcePortRanges"`
		DestinationPortRange            string          `json:"destinationPortRange"`
		DestinationPortRanges           []string        `json:"destinationPortRanges"`
		SourceAddressPrefix             string          `json:"sourceAddressPrefix"`
		SourceAddressPrefixes           []string        `json:"sourceAddressPrefixes"`
		DestinationAddressPrefix        string          `json:"destinationAddressPrefix"`
		DestinationAddressPrefixes      []string        `json:"destinationAddressPrefixes"`
		SourceApplicationSecurityGroups json.RawMessage `json:"sourceApplicationSecurityGroups"`
		DestApplicationSecurityGroups   json.RawMessage `json:"destinationApplicationSecurityGroups"`
		Access                          string          `json:"access"`
		Priority                        *arm.Int        `json:"priority"`
		Direction                       string          `json:"direction"`
	} `json:"properties"`
}

// FromProperties is Parse for the properties object alone (as the model
// stores it).
func FromProperties(id string, props json.RawMessage) (*Group, *arm.Error) {
	if len(props) == 0 {
		props = json.RawMessage("{}")
	}
	return Parse(id, []byte(`{"properties":`+string(props)+`}`))
}

// Parse reads a network security group's ARM body and validates its
// rules as Azure does. The error is an ARM error naming the rule.
func Parse(id string, body []byte) (*Group, *arm.Error) {
	var doc struct {
		Properties struct {
			SecurityRules []armRule `json:"securityRules"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, arm.BadRequest("properties.securityRules", "The network security group body is not valid: %v.", err)
	}
	g := &Group{ID: id}
	seen := map[string]string{} // direction/priority -> rule name
	names := map[string]bool{}
	for i, ar := range doc.Properties.SecurityRules {
		target := fmt.Sprintf("properties.securityRules[%d]", i)
		r, e := convert(target, ar)
		if e != nil {
			return nil, e
		}
		if names[strings.ToLower(r.Name)] {
			return nil, arm.BadRequest(target+".name", "Security rule name '%s' is used twice in the network security group.", r.Name)
		}
		names[strings.ToLower(r.Name)] = true
		key := string(r.Direction) + "/" + strconv.Itoa(r.Priority)
		if other, ok := seen[key]; ok {
			return nil, arm.Errorf(http.StatusBadRequest, "SecurityRuleConflict", target,
				"Security rule %s conflicts with rule %s. Rules cannot have the same Priority and Direction.", r.Name, other)
		}
		seen[key] = r.Name
		g.Rules = append(g.Rules, r)
	}
	return g, nil
}

func convert(target string, ar armRule) (Rule, *arm.Error) {
	p := ar.Properties
	r := Rule{Name: ar.Name}
	if r.Name == "" {
		return r, arm.BadRequest(target+".name", "A security rule needs a name.")
	}
	if p.Priority == nil {
		return r, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidPriority", target+".properties.priority",
			"Security rule %s has no priority: give a number from 100 to 4096.", r.Name)
	}
	r.Priority = int(*p.Priority)
	if r.Priority < 100 || r.Priority > 4096 {
		return r, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidPriority", target+".properties.priority",
			"Security rule %s has invalid Priority. Value provided: %d. Allowed range 100-4096.", r.Name, r.Priority)
	}
	switch {
	case strings.EqualFold(p.Direction, "Inbound"):
		r.Direction = Inbound
	case strings.EqualFold(p.Direction, "Outbound"):
		r.Direction = Outbound
	default:
		return r, arm.BadRequest(target+".properties.direction", "Security rule %s has direction '%s': use Inbound or Outbound.", r.Name, p.Direction)
	}
	switch {
	case strings.EqualFold(p.Access, "Allow"):
		r.Access = Allow
	case strings.EqualFold(p.Access, "Deny"):
		r.Access = Deny
	default:
		return r, arm.BadRequest(target+".properties.access", "Security rule %s has access '%s': use Allow or Deny.", r.Name, p.Access)
	}
	proto, ok := protocols[strings.ToLower(p.Protocol)]
	if !ok {
		return r, arm.BadRequest(target+".properties.protocol", "Security rule %s has protocol '%s': use Tcp, Udp, Icmp, Esp, Ah or *.", r.Name, p.Protocol)
	}
	r.Protocol = proto
	var e *arm.Error
	if r.SourcePorts, e = portList(target, "sourcePortRange", r.Name, p.SourcePortRange, p.SourcePortRanges); e != nil {
		return r, e
	}
	if r.DestPorts, e = portList(target, "destinationPortRange", r.Name, p.DestinationPortRange, p.DestinationPortRanges); e != nil {
		return r, e
	}
	if r.Sources, e = prefixList(target, "sourceAddressPrefix", r.Name, p.SourceAddressPrefix, p.SourceAddressPrefixes, p.SourceApplicationSecurityGroups); e != nil {
		return r, e
	}
	if r.Dests, e = prefixList(target, "destinationAddressPrefix", r.Name, p.DestinationAddressPrefix, p.DestinationAddressPrefixes, p.DestApplicationSecurityGroups); e != nil {
		return r, e
	}
	for _, pf := range append(slices.Clone(r.Sources), r.Dests...) {
		if kindOf(pf) == kindUnknownTag {
			r.Unmatched = append(r.Unmatched, pf)
		}
	}
	return r, nil
}

var protocols = map[string]string{"tcp": "Tcp", "udp": "Udp", "icmp": "Icmp", "esp": "Esp", "ah": "Ah", "*": "*"}

// portList merges the single and plural forms of a port property; Azure
// takes one or the other.
func portList(target, prop, name, one string, many []string) ([]string, *arm.Error) {
	if one != "" && len(many) > 0 {
		return nil, arm.BadRequest(target+".properties."+prop, "Security rule %s gives both %s and %ss: use one.", name, prop, prop)
	}
	list := many
	if one != "" {
		list = []string{one}
	}
	if len(list) == 0 {
		return nil, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidPortRange", target+".properties."+prop,
			"Security rule %s has no %s: give \"*\", a port such as \"22\" or a range such as \"8000-8080\".", name, prop)
	}
	for _, p := range list {
		if _, _, ok := parsePorts(p); !ok {
			return nil, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidPortRange", target+".properties."+prop,
				"Security rule %s has invalid Port range. Value provided: %s. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535.", name, p)
		}
	}
	return list, nil
}

// parsePorts reads "*", "N" or "N-M".
func parsePorts(s string) (lo, hi int, ok bool) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return 0, 65535, true
	}
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 0 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

func prefixList(target, prop, name, one string, many []string, asgs json.RawMessage) ([]string, *arm.Error) {
	var groups []struct {
		ID string `json:"id"`
	}
	if len(asgs) > 0 && string(asgs) != "null" {
		if err := json.Unmarshal(asgs, &groups); err != nil {
			return nil, arm.BadRequest(target+".properties", "Security rule %s has unreadable application security groups: %v.", name, err)
		}
	}
	if one != "" && len(many) > 0 {
		return nil, arm.BadRequest(target+".properties."+prop, "Security rule %s gives both %s and %ses: use one.", name, prop, prop)
	}
	list := many
	if one != "" {
		list = []string{one}
	}
	for _, g := range groups {
		list = append(list, "asg:"+g.ID)
	}
	if len(list) == 0 {
		return nil, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidAddressPrefix", target+".properties."+prop,
			"Security rule %s has no %s: give \"*\", an address, a CIDR or a service tag such as VirtualNetwork.", name, prop)
	}
	for _, p := range list {
		if kindOf(p) == kindInvalid {
			return nil, arm.Errorf(http.StatusBadRequest, "SecurityRuleInvalidAddressPrefix", target+".properties."+prop,
				"Security rule %s has invalid Address prefix. Value provided: %s.", name, p)
		}
	}
	return list, nil
}

type prefixKind int

const (
	kindInvalid prefixKind = iota
	kindAny
	kindPrefix
	kindVNet
	kindLB
	kindInternet
	kindUnknownTag
)

// kindOf classifies an address prefix of a rule.
func kindOf(p string) prefixKind {
	switch {
	case p == "*" || p == "0.0.0.0/0":
		return kindAny
	case strings.EqualFold(p, TagVirtualNetwork):
		return kindVNet
	case strings.EqualFold(p, TagAzureLoadBalancer):
		return kindLB
	case strings.EqualFold(p, TagInternet):
		return kindInternet
	case strings.HasPrefix(p, "asg:"):
		return kindUnknownTag
	}
	if _, err := netip.ParsePrefix(p); err == nil {
		return kindPrefix
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return kindPrefix
	}
	// A service tag: letters, digits, dots (Storage.WestUS).
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return kindInvalid
		}
	}
	if p == "" {
		return kindInvalid
	}
	return kindUnknownTag
}

// DefaultRules are the rules Azure adds to every network security group.
func DefaultRules() []Rule {
	any := []string{"*"}
	mk := func(name string, prio int, dir Direction, acc Access, src, dst string) Rule {
		return Rule{Name: name, Default: true, Priority: prio, Direction: dir, Access: acc, Protocol: "*",
			Sources: []string{src}, SourcePorts: any, Dests: []string{dst}, DestPorts: any}
	}
	return []Rule{
		mk("AllowVnetInBound", 65000, Inbound, Allow, TagVirtualNetwork, TagVirtualNetwork),
		mk("AllowAzureLoadBalancerInBound", 65001, Inbound, Allow, TagAzureLoadBalancer, "*"),
		mk("DenyAllInBound", 65500, Inbound, Deny, "*", "*"),
		mk("AllowVnetOutBound", 65000, Outbound, Allow, TagVirtualNetwork, TagVirtualNetwork),
		mk("AllowInternetOutBound", 65001, Outbound, Allow, "*", TagInternet),
		mk("DenyAllOutBound", 65500, Outbound, Deny, "*", "*"),
	}
}

// Effective returns the rules of one direction in evaluation order: the
// group's own by priority, then the defaults.
func (g *Group) Effective(dir Direction) []Rule {
	var out []Rule
	for _, r := range g.Rules {
		if r.Direction == dir {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Rule) int { return a.Priority - b.Priority })
	for _, r := range DefaultRules() {
		if r.Direction == dir {
			out = append(out, r)
		}
	}
	return out
}

// DefaultRulesJSON is properties.defaultSecurityRules of a network security
// group with the given id, as Azure returns it.
func DefaultRulesJSON(id string) []map[string]any {
	var out []map[string]any
	for _, r := range DefaultRules() {
		out = append(out, map[string]any{
			"id":   id + "/defaultSecurityRules/" + r.Name,
			"name": r.Name,
			"type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
			"properties": map[string]any{
				"description":              defaultDescriptions[r.Name],
				"protocol":                 "*",
				"sourcePortRange":          "*",
				"destinationPortRange":     "*",
				"sourceAddressPrefix":      r.Sources[0],
				"destinationAddressPrefix": r.Dests[0],
				"access":                   string(r.Access),
				"priority":                 r.Priority,
				"direction":                string(r.Direction),
				"provisioningState":        "Succeeded",
			},
		})
	}
	return out
}

var defaultDescriptions = map[string]string{
	"AllowVnetInBound":              "Allow inbound traffic from all VMs in VNET",
	"AllowAzureLoadBalancerInBound": "Allow inbound traffic from azure load balancer",
	"DenyAllInBound":                "Deny all inbound traffic",
	"AllowVnetOutBound":             "Allow outbound traffic from all VMs to all VMs in VNET",
	"AllowInternetOutBound":         "Allow outbound traffic from all VMs to Internet",
	"DenyAllOutBound":               "Deny all outbound traffic",
}

// EffectiveJSON lists a group's rules in evaluation order, inbound then
// outbound, in the shape of Azure's effectiveSecurityRules: ports as
// ranges ("0-65535", "22-22"), "*" as 0.0.0.0/0, service tags with their
// expanded prefixes (vnet for VirtualNetwork).
func (g *Group) EffectiveJSON(vnet []netip.Prefix) []map[string]any {
	var out []map[string]any
	for _, dir := range []Direction{Inbound, Outbound} {
		for _, r := range g.Effective(dir) {
			name := "securityRules/" + r.Name
			if r.Default {
				name = "defaultSecurityRules/" + r.Name
			}
			m := map[string]any{
				"name": name, "protocol": effectiveProtocol(r.Protocol),
				"access": string(r.Access), "priority": r.Priority, "direction": string(r.Direction),
			}
			effectivePorts(m, "sourcePortRange", r.SourcePorts)
			effectivePorts(m, "destinationPortRange", r.DestPorts)
			effectivePrefixes(m, "sourceAddressPrefix", "expandedSourceAddressPrefix", r.Sources, vnet)
			effectivePrefixes(m, "destinationAddressPrefix", "expandedDestinationAddressPrefix", r.Dests, vnet)
			out = append(out, m)
		}
	}
	return out
}

func effectiveProtocol(p string) string {
	if p == "*" {
		return "All"
	}
	return p
}

func effectivePorts(m map[string]any, key string, ports []string) {
	var rs []string
	for _, p := range ports {
		lo, hi, _ := parsePorts(p)
		rs = append(rs, fmt.Sprintf("%d-%d", lo, hi))
	}
	if len(rs) == 1 {
		m[key] = rs[0]
	} else {
		m[key+"s"] = rs
	}
}

func effectivePrefixes(m map[string]any, key, expandedKey string, prefixes []string, vnet []netip.Prefix) {
	var ps, expanded []string
	for _, p := range prefixes {
		switch kindOf(p) {
		case kindAny:
			ps = append(ps, "0.0.0.0/0")
		case kindVNet:
			ps = append(ps, TagVirtualNetwork)
			for _, v := range vnet {
				expanded = append(expanded, v.String())
			}
		case kindLB:
			ps = append(ps, TagAzureLoadBalancer)
			expanded = append(expanded, AzureLoadBalancer.String()+"/32")
		default:
			ps = append(ps, p)
		}
	}
	if len(ps) == 1 {
		m[key] = ps[0]
	} else {
		m[key+"es"] = ps
	}
	if len(expanded) > 0 {
		m[expandedKey] = expanded
	}
}
