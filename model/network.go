package model

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// SubnetRef is a resolved subnet.
type SubnetRef struct {
	VNet   *arm.VirtualNetwork
	Subnet *arm.Subnet
	Prefix netip.Prefix
}

// LookupSubnet resolves a subnet id.
func (s *State) LookupSubnet(id string) (SubnetRef, bool) {
	pid, err := arm.ParseID(id)
	if err != nil || !pid.IsType(arm.TypeSubnet) {
		return SubnetRef{}, false
	}
	vn, ok := s.VNets[pid.Parent().Key()]
	if !ok {
		return SubnetRef{}, false
	}
	for i := range vn.Properties.Subnets {
		sn := &vn.Properties.Subnets[i]
		if strings.EqualFold(sn.Name, pid.Name()) {
			p, err := netip.ParsePrefix(sn.Prefix())
			if err != nil {
				return SubnetRef{}, false
			}
			return SubnetRef{VNet: vn, Subnet: sn, Prefix: p}, true
		}
	}
	return SubnetRef{}, false
}

// UsedIPs returns every private address taken in the subnet: scale-set
// instances (also those being deleted), NICs and internal load balancer frontends.
func (s *State) UsedIPs(subnetID string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	add := func(sid, ip string) {
		if ip == "" || !arm.EqualIDs(sid, subnetID) {
			return
		}
		if a, err := netip.ParseAddr(ip); err == nil {
			used[a] = true
		}
	}
	for _, ss := range s.ScaleSets {
		for _, in := range ss.Instances {
			add(in.Subnet, in.PrivateIP)
		}
	}
	for _, nic := range s.NICs {
		for _, c := range nic.Properties.IPConfigurations {
			if c.Properties.Subnet != nil {
				add(c.Properties.Subnet.ID, c.Properties.PrivateIPAddress)
			}
		}
	}
	for _, lb := range s.LoadBalancers {
		for _, f := range lb.Properties.FrontendIPConfigurations {
			if f.Properties.Subnet != nil {
				add(f.Properties.Subnet.ID, f.Properties.PrivateIPAddress)
			}
		}
	}
	return used
}

// subnetInUse reports who uses a subnet, "" when nobody does.
func (s *State) subnetInUse(subnetID string) string {
	for _, ss := range s.ScaleSets {
		for _, in := range ss.Instances {
			if arm.EqualIDs(in.Subnet, subnetID) {
				return ss.Model.ID
			}
		}
		for _, nc := range ss.Profile().NICConfigs() {
			for _, ic := range nc.Properties.IPConfigurations {
				if ic.Properties.Subnet != nil && arm.EqualIDs(ic.Properties.Subnet.ID, subnetID) {
					return ss.Model.ID
				}
			}
		}
	}
	for _, nic := range s.NICs {
		for _, c := range nic.Properties.IPConfigurations {
			if c.Properties.Subnet != nil && arm.EqualIDs(c.Properties.Subnet.ID, subnetID) {
				return nic.ID
			}
		}
	}
	for _, lb := range s.LoadBalancers {
		for _, f := range lb.Properties.FrontendIPConfigurations {
			if f.Properties.Subnet != nil && arm.EqualIDs(f.Properties.Subnet.ID, subnetID) {
				return lb.ID
			}
		}
	}
	return ""
}

// PutVNet creates or replaces a virtual network.
func (s *State) PutVNet(id arm.ID, body []byte) (*arm.VirtualNetwork, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypeVirtualNetwork, id.Name()); e != nil {
		return nil, false, e
	}
	var vn arm.VirtualNetwork
	if e := decode(id.String(), body, &vn); e != nil {
		return nil, false, e
	}
	old, exists := s.VNets[id.Key()]
	if exists {
		id = mustParse(old.ID)
	}
	vn.ID, vn.Name, vn.Type = id.String(), id.Name(), arm.TypeVirtualNetwork
	vn.Location = s.location(vn.Location)
	if len(vn.Properties.AddressSpace.AddressPrefixes) == 0 {
		return nil, false, arm.BadRequest("properties.addressSpace.addressPrefixes",
			"Virtual network %s needs at least one address prefix in properties.addressSpace.addressPrefixes, for example 10.0.0.0/16.", id.Name())
	}
	spaces, e := addressSpaces(id, &vn)
	if e != nil {
		return nil, false, e
	}
	if e := normalizeSubnets(id, &vn, spaces); e != nil {
		return nil, false, e
	}
	if exists {
		if e := s.checkSubnetsInUse(old, &vn); e != nil {
			return nil, false, e
		}
		vn.Properties.ResourceGUID = old.Properties.ResourceGUID
	} else {
		vn.Properties.ResourceGUID = guid("vnet", id.Key())
	}
	vn.Properties.ProvisioningState = "Succeeded"
	s.ensureGroup(id)
	s.claimNetnsWith(VNetPrefix(s.cfg.Prefix), id.Key(), id.ResourceGroup, id.Name())
	s.VNets[id.Key()] = &vn
	s.bump()
	return &vn, !exists, nil
}

// addressSpaces parses a VNET's address prefixes, which must not overlap.
func addressSpaces(id arm.ID, vn *arm.VirtualNetwork) ([]netip.Prefix, *arm.Error) {
	var spaces []netip.Prefix
	for i, ps := range vn.Properties.AddressSpace.AddressPrefixes {
		p, e := ParsePrefix("properties.addressSpace.addressPrefixes", ps)
		if e != nil {
			return nil, e
		}
		for _, q := range spaces {
			if p.Overlaps(q) {
				return nil, arm.Errorf(400, "VnetAddressSpacesOverlap", "properties.addressSpace.addressPrefixes",
					"Address prefix %s (index %d) overlaps %s in the same virtual network %s.", p, i, q, id.Name())
			}
		}
		spaces = append(spaces, p)
	}
	return spaces, nil
}

// normalizeSubnets checks a VNET's subnets (unique names, /29 or larger,
// inside the address space, not overlapping) and fills their ids.
func normalizeSubnets(id arm.ID, vn *arm.VirtualNetwork, spaces []netip.Prefix) *arm.Error {
	seen := map[string]bool{}
	var prefixes []netip.Prefix
	for i := range vn.Properties.Subnets {
		sn := &vn.Properties.Subnets[i]
		if e := ValidateName(arm.TypeSubnet, sn.Name); e != nil {
			return e
		}
		if seen[strings.ToLower(sn.Name)] {
			return arm.Errorf(400, "DuplicateResourceName", sn.Name,
				"Virtual network %s has two subnets named %s.", id.Name(), sn.Name)
		}
		seen[strings.ToLower(sn.Name)] = true
		p, e := ParsePrefix("properties.subnets["+sn.Name+"].properties.addressPrefix", sn.Prefix())
		if e != nil {
			return e
		}
		if p.Bits() > 29 {
			return arm.Errorf(400, "InvalidAddressPrefix", sn.Name,
				"Subnet %s: prefix %s is smaller than Azure's smallest subnet /29.", sn.Name, p)
		}
		if !slices.ContainsFunc(spaces, func(sp netip.Prefix) bool { return Contains(sp, p) }) {
			return arm.Errorf(400, "NetcfgSubnetRangeOutsideVnet", sn.Name,
				"Subnet '%s' is not valid because its IP address range %s is outside the IP address range of virtual network '%s' (%s).",
				sn.Name, p, id.Name(), strings.Join(vn.Properties.AddressSpace.AddressPrefixes, ", "))
		}
		for j, q := range prefixes {
			if p.Overlaps(q) {
				return arm.Errorf(400, "NetcfgSubnetRangesOverlap", sn.Name,
					"Subnet '%s' is not valid because its IP address range %s overlaps with that of subnet '%s' (%s).",
					sn.Name, p, vn.Properties.Subnets[j].Name, q)
			}
		}
		prefixes = append(prefixes, p)
		sn.ID = sub(vn.ID, "subnets", sn.Name)
		sn.Type = arm.TypeSubnet
		sn.Properties.ProvisioningState = "Succeeded"
		sn.Properties.IPConfigurations = nil
	}
	return nil
}

// checkSubnetsInUse refuses to remove a subnet in use, or change its prefix.
func (s *State) checkSubnetsInUse(old, vn *arm.VirtualNetwork) *arm.Error {
	for _, osn := range old.Properties.Subnets {
		var nsn *arm.Subnet
		for i := range vn.Properties.Subnets {
			if strings.EqualFold(vn.Properties.Subnets[i].Name, osn.Name) {
				nsn = &vn.Properties.Subnets[i]
			}
		}
		user := s.subnetInUse(osn.ID)
		if user == "" {
			continue
		}
		if nsn == nil {
			return arm.Errorf(400, "InUseSubnetCannotBeDeleted", osn.ID,
				"Subnet %s is in use by %s and cannot be deleted. Delete that resource first.", osn.Name, user)
		}
		if nsn.Prefix() != osn.Prefix() {
			return arm.Errorf(400, "InUseSubnetCannotBeUpdated", osn.ID,
				"Subnet %s is in use by %s; its address prefix cannot change from %s to %s.", osn.Name, user, osn.Prefix(), nsn.Prefix())
		}
	}
	return nil
}

// VNetNetns is the kernel name of a VNET's namespace.
func (s *State) VNetNetns(vnetKey string) string {
	for n, o := range s.Netns {
		if o == vnetKey {
			return n
		}
	}
	return ""
}

// PutPublicIP creates or replaces a public IP. The address is a host address
// from the configured range; a body that names an ipAddress pins it.
func (s *State) PutPublicIP(id arm.ID, body []byte) (*arm.PublicIPAddress, bool, *arm.Error) {
	if e := s.checkScope(id); e != nil {
		return nil, false, e
	}
	if e := ValidateName(arm.TypePublicIP, id.Name()); e != nil {
		return nil, false, e
	}
	var pip arm.PublicIPAddress
	if e := decode(id.String(), body, &pip); e != nil {
		return nil, false, e
	}
	old, exists := s.PublicIPs[id.Key()]
	if exists {
		id = mustParse(old.ID)
	}
	pip.ID, pip.Name, pip.Type = id.String(), id.Name(), arm.TypePublicIP
	pip.Location = s.location(pip.Location)
	switch strings.ToLower(pip.Properties.PublicIPAllocationMethod) {
	case "":
		pip.Properties.PublicIPAllocationMethod = "Dynamic"
	case "static":
		pip.Properties.PublicIPAllocationMethod = "Static"
	case "dynamic":
		pip.Properties.PublicIPAllocationMethod = "Dynamic"
	default:
		return nil, false, arm.BadRequest("properties.publicIPAllocationMethod",
			"publicIPAllocationMethod %q is not valid: use Static or Dynamic.", pip.Properties.PublicIPAllocationMethod)
	}
	if v := pip.Properties.PublicIPAddressVersion; v != "" && !strings.EqualFold(v, "IPv4") {
		return nil, false, arm.BadRequest("properties.publicIPAddressVersion", "Only IPv4 public IPs are emulated, got %s.", v)
	}
	want := pip.Properties.IPAddress
	switch {
	case want != "":
		a, err := netip.ParseAddr(want)
		if err != nil || !a.Is4() {
			return nil, false, arm.BadRequest("properties.ipAddress", "ipAddress %q is not an IPv4 host address.", want)
		}
		if owner := s.publicIPOwner(a); owner != "" && !strings.EqualFold(owner, id.String()) && !a.IsUnspecified() {
			return nil, false, arm.Errorf(409, "PublicIPAddressInUse", "properties.ipAddress",
				"Host address %s is already given to public IP %s.", a, owner)
		}
	case exists && old.Properties.IPAddress != "":
		pip.Properties.IPAddress = old.Properties.IPAddress
	default:
		a, e := s.allocatePublicAddr()
		if e != nil {
			return nil, false, e
		}
		pip.Properties.IPAddress = a.String()
	}
	if ds := pip.Properties.DNSSettings; ds != nil && ds.DomainNameLabel != "" {
		ds.DomainNameLabel = strings.ToLower(ds.DomainNameLabel)
		ds.Fqdn = ds.DomainNameLabel + "." + strings.ToLower(strings.ReplaceAll(pip.Location, " ", "")) + ".cloudapp.azure.com"
	}
	if exists {
		pip.Properties.ResourceGUID = old.Properties.ResourceGUID
	} else {
		pip.Properties.ResourceGUID = guid("pip", id.Key())
	}
	pip.Properties.IPConfiguration = nil
	pip.Properties.ProvisioningState = "Succeeded"
	s.ensureGroup(id)
	s.PublicIPs[id.Key()] = &pip
	s.bump()
	return &pip, !exists, nil
}

func (s *State) publicIPOwner(a netip.Addr) string {
	return s.usedPublicAddrs()[a.String()]
}

func (s *State) allocatePublicAddr() (netip.Addr, *arm.Error) {
	return s.freePublicAddr(s.usedPublicAddrs())
}

// PublicIPUser returns the id of the frontend or NIC ip configuration using a
// public IP, "" when none does.
func (s *State) PublicIPUser(pipID string) string {
	for _, lb := range s.LoadBalancers {
		for _, f := range lb.Properties.FrontendIPConfigurations {
			if f.Properties.PublicIPAddress != nil && arm.EqualIDs(f.Properties.PublicIPAddress.ID, pipID) {
				return f.ID
			}
		}
	}
	for _, nic := range s.NICs {
		for _, c := range nic.Properties.IPConfigurations {
			if c.Properties.PublicIPAddress != nil && arm.EqualIDs(c.Properties.PublicIPAddress.ID, pipID) {
				return c.ID
			}
		}
	}
	return ""
}

func mustParse(s string) arm.ID {
	id, err := arm.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}
