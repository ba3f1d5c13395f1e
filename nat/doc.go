// Package nat implements inbound NAT for the emulated load balancers:
// Azure's inboundNatPools (one frontend port per scale set instance) and
// single inboundNatRules (one frontend port to one NIC's backend port).
//
// Two halves:
//
//   - Pure logic, no sockets, in the leaf package nat/natport (the model
//     uses it without the data path): AssignPoolPorts gives each instance of a pool
//     its frontend port (start + instanceId when that is inside the range,
//     else the lowest free port; stable for the instance's life; freed on
//     delete; an exhausted range fails with Azure's code
//     InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts), and
//     Validate rejects pools and rules whose frontend ports overlap on the
//     same frontend IP and protocol.
//   - Data plane: Table.Apply(ctx, []Mapping) reconciles one userspace
//     listener per public address:port. New mappings get listeners, removed
//     ones are closed (their flows reset), unchanged ones are left alone so
//     their established connections survive; a mapping whose backend
//     changed keeps its listener and sends new connections to the new
//     backend. A port already taken on the host fails the whole Apply
//     (nothing changes) with a *proxy.AddrInUseError naming the address.
//
// NAT is not gated by health probes: a mapping forwards whether or not
// the backend answers. The client's source address is not preserved (a
// userspace proxy connects from its own address): a documented difference
// from Azure.
//
// Typical usage:
//
//	ports, err := natport.AssignPoolPorts(pool, []int{0, 1, 2}, previous)
//	mappings := nat.PoolMappings(pool, ports, privateIP) // then set Dial
//	err = table.Apply(ctx, mappings)
//
// Non-goals: load balancing (package lb), outbound SNAT, floating IP.
package nat
