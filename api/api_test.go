package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/api/apitest"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/model"
)

func start(t *testing.T) (*client.Client, *model.Store) { return apitest.Start(t) }

const rg = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers"

func put(t *testing.T, c *client.Client, path, body string, out any) {
	t.Helper()
	op, err := c.Do(context.Background(), "PUT", path, []byte(body), out)
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
	if err := c.Wait(context.Background(), op, nil); err != nil {
		t.Fatalf("wait PUT %s: %v", path, err)
	}
}

func network(t *testing.T, c *client.Client) {
	put(t, c, rg+"/Microsoft.Network/virtualNetworks/vnet", `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`, nil)
}

func scaleSetBody(capacity int) string {
	return `{"sku":{"name":"Standard_A1","capacity":` + itoa(capacity) + `},"properties":{"overprovision":"false","virtualMachineProfile":{
	  "osProfile":{"computerNamePrefix":"web","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
	  "networkProfile":{"networkInterfaceConfigurations":[{"name":"nic","properties":{"primary":true,"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"` + rg + `/Microsoft.Network/virtualNetworks/vnet/subnets/sn"}}}]}}]}}}}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestScaleSetLifecycleOverTheSocket(t *testing.T) {
	c, _ := start(t)
	network(t, c)
	var ss arm.VirtualMachineScaleSet
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", scaleSetBody(3), &ss)
	if ss.Name != "web" || ss.Properties.VirtualMachineProfile.OSProfile.AdminPassword != "" {
		t.Errorf("answer: name %q, password returned %q", ss.Name, ss.Properties.VirtualMachineProfile.OSProfile.AdminPassword)
	}
	var list struct {
		Value []arm.ScaleSetVM `json:"value"`
	}
	if _, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 3 {
		t.Fatalf("%d instances", len(list.Value))
	}
	v := list.Value[2]
	if v.InstanceID != "2" || v.Name != "web_2" || v.Properties.OSProfile.ComputerName != "web000002" || v.Properties.PrivateIPAddress != "10.0.0.6" ||
		v.Properties.PlatformFaultDomain != 2 || v.Properties.Netns == "" {
		t.Errorf("instance 2: %+v", v)
	}
	// delete-instances lowers the capacity.
	op, err := c.Do(context.Background(), "POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/delete", map[string]any{"instanceIds": []string{"1"}}, nil)
	if err != nil || op.Done() {
		t.Fatalf("delete-instances: %v, op %+v", err, op)
	}
	if err := c.Wait(context.Background(), op, nil); err != nil {
		t.Fatal(err)
	}
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", `{"sku":{"capacity":4}}`, &ss)
	if *ss.Sku.Capacity != 4 {
		t.Errorf("capacity %d after partial PUT", *ss.Sku.Capacity)
	}
	var view arm.VMInstanceView
	if _, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/instanceView", nil, &view); err != nil {
		t.Fatal(err)
	}
	if view.PlatformFaultDomain == nil || *view.PlatformFaultDomain != 0 || view.PlatformUpdateDomain == nil || len(view.Statuses) < 2 {
		t.Errorf("instance view %+v", view)
	}
}

func TestARMErrors(t *testing.T) {
	c, st := start(t)
	network(t, c)
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", scaleSetBody(2), nil)
	var seq int64
	st.View(func(s *model.State) { seq = s.Seq })
	cases := []struct {
		method, path, body, code string
		status                   int
	}{
		{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web", `{not json`, "InvalidRequestContent", 400},
		{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web", `{"sku":{"capacity":-1}}`, "InvalidParameter", 400},
		{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/delete", `{"instanceIds":["9"]}`, "InvalidParameter", 400},
		{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/fly", ``, "InvalidResourceType", 404},
		{"GET", rg + "/Microsoft.Compute/virtualMachineScaleSets/nope", ``, "ResourceNotFound", 404},
		{"PUT", rg + "/Microsoft.Foo/bars/x", `{}`, "InvalidResourceType", 400},
		{"GET", "/subscriptions/other/resourceGroups/x", ``, "SubscriptionNotFound", 404},
		{"GET", "/nothing", ``, "InvalidRequestUri", 404},
	}
	for _, cs := range cases {
		var body any
		if cs.body != "" {
			body = []byte(cs.body)
		}
		_, err := c.Do(context.Background(), cs.method, cs.path, body, nil)
		var ae *arm.Error
		if !errors.As(err, &ae) || ae.Code != cs.code || ae.Status != cs.status || ae.Message == "" {
			t.Errorf("%s %s: %v (want %s %d)", cs.method, cs.path, err, cs.code, cs.status)
		}
	}
	var after int64
	st.View(func(s *model.State) { after = s.Seq })
	if after != seq {
		t.Error("rejected requests changed the state")
	}
	// Without api-version.
	resp, err := c.HTTP.Get("http://vmss" + rg + "/Microsoft.Compute/virtualMachineScaleSets/web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("missing api-version: %d", resp.StatusCode)
	}
}

func TestSocketIsRootOnly(t *testing.T) {
	c, _ := start(t)
	fi, err := os.Stat(c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := api.ListenUnix(c.Socket); err == nil || !strings.Contains(err.Error(), "already answers") {
		t.Errorf("second listener on a live socket: %v", err)
	}
}

func TestDaemonDownError(t *testing.T) {
	c := client.New(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets", nil, nil)
	if !errors.Is(err, client.ErrDaemonDown) || !strings.Contains(err.Error(), "sudo vmss serve") {
		t.Errorf("daemon down: %v", err)
	}
}

func TestLoadBalancerCrossReferences(t *testing.T) {
	c, _ := start(t)
	network(t, c)
	put(t, c, rg+"/Microsoft.Network/publicIPAddresses/pip", `{"properties":{"dnsSettings":{"domainNameLabel":"Web"}}}`, nil)
	lb := rg + "/Microsoft.Network/loadBalancers/lb"
	put(t, c, lb, `{"properties":{"frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"`+rg+`/Microsoft.Network/publicIPAddresses/pip"}}}],
	 "backendAddressPools":[{"name":"be"}],"probes":[{"name":"p","properties":{"protocol":"Http","port":80,"requestPath":"/"}}],
	 "loadBalancingRules":[{"name":"r","properties":{"frontendIPConfiguration":{"id":"`+lb+`/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"`+lb+`/backendAddressPools/be"},"probe":{"id":"`+lb+`/probes/p"},"protocol":"Tcp","frontendPort":80,"backendPort":"80"}}]}}`, nil)
	var pip arm.PublicIPAddress
	if _, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Network/publicIPAddresses/pip", nil, &pip); err != nil {
		t.Fatal(err)
	}
	if pip.Properties.IPAddress != "127.77.0.1" || pip.Properties.IPConfiguration == nil || pip.Properties.DNSSettings.Fqdn != "web.eastus.cloudapp.azure.com" {
		t.Errorf("public ip %+v", pip.Properties)
	}
	var probe arm.Probe
	if _, err := c.Do(context.Background(), "GET", lb+"/probes/p", nil, &probe); err != nil {
		t.Fatal(err)
	}
	if arm.IntOr(probe.Properties.IntervalInSeconds, 0) != 15 || len(probe.Properties.LoadBalancingRules) != 1 {
		t.Errorf("probe defaults/refs: %+v", probe.Properties)
	}
}
