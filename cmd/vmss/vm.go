package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
)

func vmCmd(g *globals) *cobra.Command {
	vm := &cobra.Command{Use: "vm", Short: "Standalone virtual machines such as jumpboxes (az vm)"}
	var o vmOpts
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a VM with az's defaults: a VNET, public IP and NSG allowing SSH unless given (az vm create)",
		Example: `  sudo vmss vm create -n jumpbox --vnet-name webVNET --subnet webSubnet --admin-username azureuser --generate-ssh-keys
  sudo vmss vm create -n inner --vnet-name webVNET --subnet webSubnet --public-ip-address "" --nsg ""`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.pipSet = cmd.Flags().Changed("public-ip-address")
			o.nsgSet = cmd.Flags().Changed("nsg")
			d, err := createVM(ctxOf(cmd), g, o)
			if err != nil || d == nil {
				return err
			}
			return g.print(os.Stdout, d, vmColumns)
		},
	}
	f := create.Flags()
	f.StringVarP(&o.name, "name", "n", "", "VM name (required)")
	f.StringVar(&o.vnet, "vnet-name", "", "VNET (default: the group's first VNET with a subnet, else a new {name}VNET)")
	f.StringVar(&o.subnet, "subnet", "", "subnet of --vnet-name (created in a new VNET as {name}Subnet)")
	f.StringVar(&o.pip, "public-ip-address", "", "public IP, created when missing (default {name}PublicIP; \"\" for none)")
	f.StringVar(&o.nsg, "nsg", "", "network security group, created allowing SSH when missing (default {name}NSG; \"\" for none)")
	f.StringVar(&o.pipPin, "public-ip-address-pin", "", "emulator: host address for the public IP (e.g. 0.0.0.0)")
	f.StringVar(&o.user, "admin-username", "azureuser", "admin account")
	f.StringVar(&o.password, "admin-password", "", "admin password")
	f.StringVar(&o.auth, "authentication-type", "", "ssh, password or all")
	f.StringSliceVar(&o.keys, "ssh-key-values", nil, "SSH public keys or key files")
	f.BoolVar(&o.gen, "generate-ssh-keys", false, "create ~/.ssh/id_rsa when no key exists")
	f.BoolVar(&o.noWait, "no-wait", false, "do not wait")
	_ = create.MarkFlagRequired("name")
	vm.AddCommand(create)

	var details bool
	show := &cobra.Command{
		Use: "show", Short: "Show a VM; -d adds publicIps, privateIps, powerState and sshEndpoint (az vm show)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if details {
				d, err := vmDetails(ctxOf(cmd), g, nameFlag(cmd))
				if err != nil {
					return err
				}
				return g.print(os.Stdout, d, vmColumns)
			}
			v, err := g.get(ctxOf(cmd), g.rid(arm.TypeVM, nameFlag(cmd)))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, vmColumns)
		},
	}
	show.Flags().BoolVarP(&details, "show-details", "d", false, "add public and private IPs, power state and the SSH endpoint")
	vm.AddCommand(show)
	vm.AddCommand(&cobra.Command{
		Use: "list", Short: "List VMs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/Microsoft.Compute/virtualMachines")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, vmColumns)
		},
	})
	var noWait bool
	del := &cobra.Command{
		Use: "delete", Short: "Delete a VM (its NIC and public IP stay, as in Azure)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, g.rid(arm.TypeVM, nameFlag(cmd)), nil, nil, noWait, nil)
		},
	}
	del.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	vm.AddCommand(del)
	for _, a := range [][2]string{{"start", "start"}, {"stop", "powerOff"}, {"deallocate", "deallocate"}, {"restart", "restart"}, {"reimage", "reimage"}} {
		a := a
		vm.AddCommand(&cobra.Command{
			Use: a[0], Short: a[0] + " a VM", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return g.send(ctxOf(cmd), http.MethodPost, g.rid(arm.TypeVM, nameFlag(cmd))+"/"+a[1], nil, nil, false, nil)
			},
		})
	}
	vm.AddCommand(runCommandCmd(g, true))
	for _, c := range vm.Commands() {
		if c.Name() != "create" && c.Name() != "list" && c.Name() != "run-command" {
			c.Flags().StringP("name", "n", "", "VM name (required)")
			_ = c.MarkFlagRequired("name")
		}
	}
	return vm
}

type vmOpts struct {
	name, vnet, subnet, pip, pipPin, nsg, user, password, auth string
	keys                                                       []string
	gen, noWait                                                bool
	// pipSet and nsgSet say that --public-ip-address and --nsg were given
	// (an empty value then means none); unset, az's defaults apply.
	pipSet, nsgSet bool
}

// emptyFlag reports whether a flag value means "none" (az takes "" and
// users often type it quoted once too many).
func emptyFlag(v string) bool { return v == "" || v == `""` || v == "''" }

// createVM does what az vm create does: it finds or creates the VNET and
// subnet, creates the public IP and NSG (az's defaults {name}PublicIP and
// {name}NSG with SSH allowed, unless given "" or existing ones), a NIC and
// the VM. It answers the VM's details (vm show -d).
func createVM(ctx context.Context, g *globals, o vmOpts) (map[string]any, error) {
	subnetID, err := vmSubnet(ctx, g, &o)
	if err != nil {
		return nil, err
	}
	osProfile := map[string]any{"computerName": o.name, "adminUsername": o.user}
	if err := addCredentials(osProfile, o.user, o.password, o.auth, o.keys, o.gen); err != nil {
		return nil, err
	}
	ipc := map[string]any{"subnet": map[string]any{"id": subnetID}, "privateIPAllocationMethod": "Dynamic"}
	if !o.pipSet {
		o.pip = o.name + "PublicIP"
	}
	if !emptyFlag(o.pip) {
		pipPath := g.rid(arm.TypePublicIP, o.pip)
		if err := vmEnsure(ctx, g, pipPath, func() map[string]any {
			props := map[string]any{"publicIPAllocationMethod": "Static"}
			if o.pipPin != "" {
				props["ipAddress"] = o.pipPin
			}
			return map[string]any{"properties": props}
		}); err != nil {
			return nil, fmt.Errorf("create public IP %s: %w", o.pip, err)
		}
		ipc["publicIPAddress"] = map[string]any{"id": pipPath}
	}
	nicProps := map[string]any{"ipConfigurations": []any{map[string]any{"name": "ipconfig" + o.name, "properties": ipc}}}
	if !o.nsgSet {
		o.nsg = o.name + "NSG"
	}
	if !emptyFlag(o.nsg) {
		nsgPath := g.rid(arm.TypeNSG, o.nsg)
		if err := vmEnsure(ctx, g, nsgPath, sshNSG); err != nil {
			return nil, fmt.Errorf("create network security group %s: %w", o.nsg, err)
		}
		nicProps["networkSecurityGroup"] = map[string]any{"id": nsgPath}
	}
	nicPath := g.rid(arm.TypeNIC, o.name+"VMNic")
	if err := g.send(ctx, http.MethodPut, nicPath, map[string]any{"properties": nicProps}, nil, false, nil); err != nil {
		return nil, fmt.Errorf("create NIC: %w", err)
	}
	body := map[string]any{"properties": map[string]any{
		"hardwareProfile": map[string]any{"vmSize": "Standard_DS1_v2"},
		"osProfile":       osProfile,
		"storageProfile":  map[string]any{"imageReference": map[string]any{"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"}},
		"networkProfile":  map[string]any{"networkInterfaces": []any{map[string]any{"id": nicPath}}},
	}}
	if err := g.send(ctx, http.MethodPut, g.rid(arm.TypeVM, o.name), body, nil, o.noWait, nil); err != nil {
		return nil, err
	}
	if o.noWait {
		return nil, nil
	}
	return vmDetails(ctx, g, o.name)
}

// vmSubnet resolves the VM's subnet as az vm create does: --vnet-name and
// --subnet name an existing subnet, or a new VNET's; neither picks the
// group's first VNET with a subnet, else a new {name}VNET 10.0.0.0/16 with
// {name}Subnet 10.0.0.0/24. It returns the subnet's id.
func vmSubnet(ctx context.Context, g *globals, o *vmOpts) (string, error) {
	switch {
	case o.vnet == "" && o.subnet != "":
		return "", fmt.Errorf("--subnet %s needs --vnet-name: incorrect usage: --subnet NAME --vnet-name NAME", o.subnet)
	case o.vnet == "" && o.subnet == "":
		vnets, err := g.list(ctx, "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/Microsoft.Network/virtualNetworks")
		if err != nil {
			return "", err
		}
		for _, v := range vnets {
			vm, _ := v.(map[string]any)
			props, _ := vm["properties"].(map[string]any)
			subnets, _ := props["subnets"].([]any)
			for _, sn := range subnets {
				name, _ := sn.(map[string]any)["name"].(string)
				if name != "" && !strings.EqualFold(name, "GatewaySubnet") {
					o.vnet, o.subnet = fmt.Sprint(vm["name"]), name
					return g.rid(arm.TypeSubnet, o.vnet, o.subnet), nil
				}
			}
		}
		o.vnet = o.name + "VNET"
	}
	if o.subnet == "" {
		o.subnet = o.name + "Subnet"
	}
	subnetID := g.rid(arm.TypeSubnet, o.vnet, o.subnet)
	if ok, err := g.exists(ctx, subnetID); err != nil || ok {
		return subnetID, err
	}
	vnetPath := g.rid(arm.TypeVirtualNetwork, o.vnet)
	if ok, err := g.exists(ctx, vnetPath); err != nil {
		return "", err
	} else if ok {
		return "", fmt.Errorf("subnet %s of VNET %s does not exist in group %s: create it first (vmss network vnet subnet create) or name an existing one", o.subnet, o.vnet, g.group)
	}
	body := map[string]any{"properties": map[string]any{
		"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}},
		"subnets":      []any{map[string]any{"name": o.subnet, "properties": map[string]any{"addressPrefix": "10.0.0.0/24"}}},
	}}
	if err := g.send(ctx, http.MethodPut, vnetPath, body, nil, false, nil); err != nil {
		return "", fmt.Errorf("create VNET %s: %w", o.vnet, err)
	}
	return subnetID, nil
}

// vmEnsure creates the resource at path with body() unless it exists.
func vmEnsure(ctx context.Context, g *globals, path string, body func() map[string]any) error {
	ok, err := g.exists(ctx, path)
	if err != nil || ok {
		return err
	}
	return g.send(ctx, http.MethodPut, path, body(), nil, false, nil)
}

// sshNSG is the network security group az vm create makes for a Linux VM:
// SSH allowed from anywhere, before Azure's default rules.
func sshNSG() map[string]any {
	return map[string]any{"properties": map[string]any{"securityRules": []any{map[string]any{
		"name": "default-allow-ssh",
		"properties": map[string]any{
			"priority": 1000, "protocol": "Tcp", "access": "Allow", "direction": "Inbound",
			"sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22",
		},
	}}}}
}

var vmColumns = []column{
	col("Name", "name"), col("ResourceGroup", "resourceGroup"), col("PowerState", "powerState"),
	col("PublicIps", "publicIps"), col("PrivateIps", "privateIps"), col("SshEndpoint", "sshEndpoint"),
	col("ProvisioningState", "provisioningState"),
}

// vmDetails is az vm show -d: the VM plus powerState, publicIps, privateIps,
// fqdns, macAddresses, and the emulator's sshEndpoint (ADDR:PORT).
func vmDetails(ctx context.Context, g *globals, name string) (map[string]any, error) {
	path := g.rid(arm.TypeVM, name)
	vm, err := g.get(ctx, path+"?$expand=instanceView")
	if err != nil {
		return nil, err
	}
	out := flatten(vm).(map[string]any)
	out["resourceGroup"] = g.group
	var pubs, privs, fqdns, macs []string
	nics, _ := dig(vm, "properties.networkProfile.networkInterfaces").([]any)
	for _, n := range nics {
		nic, err := g.get(ctx, str(dig(n, "id")))
		if err != nil {
			return nil, err
		}
		macs = append(macs, str(dig(nic, "properties.macAddress")))
		ics, _ := dig(nic, "properties.ipConfigurations").([]any)
		for _, ic := range ics {
			privs = append(privs, str(dig(ic, "properties.privateIPAddress")))
			if pipID := str(dig(ic, "properties.publicIPAddress.id")); pipID != "" {
				pip, err := g.get(ctx, pipID)
				if err != nil {
					return nil, err
				}
				pubs = append(pubs, str(dig(pip, "properties.ipAddress")))
				if f := str(dig(pip, "properties.dnsSettings.fqdn")); f != "" {
					fqdns = append(fqdns, f)
				}
			}
		}
	}
	out["publicIps"] = strings.Join(pubs, ",")
	out["privateIps"] = strings.Join(privs, ",")
	out["fqdns"] = strings.Join(fqdns, ",")
	out["macAddresses"] = strings.Join(macs, ",")
	statuses, _ := dig(vm, "properties.instanceView.statuses").([]any)
	for _, s := range statuses {
		if code := str(dig(s, "code")); strings.HasPrefix(code, "PowerState/") {
			out["powerState"] = str(dig(s, "displayStatus"))
		}
		if code := str(dig(s, "code")); code == "SSHEndpoint/none" {
			// The public IP forwards no SSH (every candidate port is taken).
			out["sshEndpoint"] = ""
			out["sshError"] = str(dig(s, "message"))
		} else if strings.HasPrefix(code, "SSHEndpoint/") {
			out["sshEndpoint"] = strings.TrimPrefix(code, "SSHEndpoint/")
		}
	}
	if out["sshEndpoint"] == nil && len(pubs) > 0 {
		out["sshEndpoint"] = pubs[0] + ":22"
	}
	return out, nil
}
