package model

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"

	"github.com/vmss-emulator/vmss/arm"
)

// ParsePrefix parses an IPv4 CIDR and insists it is in canonical form
// (10.0.0.0/24, not 10.0.0.5/24), as Azure does.
func ParsePrefix(target, s string) (netip.Prefix, *arm.Error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, arm.Errorf(400, "InvalidAddressPrefixFormat", target,
			"Address prefix %q is not a valid IPv4 CIDR such as 10.0.0.0/16.", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, arm.Errorf(400, "InvalidCIDRNotation", target,
			"The address prefix %s in resource %s has an invalid CIDR notation. For the given prefix length, the address prefix should be %s.", s, target, p.Masked())
	}
	return p, nil
}

// Overlaps reports whether two prefixes share an address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// Contains reports whether outer contains the whole of inner.
func Contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// Broadcast returns the last address of p.
func Broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// Gateway is the subnet's .1 address.
func Gateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// UsableCount is how many addresses Azure lets VMs use in p: all but .0-.3 and broadcast.
func UsableCount(p netip.Prefix) int {
	size := new(big.Int).Lsh(big.NewInt(1), uint(32-p.Bits())).Int64()
	if size < 5 {
		return 0
	}
	return int(size - 5)
}

// AllocateIP returns the lowest address of p from .4 upward, below the
// broadcast address, that is not in used. subnetID names the subnet in the
// error when it is full.
func AllocateIP(subnetID string, p netip.Prefix, used map[netip.Addr]bool) (netip.Addr, *arm.Error) {
	bc := Broadcast(p)
	a := p.Addr()
	for i := 0; i < 4; i++ {
		a = a.Next()
	}
	for ; a.IsValid() && a.Less(bc); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, arm.Errorf(409, "SubnetIsFull", subnetID,
		"Subnet %s with address prefix %s does not have enough capacity for 1 more IP address (%d usable, all in use). Use a larger subnet or fewer instances.",
		subnetID, p, UsableCount(p))
}

// CheckStaticIP validates a requested private IP inside p.
func CheckStaticIP(target string, p netip.Prefix, s string, used map[netip.Addr]bool) (netip.Addr, *arm.Error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, arm.BadRequest(target, "Private IP address %q is not a valid IPv4 address.", s)
	}
	first := p.Addr().Next().Next().Next().Next()
	if !p.Contains(a) || a.Less(first) || a == Broadcast(p) {
		return netip.Addr{}, arm.Errorf(400, "PrivateIPAddressNotInSubnet", target,
			"Private IP address %s is not in the usable range of subnet %s (%s to %s).", a, p, first, Broadcast(p).Prev())
	}
	if used[a] {
		return netip.Addr{}, arm.Errorf(409, "PrivateIPAddressInUse", target, "Private IP address %s is already in use in subnet %s.", a, p)
	}
	return a, nil
}

// MACFor derives a stable MAC address from a key (the NIC's owner), in Azure's 00-0D-3A OUI.
func MACFor(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	v := h.Sum32()
	return fmt.Sprintf("00:0d:3a:%02x:%02x:%02x", byte(v>>16), byte(v>>8), byte(v))
}
