package arm

import "encoding/json"

// Resource types the emulator models, as ARM spells them.
const (
	TypeVirtualNetwork  = "Microsoft.Network/virtualNetworks"
	TypeSubnet          = "Microsoft.Network/virtualNetworks/subnets"
	TypePublicIP        = "Microsoft.Network/publicIPAddresses"
	TypeLoadBalancer    = "Microsoft.Network/loadBalancers"
	TypeNIC             = "Microsoft.Network/networkInterfaces"
	TypeNSG             = "Microsoft.Network/networkSecurityGroups"
	TypeVM              = "Microsoft.Compute/virtualMachines"
	TypeScaleSet        = "Microsoft.Compute/virtualMachineScaleSets"
	TypeScaleSetVM      = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
	TypeStorageAccount  = "Microsoft.Storage/storageAccounts"
	TypeAutoscale       = "Microsoft.Insights/autoscaleSettings"
	TypeDeployment      = "Microsoft.Resources/deployments"
	TypeResourceGroup   = "Microsoft.Resources/resourceGroups"
	TypeScaleSetExt     = "Microsoft.Compute/virtualMachineScaleSets/extensions"
	TypeVMExtension     = "Microsoft.Compute/virtualMachines/extensions"
	TypeAvailabilitySet = "Microsoft.Compute/availabilitySets"
)

// SubResource is a reference to another resource by id.
type SubResource struct {
	ID string `json:"id"`
}

// Sku is a resource SKU. Capacity is the scale set's instance count.
type Sku struct {
	Name     string `json:"name,omitempty"`
	Tier     string `json:"tier,omitempty"`
	Capacity *Int   `json:"capacity,omitempty"`
}

// Meta holds the fields every tracked resource has.
type Meta struct {
	ID       string            `json:"id,omitempty"`
	Name     string            `json:"name,omitempty"`
	Type     string            `json:"type,omitempty"`
	Location string            `json:"location,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Etag     string            `json:"etag,omitempty"`
	Zones    []string          `json:"zones,omitempty"`
}

// ResourceGroup is a resource group.
type ResourceGroup struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name,omitempty"`
	Type       string            `json:"type,omitempty"`
	Location   string            `json:"location,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties struct {
		ProvisioningState string `json:"provisioningState,omitempty"`
	} `json:"properties"`
}

// GenericResource is a resource the emulator stores without acting on it
// (network security groups, storage accounts, autoscale settings).
type GenericResource struct {
	Meta
	Kind       string          `json:"kind,omitempty"`
	Sku        json.RawMessage `json:"sku,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// ---- Microsoft.Network/virtualNetworks ----

// VirtualNetwork is a VNET.
type VirtualNetwork struct {
	Meta
	Properties VirtualNetworkProperties `json:"properties"`
}

// VirtualNetworkProperties are a VNET's properties.
type VirtualNetworkProperties struct {
	AddressSpace      AddressSpace    `json:"addressSpace"`
	Subnets           []Subnet        `json:"subnets,omitempty"`
	DhcpOptions       json.RawMessage `json:"dhcpOptions,omitempty"`
	ProvisioningState string          `json:"provisioningState,omitempty"`
	ResourceGUID      string          `json:"resourceGuid,omitempty"`
}

// AddressSpace lists a VNET's prefixes.
type AddressSpace struct {
	AddressPrefixes []string `json:"addressPrefixes"`
}

// Subnet is a subnet of a VNET.
type Subnet struct {
	ID         string           `json:"id,omitempty"`
	Name       string           `json:"name"`
	Type       string           `json:"type,omitempty"`
	Properties SubnetProperties `json:"properties"`
}

// SubnetProperties are a subnet's properties.
type SubnetProperties struct {
	AddressPrefix        string          `json:"addressPrefix,omitempty"`
	AddressPrefixes      []string        `json:"addressPrefixes,omitempty"`
	NetworkSecurityGroup *SubResource    `json:"networkSecurityGroup,omitempty"`
	IPConfigurations     []SubResource   `json:"ipConfigurations,omitempty"`
	ServiceEndpoints     json.RawMessage `json:"serviceEndpoints,omitempty"`
	ProvisioningState    string          `json:"provisioningState,omitempty"`
}

// Prefix returns the subnet's prefix (addressPrefix, else the first of addressPrefixes).
func (s *Subnet) Prefix() string {
	if s.Properties.AddressPrefix != "" {
		return s.Properties.AddressPrefix
	}
	if len(s.Properties.AddressPrefixes) > 0 {
		return s.Properties.AddressPrefixes[0]
	}
	return ""
}

// ---- Microsoft.Network/publicIPAddresses ----

// PublicIPAddress is a public IP. In the emulator its ipAddress is a host address
// (a loopback address by default).
type PublicIPAddress struct {
	Meta
	Sku        json.RawMessage    `json:"sku,omitempty"`
	Properties PublicIPProperties `json:"properties"`
}

// PublicIPProperties are a public IP's properties.
type PublicIPProperties struct {
	PublicIPAllocationMethod string       `json:"publicIPAllocationMethod,omitempty"`
	PublicIPAddressVersion   string       `json:"publicIPAddressVersion,omitempty"`
	IPAddress                string       `json:"ipAddress,omitempty"`
	DNSSettings              *DNSSettings `json:"dnsSettings,omitempty"`
	IdleTimeoutInMinutes     *Int         `json:"idleTimeoutInMinutes,omitempty"`
	IPConfiguration          *SubResource `json:"ipConfiguration,omitempty"`
	ProvisioningState        string       `json:"provisioningState,omitempty"`
	ResourceGUID             string       `json:"resourceGuid,omitempty"`
}

// DNSSettings of a public IP.
type DNSSettings struct {
	DomainNameLabel string `json:"domainNameLabel,omitempty"`
	Fqdn            string `json:"fqdn,omitempty"`
	ReverseFqdn     string `json:"reverseFqdn,omitempty"`
}

// ---- Microsoft.Network/loadBalancers ----

// LoadBalancer is a load balancer.
type LoadBalancer struct {
	Meta
	Sku        json.RawMessage        `json:"sku,omitempty"`
	Properties LoadBalancerProperties `json:"properties"`
}

// LoadBalancerProperties are a load balancer's properties.
type LoadBalancerProperties struct {
	FrontendIPConfigurations []FrontendIPConfiguration `json:"frontendIPConfigurations,omitempty"`
	BackendAddressPools      []BackendAddressPool      `json:"backendAddressPools,omitempty"`
	LoadBalancingRules       []LoadBalancingRule       `json:"loadBalancingRules,omitempty"`
	Probes                   []Probe                   `json:"probes,omitempty"`
	InboundNatRules          []InboundNatRule          `json:"inboundNatRules,omitempty"`
	InboundNatPools          []InboundNatPool          `json:"inboundNatPools,omitempty"`
	OutboundRules            json.RawMessage           `json:"outboundRules,omitempty"`
	ProvisioningState        string                    `json:"provisioningState,omitempty"`
	ResourceGUID             string                    `json:"resourceGuid,omitempty"`
}

// FrontendIPConfiguration is a load balancer frontend: a public IP or a private IP of a subnet.
type FrontendIPConfiguration struct {
	ID         string                   `json:"id,omitempty"`
	Name       string                   `json:"name"`
	Properties FrontendIPConfigurationP `json:"properties"`
}

// FrontendIPConfigurationP are a frontend's properties.
type FrontendIPConfigurationP struct {
	PublicIPAddress           *SubResource  `json:"publicIPAddress,omitempty"`
	Subnet                    *SubResource  `json:"subnet,omitempty"`
	PrivateIPAddress          string        `json:"privateIPAddress,omitempty"`
	PrivateIPAllocationMethod string        `json:"privateIPAllocationMethod,omitempty"`
	LoadBalancingRules        []SubResource `json:"loadBalancingRules,omitempty"`
	InboundNatPools           []SubResource `json:"inboundNatPools,omitempty"`
	InboundNatRules           []SubResource `json:"inboundNatRules,omitempty"`
	ProvisioningState         string        `json:"provisioningState,omitempty"`
}

// BackendAddressPool is a backend pool. Members are NIC ip configurations that
// reference it (scale-set instances, VMs).
type BackendAddressPool struct {
	ID         string              `json:"id,omitempty"`
	Name       string              `json:"name"`
	Properties BackendAddressPoolP `json:"properties,omitempty"`
}

// BackendAddressPoolP are a pool's properties. DrainPeriodInSeconds is how long
// established flows to a leaving member are kept.
type BackendAddressPoolP struct {
	DrainPeriodInSeconds    *Int          `json:"drainPeriodInSeconds,omitempty"`
	BackendIPConfigurations []SubResource `json:"backendIPConfigurations,omitempty"`
	// LoadBalancerBackendAddresses are shown (not stored): the pool's
	// members with their version 2 inbound NAT rule port mappings.
	LoadBalancerBackendAddresses []BackendAddress `json:"loadBalancerBackendAddresses,omitempty"`
	LoadBalancingRules           []SubResource    `json:"loadBalancingRules,omitempty"`
	ProvisioningState            string           `json:"provisioningState,omitempty"`
}

// BackendAddress is one member of a backend pool as Azure shows it.
type BackendAddress struct {
	Name       string          `json:"name"`
	Properties BackendAddressP `json:"properties"`
}

// BackendAddressP are a backend address's properties.
type BackendAddressP struct {
	IPAddress                       string               `json:"ipAddress,omitempty"`
	NetworkInterfaceIPConfiguration *SubResource         `json:"networkInterfaceIPConfiguration,omitempty"`
	InboundNatRulesPortMapping      []NatRulePortMapping `json:"inboundNatRulesPortMapping,omitempty"`
}

// NatRulePortMapping is a version 2 inbound NAT rule's port for one backend.
type NatRulePortMapping struct {
	InboundNatRuleName string `json:"inboundNatRuleName"`
	FrontendPort       int    `json:"frontendPort"`
	BackendPort        int    `json:"backendPort"`
}

// LoadBalancingRule maps a frontend port to a backend port over a pool.
type LoadBalancingRule struct {
	ID         string             `json:"id,omitempty"`
	Name       string             `json:"name"`
	Properties LoadBalancingRuleP `json:"properties"`
}

// LoadBalancingRuleP are a rule's properties.
type LoadBalancingRuleP struct {
	FrontendIPConfiguration *SubResource `json:"frontendIPConfiguration,omitempty"`
	BackendAddressPool      *SubResource `json:"backendAddressPool,omitempty"`
	Probe                   *SubResource `json:"probe,omitempty"`
	Protocol                string       `json:"protocol,omitempty"`
	LoadDistribution        string       `json:"loadDistribution,omitempty"`
	FrontendPort            *Int         `json:"frontendPort,omitempty"`
	BackendPort             *Int         `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes    *Int         `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP        *Bool        `json:"enableFloatingIP,omitempty"`
	EnableTCPReset          *Bool        `json:"enableTcpReset,omitempty"`
	DisableOutboundSnat     *Bool        `json:"disableOutboundSnat,omitempty"`
	ProvisioningState       string       `json:"provisioningState,omitempty"`
}

// Probe is a health probe.
type Probe struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name"`
	Properties ProbeP `json:"properties"`
}

// ProbeP are a probe's properties.
type ProbeP struct {
	Protocol                  string        `json:"protocol,omitempty"`
	Port                      *Int          `json:"port,omitempty"`
	RequestPath               string        `json:"requestPath,omitempty"`
	IntervalInSeconds         *Int          `json:"intervalInSeconds,omitempty"`
	NumberOfProbes            *Int          `json:"numberOfProbes,omitempty"`
	ProbeThreshold            *Int          `json:"probeThreshold,omitempty"`
	NoHealthyBackendsBehavior string        `json:"noHealthyBackendsBehavior,omitempty"`
	LoadBalancingRules        []SubResource `json:"loadBalancingRules,omitempty"`
	ProvisioningState         string        `json:"provisioningState,omitempty"`
}

// InboundNatRule forwards one frontend port to one NIC's backend port.
type InboundNatRule struct {
	ID         string          `json:"id,omitempty"`
	Name       string          `json:"name"`
	Properties InboundNatRuleP `json:"properties"`
}

// InboundNatRuleP are a NAT rule's properties.
type InboundNatRuleP struct {
	FrontendIPConfiguration *SubResource `json:"frontendIPConfiguration,omitempty"`
	BackendIPConfiguration  *SubResource `json:"backendIPConfiguration,omitempty"`
	// BackendAddressPool with FrontendPortRangeStart/End make a version 2
	// rule: one frontend port of the range per member of the pool.
	BackendAddressPool     *SubResource `json:"backendAddressPool,omitempty"`
	FrontendPortRangeStart *Int         `json:"frontendPortRangeStart,omitempty"`
	FrontendPortRangeEnd   *Int         `json:"frontendPortRangeEnd,omitempty"`
	Protocol               string       `json:"protocol,omitempty"`
	FrontendPort           *Int         `json:"frontendPort,omitempty"`
	BackendPort            *Int         `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes   *Int         `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP       *Bool        `json:"enableFloatingIP,omitempty"`
	EnableTCPReset         *Bool        `json:"enableTcpReset,omitempty"`
	ProvisioningState      string       `json:"provisioningState,omitempty"`
}

// InboundNatPool gives each scale-set instance a frontend port forwarded to backendPort.
type InboundNatPool struct {
	ID         string          `json:"id,omitempty"`
	Name       string          `json:"name"`
	Properties InboundNatPoolP `json:"properties"`
}

// InboundNatPoolP are a NAT pool's properties.
type InboundNatPoolP struct {
	FrontendIPConfiguration *SubResource `json:"frontendIPConfiguration,omitempty"`
	Protocol                string       `json:"protocol,omitempty"`
	FrontendPortRangeStart  *Int         `json:"frontendPortRangeStart,omitempty"`
	FrontendPortRangeEnd    *Int         `json:"frontendPortRangeEnd,omitempty"`
	BackendPort             *Int         `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes    *Int         `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP        *Bool        `json:"enableFloatingIP,omitempty"`
	EnableTCPReset          *Bool        `json:"enableTcpReset,omitempty"`
	ProvisioningState       string       `json:"provisioningState,omitempty"`
}

// ---- Microsoft.Network/networkInterfaces ----

// NetworkInterface is a standalone VM's NIC.
type NetworkInterface struct {
	Meta
	Properties NetworkInterfaceProperties `json:"properties"`
}

// NetworkInterfaceProperties are a NIC's properties.
type NetworkInterfaceProperties struct {
	IPConfigurations     []NICIPConfiguration `json:"ipConfigurations"`
	NetworkSecurityGroup *SubResource         `json:"networkSecurityGroup,omitempty"`
	VirtualMachine       *SubResource         `json:"virtualMachine,omitempty"`
	MacAddress           string               `json:"macAddress,omitempty"`
	Primary              *Bool                `json:"primary,omitempty"`
	DNSSettings          json.RawMessage      `json:"dnsSettings,omitempty"`
	EnableIPForwarding   *Bool                `json:"enableIPForwarding,omitempty"`
	ProvisioningState    string               `json:"provisioningState,omitempty"`
	ResourceGUID         string               `json:"resourceGuid,omitempty"`
}

// NICIPConfiguration is an ip configuration of a NIC.
type NICIPConfiguration struct {
	ID         string              `json:"id,omitempty"`
	Name       string              `json:"name"`
	Properties NICIPConfigurationP `json:"properties"`
}

// NICIPConfigurationP are an ip configuration's properties.
type NICIPConfigurationP struct {
	Subnet                          *SubResource  `json:"subnet,omitempty"`
	PrivateIPAddress                string        `json:"privateIPAddress,omitempty"`
	PrivateIPAllocationMethod       string        `json:"privateIPAllocationMethod,omitempty"`
	PublicIPAddress                 *SubResource  `json:"publicIPAddress,omitempty"`
	LoadBalancerBackendAddressPools []SubResource `json:"loadBalancerBackendAddressPools,omitempty"`
	LoadBalancerInboundNatRules     []SubResource `json:"loadBalancerInboundNatRules,omitempty"`
	Primary                         *Bool         `json:"primary,omitempty"`
	ProvisioningState               string        `json:"provisioningState,omitempty"`
}

// ---- Microsoft.Compute (shared) ----

// OSProfile is a VM's or a scale set's OS profile.
type OSProfile struct {
	ComputerName         string              `json:"computerName,omitempty"`
	ComputerNamePrefix   string              `json:"computerNamePrefix,omitempty"`
	AdminUsername        string              `json:"adminUsername,omitempty"`
	AdminPassword        string              `json:"adminPassword,omitempty"`
	CustomData           string              `json:"customData,omitempty"`
	LinuxConfiguration   *LinuxConfiguration `json:"linuxConfiguration,omitempty"`
	WindowsConfiguration json.RawMessage     `json:"windowsConfiguration,omitempty"`
	Secrets              json.RawMessage     `json:"secrets,omitempty"`
}

// LinuxConfiguration holds SSH settings.
type LinuxConfiguration struct {
	DisablePasswordAuthentication *Bool             `json:"disablePasswordAuthentication,omitempty"`
	SSH                           *SSHConfiguration `json:"ssh,omitempty"`
	ProvisionVMAgent              *Bool             `json:"provisionVMAgent,omitempty"`
}

// SSHConfiguration lists authorized public keys.
type SSHConfiguration struct {
	PublicKeys []SSHPublicKey `json:"publicKeys,omitempty"`
}

// SSHPublicKey is one authorized key and where it would be written.
type SSHPublicKey struct {
	Path    string `json:"path,omitempty"`
	KeyData string `json:"keyData,omitempty"`
}

// Extension is a VM extension as it appears in an extension profile.
type Extension struct {
	ID         string     `json:"id,omitempty"`
	Name       string     `json:"name"`
	Type       string     `json:"type,omitempty"`
	Properties ExtensionP `json:"properties"`
}

// ExtensionP are an extension's properties.
type ExtensionP struct {
	Publisher                string          `json:"publisher,omitempty"`
	Type                     string          `json:"type,omitempty"`
	TypeHandlerVersion       string          `json:"typeHandlerVersion,omitempty"`
	AutoUpgradeMinorVersion  *Bool           `json:"autoUpgradeMinorVersion,omitempty"`
	ForceUpdateTag           string          `json:"forceUpdateTag,omitempty"`
	Settings                 json.RawMessage `json:"settings,omitempty"`
	ProtectedSettings        json.RawMessage `json:"protectedSettings,omitempty"`
	ProvisionAfterExtensions []string        `json:"provisionAfterExtensions,omitempty"`
	ProvisioningState        string          `json:"provisioningState,omitempty"`
}

// ExtensionProfile lists extensions.
type ExtensionProfile struct {
	Extensions []Extension `json:"extensions,omitempty"`
}

// InstanceViewStatus is one status line of an instance view ("PowerState/running").
type InstanceViewStatus struct {
	Code          string `json:"code"`
	Level         string `json:"level,omitempty"`
	DisplayStatus string `json:"displayStatus,omitempty"`
	Message       string `json:"message,omitempty"`
	Time          string `json:"time,omitempty"`
}

// ---- Microsoft.Compute/virtualMachines ----

// VirtualMachine is a standalone VM (a jumpbox, for example).
type VirtualMachine struct {
	Meta
	Plan       json.RawMessage          `json:"plan,omitempty"`
	Resources  json.RawMessage          `json:"resources,omitempty"`
	Properties VirtualMachineProperties `json:"properties"`
}

// VirtualMachineProperties are a VM's properties.
type VirtualMachineProperties struct {
	HardwareProfile    json.RawMessage   `json:"hardwareProfile,omitempty"`
	OSProfile          *OSProfile        `json:"osProfile,omitempty"`
	StorageProfile     json.RawMessage   `json:"storageProfile,omitempty"`
	NetworkProfile     *VMNetworkProfile `json:"networkProfile,omitempty"`
	DiagnosticsProfile json.RawMessage   `json:"diagnosticsProfile,omitempty"`
	AvailabilitySet    *SubResource      `json:"availabilitySet,omitempty"`
	VMID               string            `json:"vmId,omitempty"`
	ProvisioningState  string            `json:"provisioningState,omitempty"`
	InstanceView       *VMInstanceView   `json:"instanceView,omitempty"`
}

// VMNetworkProfile lists a VM's NICs.
type VMNetworkProfile struct {
	NetworkInterfaces []VMNICReference `json:"networkInterfaces"`
}

// VMNICReference points at a NIC.
type VMNICReference struct {
	ID         string `json:"id"`
	Properties *struct {
		Primary *Bool `json:"primary,omitempty"`
	} `json:"properties,omitempty"`
}

// VMInstanceView is the runtime view of a VM or a scale-set instance.
type VMInstanceView struct {
	ComputerName         string               `json:"computerName,omitempty"`
	OSName               string               `json:"osName,omitempty"`
	PlatformFaultDomain  *int                 `json:"platformFaultDomain,omitempty"`
	PlatformUpdateDomain *int                 `json:"platformUpdateDomain,omitempty"`
	Statuses             []InstanceViewStatus `json:"statuses"`
	Extensions           []ExtensionView      `json:"extensions,omitempty"`
	VMHealth             *VMHealth            `json:"vmHealth,omitempty"`
}

// ExtensionView is an extension's status in an instance view.
type ExtensionView struct {
	Name               string               `json:"name"`
	Type               string               `json:"type,omitempty"`
	TypeHandlerVersion string               `json:"typeHandlerVersion,omitempty"`
	Statuses           []InstanceViewStatus `json:"statuses,omitempty"`
}

// VMHealth is the application health reported by the health extension or a probe.
type VMHealth struct {
	Status InstanceViewStatus `json:"status"`
}
