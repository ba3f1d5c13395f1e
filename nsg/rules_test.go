package nsg

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func rule(name string, prio int, dir, access, proto, src, dport string) string {
	return `{"name":"` + name + `","properties":{"priority":` + strconv.Itoa(prio) + `,"direction":"` + dir + `","access":"` + access +
		`","protocol":"` + proto + `","sourceAddressPrefix":"` + src + `","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"` + dport + `"}}`
}

func body(rules ...string) []byte {
	return []byte(`{"location":"eastus","properties":{"securityRules":[` + strings.Join(rules, ",") + `]}}`)
}

func TestParseValidates(t *testing.T) {
	for _, c := range []struct {
		name, body, code, target string
	}{
		{"priority too low", string(body(rule("a", 99, "Inbound", "Allow", "Tcp", "*", "22"))), "SecurityRuleInvalidPriority", "properties.securityRules[0].properties.priority"},
		{"priority too high", string(body(rule("a", 4097, "Inbound", "Allow", "Tcp", "*", "22"))), "SecurityRuleInvalidPriority", "properties.securityRules[0].properties.priority"},
		{"same priority and direction", string(body(rule("a", 100, "Inbound", "Allow", "Tcp", "*", "22"), rule("b", 100, "Inbound", "Deny", "Tcp", "*", "80"))), "SecurityRuleConflict", "properties.securityRules[1]"},
		{"bad port", string(body(rule("a", 100, "Inbound", "Allow", "Tcp", "*", "70000"))), "SecurityRuleInvalidPortRange", "properties.securityRules[0].properties.destinationPortRange"},
		{"reversed range", string(body(rule("a", 100, "Inbound", "Allow", "Tcp", "*", "90-80"))), "SecurityRuleInvalidPortRange", "properties.securityRules[0].properties.destinationPortRange"},
		{"bad prefix", string(body(rule("a", 100, "Inbound", "Allow", "Tcp", "10.0.0.0/33x", "22"))), "SecurityRuleInvalidAddressPrefix", "properties.securityRules[0].properties.sourceAddressPrefix"},
		{"bad direction", string(body(rule("a", 100, "Sideways", "Allow", "Tcp", "*", "22"))), "BadRequest", "properties.securityRules[0].properties.direction"},
		{"bad protocol", string(body(rule("a", 100, "Inbound", "Allow", "Sctp", "*", "22"))), "BadRequest", "properties.securityRules[0].properties.protocol"},
		{"bad access", string(body(rule("a", 100, "Inbound", "Maybe", "Tcp", "*", "22"))), "BadRequest", "properties.securityRules[0].properties.access"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, e := Parse("/x", []byte(c.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if c.code != "BadRequest" && e.Code != c.code || e.Target != c.target {
				t.Errorf("code %s target %s (%s), want %s at %s", e.Code, e.Target, e.Message, c.code, c.target)
			}
		})
	}
	// Positive control: the same priority in the other direction, string
	// numbers as templates write them, plural forms.
	g, e := Parse("/x", body(rule("a", 100, "Inbound", "Allow", "Tcp", "*", "22"), rule("b", 100, "Outbound", "Deny", "*", "VirtualNetwork", "*"),
		`{"name":"c","properties":{"priority":"200","direction":"inbound","access":"deny","protocol":"*","sourceAddressPrefixes":["10.1.0.0/16","10.2.0.5"],"sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRanges":["80","8000-8080"]}}`))
	if e != nil || len(g.Rules) != 3 {
		t.Fatalf("valid group: %v", e)
	}
	if g.Rules[2].Priority != 200 || g.Rules[2].Direction != Inbound || g.Rules[2].Access != Deny || len(g.Rules[2].DestPorts) != 2 {
		t.Errorf("rule c parsed as %+v", g.Rules[2])
	}
}

func TestEffectiveOrderAndDefaults(t *testing.T) {
	g, e := Parse("/x", body(rule("late", 3000, "Inbound", "Allow", "Tcp", "*", "80"), rule("early", 100, "Inbound", "Deny", "Tcp", "*", "22"),
		rule("out", 100, "Outbound", "Deny", "*", "*", "*")))
	if e != nil {
		t.Fatal(e)
	}
	var names []string
	for _, r := range g.Effective(Inbound) {
		names = append(names, r.Name)
	}
	want := "early late AllowVnetInBound AllowAzureLoadBalancerInBound DenyAllInBound"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("inbound order %q, want %q", got, want)
	}
	names = nil
	for _, r := range g.Effective(Outbound) {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "out AllowVnetOutBound AllowInternetOutBound DenyAllOutBound" {
		t.Errorf("outbound order %q", got)
	}
}

func TestUnknownServiceTagMatchesNothing(t *testing.T) {
	g, e := Parse("/x", body(rule("storage", 100, "Inbound", "Deny", "Tcp", "Storage.WestUS", "22")))
	if e != nil {
		t.Fatal(e)
	}
	if len(g.Rules[0].Unmatched) != 1 || g.Rules[0].Unmatched[0] != "Storage.WestUS" {
		t.Errorf("unmatched %v", g.Rules[0].Unmatched)
	}
	if lines := ruleLines(g.Rules[0]); len(lines) != 0 {
		t.Errorf("a rule whose only source has no addresses renders %q, want nothing", lines)
	}
}

func TestScriptLayersAndMatches(t *testing.T) {
	subnet, e := Parse("/subnetnsg", body(rule("deny-ssh", 100, "Inbound", "Deny", "Tcp", "Internet", "22")))
	if e != nil {
		t.Fatal(e)
	}
	nic, e := Parse("/nicnsg", body(rule("web", 200, "Inbound", "Allow", "Tcp", "*", "80-81"),
		`{"name":"two","properties":{"priority":300,"direction":"Inbound","access":"Deny","protocol":"*","sourceAddressPrefixes":["10.0.1.0/24","VirtualNetwork","10.0.0.9/32"],"sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRanges":["53","1000-2000"]}}`))
	if e != nil {
		t.Fatal(e)
	}
	s := Script(Instance{VNet: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, Subnet: subnet, NIC: nic})
	for _, want := range []string{
		"table inet vmss_nsg\ndelete table inet vmss_nsg\n",
		"elements = { 10.0.0.0/16 }",
		"jump in_subnet\n\t\tjump in_nic\n",   // inbound: subnet, then NIC
		"jump out_nic\n\t\tjump out_subnet\n", // outbound: NIC, then subnet
		`ip saddr != @vnet ip saddr != 168.63.129.16 meta l4proto tcp th dport 22 drop comment "100 deny-ssh"`,
		`meta l4proto tcp th dport 80-81 return comment "200 web"`,
		`ip saddr { 10.0.0.9, 10.0.1.0/24 } meta l4proto { tcp, udp } th dport { 53, 1000-2000 } drop comment "300 two"`,
		`ip saddr @vnet meta l4proto { tcp, udp } th dport { 53, 1000-2000 } drop comment "300 two"`,
		`ip saddr @vnet ip daddr @vnet return comment "65000 AllowVnetInBound"`,
		`ip saddr 168.63.129.16 return comment "65001 AllowAzureLoadBalancerInBound"`,
		`drop comment "65500 DenyAllInBound"`,
		`ip daddr != @vnet ip daddr != 168.63.129.16 return comment "65001 AllowInternetOutBound"`,
		"ct state established,related accept",
		"ip daddr 168.63.129.16 meta l4proto { tcp, udp } th dport 53 accept",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// Only the subnet's NSG: one layer.
	s = Script(Instance{VNet: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, Subnet: subnet})
	if strings.Contains(s, "in_nic") || !strings.Contains(s, "jump in_subnet") {
		t.Errorf("subnet-only script:\n%s", s)
	}
	// No NSG: the table is removed and nothing filters.
	s = Script(Instance{VNet: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}})
	if s != "table inet vmss_nsg\ndelete table inet vmss_nsg\n" {
		t.Errorf("no-NSG script %q", s)
	}
}

func TestDefaultRulesJSON(t *testing.T) {
	rs := DefaultRulesJSON("/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n")
	if len(rs) != 6 || rs[0]["name"] != "AllowVnetInBound" || !strings.HasSuffix(rs[2]["id"].(string), "/defaultSecurityRules/DenyAllInBound") {
		t.Errorf("default rules %v", rs)
	}
}
