package nat

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vmss-emulator/vmss/nat/natport"
)

// Protocol is a frontend protocol in ARM spelling (see natport).
type Protocol = natport.Protocol

// Protocols.
const (
	Tcp = natport.Tcp
	Udp = natport.Udp
	All = natport.All // both
)

// ParseProtocol reads "Tcp", "udp", "ALL" … case-insensitively. Empty
// means Tcp.
func ParseProtocol(s string) (Protocol, error) { return natport.ParseProtocol(s) }

// networks returns the socket networks a protocol listens on.
func networks(p Protocol) []string {
	switch p.Norm() {
	case Udp:
		return []string{"udp"}
	case All:
		return []string{"tcp", "udp"}
	}
	return []string{"tcp"}
}

// PoolMappings turns a pool's port assignment into data-plane mappings,
// named "<pool>.<instanceId>", ordered by instance id. ip returns an
// instance's private IP; instances it does not know are skipped. Dial,
// Listen and timeouts are left for the caller to fill in.
func PoolMappings(pool natport.Pool, ports map[int]int, ip func(id int) (netip.Addr, bool)) []Mapping {
	ids := slices.Sorted(maps.Keys(ports))
	out := make([]Mapping, 0, len(ids))
	for _, id := range ids {
		addr, ok := ip(id)
		if !ok {
			continue
		}
		out = append(out, Mapping{
			Name:     fmt.Sprintf("%s.%d", pool.Name, id),
			Protocol: pool.Protocol,
			Public:   netip.AddrPortFrom(pool.FrontendIP, uint16(ports[id])),
			Backend:  netip.AddrPortFrom(addr, uint16(pool.BackendPort)),
		})
	}
	return out
}
