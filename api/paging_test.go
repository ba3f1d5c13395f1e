package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/api/apitest"
	"github.com/vmss-emulator/vmss/arm"
)

// Lists longer than a page answer a page and a nextLink with a $skiptoken;
// following the links yields every item once, in order; the emulator's
// client follows them itself.
func TestListsPageWithNextLink(t *testing.T) {
	c, _ := apitest.StartWith(t, func(s *api.Server) { s.PageSize = 10 })

	network(t, c)
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", scaleSetBody(25), nil)
	list := rg + "/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines"

	get := func(u string) (int, struct {
		Value    []arm.ScaleSetVM `json:"value"`
		NextLink string           `json:"nextLink"`
	}) {
		var out struct {
			Value    []arm.ScaleSetVM `json:"value"`
			NextLink string           `json:"nextLink"`
		}
		resp, err := c.HTTP.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	var ids []string
	pages := 0
	for u := "http://vmss" + list + "?api-version=2024-03-01"; u != ""; pages++ {
		code, p := get(u)
		if code != 200 || pages > 5 {
			t.Fatalf("GET %s: %d (page %d)", u, code, pages)
		}
		if p.NextLink != "" && (len(p.Value) != 10 || !strings.Contains(p.NextLink, "$skiptoken=") || !strings.Contains(p.NextLink, "api-version=2024-03-01")) {
			t.Errorf("page %d: %d items, nextLink %q", pages, len(p.Value), p.NextLink)
		}
		for _, v := range p.Value {
			ids = append(ids, v.InstanceID)
		}
		u = p.NextLink
	}
	if pages != 3 || len(ids) != 25 {
		t.Errorf("%d pages, %d instances: %v; want 3 pages of 25", pages, len(ids), ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("instance %s listed twice", id)
		}
		seen[id] = true
	}

	// The client answers the whole list.
	var all struct {
		Value    []arm.ScaleSetVM `json:"value"`
		NextLink string           `json:"nextLink"`
	}
	if _, err := c.Do(context.Background(), http.MethodGet, list, nil, &all); err != nil || len(all.Value) != 25 || all.NextLink != "" {
		t.Errorf("client: %d instances, nextLink %q, %v", len(all.Value), all.NextLink, err)
	}
	// A short list has no nextLink (positive control of the above).
	var groups struct {
		Value    []json.RawMessage `json:"value"`
		NextLink *string           `json:"nextLink"`
	}
	if code, _ := get("http://vmss/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups?api-version=2021-04-01"); code != 200 {
		t.Fatalf("list groups: %d", code)
	}
	if _, err := c.Do(context.Background(), http.MethodGet, "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups", nil, &groups); err != nil || len(groups.Value) != 1 || groups.NextLink != nil {
		t.Errorf("groups: %+v %v", groups, err)
	}
	// A token the API did not give is refused.
	if code, _ := get("http://vmss" + list + "?api-version=2024-03-01&$skiptoken=bogus"); code != 400 {
		t.Errorf("bogus $skiptoken: %d, want 400", code)
	}
}

// Instances' NICs are served under the scale set: one per NIC
// configuration, the primary ip configuration holding the instance's
// private IP; the instance names it in its networkProfile.
func TestScaleSetInstanceNICs(t *testing.T) {
	c, _ := start(t)
	network(t, c)
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", scaleSetBody(3), nil)
	set := rg + "/Microsoft.Compute/virtualMachineScaleSets/web"
	var vms struct{ Value []arm.ScaleSetVM }
	if _, err := c.Do(context.Background(), http.MethodGet, set+"/virtualMachines", nil, &vms); err != nil || len(vms.Value) != 3 {
		t.Fatalf("instances: %v %v", vms, err)
	}
	var nics struct{ Value []arm.NetworkInterface }
	if _, err := c.Do(context.Background(), http.MethodGet, set+"/networkInterfaces", nil, &nics); err != nil || len(nics.Value) != 3 {
		t.Fatalf("scale set NICs: %+v %v", nics, err)
	}
	for i, vm := range vms.Value {
		n := nics.Value[i]
		if n.Properties.VirtualMachine == nil || n.Properties.VirtualMachine.ID != vm.ID || len(n.Properties.IPConfigurations) != 1 ||
			n.Properties.IPConfigurations[0].Properties.PrivateIPAddress != vm.Properties.PrivateIPAddress || vm.Properties.PrivateIPAddress == "" {
			t.Errorf("NIC %d: %+v, instance %s has %s", i, n, vm.ID, vm.Properties.PrivateIPAddress)
		}
		if vm.Properties.NetworkProfile == nil || len(vm.Properties.NetworkProfile.NetworkInterfaces) != 1 || vm.Properties.NetworkProfile.NetworkInterfaces[0].ID != n.ID {
			t.Errorf("instance %s networkProfile %+v, want %s", vm.ID, vm.Properties.NetworkProfile, n.ID)
		}
		var one arm.NetworkInterface
		if _, err := c.Do(context.Background(), http.MethodGet, n.ID, nil, &one); err != nil || one.ID != n.ID {
			t.Errorf("GET %s: %+v %v", n.ID, one, err)
		}
		var list struct{ Value []arm.NetworkInterface }
		if _, err := c.Do(context.Background(), http.MethodGet, vm.ID+"/networkInterfaces", nil, &list); err != nil || len(list.Value) != 1 || list.Value[0].ID != n.ID {
			t.Errorf("GET %s/networkInterfaces: %+v %v", vm.ID, list, err)
		}
	}
	if _, err := c.Do(context.Background(), http.MethodGet, set+"/virtualMachines/99/networkInterfaces/nic", nil, &struct{}{}); err == nil {
		t.Error("the NIC of a missing instance was served")
	}
}
