package nsg

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Table is the nftables table (family inet) that holds an instance's
// filter, inside the instance's network namespace.
const Table = "vmss_nsg"

// Instance is what filters one instance's traffic: its VNET's address space
// (the VirtualNetwork tag) and the NSGs of its subnet and of its NIC (nil
// when none).
type Instance struct {
	VNet   []netip.Prefix
	Subnet *Group
	NIC    *Group
}

// Enforced reports whether any NSG applies: without one, Azure filters
// nothing.
func (in Instance) Enforced() bool { return in.Subnet != nil || in.NIC != nil }

// Script returns the nftables script that makes the instance's filter what
// in says, replacing any earlier one in one transaction. Without an NSG it
// only removes the table.
func Script(in Instance) string {
	var b strings.Builder
	// Create-then-delete makes the delete safe when the table is missing;
	// the whole script is one transaction.
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", Table, Table)
	if !in.Enforced() {
		return b.String()
	}
	fmt.Fprintf(&b, "table inet %s {\n", Table)
	b.WriteString("\tset vnet {\n\t\ttype ipv4_addr\n\t\tflags interval\n")
	var vnet []string
	for _, p := range in.VNet {
		if p.Addr().Is4() {
			vnet = append(vnet, p.Masked().String())
		}
	}
	if len(vnet) > 0 {
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(vnet, ", "))
	}
	b.WriteString("\t}\n")

	layers := func(dir Direction) []string {
		var out []string
		order := []struct {
			name string
			g    *Group
		}{{"subnet", in.Subnet}, {"nic", in.NIC}}
		if dir == Outbound { // outbound: the NIC's NSG first, then the subnet's
			order[0], order[1] = order[1], order[0]
		}
		for _, l := range order {
			if l.g != nil {
				out = append(out, chainName(dir, l.name))
			}
		}
		return out
	}
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n\t\tiifname \"lo\" accept\n")
	for _, c := range layers(Inbound) {
		fmt.Fprintf(&b, "\t\tjump %s\n", c)
	}
	b.WriteString("\t}\n")
	b.WriteString("\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n\t\toifname \"lo\" accept\n")
	// DNS to the platform's resolver is never filtered, as on Azure.
	fmt.Fprintf(&b, "\t\tip daddr %s meta l4proto { tcp, udp } th dport 53 accept\n", AzureLoadBalancer)
	for _, c := range layers(Outbound) {
		fmt.Fprintf(&b, "\t\tjump %s\n", c)
	}
	b.WriteString("\t}\n")
	for _, l := range []struct {
		name string
		g    *Group
	}{{"subnet", in.Subnet}, {"nic", in.NIC}} {
		if l.g == nil {
			continue
		}
		for _, dir := range []Direction{Inbound, Outbound} {
			fmt.Fprintf(&b, "\tchain %s {\n", chainName(dir, l.name))
			for _, r := range l.g.Effective(dir) {
				for _, line := range ruleLines(r) {
					fmt.Fprintf(&b, "\t\t%s\n", line)
				}
			}
			b.WriteString("\t}\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func chainName(dir Direction, layer string) string {
	if dir == Inbound {
		return "in_" + layer
	}
	return "out_" + layer
}

// ruleLines renders one security rule as nftables rules: one per source
// and destination kind (a rule matches when any of its prefixes does).
// Allow returns to the caller, so the next NSG layer decides too; Deny
// drops.
func ruleLines(r Rule) []string {
	verdict := "return"
	if r.Access == Deny {
		verdict = "drop"
	}
	comment := fmt.Sprintf("comment %q", fmt.Sprintf("%d %s", r.Priority, r.Name))
	proto, ports := protoMatch(r)
	srcs := addrMatches("saddr", r.Sources)
	dsts := addrMatches("daddr", r.Dests)
	var out []string
	for _, s := range srcs {
		for _, d := range dsts {
			parts := []string{}
			for _, p := range []string{s, d, proto, ports} {
				if p != "" {
					parts = append(parts, p)
				}
			}
			parts = append(parts, verdict, comment)
			out = append(out, strings.Join(parts, " "))
		}
	}
	return out
}

// protoMatch renders the protocol and the port matches of a rule.
func protoMatch(r Rule) (proto, ports string) {
	sp := portSet(r.SourcePorts)
	dp := portSet(r.DestPorts)
	var pm []string
	if sp != "" {
		pm = append(pm, "th sport "+sp)
	}
	if dp != "" {
		pm = append(pm, "th dport "+dp)
	}
	ports = strings.Join(pm, " ")
	switch r.Protocol {
	case "Tcp":
		proto = "meta l4proto tcp"
	case "Udp":
		proto = "meta l4proto udp"
	case "Icmp":
		return "meta l4proto icmp", "" // ICMP has no ports
	case "Esp":
		return "meta l4proto esp", ""
	case "Ah":
		return "meta l4proto ah", ""
	default: // "*": with ports, the ports of TCP and UDP
		if ports != "" {
			proto = "meta l4proto { tcp, udp }"
		}
	}
	return proto, ports
}

// portSet renders port ranges as an nftables set, "" for any port.
func portSet(ps []string) string {
	var items []string
	for _, p := range ps {
		lo, hi, ok := parsePorts(p)
		if !ok {
			continue
		}
		if lo == 0 && hi == 65535 {
			return ""
		}
		if lo == hi {
			items = append(items, fmt.Sprint(lo))
		} else {
			items = append(items, fmt.Sprintf("%d-%d", lo, hi))
		}
	}
	if len(items) == 0 {
		return ""
	}
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

// addrMatches renders the address prefixes of one side of a rule: "" for
// any, else one match per kind (literal prefixes together in one set).
// Prefixes the emulator has no addresses for match nothing and are left
// out; when nothing is left the rule matches nothing (no lines).
func addrMatches(field string, prefixes []string) []string {
	var lits []string
	var out []string
	seen := map[prefixKind]bool{}
	for _, p := range prefixes {
		k := kindOf(p)
		switch k {
		case kindAny:
			return []string{""}
		case kindPrefix:
			if c, ok := canonical4(p); ok { // instances have IPv4 only
				lits = append(lits, c)
			}
		case kindVNet, kindLB, kindInternet:
			if seen[k] {
				continue
			}
			seen[k] = true
			switch k {
			case kindVNet:
				out = append(out, "ip "+field+" @vnet")
			case kindLB:
				out = append(out, "ip "+field+" "+AzureLoadBalancer.String())
			case kindInternet:
				out = append(out, "ip "+field+" != @vnet ip "+field+" != "+AzureLoadBalancer.String())
			}
		}
	}
	if len(lits) > 0 {
		sort.Strings(lits)
		if len(lits) == 1 {
			out = append([]string{"ip " + field + " " + lits[0]}, out...)
		} else {
			out = append([]string{"ip " + field + " { " + strings.Join(lits, ", ") + " }"}, out...)
		}
	}
	return out
}

// canonical4 returns an IPv4 address or prefix in nftables' form (host
// bits cleared); false for IPv6.
func canonical4(p string) (string, bool) {
	if pf, err := netip.ParsePrefix(p); err == nil {
		if !pf.Addr().Is4() {
			return "", false
		}
		if pf.Bits() == 32 {
			return pf.Addr().String(), true
		}
		return pf.Masked().String(), true
	}
	a, err := netip.ParseAddr(p)
	if err != nil || !a.Is4() {
		return "", false
	}
	return a.String(), true
}
