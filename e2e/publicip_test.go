package e2e

// Per-instance public IPs (publicIPAddressConfiguration): every instance
// answers on an address of its own, from the host, with real OpenSSH and
// curl; the addresses are listed as Azure lists them, resolve by name in the
// VNET's DNS, survive a daemon crash, are released by scale-in, and network
// security groups filter them as Internet traffic.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pipView is the part of a listed public IP the tests read.
type pipView struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	IPAddress       string `json:"ipAddress"`
	IdleTimeout     int    `json:"idleTimeoutInMinutes"`
	IPConfiguration struct {
		ID string `json:"id"`
	} `json:"ipConfiguration"`
	DNSSettings struct {
		DomainNameLabel string `json:"domainNameLabel"`
		Fqdn            string `json:"fqdn"`
	} `json:"dnsSettings"`
}

// instancePIPs is vmss list-instance-public-ips, by instance id (read from the ids).
func instancePIPs(e *Env, group, set string) map[string]pipView {
	e.T.Helper()
	var list []pipView
	e.JSON(&list, "list-instance-public-ips", "-g", group, "-n", set)
	out := map[string]pipView{}
	for _, p := range list {
		parts := strings.Split(p.ID, "/virtualMachines/")
		if len(parts) != 2 {
			e.T.Fatalf("public IP id %s has no instance", p.ID)
		}
		out[strings.SplitN(parts[1], "/", 2)[0]] = p
	}
	return out
}

// curlGet fetches a URL with the curl program (3 s at most).
func curlGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--fail", "--max-time", "3", url).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("curl %s: %v: %s", url, err, out)
	}
	return string(out), nil
}

// quickSSH runs ssh with a short connect timeout (for checks that expect
// the connection to be dropped).
func (c *sshClient) quickSSH(ep string, args ...string) sshResult {
	c.t.Helper()
	host, port := splitEP(c.t, ep)
	return c.run("", "ssh", append([]string{"-o", "ConnectTimeout=3", "-p", port, host}, args...)...)
}

// pipDeploy deploys testdata/corpus/publicip.json with the client's key.
func pipDeploy(e *Env, c *sshClient, group, set, label string, count int) {
	e.T.Helper()
	pub, err := os.ReadFile(c.Pub)
	if err != nil {
		e.T.Fatal(err)
	}
	e.MustCLI("deployment", "create", "-g", group, "--template-file", "testdata/corpus/publicip.json",
		"--parameters", "vmssName="+set, fmt.Sprintf("instanceCount=%d", count), "adminUsername="+sshUser,
		"sshPublicKey="+strings.TrimSpace(string(pub)), "dnsLabel="+label, "-o", "none")
}

// pipSSHEndpoint is where SSH of an instance's public IP answers, from its
// instance view: port 22, or a fallback port when the host's own sshd holds
// port 22 of every address.
func pipSSHEndpoint(e *Env, group, set, id, addr string) string {
	e.T.Helper()
	var ep string
	Eventually(e.T, 30*time.Second, "the SSH endpoint of instance "+id, func() error {
		view := e.MustCLI("get-instance-view", "-g", group, "-n", set, "--instance-id", id)
		m := regexp.MustCompile(`SSHEndpoint/([0-9.]+:[0-9]+)`).FindStringSubmatch(view)
		if m == nil {
			return fmt.Errorf("no SSHEndpoint status: %s", view)
		}
		ep = m[1]
		return nil
	})
	if host, _ := splitEP(e.T, ep); host != addr {
		e.T.Fatalf("instance %s: SSH endpoint %s is not on its public IP %s", id, ep, addr)
	}
	return ep
}

// pipCheckInstance checks, from the host, that an instance's own public IP
// reaches it: SSH (port 22, see pipSSHEndpoint) and the app on 8080.
func pipCheckInstance(t *testing.T, e *Env, c *sshClient, group, set, id, addr, computerName string) {
	t.Helper()
	ep := pipSSHEndpoint(e, group, set, id, addr)
	Eventually(t, 60*time.Second, "ssh to "+computerName+" at its public IP "+ep, func() error {
		if r := c.ssh(ep, "hostname"); r.Code != 0 || r.Out() != computerName {
			return fmt.Errorf("ssh %s hostname: %s, want %q", ep, r, computerName)
		}
		return nil
	})
	Eventually(t, 30*time.Second, "curl "+computerName+"'s app at its public IP", func() error {
		body, err := curlGet("http://" + net.JoinHostPort(addr, "8080") + "/")
		if err != nil || !strings.Contains(body, computerName) {
			return fmt.Errorf("%q (%v), want a page from %s", body, err, computerName)
		}
		return nil
	})
}

func TestInstancePublicIPs(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	const g, set = "pipg", "pipss"
	pipDeploy(e, c, g, set, "pipapp", 2)

	insts := e.Instances(set, "-g", g)
	pips := instancePIPs(e, g, set)
	if len(insts) != 2 || len(pips) != 2 {
		t.Fatalf("%d instances and public IPs %+v, want 2 of each", len(insts), pips)
	}
	setID := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/" + g + "/providers/Microsoft.Compute/virtualMachineScaleSets/" + set
	seen := map[string]bool{}
	for _, in := range insts {
		p, ok := pips[in.InstanceID]
		if !ok {
			t.Fatalf("instance %s has no public IP: %+v", in.InstanceID, pips)
		}
		wantID := setID + "/virtualMachines/" + in.InstanceID + "/networkInterfaces/nic/ipConfigurations/ipconfig/publicIPAddresses/instancepip"
		if !strings.EqualFold(p.ID, wantID) || p.Name != "instancepip" || p.IdleTimeout != 10 ||
			!strings.EqualFold(p.IPConfiguration.ID, strings.TrimSuffix(wantID, "/publicIPAddresses/instancepip")) {
			t.Errorf("instance %s public IP %+v, want id %s, idle timeout 10", in.InstanceID, p, wantID)
		}
		if !strings.HasPrefix(p.DNSSettings.Fqdn, "vm"+in.InstanceID+".pipapp.") || !strings.HasSuffix(p.DNSSettings.Fqdn, ".cloudapp.azure.com") {
			t.Errorf("instance %s fqdn %q, want vm%s.pipapp.<location>.cloudapp.azure.com", in.InstanceID, p.DNSSettings.Fqdn, in.InstanceID)
		}
		if seen[p.IPAddress] || !strings.HasPrefix(p.IPAddress, "127.") {
			t.Errorf("instance %s address %q: not a loopback address of its own", in.InstanceID, p.IPAddress)
		}
		seen[p.IPAddress] = true

		// The instance-level ARM list and get, and the NIC that references it.
		var list struct {
			Value []pipView `json:"value"`
		}
		ipc := setID + "/virtualMachines/" + in.InstanceID + "/networkInterfaces/nic/ipConfigurations/ipconfig"
		e.JSON(&list, "rest", "-u", ipc+"/publicipaddresses")
		if len(list.Value) != 1 || list.Value[0].IPAddress != "" && list.Value[0].IPAddress != p.IPAddress {
			t.Errorf("instance %s list: %+v", in.InstanceID, list.Value)
		}
		var one map[string]any
		e.JSON(&one, "rest", "-u", wantID)
		if got := fmt.Sprint(dig2(one, "ipAddress")); got != p.IPAddress {
			t.Errorf("GET %s: ipAddress %s, want %s", wantID, got, p.IPAddress)
		}
		var nic map[string]any
		e.JSON(&nic, "rest", "-u", setID+"/virtualMachines/"+in.InstanceID+"/networkInterfaces/nic")
		if !strings.Contains(strings.ToLower(jsonString(nic)), strings.ToLower(wantID)) {
			t.Errorf("the instance's NIC does not reference its public IP: %s", jsonString(nic))
		}
		pipCheckInstance(t, e, c, g, set, in.InstanceID, p.IPAddress, in.OSProfile.ComputerName)

		// The name resolves through the VNET's DNS (from inside an instance).
		out, err := InNetns(in.Netns, "dig", "+short", "+time=2", "+tries=2", "@168.63.129.16", p.DNSSettings.Fqdn)
		if err != nil || strings.TrimSpace(out) != p.IPAddress {
			t.Errorf("dig %s in %s: %q (%v), want %s", p.DNSSettings.Fqdn, in.Netns, out, err, p.IPAddress)
		}
	}

	// A daemon crash changes nothing: the next start serves the same addresses.
	e.Kill()
	e.Serve()
	after := instancePIPs(e, g, set)
	for _, in := range insts {
		if after[in.InstanceID].IPAddress != pips[in.InstanceID].IPAddress {
			t.Errorf("instance %s: %s after a restart, was %s", in.InstanceID, after[in.InstanceID].IPAddress, pips[in.InstanceID].IPAddress)
		}
		pipCheckInstance(t, e, c, g, set, in.InstanceID, after[in.InstanceID].IPAddress, in.OSProfile.ComputerName)
	}

	// NSG: a Deny of the app port from the Internet, on the scale set's
	// subnet, drops what comes through the public IP; SSH stays allowed.
	addr0 := pips[insts[0].InstanceID].IPAddress
	nsgURL := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/" + g + "/providers/Microsoft.Network/networkSecurityGroups/" + set + "-nsg"
	nsgRest(e, "put", nsgURL, map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": []any{
		nsgRule("ssh", 100, "Allow", "Tcp", "Internet", "22"),
		nsgRule("deny-app", 105, "Deny", "Tcp", "Internet", "8080"),
		nsgRule("app", 110, "Allow", "Tcp", "Internet", "8080"),
	}}})
	Eventually(t, 40*time.Second, "the app denied through the public IP", func() error {
		if body, err := curlGet("http://" + net.JoinHostPort(addr0, "8080") + "/"); err == nil {
			return fmt.Errorf("still served: %q", body)
		}
		return nil
	})
	ep0 := pipSSHEndpoint(e, g, set, insts[0].InstanceID, addr0)
	if r := c.ssh(ep0, "hostname"); r.Code != 0 {
		t.Errorf("ssh through the public IP failed with only the app denied: %s", r)
	}

	// Scale-in releases the removed instance's address; the other keeps its own.
	gone := insts[1]
	goneEP := pipSSHEndpoint(e, g, set, gone.InstanceID, pips[gone.InstanceID].IPAddress)
	if r := c.ssh(goneEP, "true"); r.Code != 0 {
		t.Fatalf("ssh to instance %s before its deletion: %s", gone.InstanceID, r)
	}
	e.MustCLI("delete-instances", "-g", g, "-n", set, "--instance-ids", gone.InstanceID, "-o", "none")
	left := instancePIPs(e, g, set)
	if len(left) != 1 || left[insts[0].InstanceID].IPAddress != addr0 {
		t.Fatalf("after deleting instance %s: %+v, want only instance %s on %s", gone.InstanceID, left, insts[0].InstanceID, addr0)
	}
	goneAddr := pips[gone.InstanceID].IPAddress
	Eventually(t, 30*time.Second, "the deleted instance's public IP stops answering", func() error {
		if r := c.quickSSH(goneEP, "true"); r.Code == 0 {
			return fmt.Errorf("ssh to %s still works", goneEP)
		}
		return nil
	})
	// Its address goes to the next public IP that asks.
	var pip map[string]any
	e.JSON(&pip, "rest", "-m", "put", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"+g+"/providers/Microsoft.Network/publicIPAddresses/later", "-b", `{"location":"eastus"}`)
	if got := fmt.Sprint(dig2(pip, "ipAddress")); got != goneAddr {
		t.Errorf("a new public IP got %s, want the released %s", got, goneAddr)
	}
}
