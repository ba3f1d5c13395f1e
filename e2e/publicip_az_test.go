package e2e

// The real az CLI lists per-instance public IPs and the instances' NICs
// that reference them.

import (
	"strings"
	"testing"
)

func TestAzListInstancePublicIPs(t *testing.T) {
	t.Parallel()
	e, a, _ := startAz(t)
	c := newSSHClient(t)
	pipDeploy(e, c, "azpip", "azpip", "azlbl", 2)
	want := instancePIPs(e, "azpip", "azpip")

	var pips []struct {
		ID, Name, Type, IPAddress string
		DNSSettings               struct{ Fqdn string }
	}
	a.az(&pips, "vmss", "list-instance-public-ips", "-g", "azpip", "-n", "azpip", "-o", "json")
	if len(pips) != 2 {
		t.Fatalf("az vmss list-instance-public-ips: %+v, want 2", pips)
	}
	for _, p := range pips {
		w, ok := want[strings.SplitN(strings.SplitN(p.ID, "/virtualMachines/", 2)[1], "/", 2)[0]]
		if !ok || p.IPAddress != w.IPAddress || p.DNSSettings.Fqdn != w.DNSSettings.Fqdn || p.Type != "Microsoft.Network/publicIPAddresses" {
			t.Errorf("az shows %+v, vmss shows %+v", p, w)
		}
	}
	var nics []struct {
		ID               string
		IPConfigurations []struct {
			PublicIPAddress struct{ ID string } `json:"publicIPAddress"`
		} `json:"ipConfigurations"`
	}
	a.az(&nics, "vmss", "nic", "list", "-g", "azpip", "--vmss-name", "azpip", "-o", "json")
	if len(nics) != 2 {
		t.Fatalf("az vmss nic list: %+v, want 2 NICs", nics)
	}
	for _, n := range nics {
		if len(n.IPConfigurations) != 1 || !strings.HasPrefix(n.IPConfigurations[0].PublicIPAddress.ID, n.ID+"/ipConfigurations/ipconfig/publicIPAddresses/") {
			t.Errorf("NIC %s does not reference its public IP: %+v", n.ID, n.IPConfigurations)
		}
	}
}
