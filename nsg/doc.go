// Package nsg turns Azure network security groups into packet filters.
//
// A network security group (Microsoft.Network/networkSecurityGroups) is a
// list of security rules: priority (100–4096, lower first), direction,
// Allow or Deny, protocol, source and destination address prefixes (CIDRs,
// addresses, "*", or service tags) and port ranges. Azure appends its
// default rules (65000 AllowVnetInBound, 65001 AllowAzureLoadBalancerInBound,
// 65500 DenyAllInBound; 65000 AllowVnetOutBound, 65001 AllowInternetOutBound,
// 65500 DenyAllOutBound), evaluates the rules of a direction by priority, and
// the first match decides. A subnet's NSG and a NIC's NSG both apply: inbound
// the subnet's first, then the NIC's; outbound the NIC's, then the
// subnet's. Filtering is stateful: replies of an allowed flow pass.
//
// Parse reads and validates the ARM body (errors name the rule and property
// as Azure's do); Effective lists a group's rules in evaluation order with
// the defaults; Ruleset renders the filter of one instance as an nftables
// script: a table of its own with input and output chains, one chain per
// NSG layer, applied inside the instance's network namespace only (never the
// host's). Apply runs `nft -f -` in that namespace through a small Runner
// interface, so everything but the final exec is tested without root.
//
// Service tags: VirtualNetwork is the VNET's address space;
// AzureLoadBalancer is 168.63.129.16 (the source of health probes);
// Internet is everything else. (Traffic the emulator's userspace load
// balancer and inbound NAT forward from public frontends arrives from an
// address outside every VNET, vnet.InternetAddr, so rules about "Internet"
// and "*" apply to it as on Azure.) Other service tags (Storage, AzureCloud, ...) name address
// ranges the emulator does not have: a rule with one matches nothing, and
// Effective marks it. DNS to 168.63.129.16 is platform traffic, never
// filtered, as on Azure.
package nsg
