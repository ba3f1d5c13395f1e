package reconcile

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/nsg"
)

// maxInstancePublicPorts bounds the ports one instance's public IP forwards.
const maxInstancePublicPorts = 512

// maxNSGRange is the widest port range of a security rule that is
// forwarded; wider ranges (and "*") are left out.
const maxNSGRange = 256

// PublicPort is one port (and protocol) an instance's public IP forwards.
type PublicPort struct {
	Protocol string // Tcp or Udp
	Port     uint16
}

// InstancePublicPorts are the ports a scale set's per-instance public IPs
// forward: 22 (SSH), the backend ports of the load-balancing rules and NAT
// pools of the scale set's backend pools, and the destination ports (single
// ports and ranges up to 256 ports) of the inbound Allow rules of the
// network security groups on its subnet and NIC configuration. A userspace
// forwarder cannot listen on every port of an address without the host's
// firewall; these are the ports a Standard public IP lets in anyway (its
// traffic needs an NSG Allow) and the ones the scale set serves.
func InstancePublicPorts(st *model.State, ss *model.ScaleSet) []PublicPort {
	set := map[PublicPort]bool{{"Tcp", 22}: true}
	add := func(proto string, lo, hi int) {
		if lo < 1 || hi > 65535 || hi < lo || hi-lo >= maxNSGRange {
			return
		}
		for p := lo; p <= hi; p++ {
			switch strings.ToLower(proto) {
			case "tcp", "*", "all", "":
				set[PublicPort{"Tcp", uint16(p)}] = true
			}
			switch strings.ToLower(proto) {
			case "udp", "all":
				set[PublicPort{"Udp", uint16(p)}] = true
			}
		}
	}
	vp := ss.Profile()
	pools := map[string]bool{}
	natPools := map[string]bool{}
	var subnetNSG *arm.SubResource
	for _, nc := range vp.NICConfigs() {
		for _, ic := range nc.Properties.IPConfigurations {
			for _, r := range ic.Properties.LoadBalancerBackendAddressPools {
				pools[arm.KeyOf(r.ID)] = true
			}
			for _, r := range ic.Properties.LoadBalancerInboundNatPools {
				natPools[arm.KeyOf(r.ID)] = true
			}
			if ic.Properties.Subnet != nil && subnetNSG == nil {
				if ref, ok := st.LookupSubnet(ic.Properties.Subnet.ID); ok {
					subnetNSG = ref.Subnet.Properties.NetworkSecurityGroup
				}
			}
		}
	}
	for _, lb := range st.LoadBalancers {
		for _, r := range lb.Properties.LoadBalancingRules {
			if r.Properties.BackendAddressPool != nil && pools[arm.KeyOf(r.Properties.BackendAddressPool.ID)] {
				p := int(arm.IntOr(r.Properties.BackendPort, 0))
				add(r.Properties.Protocol, p, p)
			}
		}
		for _, np := range lb.Properties.InboundNatPools {
			if natPools[arm.KeyOf(np.ID)] {
				p := int(arm.IntOr(np.Properties.BackendPort, 0))
				add(np.Properties.Protocol, p, p)
			}
		}
	}
	var nicNSG *arm.SubResource
	if nc := vp.PrimaryNICConfig(); nc != nil {
		nicNSG = nc.Properties.NetworkSecurityGroup
	}
	for _, ref := range []*arm.SubResource{subnetNSG, nicNSG} {
		if ref == nil {
			continue
		}
		res, ok := st.Generic[arm.KeyOf(ref.ID)]
		if !ok {
			continue
		}
		g, _ := nsg.FromProperties(res.ID, res.Properties) // validated when it was stored
		if g == nil {
			continue
		}
		for _, r := range g.Rules {
			if r.Direction != nsg.Inbound || r.Access != nsg.Allow {
				continue
			}
			for _, pr := range r.DestPorts {
				lo, hi, ok := portRange(pr)
				if ok {
					add(r.Protocol, lo, hi)
				}
			}
		}
	}
	out := make([]PublicPort, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	if len(out) > maxInstancePublicPorts {
		out = out[:maxInstancePublicPorts]
	}
	return out
}

// portRange parses "80" or "8000-8080"; "*" is not a range to forward.
func portRange(s string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	l, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return l, l, true
	}
	h, err := strconv.Atoi(b)
	if err != nil {
		return 0, 0, false
	}
	return l, h, true
}

// instancePublicIPs forwards the ports of each created instance's own
// public IP (publicIPAddressConfiguration) to its private address. Flows
// come from outside the VNET, as through inbound NAT, so network security
// groups see them as Internet traffic.
func (b *planner) instancePublicIPs(setKey string, ss *model.ScaleSet) {
	c := model.InstancePublicIPConfig(ss)
	if c == nil {
		return
	}
	ports := InstancePublicPorts(b.st, ss)
	idle := time.Duration(arm.IntOr(c.Config.Properties.IdleTimeoutInMinutes, 4)) * time.Minute
	for _, in := range ss.Live() {
		d := b.byKey[setKey+"/"+in.ID]
		pub, err := netip.ParseAddr(in.PublicIP)
		if d == nil || err != nil || !b.exists[in.Netns] || !d.Spec.Addr.IsValid() {
			continue
		}
		for _, p := range ports {
			var fallback []uint16
			if p.Port == 22 && p.Protocol == "Tcp" {
				// As a jumpbox's: the host's own sshd may hold port 22 of
				// every address; SSH then answers on a fallback port (the
				// instance view's SSHEndpoint status says which).
				fallback = b.o.JumpboxFallbackPorts
			}
			b.nat = append(b.nat, NATMapping{
				Owner:         setKey,
				Name:          fmt.Sprintf("%s → %s:%d/%s", c.Config.Name, in.Name, p.Port, strings.ToLower(p.Protocol)),
				Protocol:      p.Protocol,
				Public:        netip.AddrPortFrom(pub, p.Port),
				VNetNetns:     d.Spec.VNetNetns,
				Backend:       netip.AddrPortFrom(d.Spec.Addr.Addr(), p.Port),
				Instance:      in.Netns,
				IdleTimeout:   idle,
				FallbackPorts: fallback,
			})
		}
	}
}
