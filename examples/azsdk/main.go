// Command azsdk builds a scale set behind a load balancer with the Azure SDK
// for Go, lists its instances with their private IPs and the load
// balancer's frontend, scales it and deletes it. Nothing in it is specific
// to the vmss emulator except the cloud configuration, which points the
// credential and the ARM clients at the emulator's HTTPS endpoint; give it
// Azure's endpoints and it runs against Azure.
//
// Run it against a running `sudo vmss serve` (see the README, "Use your az
// CLI / Azure SDK"):
//
//	export SSL_CERT_FILE=/run/vmss/https/ca-bundle.pem   # trust the emulator's CA
//	export AZURE_CLIENT_ID=... AZURE_CLIENT_SECRET=...  # sudo cat /var/lib/vmss/identity/credentials.json
//	go run ./examples/azsdk -instances 3 -scale-to 5
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

func main() {
	var (
		endpoint     = flag.String("endpoint", "https://127.0.0.1:8443", "ARM endpoint (Azure: https://management.azure.com)")
		audience     = flag.String("audience", "https://management.vmss.local/", "token audience of the ARM endpoint (Azure: https://management.core.windows.net/)")
		authority    = flag.String("authority", "https://127.0.0.1:8443/", "identity authority host (Azure: https://login.microsoftonline.com/)")
		tenant       = flag.String("tenant", "adfs", "tenant of the service principal (the emulator's AD FS authority: adfs)")
		subscription = flag.String("subscription", "00000000-0000-0000-0000-000000000000", "subscription id")
		location     = flag.String("location", "eastus", "location of the resources")
		group        = flag.String("group", "sdkdemo", "resource group to create (and delete at the end)")
		name         = flag.String("name", "web", "scale set name; the VNET, public IP and load balancer are named after it")
		instances    = flag.Int("instances", 3, "instances to create")
		scaleTo      = flag.Int("scale-to", 5, "instances to scale to")
		sshKey       = flag.String("ssh-public-key", filepath.Join(os.Getenv("HOME"), ".ssh", "id_rsa.pub"), "public key for the admin user azureuser")
		keep         = flag.Bool("keep", false, "keep the resource group instead of deleting it")
	)
	flag.Parse()
	clientID, secret := os.Getenv("AZURE_CLIENT_ID"), os.Getenv("AZURE_CLIENT_SECRET")
	if clientID == "" || secret == "" {
		log.Fatal("set AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (for the emulator: sudo cat /var/lib/vmss/identity/credentials.json)")
	}
	key, err := os.ReadFile(*sshKey)
	if err != nil {
		log.Fatalf("read the SSH public key: %v (give one with -ssh-public-key, or make one with ssh-keygen)", err)
	}

	// The only emulator-specific part: where ARM and the authority are.
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{
		ActiveDirectoryAuthorityHost: *authority,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: *endpoint, Audience: *audience},
		},
	}}
	cred, err := azidentity.NewClientSecretCredential(*tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	if err != nil {
		log.Fatal(err)
	}
	d := &demo{sub: *subscription, loc: *location, group: *group, name: *name}
	if err := d.clients(cred, &arm.ClientOptions{ClientOptions: opts}); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := d.run(ctx, *instances, *scaleTo, strings.TrimSpace(string(key)), *keep); err != nil {
		log.Fatal(err)
	}
}

type demo struct {
	sub, loc, group, name string

	groups *armresources.ResourceGroupsClient
	net    *armnetwork.ClientFactory
	comp   *armcompute.ClientFactory
}

func (d *demo) clients(cred azcore.TokenCredential, o *arm.ClientOptions) error {
	var err error
	if d.groups, err = armresources.NewResourceGroupsClient(d.sub, cred, o); err != nil {
		return err
	}
	if d.net, err = armnetwork.NewClientFactory(d.sub, cred, o); err != nil {
		return err
	}
	d.comp, err = armcompute.NewClientFactory(d.sub, cred, o)
	return err
}

// poll waits for a long-running operation.
func poll[T any](ctx context.Context, p *runtime.Poller[T], err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	return p.PollUntilDone(ctx, nil)
}

func (d *demo) id(typ, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", d.sub, d.group, typ, name)
}

func (d *demo) run(ctx context.Context, instances, scaleTo int, key string, keep bool) error {
	if _, err := d.groups.CreateOrUpdate(ctx, d.group, armresources.ResourceGroup{Location: &d.loc}, nil); err != nil {
		return fmt.Errorf("create group %s: %w", d.group, err)
	}
	fmt.Printf("group %s\n", d.group)
	if err := d.network(ctx); err != nil {
		return err
	}
	if err := d.scaleSet(ctx, instances, key); err != nil {
		return err
	}
	if err := d.show(ctx); err != nil {
		return err
	}
	sets := d.comp.NewVirtualMachineScaleSetsClient()
	up, err := sets.BeginUpdate(ctx, d.group, d.name, armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: to.Ptr(int64(scaleTo))}}, nil)
	if _, err := poll(ctx, up, err); err != nil {
		return fmt.Errorf("scale %s to %d: %w", d.name, scaleTo, err)
	}
	vms, err := d.instances(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("scaled to %d: %d instances\n", scaleTo, len(vms))
	if keep {
		return nil
	}
	del, err := d.groups.BeginDelete(ctx, d.group, nil)
	if _, err := poll(ctx, del, err); err != nil {
		return fmt.Errorf("delete group %s: %w", d.group, err)
	}
	fmt.Printf("deleted group %s\n", d.group)
	return nil
}

// network creates a VNET with one subnet, a public IP and a load balancer
// with a rule for port 80, a health probe and an inbound NAT pool 50000+ -> 22.
func (d *demo) network(ctx context.Context) error {
	vnet, pip, lb := d.name+"VNET", d.name+"PublicIP", d.name+"LB"
	vp, err := d.net.NewVirtualNetworksClient().BeginCreateOrUpdate(ctx, d.group, vnet, armnetwork.VirtualNetwork{
		Location: &d.loc,
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to.Ptr("10.0.0.0/16")}},
			Subnets:      []*armnetwork.Subnet{{Name: to.Ptr("default"), Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.0.0.0/24")}}},
		},
	}, nil)
	if _, err := poll(ctx, vp, err); err != nil {
		return fmt.Errorf("create VNET: %w", err)
	}
	pp, err := d.net.NewPublicIPAddressesClient().BeginCreateOrUpdate(ctx, d.group, pip, armnetwork.PublicIPAddress{
		Location: &d.loc, Properties: &armnetwork.PublicIPAddressPropertiesFormat{PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic)},
	}, nil)
	if _, err := poll(ctx, pp, err); err != nil {
		return fmt.Errorf("create public IP: %w", err)
	}
	lbID := d.id("Microsoft.Network/loadBalancers", lb)
	fe := &armnetwork.SubResource{ID: to.Ptr(lbID + "/frontendIPConfigurations/frontend")}
	lp, err := d.net.NewLoadBalancersClient().BeginCreateOrUpdate(ctx, d.group, lb, armnetwork.LoadBalancer{
		Location: &d.loc,
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("frontend"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(d.id("Microsoft.Network/publicIPAddresses", pip))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("backend")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("http"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolTCP), Port: to.Ptr[int32](80), IntervalInSeconds: to.Ptr[int32](5), NumberOfProbes: to.Ptr[int32](2)}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("http"), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
				FrontendIPConfiguration: fe, Protocol: to.Ptr(armnetwork.TransportProtocolTCP), FrontendPort: to.Ptr[int32](80), BackendPort: to.Ptr[int32](80),
				BackendAddressPool: &armnetwork.SubResource{ID: to.Ptr(lbID + "/backendAddressPools/backend")},
				Probe:              &armnetwork.SubResource{ID: to.Ptr(lbID + "/probes/http")}}}},
			InboundNatPools: []*armnetwork.InboundNatPool{{Name: to.Ptr("ssh"), Properties: &armnetwork.InboundNatPoolPropertiesFormat{
				FrontendIPConfiguration: fe, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
				FrontendPortRangeStart: to.Ptr[int32](50000), FrontendPortRangeEnd: to.Ptr[int32](50119), BackendPort: to.Ptr[int32](22)}}},
		},
	}, nil)
	if _, err := poll(ctx, lp, err); err != nil {
		return fmt.Errorf("create load balancer: %w", err)
	}
	fmt.Printf("network %s, %s, %s\n", vnet, pip, lb)
	return nil
}

// scaleSet creates the scale set in the VNET's subnet, behind the load
// balancer's backend pool and NAT pool.
func (d *demo) scaleSet(ctx context.Context, instances int, key string) error {
	lbID := d.id("Microsoft.Network/loadBalancers", d.name+"LB")
	sp, err := d.comp.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(ctx, d.group, d.name, armcompute.VirtualMachineScaleSet{
		Location: &d.loc,
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr(int64(instances))},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			Overprovision: to.Ptr(false),
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeManual)},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{
					Publisher: to.Ptr("Canonical"), Offer: to.Ptr("0001-com-ubuntu-server-jammy"), SKU: to.Ptr("22_04-lts-gen2"), Version: to.Ptr("latest")}},
				OSProfile: &armcompute.VirtualMachineScaleSetOSProfile{
					ComputerNamePrefix: &d.name, AdminUsername: to.Ptr("azureuser"),
					LinuxConfiguration: &armcompute.LinuxConfiguration{DisablePasswordAuthentication: to.Ptr(true), SSH: &armcompute.SSHConfiguration{
						PublicKeys: []*armcompute.SSHPublicKey{{Path: to.Ptr("/home/azureuser/.ssh/authorized_keys"), KeyData: &key}}}},
				},
				NetworkProfile: &armcompute.VirtualMachineScaleSetNetworkProfile{NetworkInterfaceConfigurations: []*armcompute.VirtualMachineScaleSetNetworkConfiguration{{
					Name: to.Ptr(d.name + "Nic"),
					Properties: &armcompute.VirtualMachineScaleSetNetworkConfigurationProperties{Primary: to.Ptr(true), IPConfigurations: []*armcompute.VirtualMachineScaleSetIPConfiguration{{
						Name: to.Ptr(d.name + "IPConfig"),
						Properties: &armcompute.VirtualMachineScaleSetIPConfigurationProperties{
							Subnet:                          &armcompute.APIEntityReference{ID: to.Ptr(d.id("Microsoft.Network/virtualNetworks", d.name+"VNET") + "/subnets/default")},
							LoadBalancerBackendAddressPools: []*armcompute.SubResource{{ID: to.Ptr(lbID + "/backendAddressPools/backend")}},
							LoadBalancerInboundNatPools:     []*armcompute.SubResource{{ID: to.Ptr(lbID + "/inboundNatPools/ssh")}},
						}}}}}}},
			},
		},
	}, nil)
	if _, err := poll(ctx, sp, err); err != nil {
		return fmt.Errorf("create scale set %s: %w", d.name, err)
	}
	fmt.Printf("scale set %s: %d instances\n", d.name, instances)
	return nil
}

// instances lists the scale set's instances, every page of them.
func (d *demo) instances(ctx context.Context) ([]*armcompute.VirtualMachineScaleSetVM, error) {
	var out []*armcompute.VirtualMachineScaleSetVM
	pager := d.comp.NewVirtualMachineScaleSetVMsClient().NewListPager(d.group, d.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		out = append(out, page.Value...)
	}
	return out, nil
}

// show prints each instance with its private IP (from its NIC), the load
// balancer's frontend address and the NAT port of each instance.
func (d *demo) show(ctx context.Context) error {
	vms, err := d.instances(ctx)
	if err != nil {
		return err
	}
	ips := map[string]string{} // instance id (lower case) -> private IP
	nics := d.net.NewInterfacesClient().NewListVirtualMachineScaleSetNetworkInterfacesPager(d.group, d.name, nil)
	for nics.More() {
		page, err := nics.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the instances' NICs: %w", err)
		}
		for _, n := range page.Value {
			if n.Properties == nil || n.Properties.VirtualMachine == nil || n.Properties.VirtualMachine.ID == nil {
				continue
			}
			for _, ic := range n.Properties.IPConfigurations {
				if ic.Properties != nil && ic.Properties.PrivateIPAddress != nil && ic.Properties.Primary != nil && *ic.Properties.Primary {
					ips[strings.ToLower(*n.Properties.VirtualMachine.ID)] = *ic.Properties.PrivateIPAddress
				}
			}
		}
	}
	sort.Slice(vms, func(i, j int) bool {
		return len(*vms[i].InstanceID) < len(*vms[j].InstanceID) || *vms[i].InstanceID < *vms[j].InstanceID
	})
	for _, vm := range vms {
		computer := ""
		if vm.Properties != nil && vm.Properties.OSProfile != nil && vm.Properties.OSProfile.ComputerName != nil {
			computer = *vm.Properties.OSProfile.ComputerName
		}
		fmt.Printf("instance %s %s %s\n", *vm.InstanceID, computer, ips[strings.ToLower(*vm.ID)])
	}

	lb, err := d.net.NewLoadBalancersClient().Get(ctx, d.group, d.name+"LB", nil)
	if err != nil {
		return fmt.Errorf("get load balancer: %w", err)
	}
	if lb.Properties == nil || len(lb.Properties.FrontendIPConfigurations) == 0 || lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress == nil {
		return errors.New("the load balancer has no public frontend")
	}
	pipID := *lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress.ID
	pip, err := d.net.NewPublicIPAddressesClient().Get(ctx, d.group, pipID[strings.LastIndex(pipID, "/")+1:], nil)
	if err != nil {
		return fmt.Errorf("get public IP: %w", err)
	}
	addr := ""
	if pip.Properties != nil && pip.Properties.IPAddress != nil {
		addr = *pip.Properties.IPAddress
	}
	fmt.Printf("frontend %s (http://%s/)\n", addr, addr)
	rules := d.net.NewInboundNatRulesClient().NewListPager(d.group, d.name+"LB", nil)
	for rules.More() {
		page, err := rules.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list inbound NAT rules: %w", err)
		}
		for _, r := range page.Value {
			if r.Properties != nil && r.Properties.FrontendPort != nil {
				fmt.Printf("ssh -p %d azureuser@%s    # %s\n", *r.Properties.FrontendPort, addr, *r.Name)
			}
		}
	}
	return nil
}
