package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// createScaleSet does what az vmss create does: a VNET and subnet when
// missing, a public IP and a load balancer with a backend pool and an inbound
// NAT pool (50000-50119 → 22 by default), then the scale set.
func createScaleSet(ctx context.Context, g *globals, o createOpts) (map[string]any, error) {
	if o.name == "" {
		return nil, fmt.Errorf("--name is required")
	}
	if o.count < 0 {
		return nil, fmt.Errorf("--instance-count must be 0 or more, got %d", o.count)
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&o.vnet, o.name+"VNET")
	def(&o.subnet, o.name+"Subnet")
	def(&o.lb, o.name+"LB")
	def(&o.pip, o.name+"LBPublicIP")
	def(&o.bePool, o.name+"LBBEPool")
	def(&o.natPool, o.name+"LBNatPool")
	if err := preflightScaleSet(o); err != nil {
		return nil, err
	}
	// Credentials, checked before anything is created.
	osProfile, err := scaleSetOSProfile(o)
	if err != nil {
		return nil, err
	}
	subnetID, err := ensureSubnet(ctx, g, o)
	if err != nil {
		return nil, err
	}
	ipConfig := map[string]any{"subnet": map[string]any{"id": subnetID}}
	if !strings.EqualFold(o.lb, "none") && o.lb != "\"\"" {
		if err := createScaleSetLB(ctx, g, o, ipConfig); err != nil {
			return nil, err
		}
	}
	path := g.rid(arm.TypeScaleSet, o.name)
	var out map[string]any
	if err := g.send(ctx, http.MethodPut, path, scaleSetCreateBody(o, osProfile, ipConfig), &out, o.noWait, g.instanceProgress(ctx, path)); err != nil {
		return nil, err
	}
	return out, nil
}

// scaleSetOSProfile is the osProfile of o: admin, credentials, custom data.
func scaleSetOSProfile(o createOpts) (map[string]any, error) {
	osProfile := map[string]any{"adminUsername": o.adminUser}
	if o.computerPrefix != "" {
		osProfile["computerNamePrefix"] = o.computerPrefix
	}
	if err := addCredentials(osProfile, o.adminUser, o.adminPassword, o.authType, o.sshKeys, o.genKeys); err != nil {
		return nil, err
	}
	if o.customData != "" {
		data, err := os.ReadFile(o.customData)
		if err != nil {
			return nil, fmt.Errorf("--custom-data: %w", err)
		}
		osProfile["customData"] = base64.StdEncoding.EncodeToString(data)
	}
	return osProfile, nil
}

// ensureSubnet creates o's VNET with its subnet, or the subnet in an existing
// VNET, when missing, and returns the subnet's id.
func ensureSubnet(ctx context.Context, g *globals, o createOpts) (string, error) {
	vnetPath := g.rid(arm.TypeVirtualNetwork, o.vnet)
	subnetID := vnetPath + "/subnets/" + o.subnet
	vexists, err := g.exists(ctx, vnetPath)
	if err != nil {
		return "", err
	}
	if !vexists {
		body := map[string]any{"properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{o.vnetPrefix}},
			"subnets":      []any{map[string]any{"name": o.subnet, "properties": map[string]any{"addressPrefix": o.subnetPrefix}}},
		}}
		if err := g.send(ctx, http.MethodPut, vnetPath, body, nil, false, nil); err != nil {
			return "", fmt.Errorf("create VNET %s: %w", o.vnet, err)
		}
	} else if ok, err := g.exists(ctx, subnetID); err != nil {
		return "", err
	} else if !ok {
		if err := g.send(ctx, http.MethodPut, subnetID, map[string]any{"properties": map[string]any{"addressPrefix": o.subnetPrefix}}, nil, false, nil); err != nil {
			return "", fmt.Errorf("create subnet %s: %w", o.subnet, err)
		}
	}
	return subnetID, nil
}

// createScaleSetLB puts o's public IP and load balancer (backend pool, NAT
// pool, and with --lb-rule-port a rule and probe) and points ipConfig at them.
func createScaleSetLB(ctx context.Context, g *globals, o createOpts, ipConfig map[string]any) error {
	overprov := 2
	if o.disableOverprovision {
		overprov = 1
	}
	end := 49999 + o.count*overprov
	if end < 50119 {
		end = 50119
	}
	pipPath := g.rid(arm.TypePublicIP, o.pip)
	pipProps := map[string]any{"publicIPAllocationMethod": "Static"}
	if o.pipAddress != "" {
		pipProps["ipAddress"] = o.pipAddress
	}
	if err := g.send(ctx, http.MethodPut, pipPath, map[string]any{"properties": pipProps}, nil, false, nil); err != nil {
		return fmt.Errorf("create public IP %s: %w", o.pip, err)
	}
	lbPath := g.rid(arm.TypeLoadBalancer, o.lb)
	fe := lbPath + "/frontendIPConfigurations/loadBalancerFrontEnd"
	props := map[string]any{
		"frontendIPConfigurations": []any{map[string]any{"name": "loadBalancerFrontEnd", "properties": map[string]any{"publicIPAddress": map[string]any{"id": pipPath}}}},
		"backendAddressPools":      []any{map[string]any{"name": o.bePool}},
		"inboundNatPools": []any{map[string]any{"name": o.natPool, "properties": map[string]any{
			"frontendIPConfiguration": map[string]any{"id": fe}, "protocol": "Tcp",
			"frontendPortRangeStart": 50000, "frontendPortRangeEnd": end, "backendPort": o.backendPort}}},
	}
	if o.lbRulePort > 0 {
		props["probes"] = []any{map[string]any{"name": "httpProbe", "properties": map[string]any{
			"protocol": "Http", "port": o.lbRulePort, "requestPath": o.probePath, "intervalInSeconds": 5, "probeThreshold": 2}}}
		props["loadBalancingRules"] = []any{map[string]any{"name": fmt.Sprintf("rule%d", o.lbRulePort), "properties": map[string]any{
			"frontendIPConfiguration": map[string]any{"id": fe},
			"backendAddressPool":      map[string]any{"id": lbPath + "/backendAddressPools/" + o.bePool},
			"probe":                   map[string]any{"id": lbPath + "/probes/httpProbe"},
			"protocol":                "Tcp", "frontendPort": o.lbRulePort, "backendPort": o.lbRulePort}}}
	}
	if err := g.send(ctx, http.MethodPut, lbPath, map[string]any{"properties": props}, nil, false, nil); err != nil {
		return fmt.Errorf("create load balancer %s: %w", o.lb, err)
	}
	ipConfig["loadBalancerBackendAddressPools"] = []any{map[string]any{"id": lbPath + "/backendAddressPools/" + o.bePool}}
	ipConfig["loadBalancerInboundNatPools"] = []any{map[string]any{"id": lbPath + "/inboundNatPools/" + o.natPool}}
	return nil
}

// scaleSetCreateBody is the scale set PUT body of o.
func scaleSetCreateBody(o createOpts, osProfile, ipConfig map[string]any) map[string]any {
	props := map[string]any{
		"overprovision":            !o.disableOverprovision,
		"upgradePolicy":            map[string]any{"mode": o.upgradeMode},
		"platformFaultDomainCount": o.faultDomains,
		"virtualMachineProfile": map[string]any{
			"osProfile":      osProfile,
			"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"}},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
				"name": o.name[:min(len(o.name), 8)] + "Nic", "properties": map[string]any{"primary": true,
					"ipConfigurations": []any{map[string]any{"name": o.name[:min(len(o.name), 8)] + "IPConfig", "properties": ipConfig}}}}}},
		},
	}
	if o.singlePlacementGroup != "" {
		props["singlePlacementGroup"] = o.singlePlacementGroup
	}
	if o.scaleInPolicy != "" {
		props["scaleInPolicy"] = map[string]any{"rules": []string{o.scaleInPolicy}}
	}
	if o.customScript != "" {
		props["virtualMachineProfile"].(map[string]any)["extensionProfile"] = map[string]any{"extensions": []any{map[string]any{
			"name": "customScript", "properties": map[string]any{"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
				"typeHandlerVersion": "2.1", "settings": map[string]any{"commandToExecute": o.customScript}}}}}
	}
	return map[string]any{"sku": map[string]any{"name": "Standard_DS1_v2", "tier": "Standard", "capacity": o.count}, "properties": props}
}

// preflightScaleSet checks what the scale set PUT would refuse, before
// anything (VNET, public IP, load balancer) is created, so bad input changes
// nothing.
func preflightScaleSet(o createOpts) error {
	if e := model.ValidateName(arm.TypeScaleSet, o.name); e != nil {
		return e
	}
	if e := model.ValidateAdminUser("--admin-username", o.adminUser); e != nil {
		return e
	}
	if o.adminPassword != "" {
		if e := model.ValidatePassword("--admin-password", o.adminPassword); e != nil {
			return e
		}
	}
	if o.computerPrefix != "" {
		if e := model.ValidateComputerNamePrefix(o.computerPrefix); e != nil {
			return e
		}
	}
	if o.faultDomains < 1 || o.faultDomains > 5 {
		return fmt.Errorf("--platform-fault-domain-count must be 1-5, got %d", o.faultDomains)
	}
	if o.count > model.MaxSinglePlacementGroup && !strings.EqualFold(o.singlePlacementGroup, "false") {
		return fmt.Errorf("--instance-count %d exceeds %d instances for a single placement group: add --single-placement-group false (up to %d)",
			o.count, model.MaxSinglePlacementGroup, model.MaxScaleSet)
	}
	for _, p := range []struct{ flag, v string }{{"--vnet-address-prefix", o.vnetPrefix}, {"--subnet-address-prefix", o.subnetPrefix}} {
		if _, e := model.ParsePrefix(p.flag, p.v); e != nil {
			return e
		}
	}
	return nil
}

// addCredentials fills an osProfile's password and linuxConfiguration as az
// does: --authentication-type ssh (the default without a password), password
// (the default with one) or all; keys from --ssh-key-values, ~/.ssh, or
// generated with --generate-ssh-keys.
func addCredentials(osProfile map[string]any, user, password, authType string, keyValues []string, generate bool) error {
	auth := strings.ToLower(authType)
	if auth == "" {
		auth = "ssh"
		if password != "" {
			auth = "password"
		}
	}
	linux := map[string]any{}
	switch auth {
	case "password", "all":
		if password == "" {
			return fmt.Errorf("--authentication-type %s needs --admin-password", auth)
		}
		osProfile["adminPassword"] = password
		linux["disablePasswordAuthentication"] = false
	case "ssh":
		if password != "" {
			return fmt.Errorf("--admin-password is given with --authentication-type ssh; use --authentication-type password or all")
		}
		linux["disablePasswordAuthentication"] = true
	default:
		return fmt.Errorf("--authentication-type %q: use ssh, password or all", authType)
	}
	if auth == "ssh" || auth == "all" {
		keys, err := sshKeyValues(keyValues, generate)
		if err != nil {
			return err
		}
		var pk []any
		for _, k := range keys {
			pk = append(pk, map[string]any{"path": "/home/" + user + "/.ssh/authorized_keys", "keyData": k})
		}
		linux["ssh"] = map[string]any{"publicKeys": pk}
	}
	osProfile["linuxConfiguration"] = linux
	return nil
}
