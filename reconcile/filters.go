package reconcile

import (
	"net/netip"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/nsg"
)

// FilterPlan is the packet filter of one instance: the network security
// groups of its subnet and of its NIC.
type FilterPlan struct {
	Instance string // netns
	Owner    string // lower-cased id of the scale set or VM, for errors
	Filter   nsg.Instance
}

// securityFilters are the filters of every created instance. An instance
// whose subnet and NIC have no NSG gets a plan without one (its filter is
// removed). A reference to an NSG that does not exist counts as none: the
// API checks references when it can.
func securityFilters(st *model.State, desired []*Desired, exists map[string]bool) []FilterPlan {
	groups := map[string]*nsg.Group{}
	group := func(ref *arm.SubResource) *nsg.Group {
		if ref == nil || ref.ID == "" {
			return nil
		}
		key := arm.KeyOf(ref.ID)
		if g, ok := groups[key]; ok {
			return g
		}
		var g *nsg.Group
		if res, ok := st.Generic[key]; ok {
			g, _ = nsg.FromProperties(res.ID, res.Properties) // validated when it was stored
		}
		groups[key] = g
		return g
	}
	var out []FilterPlan
	for _, d := range desired {
		if !exists[d.Spec.Netns] || d.Deleting {
			continue
		}
		subnetID, nicNSG := instanceNetwork(st, d)
		ref, ok := st.LookupSubnet(subnetID)
		if !ok {
			continue
		}
		f := nsg.Instance{Subnet: group(ref.Subnet.Properties.NetworkSecurityGroup), NIC: group(nicNSG)}
		for _, p := range ref.VNet.Properties.AddressSpace.AddressPrefixes {
			if pf, err := netip.ParsePrefix(p); err == nil {
				f.VNet = append(f.VNet, pf)
			}
		}
		out = append(out, FilterPlan{Instance: d.Spec.Netns, Owner: d.SetKey, Filter: f})
	}
	return out
}

// instanceNetwork returns an instance's subnet id and the NSG of its
// (primary) NIC: the scale set's NIC configuration, or the VM's NIC.
func instanceNetwork(st *model.State, d *Desired) (subnetID string, nicNSG *arm.SubResource) {
	if d.Spec.Kind == "vm" {
		vm := st.VMs[d.SetKey]
		if vm == nil {
			return "", nil
		}
		nic, ipc := st.PrimaryNIC(vm)
		if nic == nil || ipc == nil || ipc.Properties.Subnet == nil {
			return "", nil
		}
		return ipc.Properties.Subnet.ID, nic.Properties.NetworkSecurityGroup
	}
	ss := st.ScaleSets[d.SetKey]
	if ss == nil {
		return "", nil
	}
	in := ss.Instances[d.Spec.InstanceID]
	if in == nil {
		return "", nil
	}
	if nc := ss.Profile().PrimaryNICConfig(); nc != nil {
		nicNSG = nc.Properties.NetworkSecurityGroup
	}
	return in.Subnet, nicNSG
}
