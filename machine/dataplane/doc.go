// Package dataplane applies the reconciler's data-plane Plan
// (reconcile.Plan) on the machine: what each VNET's internal DNS server
// answers (package dns), which public addresses inbound NAT forwards
// (package nat), and how each load balancer balances (one engine per load
// balancer, package lb). DNS, NAT and load balancers are three parts with a
// lock each; a failure is reported by the resource key that asked for it,
// and the rest is applied.
//
// The plane reaches the VNETs only through the Network interface: open a
// VNET, dial into it (backends, and probes from 168.63.129.16), listen in it
// (internal frontends, the DNS server) and put an internal frontend's
// address on a bridge. Namespaces implements it with network namespaces;
// machinetest.Network is a fake on loopback, so NAT and load-balancer
// application is tested without root.
//
// Inbound NAT: a public port already taken on the host fails only its own
// mapping; a VM's SSH mapping (port 22 of its public IP) falls back to its
// alternative ports and keeps the one that worked. Endpoint and
// EndpointError tell where a VM's SSH answers or why it does not.
//
// Views: LoadBalancer and Probes return the typed views of package dataview
// (rules with their backends' probe state and connections, pools, NAT
// forwards; what each probe says of an instance), which the API renders.
package dataplane
