package reconcile

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// TestInstancePublicIPForwards: each created instance's own public IP
// forwards SSH, the backend ports of its load balancers and the ports its
// network security groups allow, to its private address; instances not
// created yet get nothing; the names of every public IP with a label are
// in every VNET's DNS.
func TestInstancePublicIPForwards(t *testing.T) {
	st := planState(t)
	id := func(typ string, names ...string) arm.ID { return arm.MustID(sub0, "rg", typ, names...) }
	rules := `[
	 {"name":"https","properties":{"priority":100,"direction":"Inbound","access":"Allow","protocol":"Tcp","sourceAddressPrefix":"Internet","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"443"}},
	 {"name":"mdns","properties":{"priority":110,"direction":"Inbound","access":"Allow","protocol":"Udp","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRanges":["5353","9000-9002"]}},
	 {"name":"wide","properties":{"priority":120,"direction":"Inbound","access":"Allow","protocol":"Tcp","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"1000-2000"}},
	 {"name":"any","properties":{"priority":130,"direction":"Inbound","access":"Allow","protocol":"*","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"*"}},
	 {"name":"deny","properties":{"priority":140,"direction":"Inbound","access":"Deny","protocol":"Tcp","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"444"}},
	 {"name":"out","properties":{"priority":150,"direction":"Outbound","access":"Allow","protocol":"Tcp","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"445"}}]`
	if _, _, e := st.PutGeneric(id(arm.TypeNSG, "nsg"), []byte(`{"properties":{"securityRules":`+rules+`}}`)); e != nil {
		t.Fatal(e)
	}
	if _, _, e := st.PutVNet(id(arm.TypeVirtualNetwork, "vnet"), []byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24","networkSecurityGroup":{"id":"`+id(arm.TypeNSG, "nsg").String()+`"}}}]}}`)); e != nil {
		t.Fatal(e)
	}
	sid := id(arm.TypeScaleSet, "web")
	ss := st.ScaleSets[sid.Key()]
	nc := ss.Profile().NICConfigs()[0]
	nc.Properties.IPConfigurations[0].Properties.PublicIPAddressConfiguration = []byte(`{"name":"pub","properties":{"idleTimeoutInMinutes":10,"dnsSettings":{"domainNameLabel":"web"}}}`)
	body := fmt.Sprintf(`{"properties":{"virtualMachineProfile":{"networkProfile":{"networkInterfaceConfigurations":[%s]}}}}`, mustJSON(t, nc))
	if _, _, e := st.PutScaleSet(sid, []byte(body), true); e != nil {
		t.Fatal(e)
	}
	ss = st.ScaleSets[sid.Key()]
	exists := map[string]bool{}
	for _, d := range DesiredInstances(st) {
		exists[d.Spec.Netns] = d.Spec.InstanceID != "2"
	}
	p := BuildPlan(st, exists, exists, PlanOptions{JumpboxFallbackPorts: []uint16{2222}})
	got := map[string][]string{}
	for _, m := range p.NAT {
		if m.Owner != sid.Key() {
			continue
		}
		got[m.Instance] = append(got[m.Instance], fmt.Sprintf("%s/%d->%s", strings.ToLower(m.Protocol), m.Public.Port(), m.Backend))
		if fb := fmt.Sprint(m.FallbackPorts); (m.Public.Port() == 22) != (fb == "[2222]") {
			t.Errorf("%s: fallback ports %s (port 22 alone falls back, as a jumpbox's)", m.Name, fb)
		}
		if m.IdleTimeout.Minutes() != 10 {
			t.Errorf("%s: idle timeout %v, want 10m", m.Name, m.IdleTimeout)
		}
	}
	in0, in2 := ss.Instances["0"], ss.Instances["2"]
	want := []string{"tcp/22->10.0.0.4:22", "tcp/80->10.0.0.4:80", "tcp/443->10.0.0.4:443", "udp/5353->10.0.0.4:5353",
		"tcp/8080->10.0.0.4:8080", "udp/9000->10.0.0.4:9000", "udp/9001->10.0.0.4:9001", "udp/9002->10.0.0.4:9002"}
	sort.Strings(want)
	sort.Strings(got[in0.Netns])
	if strings.Join(got[in0.Netns], " ") != strings.Join(want, " ") {
		t.Errorf("instance 0 forwards\n %v\nwant\n %v", got[in0.Netns], want)
	}
	for _, m := range p.NAT {
		if m.Instance == in0.Netns && m.Owner == sid.Key() && m.Public.Addr().String() != in0.PublicIP {
			t.Errorf("%s on %s, want the instance's own %s", m.Name, m.Public, in0.PublicIP)
		}
	}
	if len(got[in2.Netns]) != 0 {
		t.Errorf("instance 2 is not created but its public IP forwards %v", got[in2.Netns])
	}
	if len(p.DNS) != 1 {
		t.Fatalf("DNS zones %+v", p.DNS)
	}
	names := map[string]string{}
	for _, r := range p.DNS[0].Public {
		names[r.Name] = r.IP.String()
	}
	if n := "vm0.web.eastus.cloudapp.azure.com"; names[n] != in0.PublicIP {
		t.Errorf("public DNS %v: want %s -> %s", names, n, in0.PublicIP)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
