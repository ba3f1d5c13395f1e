// Package vnet builds Azure-like virtual networks out of Linux network
// namespaces. A VNET is a namespace of its own holding one bridge per
// subnet (the bridge's address is the subnet gateway, .1), the platform
// address 168.63.129.16 and InternetAddr (the source of traffic forwarded
// from outside the VNET) on its loopback; it routes between its subnets
// and nowhere else. Instances are namespaces (made by another package) joined
// to a subnet bridge by a veth pair: the VNET side vmssv<10 base32 digits>,
// the instance side eth0. A bridge holds at most 1,023 ports, so a subnet with more
// instances spreads them over leaf bridges joined to the subnet bridge by
// veth uplinks (see Layout); it stays one flat L2 segment.
//
// Nothing is ever created in, or changed in, the host namespace: no route,
// address, link or firewall rule. VNETs therefore cannot collide with the
// host's networks or with each other; two VNETs may use the same address
// space. Instances reach each other and 168.63.129.16 through their
// gateway, but not the host nor other VNETs.
//
// Typical usage:
//
//	var m vnet.Manager
//	err := m.Ensure(ctx, vnet.Spec{Netns: "vmss-vnet-demo", Subnets: []vnet.Subnet{
//		{Name: "default", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Bridge: vnet.BridgeName(0)},
//	}})
//	err = m.Attach(ctx, "vmss-vnet-demo", vnet.NIC{
//		InstanceNetns: "vmss-inst-demo-0", Bridge: "vmssbr0",
//		Addr: netip.MustParsePrefix("10.0.0.4/24"),
//	})
//	obs, err := m.Observe(ctx, "vmss-vnet-demo") // what exists, for adoption
//	err = m.Delete(ctx, "vmss-vnet-demo")
//
// Every call is idempotent and checks its input before changing anything;
// Attach deletes a half-made veth pair on failure, Ensure removes a
// namespace it created and then failed to set up. Transient netlink errors
// (interrupted dumps, EBUSY, EAGAIN, EINTR, ENOBUFS) are retried with
// backoff until ctx ends. Everything vmss creates is named with a fixed
// prefix (BridgePrefix, VethPrefix) and put in the interface group
// LinkGroup, so cleanup finds it without any saved state.
//
// Non-goals: creating instance namespaces, allocating addresses (the caller
// chooses them), DNS (package dns), load balancing, IPv6 inside VNETs.
package vnet
