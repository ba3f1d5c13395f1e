package e2e

// Inbound NAT rules version 2: a rule on a backend pool with a frontend port
// range pre-allocates one port per instance; OpenSSH logs in through every
// mapping while the set scales out and in.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNATRuleV2SSH(t *testing.T) {
	e := Start(t, Options{})
	c := newSSHClient(t)
	pub, err := os.ReadFile(c.Pub)
	if err != nil {
		t.Fatal(err)
	}
	const g = "natv2"
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/natrulev2.json",
		"--parameters", "vmssName=natv2", "instanceCount=2", "adminUsername="+sshUser,
		"sshPublicKey="+strings.TrimSpace(string(pub)), "natPortStart=50100", "natPortEnd=50102", "-o", "none")

	// login checks that ep reaches instance id itself (its computer name).
	login := func(id, ep string) {
		t.Helper()
		want := ""
		for _, in := range e.Instances("natv2", "-g", g) {
			if in.InstanceID == id {
				want = in.OSProfile.ComputerName
			}
		}
		Eventually(t, 30*time.Second, "ssh to instance "+id+" via "+ep, func() error {
			if r := c.ssh(ep, "hostname"); r.Code != 0 || r.Out() != want {
				return fmt.Errorf("ssh %s hostname: %s, want %q", ep, r, want)
			}
			return nil
		})
	}
	eps := wildConnInfo(e, g, "natv2")
	if len(eps) != 2 || !strings.HasSuffix(eps["0"], ":50100") || !strings.HasSuffix(eps["1"], ":50101") {
		t.Fatalf("connection info %v, want instance 0 on 50100 and 1 on 50101", eps)
	}
	for id, ep := range eps {
		login(id, ep)
	}

	// The port mapping query answers by IP address as by ip configuration.
	lb := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/" + g + "/providers/Microsoft.Network/loadBalancers/natv2lb"
	query := func(body string) []map[string]any {
		t.Helper()
		f := filepath.Join(t.TempDir(), "q.json")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Mappings []map[string]any `json:"inboundNatRulePortMappings"`
		}
		e.JSON(&out, "rest", "-m", "post", "-u", lb+"/backendAddressPools/natv2bepool/queryInboundNatRulePortMapping", "-b", "@"+f)
		return out.Mappings
	}
	for _, in := range e.Instances("natv2", "-g", g) {
		m := query(`{"ipAddress":"` + in.PrivateIPAddress + `"}`)
		want := strings.SplitN(eps[in.InstanceID], ":", 2)[1]
		if len(m) != 1 || fmt.Sprint(m[0]["frontendPort"]) != want || fmt.Sprint(m[0]["backendPort"]) != "22" || m[0]["inboundNatRuleName"] != "natv2ssh" {
			t.Errorf("instance %s mapping %v, want frontend %s → 22", in.InstanceID, m, want)
		}
	}

	// Scale-in keeps the other mapping; scale-out takes the free port.
	e.MustCLI("delete-instances", "-g", g, "-n", "natv2", "--instance-ids", "0", "-o", "none")
	after := wildConnInfo(e, g, "natv2")
	if len(after) != 1 || after["1"] != eps["1"] {
		t.Fatalf("after scale-in %v, want instance 1 still on %s", after, eps["1"])
	}
	login("1", after["1"])
	e.MustCLI("scale", "-g", g, "-n", "natv2", "--new-capacity", "3", "-o", "none")
	after = wildConnInfo(e, g, "natv2")
	if len(after) != 3 || after["1"] != eps["1"] || !strings.HasSuffix(after["2"], ":50100") || !strings.HasSuffix(after["3"], ":50102") {
		t.Fatalf("after scale-out %v, want 1 kept, 2 on 50100, 3 on 50102", after)
	}
	// Port 50100 of the deleted instance 0 now leads to instance 2: OpenSSH
	// sees another host key (as on Azure, where the port moves to another
	// VM), and logs in once the old key is forgotten.
	Eventually(t, 30*time.Second, "the reused port reaches another host", func() error {
		if r := c.ssh(after["2"], "true"); r.Code == 0 || !strings.Contains(r.Stderr, "Host key verification failed") {
			return fmt.Errorf("ssh %s: %s", after["2"], r)
		}
		return nil
	})
	host, port := splitEP(t, after["2"])
	if out, err := exec.Command("ssh-keygen", "-f", c.KnownHosts, "-R", "["+host+"]:"+port).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -R: %v: %s", err, out)
	}
	for id, ep := range after {
		login(id, ep)
	}

	// The range is exhausted: scale-out fails with Azure's error and changes nothing.
	out, err := e.CLI("scale", "-g", g, "-n", "natv2", "--new-capacity", "4", "-o", "none")
	if err == nil || !strings.Contains(out+err.Error(), "InboundNatRuleFrontendPortRangeSmallerThanRequestedPorts") {
		t.Fatalf("scale past the range: err %v, output %s", err, out)
	}
	if got := wildConnInfo(e, g, "natv2"); len(got) != 3 {
		t.Errorf("failed scale-out changed the set: %v", got)
	}
	if n := len(e.Instances("natv2", "-g", g)); n != 3 {
		t.Errorf("%d instances after the refused scale-out, want 3", n)
	}
}
