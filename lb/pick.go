package lb

import (
	"net/netip"
	"slices"
)

// rotate returns members starting at index start (mod len), wrapping: the
// round-robin choice first, the rest as fallbacks in order.
func rotate(ms []*member, start uint64) []*member {
	n := uint64(len(ms))
	if n == 0 {
		return nil
	}
	out := make([]*member, 0, n)
	for i := range n {
		out = append(out, ms[(start+i)%n])
	}
	return out
}

// byAffinity orders members by rendezvous (highest random weight) score
// for the client key: a client keeps its backend while that backend stays
// in the set, and a change in the set moves only the clients of the
// backends that came or went.
func byAffinity(ms []*member, client netip.Addr, proto Protocol, withProto bool) []*member {
	key := client.Unmap().AsSlice()
	if withProto {
		key = append(key, proto...)
	}
	type scored struct {
		m *member
		s uint64
	}
	sc := make([]scored, len(ms))
	for i, m := range ms {
		sc[i] = scored{m, score(key, m.name)}
	}
	slices.SortFunc(sc, func(a, b scored) int {
		switch {
		case a.s > b.s:
			return -1
		case a.s < b.s:
			return 1
		}
		return 0
	})
	out := make([]*member, len(sc))
	for i := range sc {
		out[i] = sc[i].m
	}
	return out
}

// score hashes key and name (FNV-1a 64, then a splitmix64 finaliser for
// avalanche). Deterministic, so affinity survives daemon restarts.
func score(key []byte, name string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range key {
		h = (h ^ uint64(b)) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
