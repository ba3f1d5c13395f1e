package e2e

// The Azure SDK for Go drives the emulator over HTTPS: azidentity's
// client-secret credential signs in at the emulator's AD FS authority, and
// armresources, armnetwork (v9) and armcompute (v8) clients create, scale,
// list and delete, each Begin… polled to the end.

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

func ptr[T any](v T) *T { return &v }

func TestGoSDK(t *testing.T) {
	addr := lbMetricsAddr(t)
	e := Start(t, Options{Extra: []string{"--https-addr", addr}})
	var creds struct{ ClientID, ClientSecret string }
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(e.StateDir, "state", "identity", "credentials.json"))
		if err == nil && json.Unmarshal(b, &creds) == nil && creds.ClientID != "" {
			if _, err := os.Stat(filepath.Join(e.RuntimeDir, "https", "ca.pem")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no credentials or CA after the daemon started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	hc := e.HTTPSClient(t)
	base := "https://" + addr
	cfg := cloud.Configuration{
		ActiveDirectoryAuthorityHost: base + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: base, Audience: "https://management.vmss.local/"},
		},
	}
	copts := azcore.ClientOptions{Cloud: cfg, Transport: hc, Retry: policy.RetryOptions{RetryDelay: 200 * time.Millisecond}}
	cred, err := azidentity.NewClientSecretCredential("adfs", creds.ClientID, creds.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: copts})
	if err != nil {
		t.Fatal(err)
	}
	opts := &arm.ClientOptions{ClientOptions: copts}
	sub := e.Client.Subscription
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	poll := &runtime.PollUntilDoneOptions{Frequency: 200 * time.Millisecond}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	groups, err := armresources.NewResourceGroupsClient(sub, cred, opts)
	must("resource groups client", err)
	_, err = groups.CreateOrUpdate(ctx, "sdk", armresources.ResourceGroup{Location: ptr("eastus")}, nil)
	must("create group", err)

	netf, err := armnetwork.NewClientFactory(sub, cred, opts)
	must("network clients", err)
	rg := "/subscriptions/" + sub + "/resourceGroups/sdk/providers"
	vp, err := netf.NewVirtualNetworksClient().BeginCreateOrUpdate(ctx, "sdk", "vnet", armnetwork.VirtualNetwork{
		Location: ptr("eastus"),
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{ptr("10.0.0.0/16")}},
			Subnets:      []*armnetwork.Subnet{{Name: ptr("sn"), Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: ptr("10.0.0.0/24")}}},
		},
	}, nil)
	must("begin vnet", err)
	_, err = vp.PollUntilDone(ctx, poll)
	must("vnet", err)
	pp, err := netf.NewPublicIPAddressesClient().BeginCreateOrUpdate(ctx, "sdk", "pip", armnetwork.PublicIPAddress{Location: ptr("eastus")}, nil)
	must("begin public ip", err)
	_, err = pp.PollUntilDone(ctx, poll)
	must("public ip", err)
	lbID := rg + "/Microsoft.Network/loadBalancers/lb"
	lp, err := netf.NewLoadBalancersClient().BeginCreateOrUpdate(ctx, "sdk", "lb", armnetwork.LoadBalancer{
		Location: ptr("eastus"),
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: ptr(rg + "/Microsoft.Network/publicIPAddresses/pip")}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: ptr("be")}},
			InboundNatPools: []*armnetwork.InboundNatPool{{Name: ptr("nat"), Properties: &armnetwork.InboundNatPoolPropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: ptr(lbID + "/frontendIPConfigurations/fe")},
				Protocol:                ptr(armnetwork.TransportProtocolTCP), FrontendPortRangeStart: ptr[int32](50000), FrontendPortRangeEnd: ptr[int32](50099), BackendPort: ptr[int32](22)}}},
		},
	}, nil)
	must("begin load balancer", err)
	_, err = lp.PollUntilDone(ctx, poll)
	must("load balancer", err)

	cf, err := armcompute.NewClientFactory(sub, cred, opts)
	must("compute clients", err)
	sets := cf.NewVirtualMachineScaleSetsClient()
	c := newSSHClient(t)
	pub, err := os.ReadFile(c.Pub)
	must("public key", err)
	sp, err := sets.BeginCreateOrUpdate(ctx, "sdk", "web", armcompute.VirtualMachineScaleSet{
		Location: ptr("eastus"),
		SKU:      &armcompute.SKU{Name: ptr("Standard_B1s"), Capacity: ptr[int64](2)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			Overprovision: ptr(false),
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: ptr(armcompute.UpgradeModeManual)},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{
					Publisher: ptr("Canonical"), Offer: ptr("0001-com-ubuntu-server-jammy"), SKU: ptr("22_04-lts-gen2"), Version: ptr("latest")}},
				OSProfile: &armcompute.VirtualMachineScaleSetOSProfile{ComputerNamePrefix: ptr("web"), AdminUsername: ptr(sshUser),
					LinuxConfiguration: &armcompute.LinuxConfiguration{DisablePasswordAuthentication: ptr(true), SSH: &armcompute.SSHConfiguration{
						PublicKeys: []*armcompute.SSHPublicKey{{Path: ptr("/home/" + sshUser + "/.ssh/authorized_keys"), KeyData: ptr(string(pub))}}}}},
				NetworkProfile: &armcompute.VirtualMachineScaleSetNetworkProfile{NetworkInterfaceConfigurations: []*armcompute.VirtualMachineScaleSetNetworkConfiguration{{
					Name: ptr("nic"),
					Properties: &armcompute.VirtualMachineScaleSetNetworkConfigurationProperties{Primary: ptr(true), IPConfigurations: []*armcompute.VirtualMachineScaleSetIPConfiguration{{
						Name: ptr("ip"),
						Properties: &armcompute.VirtualMachineScaleSetIPConfigurationProperties{
							Subnet:                          &armcompute.APIEntityReference{ID: ptr(rg + "/Microsoft.Network/virtualNetworks/vnet/subnets/sn")},
							LoadBalancerBackendAddressPools: []*armcompute.SubResource{{ID: ptr(lbID + "/backendAddressPools/be")}},
							LoadBalancerInboundNatPools:     []*armcompute.SubResource{{ID: ptr(lbID + "/inboundNatPools/nat")}},
						}}}}}}},
			},
		},
	}, nil)
	must("begin scale set", err)
	set, err := sp.PollUntilDone(ctx, poll)
	must("scale set", err)
	if set.Name == nil || *set.Name != "web" || set.SKU == nil || *set.SKU.Capacity != 2 {
		t.Fatalf("scale set answer %+v", set)
	}

	up, err := sets.BeginUpdate(ctx, "sdk", "web", armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: ptr[int64](3)}}, nil)
	must("begin scale", err)
	_, err = up.PollUntilDone(ctx, poll)
	must("scale", err)

	var vms []*armcompute.VirtualMachineScaleSetVM
	pager := cf.NewVirtualMachineScaleSetVMsClient().NewListPager("sdk", "web", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		must("list VMs", err)
		vms = append(vms, page.Value...)
	}
	if len(vms) != 3 {
		t.Fatalf("%d VMs after scaling to 3", len(vms))
	}

	var ports []int32
	np := netf.NewInboundNatRulesClient().NewListPager("sdk", "lb", nil)
	for np.More() {
		page, err := np.NextPage(ctx)
		must("list NAT rules", err)
		for _, r := range page.Value {
			if r.Properties != nil && r.Properties.FrontendPort != nil {
				ports = append(ports, *r.Properties.FrontendPort)
			}
		}
	}
	if len(ports) != 3 {
		t.Fatalf("inbound NAT port mappings %v, want one per instance", ports)
	}
	// The ports the SDK listed reach the instances' SSH servers.
	ip, err := netf.NewPublicIPAddressesClient().Get(ctx, "sdk", "pip", nil)
	must("get public ip", err)
	if ip.Properties == nil || ip.Properties.IPAddress == nil {
		t.Fatalf("public ip has no address: %+v", ip)
	}
	for _, p := range ports {
		ep := net.JoinHostPort(*ip.Properties.IPAddress, strconv.Itoa(int(p)))
		var r sshResult
		for i := 0; i < 100; i++ {
			if r = c.ssh(ep, "hostname"); r.Code == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r.Code != 0 {
			t.Errorf("ssh through NAT port %s: %s", ep, r)
		}
	}

	dp, err := sets.BeginDelete(ctx, "sdk", "web", nil)
	must("begin delete scale set", err)
	_, err = dp.PollUntilDone(ctx, poll)
	must("delete scale set", err)
	gp, err := groups.BeginDelete(ctx, "sdk", nil)
	must("begin delete group", err)
	_, err = gp.PollUntilDone(ctx, poll)
	must("delete group", err)
	if _, err := groups.Get(ctx, "sdk", nil); err == nil {
		t.Error("group sdk still there after delete")
	}
}
