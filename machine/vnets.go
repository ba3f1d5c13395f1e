package machine

import (
	"context"
	"net/netip"

	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/vnet"
)

// EnsureVNet creates or updates a VNET namespace and runs its DNS server.
func (m *Machine) EnsureVNet(ctx context.Context, v reconcile.VNetSpec) error {
	spec := vnet.Spec{Netns: v.Netns}
	var prefixes []netip.Prefix
	for _, s := range v.Subnets {
		spec.Subnets = append(spec.Subnets, vnet.Subnet{Name: s.Name, Prefix: s.Prefix, Bridge: s.Bridge})
		prefixes = append(prefixes, s.Prefix)
	}
	if err := m.vnets.Ensure(ctx, spec); err != nil {
		return err
	}
	return m.plane.OpenVNet(v.Netns, v.Suffix, prefixes)
}

// DeleteVNet stops a VNET's servers and removes its namespace.
func (m *Machine) DeleteVNet(ctx context.Context, netns string) error {
	m.plane.CloseVNet(netns)
	return m.vnets.Delete(ctx, netns)
}

// VNets lists the VNET namespaces with the machine's prefix.
func (m *Machine) VNets(ctx context.Context) ([]string, error) {
	return vnet.List(m.VNetPrefix())
}

// ApplyPlan configures DNS records, inbound NAT and load balancers (see
// dataplane.Plane.Apply).
func (m *Machine) ApplyPlan(ctx context.Context, p *reconcile.Plan) map[string]error {
	return m.plane.Apply(ctx, p)
}

// Drain takes an instance out of every pool and waits for its flows (up to
// the pools' drain periods).
func (m *Machine) Drain(ctx context.Context, netns string) error {
	return m.plane.Drain(ctx, netns)
}

var _ reconcile.Kernel = (*Machine)(nil)
