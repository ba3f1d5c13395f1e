package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// TestInstancePublicIPRoutes: the ARM lists of per-instance public IPs (any
// spelling of the path, as Azure's specification writes it lower-case),
// the single get, the instance's NIC referencing it, and 404s naming what
// is missing.
func TestInstancePublicIPRoutes(t *testing.T) {
	c, _ := start(t)
	network(t, c)
	body := strings.Replace(scaleSetBody(2), `"properties":{"subnet"`,
		`"properties":{"publicIPAddressConfiguration":{"name":"pub","properties":{"idleTimeoutInMinutes":7,"dnsSettings":{"domainNameLabel":"lbl"}}},"subnet"`, 1)
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", body, nil)
	set := rg + "/Microsoft.Compute/virtualMachineScaleSets/web"
	ctx := context.Background()

	var list struct {
		Value []arm.PublicIPAddress `json:"value"`
	}
	if _, err := c.Do(ctx, "GET", set+"/publicipaddresses", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 2 {
		t.Fatalf("scale set list: %+v", list.Value)
	}
	p1 := list.Value[1]
	ipc := set + "/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ip"
	if p1.ID != ipc+"/publicIPAddresses/pub" || p1.Properties.IPAddress == "" || p1.Properties.DNSSettings == nil ||
		!strings.HasPrefix(p1.Properties.DNSSettings.Fqdn, "vm1.lbl.") || arm.IntOr(p1.Properties.IdleTimeoutInMinutes, 0) != 7 {
		t.Errorf("instance 1's public IP: %+v", p1)
	}
	list.Value = nil
	if _, err := c.Do(ctx, "GET", strings.ToLower(ipc)+"/publicipaddresses", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 1 || list.Value[0].ID != p1.ID {
		t.Errorf("instance list: %+v, want %s", list.Value, p1.ID)
	}
	var one arm.PublicIPAddress
	if _, err := c.Do(ctx, "GET", ipc+"/publicIPAddresses/PUB", nil, &one); err != nil || one.Properties.IPAddress != p1.Properties.IPAddress {
		t.Errorf("get: %+v, %v", one, err)
	}
	var nic arm.NetworkInterface
	if _, err := c.Do(ctx, "GET", set+"/virtualMachines/1/networkInterfaces/nic", nil, &nic); err != nil {
		t.Fatal(err)
	}
	if len(nic.Properties.IPConfigurations) != 1 || nic.Properties.IPConfigurations[0].Properties.PublicIPAddress == nil ||
		nic.Properties.IPConfigurations[0].Properties.PublicIPAddress.ID != p1.ID {
		t.Errorf("NIC %+v does not reference %s", nic, p1.ID)
	}
	var nics struct {
		Value []arm.NetworkInterface `json:"value"`
	}
	if _, err := c.Do(ctx, "GET", set+"/networkinterfaces", nil, &nics); err != nil {
		t.Fatal(err)
	}
	if len(nics.Value) != 2 || nics.Value[1].ID != nic.ID {
		t.Errorf("scale set NIC list %+v, want 2 with instance 1's second", nics.Value)
	}
	var vm arm.ScaleSetVM
	if _, err := c.Do(ctx, "GET", set+"/virtualMachines/1", nil, &vm); err != nil {
		t.Fatal(err)
	}
	if vm.Properties.NetworkProfile == nil || len(vm.Properties.NetworkProfile.NetworkInterfaces) != 1 ||
		vm.Properties.NetworkProfile.NetworkInterfaces[0].ID != set+"/virtualMachines/1/networkInterfaces/nic" ||
		vm.Properties.PublicIPAddress != p1.Properties.IPAddress {
		t.Errorf("instance 1: network profile %+v, publicIpAddress %q", vm.Properties.NetworkProfile, vm.Properties.PublicIPAddress)
	}
	for _, path := range []string{ipc + "/publicIPAddresses/other", set + "/virtualMachines/9/networkInterfaces/nic",
		set + "/virtualMachines/1/networkInterfaces/nic/ipConfigurations/nope/publicIPAddresses"} {
		_, err := c.Do(ctx, "GET", path, nil, nil)
		var ae *arm.Error
		if !errors.As(err, &ae) || ae.Status != 404 {
			t.Errorf("GET %s: %v, want 404", path, err)
		}
	}
}
