package arm

import (
	"bytes"
	"encoding/json"
)

// VirtualMachineScaleSet is a scale set (Uniform orchestration).
type VirtualMachineScaleSet struct {
	Meta
	Sku        *Sku                `json:"sku,omitempty"`
	Plan       json.RawMessage     `json:"plan,omitempty"`
	Identity   json.RawMessage     `json:"identity,omitempty"`
	Properties *ScaleSetProperties `json:"properties,omitempty"`
}

// ScaleSetProperties are a scale set's properties.
type ScaleSetProperties struct {
	UpgradePolicy                          *UpgradePolicy          `json:"upgradePolicy,omitempty"`
	AutomaticRepairsPolicy                 *AutomaticRepairsPolicy `json:"automaticRepairsPolicy,omitempty"`
	VirtualMachineProfile                  *ScaleSetVMProfile      `json:"virtualMachineProfile,omitempty"`
	Overprovision                          *Bool                   `json:"overprovision,omitempty"`
	DoNotRunExtensionsOnOverprovisionedVMs *Bool                   `json:"doNotRunExtensionsOnOverprovisionedVMs,omitempty"`
	SinglePlacementGroup                   *Bool                   `json:"singlePlacementGroup,omitempty"`
	PlatformFaultDomainCount               *Int                    `json:"platformFaultDomainCount,omitempty"`
	ScaleInPolicy                          *ScaleInPolicy          `json:"scaleInPolicy,omitempty"`
	OrchestrationMode                      string                  `json:"orchestrationMode,omitempty"`
	ZoneBalance                            *Bool                   `json:"zoneBalance,omitempty"`
	ProvisioningState                      string                  `json:"provisioningState,omitempty"`
	UniqueID                               string                  `json:"uniqueId,omitempty"`
	TimeCreated                            string                  `json:"timeCreated,omitempty"`
}

// UpgradePolicy says how model changes reach existing instances.
type UpgradePolicy struct {
	Mode                     string          `json:"mode,omitempty"`
	RollingUpgradePolicy     json.RawMessage `json:"rollingUpgradePolicy,omitempty"`
	AutomaticOSUpgradePolicy json.RawMessage `json:"automaticOSUpgradePolicy,omitempty"`
}

// AutomaticRepairsPolicy replaces unhealthy instances.
type AutomaticRepairsPolicy struct {
	Enabled      *Bool  `json:"enabled,omitempty"`
	GracePeriod  string `json:"gracePeriod,omitempty"`
	RepairAction string `json:"repairAction,omitempty"` // Replace (default), Restart, Reimage
}

// ScaleInPolicy picks which instances go on scale-in.
type ScaleInPolicy struct {
	Rules         []string `json:"rules,omitempty"`
	ForceDeletion *Bool    `json:"forceDeletion,omitempty"`
}

// ScaleSetVMProfile is the model every instance is built from.
type ScaleSetVMProfile struct {
	OSProfile          *OSProfile              `json:"osProfile,omitempty"`
	StorageProfile     json.RawMessage         `json:"storageProfile,omitempty"`
	NetworkProfile     *ScaleSetNetworkProfile `json:"networkProfile,omitempty"`
	ExtensionProfile   *ExtensionProfile       `json:"extensionProfile,omitempty"`
	DiagnosticsProfile json.RawMessage         `json:"diagnosticsProfile,omitempty"`
	SecurityProfile    json.RawMessage         `json:"securityProfile,omitempty"`
	Priority           string                  `json:"priority,omitempty"`
	EvictionPolicy     string                  `json:"evictionPolicy,omitempty"`
	LicenseType        string                  `json:"licenseType,omitempty"`
}

// ScaleSetNetworkProfile holds the NIC configurations of every instance.
type ScaleSetNetworkProfile struct {
	HealthProbe                    *SubResource        `json:"healthProbe,omitempty"`
	NetworkInterfaceConfigurations []ScaleSetNICConfig `json:"networkInterfaceConfigurations,omitempty"`
	NetworkAPIVersion              string              `json:"networkApiVersion,omitempty"`
}

// ScaleSetNICConfig is one NIC configuration.
type ScaleSetNICConfig struct {
	ID         string             `json:"id,omitempty"`
	Name       string             `json:"name"`
	Properties ScaleSetNICConfigP `json:"properties"`
}

// ScaleSetNICConfigP are a NIC configuration's properties.
type ScaleSetNICConfigP struct {
	Primary                     *Bool              `json:"primary,omitempty"`
	EnableAcceleratedNetworking *Bool              `json:"enableAcceleratedNetworking,omitempty"`
	EnableIPForwarding          *Bool              `json:"enableIPForwarding,omitempty"`
	NetworkSecurityGroup        *SubResource       `json:"networkSecurityGroup,omitempty"`
	DNSSettings                 json.RawMessage    `json:"dnsSettings,omitempty"`
	IPConfigurations            []ScaleSetIPConfig `json:"ipConfigurations"`
}

// ScaleSetIPConfig is an ip configuration of a scale set NIC configuration.
type ScaleSetIPConfig struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name"`
	Properties ScaleSetIPConfigP `json:"properties"`
}

// ScaleSetIPConfigP are its properties.
type ScaleSetIPConfigP struct {
	Subnet                                *SubResource    `json:"subnet,omitempty"`
	Primary                               *Bool           `json:"primary,omitempty"`
	PrivateIPAddressVersion               string          `json:"privateIPAddressVersion,omitempty"`
	PublicIPAddressConfiguration          json.RawMessage `json:"publicIPAddressConfiguration,omitempty"`
	LoadBalancerBackendAddressPools       []SubResource   `json:"loadBalancerBackendAddressPools,omitempty"`
	LoadBalancerInboundNatPools           []SubResource   `json:"loadBalancerInboundNatPools,omitempty"`
	ApplicationGatewayBackendAddressPools []SubResource   `json:"applicationGatewayBackendAddressPools,omitempty"`
}

// ScaleSetVM is one instance of a scale set as the API shows it. The fields
// privateIpAddress, platformFaultDomain, platformUpdateDomain, powerState and
// netns in properties are emulator additions that save a second call.
type ScaleSetVM struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location,omitempty"`
	InstanceID string            `json:"instanceId"`
	Sku        *Sku              `json:"sku,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties ScaleSetVMProps   `json:"properties"`
}

// ScaleSetVMProps are an instance's properties.
type ScaleSetVMProps struct {
	LatestModelApplied bool              `json:"latestModelApplied"`
	VMID               string            `json:"vmId,omitempty"`
	ProvisioningState  string            `json:"provisioningState"`
	OSProfile          *OSProfile        `json:"osProfile,omitempty"`
	NetworkProfile     *VMNetworkProfile `json:"networkProfile,omitempty"`
	ProtectionPolicy   *ProtectionPolicy `json:"protectionPolicy,omitempty"`
	InstanceView       *VMInstanceView   `json:"instanceView,omitempty"`
	TimeCreated        string            `json:"timeCreated,omitempty"`

	PrivateIPAddress     string `json:"privateIpAddress,omitempty"`
	PublicIPAddress      string `json:"publicIpAddress,omitempty"` // its own public IP (publicIPAddressConfiguration)
	PlatformFaultDomain  int    `json:"platformFaultDomain"`
	PlatformUpdateDomain int    `json:"platformUpdateDomain"`
	PowerState           string `json:"powerState,omitempty"`
	Netns                string `json:"netns,omitempty"`
	HealthState          string `json:"healthState,omitempty"`
}

// ProtectionPolicy protects an instance from scale-in.
type ProtectionPolicy struct {
	ProtectFromScaleIn         *Bool `json:"protectFromScaleIn,omitempty"`
	ProtectFromScaleSetActions *Bool `json:"protectFromScaleSetActions,omitempty"`
}

// InstanceIDs is the body of scale-set actions that take instance ids.
type InstanceIDs struct {
	InstanceIDs []string `json:"instanceIds,omitempty"`
}

// NICConfigs returns the profile's NIC configurations (nil-safe).
func (p *ScaleSetVMProfile) NICConfigs() []ScaleSetNICConfig {
	if p == nil || p.NetworkProfile == nil {
		return nil
	}
	return p.NetworkProfile.NetworkInterfaceConfigurations
}

// PrimaryNICConfig returns the primary NIC configuration (the first when
// none is marked primary), or nil.
func (p *ScaleSetVMProfile) PrimaryNICConfig() *ScaleSetNICConfig {
	ncs := p.NICConfigs()
	if len(ncs) == 0 {
		return nil
	}
	for i := range ncs {
		if BoolOr(ncs[i].Properties.Primary, false) {
			return &ncs[i]
		}
	}
	return &ncs[0]
}

// PrimaryIPConfig returns the primary ip configuration of the primary NIC
// configuration (the first of each when none says primary), nil when there is none.
func (p *ScaleSetVMProfile) PrimaryIPConfig() *ScaleSetIPConfig {
	nc := p.PrimaryNICConfig()
	if nc == nil || len(nc.Properties.IPConfigurations) == 0 {
		return nil
	}
	ic := &nc.Properties.IPConfigurations[0]
	for i := range nc.Properties.IPConfigurations {
		if BoolOr(nc.Properties.IPConfigurations[i].Properties.Primary, false) {
			ic = &nc.Properties.IPConfigurations[i]
			break
		}
	}
	return ic
}

// ScaleSetPublicIPConfig is an ip configuration's publicIPAddressConfiguration:
// every instance gets a public IP of its own, named after it.
type ScaleSetPublicIPConfig struct {
	Name       string                  `json:"name"`
	Sku        json.RawMessage         `json:"sku,omitempty"`
	Properties ScaleSetPublicIPConfigP `json:"properties"`
}

// ScaleSetPublicIPConfigP are its properties.
type ScaleSetPublicIPConfigP struct {
	IdleTimeoutInMinutes   *Int                       `json:"idleTimeoutInMinutes,omitempty"`
	DNSSettings            *ScaleSetPublicIPDNSConfig `json:"dnsSettings,omitempty"`
	PublicIPPrefix         *SubResource               `json:"publicIPPrefix,omitempty"`
	PublicIPAddressVersion string                     `json:"publicIPAddressVersion,omitempty"`
}

// ScaleSetPublicIPDNSConfig is the DNS label the instances' public IPs are named under.
type ScaleSetPublicIPDNSConfig struct {
	DomainNameLabel string `json:"domainNameLabel"`
}

// PublicIPConfig decodes the ip configuration's publicIPAddressConfiguration:
// nil without one, an error when it is not the documented shape.
func (p *ScaleSetIPConfigP) PublicIPConfig() (*ScaleSetPublicIPConfig, error) {
	raw := bytes.TrimSpace(p.PublicIPAddressConfiguration)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var c ScaleSetPublicIPConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}
