package vnet

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"net/netip"
)

// Names of what vmss creates inside its namespaces. Cleanup finds them by
// these prefixes even when no state is left.
const (
	// BridgePrefix starts the name of every subnet bridge in a VNET
	// namespace: vmssbr0, vmssbr1, ...
	BridgePrefix = "vmssbr"
	// VethPrefix starts the VNET-side name of every instance veth:
	// vmssv + 10 letters and digits (see VethName).
	VethPrefix = "vmssv"
	// InstanceIface is the name of the instance side of the veth, inside
	// the instance namespace.
	InstanceIface = "eth0"
)

// maxIfaceName is the longest interface name Linux accepts (IFNAMSIZ-1).
const maxIfaceName = 15

// DNSAddr is Azure's virtual public address (WireServer): internal DNS and
// the source of load balancer probes. Every VNET namespace has it on lo.
var DNSAddr = netip.MustParseAddr("168.63.129.16")

// InternetAddr is where traffic from outside the VNET comes from: the load
// balancer's public frontends and inbound NAT dial instances from it, so
// network security group rules about the Internet tag (and "*") apply to
// it as on Azure. Every VNET namespace has it on lo. It lies in
// 198.18.0.0/15, reserved for benchmarking and never routed.
var InternetAddr = netip.MustParseAddr("198.18.0.1")

// GatewayMAC is the MAC of every subnet gateway (the bridge), the address
// Azure's gateway answers with. A fixed bridge MAC also keeps the gateway's
// MAC stable when ports join (a bridge otherwise takes its lowest port MAC).
var GatewayMAC = net.HardwareAddr{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc}

// BridgeName returns the conventional name of subnet bridge n: vmssbr<n>.
// Callers that add and remove subnets should keep n stable per subnet.
func BridgeName(n int) string { return fmt.Sprintf("%s%d", BridgePrefix, n) }

// VethName returns the VNET-side veth name for an instance namespace:
// vmssv + the first 50 bits of the SHA-256 of the name, as 10 lower-case
// base32 digits. Two of 4,096 instances in one VNET share a name with a
// probability of about 7e-9 (it was 0.2% with 32 bits).
func VethName(instanceNetns string) string {
	sum := sha256.Sum256([]byte(instanceNetns))
	return VethPrefix + veth32.EncodeToString(sum[:7])[:maxIfaceName-len(VethPrefix)]
}

var veth32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// MACFor returns the deterministic MAC of a NIC with IPv4 address ip:
// Azure's 00:0d:3a prefix followed by the last three bytes of the address,
// so unique within any subnet of /8 or smaller. Nil for non-IPv4 addresses.
func MACFor(ip netip.Addr) net.HardwareAddr {
	if !ip.Is4() {
		return nil
	}
	b := ip.As4()
	return net.HardwareAddr{0x00, 0x0d, 0x3a, b[1], b[2], b[3]}
}

// GatewayOf returns a subnet's gateway: the first address after the network
// address (10.0.1.0/24 -> 10.0.1.1).
func GatewayOf(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// broadcastOf returns the last address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}
