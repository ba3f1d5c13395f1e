package e2e

// Template deployments end to end: `vmss deployment create` with the
// project's own templates (deploy/testdata), SSH with the password through
// the NAT ports, an identical redeploy that touches nothing, the partial
// scale-existing template, a daemon restart, and a jumpbox VM.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const depPassword = "E2e-Passw0rd!x"

// depSSH runs a command over SSH with the password, typed by an askpass
// script (OpenSSH's SSH_ASKPASS_REQUIRE=force), as a user would.
func depSSH(t *testing.T, hostPort, user string, cmd ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	ask := filepath.Join(dir, "askpass.sh")
	if err := os.WriteFile(ask, []byte("#!/bin/sh\necho \"$DEP_PW\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(hostPort, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=10", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
		"-o", "NumberOfPasswordPrompts=1", "-F", "/dev/null", "-p", hostPort[i+1:], user + "@" + hostPort[:i]}
	c := exec.CommandContext(ctx, "ssh", append(args, cmd...)...)
	c.Env = append(os.Environ(), "SSH_ASKPASS="+ask, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", "DEP_PW="+depPassword)
	c.Stdin = nil
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

type depInstance struct {
	InstanceID string `json:"instanceId"`
	Netns      string `json:"netns"`
	VMID       string `json:"vmId"`
	OSProfile  struct {
		ComputerName string `json:"computerName"`
	} `json:"osProfile"`
}

func depInstances(e *Env, group, set string) map[string]depInstance {
	var list []depInstance
	e.JSON(&list, "list-instances", "-g", group, "-n", set)
	out := map[string]depInstance{}
	for _, in := range list {
		out[in.InstanceID] = in
	}
	return out
}

// depCheckNAT sshes to every instance through its NAT port and checks the
// hostname is its computer name.
func depCheckNAT(t *testing.T, e *Env, group, set string) {
	t.Helper()
	var info map[string]string
	e.JSON(&info, "list-instance-connection-info", "-g", group, "-n", set)
	insts := depInstances(e, group, set)
	if len(info) != len(insts) || len(insts) == 0 {
		t.Fatalf("connection info %v for %d instances", info, len(insts))
	}
	for id, in := range insts {
		addr := info["instance "+id]
		Eventually(t, 30*time.Second, "ssh to instance "+id+" at "+addr, func() error {
			out, err := depSSH(t, addr, "ubuntu", "hostname")
			if err != nil || out != in.OSProfile.ComputerName {
				return fmt.Errorf("hostname %q (%v), want %q", out, err, in.OSProfile.ComputerName)
			}
			return nil
		})
	}
}

func TestDeployTemplateNATRedeployScaleExisting(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	const g = "e2edeploy"
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/nat.json",
		"--parameters", "setName=E2eSet", "instanceCount=2", "adminPassword="+depPassword)
	var rec map[string]any
	e.JSON(&rec, "deployment", "show", "-g", g, "-n", "nat")
	outs, _ := rec["outputs"].(map[string]any)
	set, _ := dig2(outs, "setName", "value").(string)
	if rec["provisioningState"] != "Succeeded" || set == "" {
		t.Fatalf("deployment record %v", rec)
	}
	depCheckNAT(t, e, g, set)

	// A marker file inside the first instance (its private /etc), then an identical redeploy.
	before := depInstances(e, g, set)
	var first string
	for id := range before {
		if first == "" || id < first {
			first = id
		}
	}
	var info map[string]string
	e.JSON(&info, "list-instance-connection-info", "-g", g, "-n", set)
	e.MustCLI("run-command", "invoke", "-g", g, "-n", set, "--instance-id", first, "--scripts", "echo deployed-once > /etc/vmss-marker")
	if out, err := depSSH(t, info["instance "+first], "ubuntu", "cat /etc/vmss-marker"); err != nil || out != "deployed-once" {
		t.Fatalf("marker: %q %v", out, err)
	}
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/nat.json",
		"--parameters", "setName=E2eSet", "instanceCount=2", "adminPassword="+depPassword)
	after := depInstances(e, g, set)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("identical redeploy changed instances:\nbefore %v\nafter  %v", before, after)
	}
	for _, in := range after {
		if _, err := os.Stat("/run/netns/" + in.Netns); err != nil {
			t.Errorf("netns %s: %v", in.Netns, err)
		}
	}
	if out, err := depSSH(t, info["instance "+first], "ubuntu", "cat /etc/vmss-marker"); err != nil || out != "deployed-once" {
		t.Errorf("marker after redeploy: %q %v", out, err)
	}

	// What-if of the deployed template changes nothing and says so.
	wi := e.MustCLI("deployment", "what-if", "-g", g, "--template-file", "../deploy/testdata/nat.json",
		"--parameters", "setName=E2eSet", "instanceCount=2", "adminPassword="+depPassword, "-o", "table")
	if !strings.Contains(wi, "0 to create, 0 to modify, 0 to delete, 7 unchanged") {
		t.Errorf("what-if:\n%s", wi)
	}

	// The partial scale-existing template merges and scales; old instances stay.
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/scale.json",
		"--parameters", "existingSetName="+set, "newCapacity=3")
	grown := depInstances(e, g, set)
	if len(grown) != 3 {
		t.Fatalf("%d instances after scale-existing", len(grown))
	}
	for id, in := range before {
		if grown[id] != in {
			t.Errorf("instance %s changed by the scale-out: %v -> %v", id, in, grown[id])
		}
	}
	depCheckNAT(t, e, g, set)

	// Records survive a daemon crash.
	e.Kill()
	e.Serve()
	var list []map[string]any
	e.JSON(&list, "deployment", "list", "-g", g)
	if len(list) != 2 {
		t.Fatalf("deployments after restart: %v", list)
	}
	for _, d := range list {
		if d["provisioningState"] != "Succeeded" {
			t.Errorf("after restart %v is %v", d["name"], d["provisioningState"])
		}
	}
	if out := e.MustCLI("deployment", "show", "-g", g, "-n", "nat"); strings.Contains(out, depPassword) {
		t.Error("deployment show prints the password")
	}
}

func TestDeployTemplateJumpbox(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	const g = "e2ejump"
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/jumpbox.json",
		"--parameters", "setName=Jump", "instanceCount=1", "adminUsername=azureuser", "adminPassword="+depPassword)
	var vms []map[string]any
	e.JSON(&vms, "vm", "list", "-g", g)
	if len(vms) != 1 {
		t.Fatalf("VMs %v", vms)
	}
	name := fmt.Sprint(vms[0]["name"])
	var vm map[string]any
	e.JSON(&vm, "vm", "show", "-g", g, "-n", name, "-d")
	ep, _ := vm["sshEndpoint"].(string)
	if ep == "" || !strings.HasSuffix(ep, ":22") && !strings.HasSuffix(ep, ":2222") && !strings.HasSuffix(ep, ":22222") {
		t.Fatalf("jumpbox endpoint %q", ep)
	}
	Eventually(t, 30*time.Second, "ssh to the jumpbox", func() error {
		out, err := depSSH(t, ep, "azureuser", "hostname")
		if err != nil || out != name {
			return fmt.Errorf("hostname %q (%v), want %q", out, err, name)
		}
		return nil
	})
	var ops map[string]any
	e.JSON(&ops, "rest", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"+g+"/providers/Microsoft.Resources/deployments/jumpbox/operations")
	if !strings.Contains(fmt.Sprint(ops), "ExtensionNotEmulated") {
		t.Errorf("no warning for the VM extension: %v", ops)
	}
}

func dig2(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestDeployCompleteModeRemovesInstancesFirst(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	const g = "e2ecomplete"
	e.MustCLI("deployment", "create", "-g", g, "--template-file", "../deploy/testdata/jumpbox.json",
		"--parameters", "setName=Gone", "instanceCount=2", "adminUsername=azureuser", "adminPassword="+depPassword)
	var sets []map[string]any
	e.JSON(&sets, "list", "-g", g)
	if len(sets) != 1 {
		t.Fatalf("scale sets %v", sets)
	}
	netns := []string{}
	for _, in := range depInstances(e, g, fmt.Sprint(sets[0]["name"])) {
		netns = append(netns, in.Netns)
	}
	tpl := filepath.Join(t.TempDir(), "only-storage.json")
	if err := os.WriteFile(tpl, []byte(`{"$schema":"x","contentVersion":"1.0.0.0","resources":[
		{"type":"Microsoft.Storage/storageAccounts","apiVersion":"2015-06-15","name":"onlyme1","location":"[resourceGroup().location]","properties":{"accountType":"Standard_LRS"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wi := e.MustCLI("deployment", "what-if", "-g", g, "--template-file", tpl, "--mode", "Complete", "-o", "table")
	if !strings.Contains(wi, "1 to create, 0 to modify, 5 to delete") {
		t.Errorf("complete what-if:\n%s", wi)
	}
	e.MustCLI("deployment", "create", "-g", g, "--template-file", tpl, "--mode", "Complete")
	var left struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	e.JSON(&left, "rest", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"+g+"/resources")
	if len(left.Value) != 1 || !strings.HasSuffix(left.Value[0].ID, "/onlyme1") {
		t.Errorf("after complete mode: %v", left.Value)
	}
	for _, n := range netns {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("instance namespace %s is still there", n)
		}
	}
}
