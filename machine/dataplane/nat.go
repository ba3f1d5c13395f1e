package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vmss-emulator/vmss/nat"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/reconcile"
)

// forwards are the inbound NAT forwards and what they mean for VMs' SSH
// endpoints.
type forwards struct {
	table *nat.Table

	mu          sync.Mutex
	chosen      map[string]uint16 // jumpbox mapping key -> port in use
	endpoints   map[string]string // instance netns -> ssh endpoint of its public IP
	endpointErr map[string]error  // instance netns -> why its public IP has no ssh endpoint
	owner       map[string]string // public addr/proto -> owner key, for health views
}

// natEntry is one mapping being applied: its candidate ports (the first is
// tried now) and, once it has none left, why it is not forwarded.
type natEntry struct {
	m     reconcile.NATMapping
	ports []uint16
	err   error
}

func (e *natEntry) public() netip.AddrPort { return netip.AddrPortFrom(e.m.Public.Addr(), e.ports[0]) }

func natKey(m reconcile.NATMapping) string { return m.Instance + "|" + m.Public.String() }

// applyNAT forwards every mapping it can. A public port already taken on the
// host fails only its own mapping (reported for its owner); a VM's SSH
// mapping falls back to its alternative ports.
func (p *Plane) applyNAT(ctx context.Context, want []reconcile.NATMapping, errs map[string]error) {
	entries, attempts := p.forwards.entries(want)
	for attempt := 0; attempt < attempts; attempt++ {
		ms, live := p.natMappings(entries)
		err := p.forwards.table.Apply(ctx, ms)
		if err == nil {
			p.forwards.commit(entries, live)
			return
		}
		var inUse *proxy.AddrInUseError
		if !errors.As(err, &inUse) || !dropTaken(p, live, inUse, err, errs) {
			// Not a taken port, or the taken address is none of the
			// mappings' own (cannot be retried away): report it for every
			// mapping.
			p.log.Error("inbound NAT", "err", err)
			for _, e := range live {
				errs[e.m.Owner] = err
			}
			return
		}
	}
}

// entries lists the mappings with their candidate ports (the port that
// worked last time first) and how many attempts may be needed (each failed
// attempt drops one candidate port).
func (f *forwards) entries(want []reconcile.NATMapping) ([]*natEntry, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var entries []*natEntry
	attempts := 1
	for _, m := range want {
		e := &natEntry{m: m, ports: []uint16{m.Public.Port()}}
		if len(m.FallbackPorts) > 0 {
			e.ports = append(e.ports, m.FallbackPorts...)
			if chosen, ok := f.chosen[natKey(m)]; ok {
				e.ports = append([]uint16{chosen}, e.ports...)
			}
		}
		attempts += len(e.ports)
		entries = append(entries, e)
	}
	return entries, attempts
}

// natMappings are the table's mappings for the entries that still have a
// port and whose VNET is open (the others wait for a later plan).
func (p *Plane) natMappings(entries []*natEntry) ([]nat.Mapping, []*natEntry) {
	var ms []nat.Mapping
	var live []*natEntry
	for _, e := range entries {
		if len(e.ports) == 0 {
			continue
		}
		dial := p.net.Dialer(e.m.VNetNetns, InternetSource) // inbound NAT forwards from outside the VNET
		if dial == nil {
			continue
		}
		ms = append(ms, nat.Mapping{
			Name: e.m.Name, Protocol: nat.Protocol(e.m.Protocol),
			Public:  e.public(),
			Backend: e.m.Backend, Dial: dial,
			IdleTimeout: e.m.IdleTimeout, EnableTCPReset: e.m.TCPReset,
		})
		live = append(live, e)
	}
	return ms, live
}

// dropTaken moves the live mapping whose port is taken to its next port, or
// drops it (reporting why for its owner). It returns false when no mapping
// has the taken address.
func dropTaken(p *Plane, live []*natEntry, inUse *proxy.AddrInUseError, err error, errs map[string]error) bool {
	for _, e := range live {
		if e.public().String() != inUse.Addr {
			continue
		}
		if len(e.ports) > 1 {
			p.log.Info("port taken on the host, using another", "mapping", e.m.Name, "taken", inUse.Addr, "next", e.ports[1])
			e.ports = e.ports[1:]
			return true
		}
		e.err = fmt.Errorf("%s: %w", e.m.Name, err)
		if len(e.m.FallbackPorts) > 0 {
			e.err = fmt.Errorf("%s: port %d and the fallback ports %v are all taken on the host: %w", e.m.Name, e.m.Public.Port(), e.m.FallbackPorts, err)
		}
		errs[e.m.Owner] = e.err
		e.ports = nil
		return true
	}
	return false
}

// commit records what an applied table forwards: each public address's
// owner, and a VM's SSH endpoint where its mapping is forwarded now or why
// it is not (VMs without a mapping have neither).
func (f *forwards) commit(entries, live []*natEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owner = map[string]string{}
	f.endpoints = map[string]string{}
	f.endpointErr = map[string]error{}
	chosen := map[string]uint16{}
	for _, e := range entries {
		if len(e.m.FallbackPorts) == 0 {
			continue
		}
		if e.err != nil {
			f.endpointErr[e.m.Instance] = e.err
			continue
		}
		if len(e.ports) > 0 {
			chosen[natKey(e.m)] = e.ports[0]
		}
	}
	for _, e := range live {
		f.owner[e.public().String()] = e.m.Owner
		if len(e.m.FallbackPorts) > 0 {
			f.endpoints[e.m.Instance] = e.public().String()
		}
	}
	f.chosen = chosen
}

// Endpoint is where a VM's public SSH answers (its public IP's port 22, or
// the fallback port when the host's own sshd holds 22).
func (p *Plane) Endpoint(netns string) string {
	p.forwards.mu.Lock()
	defer p.forwards.mu.Unlock()
	return p.forwards.endpoints[netns]
}

// EndpointError says why a VM's public IP does not forward SSH (nil when it
// does, or when the VM has no public IP).
func (p *Plane) EndpointError(netns string) error {
	p.forwards.mu.Lock()
	defer p.forwards.mu.Unlock()
	return p.forwards.endpointErr[netns]
}

// Forget drops what the data plane remembers of a deleted instance.
func (p *Plane) Forget(netns string) {
	p.filters.forget(netns)
	p.forwards.mu.Lock()
	defer p.forwards.mu.Unlock()
	delete(p.forwards.endpoints, netns)
	delete(p.forwards.endpointErr, netns)
}

// owners returns a copy of the public address -> owner map.
func (f *forwards) owners() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.owner))
	for k, v := range f.owner {
		out[k] = v
	}
	return out
}
