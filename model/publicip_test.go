package model

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// pipSetBody is setBody with a publicIPAddressConfiguration on the ip
// configuration (none when pipConfig is nil).
func pipSetBody(t *testing.T, capacity int, pipConfig map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(setBody(t, capacity, nil), &doc); err != nil {
		t.Fatal(err)
	}
	ic := doc["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["networkProfile"].(map[string]any)["networkInterfaceConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)["ipConfigurations"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	if pipConfig != nil {
		ic["publicIPAddressConfiguration"] = pipConfig
	}
	b, _ := json.Marshal(doc)
	return b
}

var pubConfig = map[string]any{"name": "pub", "properties": map[string]any{
	"idleTimeoutInMinutes": 15, "dnsSettings": map[string]any{"domainNameLabel": "myapp"}}}

func TestInstancePublicIPsAllocatedAndReleased(t *testing.T) {
	s := fixture(t, "10.0.0.0/24") // the fixture's public IP holds 127.77.0.1
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, pipSetBody(t, 3, pubConfig), false)
	must(t, e)
	ss := s.ScaleSets[sid.Key()]
	got := map[string]string{}
	for _, in := range ss.SortedInstances() {
		got[in.ID] = in.PublicIP
	}
	want := map[string]string{"0": "127.77.0.2", "1": "127.77.0.3", "2": "127.77.0.4"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("instance %s has public IP %q, want %s (all: %v)", k, got[k], v, got)
		}
	}
	// A standalone public IP does not get an instance's address.
	pip, _, e := s.PutPublicIP(id(t, arm.TypePublicIP, "other"), []byte(`{}`))
	must(t, e)
	if pip.Properties.IPAddress != "127.77.0.5" {
		t.Errorf("new public IP got %s, want 127.77.0.5 (the instances hold .2-.4)", pip.Properties.IPAddress)
	}
	if _, _, e := s.PutPublicIP(id(t, arm.TypePublicIP, "pinned"), []byte(`{"properties":{"ipAddress":"127.77.0.3"}}`)); e == nil || e.Code != "PublicIPAddressInUse" {
		t.Errorf("pinning an instance's address: %v, want PublicIPAddressInUse", e)
	}

	// Scale-out keeps the old addresses; scale-in releases the removed one's.
	ss, e = s.Scale(sid, 4)
	must(t, e)
	if a, b := ss.Instances["1"].PublicIP, ss.Instances["3"].PublicIP; a != "127.77.0.3" || b != "127.77.0.6" {
		t.Errorf("after scale-out: instance 1 %s (want 127.77.0.3), instance 3 %s (want 127.77.0.6)", a, b)
	}
	_, e = s.DeleteInstances(sid, []string{"1"})
	must(t, e)
	if s.publicIPOwner(mustAddr(t, "127.77.0.3")) == "" {
		t.Error("a deleting instance lost its address before it was removed")
	}
	s.RemoveInstance(sid.Key(), "1")
	if owner := s.publicIPOwner(mustAddr(t, "127.77.0.3")); owner != "" {
		t.Errorf("127.77.0.3 still held by %s after instance 1 was removed", owner)
	}
	pip, _, e = s.PutPublicIP(id(t, arm.TypePublicIP, "reuse"), []byte(`{}`))
	must(t, e)
	if pip.Properties.IPAddress != "127.77.0.3" {
		t.Errorf("released address not reused: got %s", pip.Properties.IPAddress)
	}

	// Removing the configuration releases every instance's address.
	_, _, e = s.PutScaleSet(sid, pipSetBody(t, 3, nil), false)
	must(t, e)
	for _, in := range s.ScaleSets[sid.Key()].Instances {
		if in.PublicIP != "" {
			t.Errorf("instance %s keeps %s without a publicIPAddressConfiguration", in.ID, in.PublicIP)
		}
	}
}

func TestInstancePublicIPShape(t *testing.T) {
	s := fixture(t, "10.0.0.0/24")
	sid := id(t, arm.TypeScaleSet, "web")
	_, _, e := s.PutScaleSet(sid, pipSetBody(t, 2, pubConfig), false)
	must(t, e)
	ss := s.ScaleSets[sid.Key()]
	list := InstancePublicIPs(ss)
	if len(list) != 2 {
		t.Fatalf("%d public IPs listed, want 2", len(list))
	}
	p := list[1]
	wantID := sid.String() + "/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ipc/publicIPAddresses/pub"
	if p.ID != wantID || p.Name != "pub" || p.Type != arm.TypePublicIP {
		t.Errorf("id %s name %s, want %s and pub", p.ID, p.Name, wantID)
	}
	if p.Properties.IPAddress != ss.Instances["1"].PublicIP || p.Properties.PublicIPAllocationMethod != "Static" {
		t.Errorf("properties %+v", p.Properties)
	}
	if n := arm.IntOr(p.Properties.IdleTimeoutInMinutes, 0); n != 15 {
		t.Errorf("idleTimeoutInMinutes %d, want 15", n)
	}
	loc := strings.ToLower(ss.Model.Location)
	if ds := p.Properties.DNSSettings; ds == nil || ds.Fqdn != "vm1.myapp."+loc+".cloudapp.azure.com" || ds.DomainNameLabel != "vm1.myapp" {
		t.Errorf("dnsSettings %+v, want fqdn vm1.myapp.%s.cloudapp.azure.com", ds, loc)
	}
	if ipc := p.Properties.IPConfiguration; ipc == nil || ipc.ID != strings.TrimSuffix(wantID, "/publicIPAddresses/pub") {
		t.Errorf("ipConfiguration %+v", ipc)
	}
	// The instance's NIC references it.
	nics := InstanceNICs(ss, ss.Instances["1"])
	if len(nics) != 1 || len(nics[0].Properties.IPConfigurations) != 1 {
		t.Fatalf("NICs %+v", nics)
	}
	c := nics[0].Properties.IPConfigurations[0]
	if c.Properties.PublicIPAddress == nil || c.Properties.PublicIPAddress.ID != wantID || c.Properties.PrivateIPAddress != ss.Instances["1"].PrivateIP {
		t.Errorf("NIC ip configuration %+v", c.Properties)
	}
	// DNS names for the resolver: the instances' and a standalone public
	// IP's with a label (the fixture's unlabelled one has none).
	jb, _, e := s.PutPublicIP(id(t, arm.TypePublicIP, "jb"), []byte(`{"properties":{"dnsSettings":{"domainNameLabel":"JumpBox"}}}`))
	must(t, e)
	recs := s.PublicDNSRecords()
	if len(recs) != 3 || recs[0].FQDN != "jumpbox."+loc+".cloudapp.azure.com" || recs[0].IP.String() != jb.Properties.IPAddress ||
		recs[1].FQDN != "vm0.myapp."+loc+".cloudapp.azure.com" || recs[1].IP.String() != ss.Instances["0"].PublicIP {
		t.Errorf("DNS records %+v", recs)
	}
}

func TestInstancePublicIPConfigValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  map[string]any
		code string
	}{
		{"no name", map[string]any{"properties": map[string]any{}}, "InvalidParameter"},
		{"idle timeout", map[string]any{"name": "p", "properties": map[string]any{"idleTimeoutInMinutes": 31}}, "InvalidParameter"},
		{"label", map[string]any{"name": "p", "properties": map[string]any{"dnsSettings": map[string]any{"domainNameLabel": "Bad_Label"}}}, "InvalidDomainNameLabel"},
		{"ipv6", map[string]any{"name": "p", "properties": map[string]any{"publicIPAddressVersion": "IPv6"}}, "InvalidParameter"},
	} {
		s := fixture(t, "10.0.0.0/24")
		seq := s.Seq
		_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "web"), pipSetBody(t, 1, c.cfg), false)
		if e == nil || e.Code != c.code || s.Seq != seq {
			t.Errorf("%s: got %v, want %s and no change", c.name, e, c.code)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
