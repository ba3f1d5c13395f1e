package model

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// InstancePIP is where a scale set's per-instance public IPs come from: the
// primary NIC configuration's primary ip configuration and its
// publicIPAddressConfiguration.
type InstancePIP struct {
	NIC    string // NIC configuration name
	IPConf string // ip configuration name
	Config *arm.ScaleSetPublicIPConfig
}

// InstancePublicIPConfig returns the scale set's per-instance public IP
// configuration, nil when its instances get none.
func InstancePublicIPConfig(ss *ScaleSet) *InstancePIP {
	vp := ss.Profile()
	nc, ic := vp.PrimaryNICConfig(), vp.PrimaryIPConfig()
	if nc == nil || ic == nil {
		return nil
	}
	c, err := ic.Properties.PublicIPConfig()
	if err != nil || c == nil {
		return nil // stored profiles were validated: a decode error cannot happen here
	}
	return &InstancePIP{NIC: nc.Name, IPConf: ic.Name, Config: c}
}

var domainLabelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,61}[a-z0-9]$`)

// validatePublicIPConfig checks an ip configuration's publicIPAddressConfiguration.
func validatePublicIPConfig(target string, ic *arm.ScaleSetIPConfig) *arm.Error {
	c, err := ic.Properties.PublicIPConfig()
	if err != nil {
		return arm.BadRequest(target+".publicIPAddressConfiguration", "publicIPAddressConfiguration is not valid: %v.", err)
	}
	if c == nil {
		return nil
	}
	t := target + ".publicIPAddressConfiguration"
	if c.Name == "" {
		return arm.BadRequest(t+".name", "A publicIPAddressConfiguration needs a name.")
	}
	if e := ValidateName(arm.TypePublicIP, c.Name); e != nil {
		return e
	}
	if n := c.Properties.IdleTimeoutInMinutes; n != nil && (*n < 4 || *n > 30) {
		return arm.BadRequest(t+".properties.idleTimeoutInMinutes",
			"idleTimeoutInMinutes %d is not valid: it must be between 4 and 30.", int64(*n))
	}
	if v := c.Properties.PublicIPAddressVersion; v != "" && !strings.EqualFold(v, "IPv4") {
		return arm.BadRequest(t+".properties.publicIPAddressVersion", "Only IPv4 public IPs are emulated, got %s.", v)
	}
	if ds := c.Properties.DNSSettings; ds != nil {
		if !domainLabelRE.MatchString(ds.DomainNameLabel) {
			return arm.Errorf(400, "InvalidDomainNameLabel", t+".properties.dnsSettings.domainNameLabel",
				"The domain name label %q is invalid. It must conform to the following regular expression: ^[a-z][a-z0-9-]{1,61}[a-z0-9]$.",
				ds.DomainNameLabel)
		}
	}
	return nil
}

// usedPublicAddrs are the host addresses given to public IP resources and to
// scale-set instances' own public IPs.
func (s *State) usedPublicAddrs() map[string]string {
	used := map[string]string{}
	for _, p := range s.PublicIPs {
		if p.Properties.IPAddress != "" {
			used[p.Properties.IPAddress] = p.ID
		}
	}
	for _, ss := range s.ScaleSets {
		for _, in := range ss.Instances {
			if in.PublicIP != "" {
				used[in.PublicIP] = ss.Model.ID + "/virtualMachines/" + in.ID
			}
		}
	}
	return used
}

// assignInstancePublicIPs gives each instance of ss without one an address
// of the public IP range when the scale set asks for per-instance public
// IPs, and takes them back when it no longer does. An instance keeps its
// address for its life. ss may be a working copy not yet in the state: the
// addresses it holds count as taken besides the state's.
func (s *State) assignInstancePublicIPs(ss *ScaleSet) *arm.Error {
	if InstancePublicIPConfig(ss) == nil {
		for _, in := range ss.Instances {
			in.PublicIP = ""
		}
		return nil
	}
	used := s.usedPublicAddrs()
	for _, in := range ss.Instances {
		if in.PublicIP != "" {
			used[in.PublicIP] = in.ID
		}
	}
	for _, in := range ss.SortedInstances() {
		if in.PublicIP != "" {
			continue
		}
		a, e := s.freePublicAddr(used)
		if e != nil {
			return e
		}
		in.PublicIP = a.String()
		used[in.PublicIP] = in.ID
	}
	return nil
}

// freePublicAddr is the lowest address of the public IP range not in used.
func (s *State) freePublicAddr(used map[string]string) (netip.Addr, *arm.Error) {
	r := s.cfg.PublicIPRange
	for a := r.Addr().Next(); r.Contains(a) && a != Broadcast(r); a = a.Next() {
		if _, taken := used[a.String()]; !taken {
			return a, nil
		}
	}
	return netip.Addr{}, arm.Errorf(409, "PublicIPCountLimitReached", "",
		"All %d host addresses of the public IP range %s are in use. Delete unused public IPs or scale sets with per-instance public IPs, or start the daemon with a larger --public-ip-range.",
		UsableCount(r)+3, r)
}

// InstancePublicIPID is the id Azure gives an instance's own public IP.
func InstancePublicIPID(ss *ScaleSet, instanceID string, c *InstancePIP) string {
	return ss.Model.ID + "/virtualMachines/" + instanceID + "/networkInterfaces/" + c.NIC +
		"/ipConfigurations/" + c.IPConf + "/publicIPAddresses/" + c.Config.Name
}

// InstanceFQDN is the DNS name of an instance's public IP:
// vm<instance id>.<domainNameLabel>.<location>.cloudapp.azure.com, "" without a label.
func InstanceFQDN(ss *ScaleSet, instanceID string, c *InstancePIP) string {
	ds := c.Config.Properties.DNSSettings
	if ds == nil || ds.DomainNameLabel == "" {
		return ""
	}
	return "vm" + instanceID + "." + ds.DomainNameLabel + "." +
		strings.ToLower(strings.ReplaceAll(ss.Model.Location, " ", "")) + ".cloudapp.azure.com"
}

// InstancePublicIP is the public IP resource of one instance as ARM lists it
// (nil when the instance has none).
func InstancePublicIP(ss *ScaleSet, in *Instance) *arm.PublicIPAddress {
	c := InstancePublicIPConfig(ss)
	if c == nil || in.PublicIP == "" {
		return nil
	}
	id := InstancePublicIPID(ss, in.ID, c)
	pip := &arm.PublicIPAddress{}
	pip.ID, pip.Name, pip.Type, pip.Location = id, c.Config.Name, arm.TypePublicIP, ss.Model.Location
	pip.Sku = c.Config.Sku
	if len(pip.Sku) == 0 {
		pip.Sku = []byte(`{"name":"Basic","tier":"Regional"}`)
	}
	p := &pip.Properties
	p.PublicIPAllocationMethod = "Static"
	p.PublicIPAddressVersion = "IPv4"
	p.IPAddress = in.PublicIP
	p.IdleTimeoutInMinutes = c.Config.Properties.IdleTimeoutInMinutes
	if p.IdleTimeoutInMinutes == nil {
		four := arm.Int(4)
		p.IdleTimeoutInMinutes = &four
	}
	if f := InstanceFQDN(ss, in.ID, c); f != "" {
		p.DNSSettings = &arm.DNSSettings{DomainNameLabel: "vm" + in.ID + "." + c.Config.Properties.DNSSettings.DomainNameLabel, Fqdn: f}
	}
	p.IPConfiguration = &arm.SubResource{ID: strings.TrimSuffix(id, "/publicIPAddresses/"+c.Config.Name)}
	p.ProvisioningState = "Succeeded"
	p.ResourceGUID = guid("pip", strings.ToLower(id))
	return pip
}

// InstancePublicIPs lists the public IPs of a scale set's instances,
// ordered by instance id.
func InstancePublicIPs(ss *ScaleSet) []arm.PublicIPAddress {
	out := []arm.PublicIPAddress{}
	for _, in := range ss.SortedInstances() {
		if p := InstancePublicIP(ss, in); p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// PublicDNSRecord is a public IP's DNS name and address.
type PublicDNSRecord struct {
	FQDN string
	IP   netip.Addr
}

// PublicDNSRecords are the DNS names of every public IP with a label:
// public IP resources and scale-set instances' own public IPs.
func (s *State) PublicDNSRecords() []PublicDNSRecord {
	var out []PublicDNSRecord
	add := func(fqdn, ip string) {
		a, err := netip.ParseAddr(ip)
		if fqdn == "" || err != nil {
			return
		}
		out = append(out, PublicDNSRecord{FQDN: strings.ToLower(fqdn), IP: a})
	}
	for _, p := range s.PublicIPs {
		if p.Properties.DNSSettings != nil {
			add(p.Properties.DNSSettings.Fqdn, p.Properties.IPAddress)
		}
	}
	for _, ss := range s.ScaleSets {
		c := InstancePublicIPConfig(ss)
		if c == nil {
			continue
		}
		for _, in := range ss.Instances {
			if !in.Deleting {
				add(InstanceFQDN(ss, in.ID, c), in.PublicIP)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FQDN < out[j].FQDN })
	return out
}

// InstanceNICs are the network interfaces of one scale-set instance as ARM
// shows them (…/virtualMachines/{id}/networkInterfaces/{nic}): one per NIC
// configuration; the primary ip configuration has the instance's private
// address and references its public IP.
func InstanceNICs(ss *ScaleSet, in *Instance) []arm.NetworkInterface {
	vp := ss.Profile()
	pc := InstancePublicIPConfig(ss)
	primaryNIC, primaryIP := vp.PrimaryNICConfig(), vp.PrimaryIPConfig()
	var out []arm.NetworkInterface
	for _, nc := range vp.NICConfigs() {
		nicID := ss.Model.ID + "/virtualMachines/" + in.ID + "/networkInterfaces/" + nc.Name
		nic := arm.NetworkInterface{}
		nic.ID, nic.Name, nic.Type, nic.Location = nicID, nc.Name, arm.TypeNIC, ss.Model.Location
		isPrimary := primaryNIC != nil && primaryNIC.Name == nc.Name
		nic.Properties = arm.NetworkInterfaceProperties{
			NetworkSecurityGroup: nc.Properties.NetworkSecurityGroup,
			VirtualMachine:       &arm.SubResource{ID: ss.Model.ID + "/virtualMachines/" + in.ID},
			Primary:              arm.BoolPtr(isPrimary),
			DNSSettings:          nc.Properties.DNSSettings,
			EnableIPForwarding:   nc.Properties.EnableIPForwarding,
			ProvisioningState:    "Succeeded",
			ResourceGUID:         guid("nic", strings.ToLower(nicID)),
			IPConfigurations:     []arm.NICIPConfiguration{},
		}
		if isPrimary {
			nic.Properties.MacAddress = strings.ToUpper(strings.ReplaceAll(in.MAC, ":", "-"))
		}
		for _, ic := range nc.Properties.IPConfigurations {
			c := arm.NICIPConfiguration{ID: nicID + "/ipConfigurations/" + ic.Name, Name: ic.Name}
			c.Properties = arm.NICIPConfigurationP{
				Subnet:                          ic.Properties.Subnet,
				PrivateIPAllocationMethod:       "Dynamic",
				LoadBalancerBackendAddressPools: ic.Properties.LoadBalancerBackendAddressPools,
				ProvisioningState:               "Succeeded",
			}
			if isPrimary && primaryIP != nil && primaryIP.Name == ic.Name {
				c.Properties.Primary = arm.BoolPtr(true)
				c.Properties.PrivateIPAddress = in.PrivateIP
				if pc != nil && in.PublicIP != "" {
					c.Properties.PublicIPAddress = &arm.SubResource{ID: InstancePublicIPID(ss, in.ID, pc)}
				}
			}
			nic.Properties.IPConfigurations = append(nic.Properties.IPConfigurations, c)
		}
		out = append(out, nic)
	}
	return out
}
