package e2e

// The defaults `vmss vm create` shares with `az vm create`: a new VNET,
// public IP and NSG allowing SSH when none is given, the group's first VNET
// when one exists, and "" for none.

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestVMCreateAzDefaults(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)

	// An empty group: everything is created under az's names.
	e.MustCLI("vm", "create", "-n", "solo", "--admin-username", sshUser, "--ssh-key-values", c.Pub, "-o", "none")
	for _, r := range [][]string{
		{"network", "vnet", "show", "-n", "soloVNET"},
		{"network", "public-ip", "show", "-n", "soloPublicIP"},
	} {
		if _, err := e.CLI(r...); err != nil {
			t.Errorf("vm create made no %s: %v", r[len(r)-1], err)
		}
	}
	var nsg map[string]any
	e.JSON(&nsg, "rest", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.Network/networkSecurityGroups/soloNSG")
	if s := fmt.Sprint(nsg); !strings.Contains(s, "default-allow-ssh") || !strings.Contains(s, "destinationPortRange:22") {
		t.Errorf("soloNSG does not allow SSH as az's does: %v", nsg)
	}
	var nic map[string]any
	e.JSON(&nic, "rest", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.Network/networkInterfaces/soloVMNic")
	if s := fmt.Sprint(nic); !strings.Contains(strings.ToLower(s), "networksecuritygroups/solonsg") {
		t.Errorf("soloVMNic is not attached to soloNSG: %v", nic)
	}
	var eff struct {
		Value []struct {
			Association map[string]any   `json:"association"`
			Rules       []map[string]any `json:"effectiveSecurityRules"`
		} `json:"value"`
	}
	e.JSON(&eff, "network", "nic", "list-effective-nsg", "-n", "soloVMNic")
	if len(eff.Value) != 1 || eff.Value[0].Association["networkInterface"] == nil || len(eff.Value[0].Rules) != 7 ||
		eff.Value[0].Rules[0]["name"] != "securityRules/default-allow-ssh" || eff.Value[0].Rules[0]["destinationPortRange"] != "22-22" ||
		eff.Value[0].Rules[3]["name"] != "defaultSecurityRules/DenyAllInBound" {
		t.Errorf("list-effective-nsg soloVMNic: %+v", eff)
	}
	d := sshVMShow(e, "solo")
	if _, err := netip.ParseAddr(d.PublicIps); err != nil || d.SSHEndpoint == "" {
		t.Fatalf("vm show -d: %+v (want a public IP and an SSH endpoint)", d)
	}
	Eventually(t, 30*time.Second, "ssh to solo", func() error {
		if r := c.ssh(d.SSHEndpoint, "hostname"); r.Code != 0 || r.Out() != "solo" {
			return fmt.Errorf("ssh %s hostname: %s", d.SSHEndpoint, r)
		}
		return nil
	})

	// Neither VNET nor subnet given in a group with a VNET: az joins it.
	// "" for the public IP and the NSG: none.
	e.MustCLI("vm", "create", "-n", "inner", "--public-ip-address", "", "--nsg", "", "--admin-username", sshUser, "--ssh-key-values", c.Pub, "-o", "none")
	in := sshVMShow(e, "inner")
	if in.PublicIps != "" || in.SSHEndpoint != "" {
		t.Errorf("vm create --public-ip-address \"\": %+v, want no public IP", in)
	}
	if a, err := netip.ParseAddr(in.PrivateIps); err != nil || !netip.MustParsePrefix("10.0.0.0/24").Contains(a) || in.PrivateIps == d.PrivateIps {
		t.Errorf("inner's private IP %q (solo has %q): want another address of soloSubnet", in.PrivateIps, d.PrivateIps)
	}
	if _, err := e.CLI("network", "public-ip", "show", "-n", "innerPublicIP"); err == nil {
		t.Error(`vm create --public-ip-address "" created innerPublicIP`)
	}
	if _, err := e.CLI("network", "vnet", "show", "-n", "innerVNET"); err == nil {
		t.Error("vm create in a group with a VNET created innerVNET instead of joining soloVNET")
	}
	// Reached through the first VM: it is in the same subnet.
	if r := c.jump(d.SSHEndpoint, in.PrivateIps, "hostname"); r.Code != 0 || r.Out() != "inner" {
		t.Errorf("ssh -J solo inner: %s", r)
	}
	if _, err := e.CLI("vm", "create", "-n", "bad", "--subnet", "x", "-o", "none"); err == nil {
		t.Error("vm create --subnet without --vnet-name was accepted")
	}
}
