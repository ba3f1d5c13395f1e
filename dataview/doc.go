// Package dataview holds the typed runtime views of the data plane: a load
// balancer's rules with their backends' probe state and connections, its
// pools and inbound NAT forwards, and what each health probe says of one
// instance. The machine side (package machine/dataplane) fills them from its
// engines; the API (package api) renders them. It imports nothing of either,
// so the API renders without depending on the kernel side.
package dataview
