package vnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vmss-emulator/vmss/nsnet"
)

// Spec is the wanted state of one VNET namespace.
type Spec struct {
	// Netns names the VNET's namespace in /run/netns, chosen by the caller
	// and carrying the project prefix, e.g. "vmss-vnet-demo-myvnet".
	// Required.
	Netns string
	// Subnets are the subnets that exist after Ensure: one bridge each.
	// Bridges (vmssbr*) of subnets no longer listed are removed. Empty
	// means a VNET without subnets.
	Subnets []Subnet
}

// Subnet is one subnet of a VNET: a bridge whose address is the gateway.
type Subnet struct {
	// Name is the subnet's name, used in messages only. Zero: the bridge
	// name is used instead.
	Name string
	// Prefix is the subnet's IPv4 network, /8 to /29, e.g. 10.0.1.0/24.
	// The gateway is its first host address (10.0.1.1). Required.
	Prefix netip.Prefix
	// Bridge is the bridge's interface name in the VNET namespace; it must
	// start with BridgePrefix and fit in 15 characters. Zero means
	// BridgeName(i) for the subnet's index i in Spec.Subnets, which only
	// stays stable while subnets are never removed from the middle.
	Bridge string
}

// NIC describes an instance's network interface: a veth from a subnet
// bridge in the VNET namespace to eth0 in the instance namespace.
type NIC struct {
	// InstanceNetns names the instance's namespace in /run/netns; it must
	// exist. Required.
	InstanceNetns string
	// Bridge is the subnet bridge to attach to. Required.
	Bridge string
	// HostSideName is the VNET-side veth name; it must start with
	// VethPrefix and fit in 15 characters. Zero: VethName(InstanceNetns).
	HostSideName string
	// Addr is the instance's address with the subnet's length, e.g.
	// 10.0.0.4/24. Required; must lie in the bridge's subnet.
	Addr netip.Prefix
	// Gateway is the default gateway. Zero: the subnet's first host (.1).
	Gateway netip.Addr
	// MAC of eth0. Zero: MACFor(Addr).
	MAC net.HardwareAddr
	// MTU of both ends. Zero: 1500.
	MTU int
}

func checkIfaceName(kind, name, prefix string) error {
	if !strings.HasPrefix(name, prefix) || len(name) == len(prefix) || len(name) > maxIfaceName {
		return fmt.Errorf("%s name %q: want %s followed by 1 to %d letters or digits", kind, name, prefix, maxIfaceName-len(prefix))
	}
	for _, r := range name[len(prefix):] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%s name %q: only lower-case letters and digits may follow %s", kind, name, prefix)
		}
	}
	return nil
}

func checkSubnetPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return fmt.Errorf("prefix %v: want an IPv4 network such as 10.0.0.0/24", p)
	case p.Bits() < 8 || p.Bits() > 29:
		return fmt.Errorf("prefix %v: length must be /8 to /29", p)
	case p != p.Masked():
		return fmt.Errorf("prefix %v: not a network address; did you mean %v?", p, p.Masked())
	case p.Contains(DNSAddr):
		return fmt.Errorf("prefix %v: contains %v, the platform DNS address", p, DNSAddr)
	case p.Contains(InternetAddr):
		return fmt.Errorf("prefix %v: contains %v, the address the emulator forwards Internet traffic from; choose another range", p, InternetAddr)
	}
	return nil
}

// normalize checks the spec and fills in the defaults. It reports every
// problem at once.
func (s Spec) normalize() (Spec, error) {
	var errs []error
	if err := nsnet.ValidName(s.Netns); err != nil {
		errs = append(errs, err)
	}
	out := Spec{Netns: s.Netns, Subnets: make([]Subnet, len(s.Subnets))}
	bridges := map[string]bool{}
	names := map[string]bool{}
	for i, sn := range s.Subnets {
		if sn.Bridge == "" {
			sn.Bridge = BridgeName(i)
		}
		label := sn.Name
		if label == "" {
			label = sn.Bridge
		}
		if err := checkSubnetPrefix(sn.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("subnet %s: %w", label, err))
		}
		if err := checkIfaceName("bridge", sn.Bridge, BridgePrefix); err != nil {
			errs = append(errs, fmt.Errorf("subnet %s: %w", label, err))
		}
		if bridges[sn.Bridge] {
			errs = append(errs, fmt.Errorf("subnet %s: bridge %s is used by two subnets", label, sn.Bridge))
		}
		bridges[sn.Bridge] = true
		if sn.Name != "" {
			if names[sn.Name] {
				errs = append(errs, fmt.Errorf("subnet %s: name given twice", sn.Name))
			}
			names[sn.Name] = true
		}
		for _, prev := range out.Subnets[:i] {
			if prev.Prefix.IsValid() && sn.Prefix.IsValid() && prev.Prefix.Overlaps(sn.Prefix) {
				errs = append(errs, fmt.Errorf("subnet %s: %v overlaps %v of subnet %s", label, sn.Prefix, prev.Prefix, prev.Name))
			}
		}
		if sn.Name == "" {
			sn.Name = sn.Bridge
		}
		out.Subnets[i] = sn
	}
	if err := errors.Join(errs...); err != nil {
		return Spec{}, fmt.Errorf("VNET %q: %w", s.Netns, err)
	}
	return out, nil
}

// normalize checks the NIC and fills in the defaults.
func (n NIC) normalize() (NIC, error) {
	var errs []error
	if err := nsnet.ValidName(n.InstanceNetns); err != nil {
		errs = append(errs, fmt.Errorf("instance namespace: %w", err))
	}
	if n.HostSideName == "" && n.InstanceNetns != "" {
		n.HostSideName = VethName(n.InstanceNetns)
	}
	if err := checkIfaceName("bridge", n.Bridge, BridgePrefix); err != nil {
		errs = append(errs, err)
	}
	if err := checkIfaceName("veth", n.HostSideName, VethPrefix); err != nil {
		errs = append(errs, err)
	}
	subnet := n.Addr.Masked()
	switch {
	case !n.Addr.IsValid() || !n.Addr.Addr().Is4():
		errs = append(errs, fmt.Errorf("address %v: want an IPv4 address with the subnet length, such as 10.0.0.4/24", n.Addr))
	case n.Addr.Bits() < 8 || n.Addr.Bits() > 29:
		errs = append(errs, fmt.Errorf("address %v: subnet length must be /8 to /29", n.Addr))
	case n.Addr.Addr() == subnet.Addr() || n.Addr.Addr() == broadcastOf(subnet) || n.Addr.Addr() == GatewayOf(subnet):
		errs = append(errs, fmt.Errorf("address %v: the network, gateway and broadcast addresses of %v are reserved", n.Addr, subnet))
	default:
		if !n.Gateway.IsValid() {
			n.Gateway = GatewayOf(subnet)
		}
		if !subnet.Contains(n.Gateway) || n.Gateway == n.Addr.Addr() {
			errs = append(errs, fmt.Errorf("gateway %v: must be another address in %v", n.Gateway, subnet))
		}
		if n.MAC == nil {
			n.MAC = MACFor(n.Addr.Addr())
		}
	}
	if n.MAC != nil && (len(n.MAC) != 6 || n.MAC[0]&1 != 0) {
		errs = append(errs, fmt.Errorf("MAC %v: want a unicast Ethernet address", n.MAC))
	}
	if n.MTU == 0 {
		n.MTU = 1500
	}
	if n.MTU < 68 || n.MTU > 65535 {
		errs = append(errs, fmt.Errorf("MTU %d: want 68 to 65535", n.MTU))
	}
	if err := errors.Join(errs...); err != nil {
		return NIC{}, fmt.Errorf("NIC of instance %q: %w", n.InstanceNetns, err)
	}
	return n, nil
}
