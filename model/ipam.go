package model

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"strings"

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

// Allocator hands out the private addresses of one request. It starts from
// every address the state holds (scale-set instances, NICs, internal load
// balancer frontends) and remembers each address the request takes, so two
// addresses of one request — two frontends, the ip configurations of a NIC,
// the instances of a scale-out — never collide. Every private address is
// allocated through an Allocator.
type Allocator struct {
	s    *State
	used map[string]map[netip.Addr]bool // by lower-case subnet id
}

// Allocator returns a fresh allocator over the current state.
func (s *State) Allocator() *Allocator {
	return &Allocator{s: s, used: map[string]map[netip.Addr]bool{}}
}

func (a *Allocator) subnet(subnetID string) map[netip.Addr]bool {
	k := strings.ToLower(subnetID)
	u, ok := a.used[k]
	if !ok {
		u = a.s.UsedIPs(subnetID)
		a.used[k] = u
	}
	return u
}

// Release gives back an address the request's resource held before (a
// frontend or ip configuration being replaced), so the same request may
// take it again. Addresses not in use are ignored.
func (a *Allocator) Release(subnetID, addr string) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		delete(a.subnet(subnetID), ip)
	}
}

// Take marks an address as used by the request (one it keeps).
func (a *Allocator) Take(subnetID, addr string) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		a.subnet(subnetID)[ip] = true
	}
}

// InUse reports whether addr is taken in the subnet, by the state or by
// this request.
func (a *Allocator) InUse(subnetID string, addr netip.Addr) bool {
	return a.subnet(subnetID)[addr]
}

// Dynamic allocates the lowest free address of the subnet (see AllocateIP)
// and marks it taken.
func (a *Allocator) Dynamic(ref SubnetRef) (netip.Addr, *arm.Error) {
	ip, e := AllocateIP(ref.Subnet.ID, ref.Prefix, a.subnet(ref.Subnet.ID))
	if e != nil {
		return netip.Addr{}, e
	}
	a.subnet(ref.Subnet.ID)[ip] = true
	return ip, nil
}

// Static checks a requested address (see CheckStaticIP) and marks it taken.
func (a *Allocator) Static(target string, ref SubnetRef, addr string) (netip.Addr, *arm.Error) {
	ip, e := CheckStaticIP(target, ref.Prefix, addr, a.subnet(ref.Subnet.ID))
	if e != nil {
		return netip.Addr{}, e
	}
	a.subnet(ref.Subnet.ID)[ip] = true
	return ip, nil
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
