package e2e

// The real az CLI (Debian's azure-cli) drives the emulator over HTTPS, set
// up by `vmss az-config`, with HOME and AZURE_CONFIG_DIR in a temporary
// directory so the machine's az configuration is untouched.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// azCLI runs az with its own home and configuration.
type azCLI struct {
	t    testing.TB
	home string
	env  []string
}

func newAzCLI(t testing.TB) *azCLI {
	t.Helper()
	if _, err := exec.LookPath("az"); err != nil {
		t.Skip("needs the az CLI (scripts/setup.sh installs Debian's azure-cli)")
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "AZURE_CONFIG_DIR=" + filepath.Join(home, ".azure"), "PATH=" + os.Getenv("PATH"),
		"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_SURVEY_MESSAGE=false", "AZURE_CORE_NO_COLOR=true", "AZURE_CORE_ONLY_SHOW_ERRORS=true"}
	return &azCLI{t: t, home: home, env: env}
}

// sh runs a shell script with az's environment.
func (a *azCLI) sh(script string) (string, error) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -e\n"+script)
	cmd.Env = a.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// az runs one az command and decodes its JSON output into out (when not nil).
func (a *azCLI) az(out any, args ...string) {
	a.t.Helper()
	q := make([]string, len(args))
	for i, s := range args {
		q[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	start := time.Now()
	stdout, err := a.sh("az " + strings.Join(q, " "))
	a.t.Logf("az %s: %v", strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
	if err != nil {
		a.t.Fatalf("az %s: %v", strings.Join(args, " "), err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			a.t.Fatalf("az %s: output is not JSON: %v: %q", strings.Join(args, " "), err, tail(stdout, 500))
		}
	}
}

// startAz starts a daemon with the HTTPS API on a free port and sets az up
// for it with the lines `vmss az-config` prints.
func startAz(t *testing.T, extra ...string) (*Env, *azCLI, string) {
	a := newAzCLI(t)
	addr := lbMetricsAddr(t) // a free loopback port
	e := Start(t, Options{Extra: append([]string{"--https-addr", addr}, extra...)})
	endpoint := filepath.Join(e.RuntimeDir, "https", "endpoint.json")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(endpoint); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after the daemon started", endpoint)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines, err := e.CLI("az-config", "--state-dir", filepath.Join(e.StateDir, "state"), "--runtime-dir", e.RuntimeDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export REQUESTS_CA_BUNDLE=", "az cloud register -n vmss", "az cloud set -n vmss", "az login --service-principal"} {
		if !strings.Contains(lines, want) {
			t.Fatalf("az-config printed no %q:\n%s", want, lines)
		}
	}
	// What eval "$(sudo vmss az-config)" does, kept for the later commands.
	if _, err := a.sh(lines); err != nil {
		t.Fatalf("the az-config lines failed: %v\n%s", err, lines)
	}
	for _, l := range strings.Split(lines, "\n") {
		if v, ok := strings.CutPrefix(l, "export REQUESTS_CA_BUNDLE="); ok {
			a.env = append(a.env, "REQUESTS_CA_BUNDLE="+strings.Trim(v, "'"))
		}
	}
	return e, a, addr
}

// TestAzCLIScenario: group create, vmss create with --generate-ssh-keys,
// SSH through the NAT ports az lists, scale, list-instances,
// delete-instances, power actions, load balancer reads, group delete; and
// the way back to Azure.
func TestAzCLIScenario(t *testing.T) {
	e, a, addr := startAz(t)

	var acct struct {
		EnvironmentName, ID string
		User                struct{ Type string }
	}
	a.az(&acct, "account", "show")
	if acct.EnvironmentName != "vmss" || acct.ID != e.Client.Subscription || acct.User.Type != "servicePrincipal" {
		t.Fatalf("az account show: %+v", acct)
	}

	// Without a token the HTTPS API refuses, with ARM's error shape.
	hc := e.HTTPSClient(t)
	resp, err := hc.Get("https://" + addr + "/subscriptions/" + e.Client.Subscription + "/resourcegroups?api-version=2021-04-01")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"AuthenticationFailed"`) {
		t.Errorf("anonymous request over HTTPS: %d %s", resp.StatusCode, body)
	}

	a.az(nil, "group", "create", "-n", "demo", "-l", "eastus", "-o", "none")
	start := time.Now()
	a.az(nil, "vmss", "create", "-g", "demo", "-n", "web", "--image", "Ubuntu2204", "--instance-count", "3",
		"--admin-username", "azureuser", "--generate-ssh-keys", "-o", "none")
	created := time.Since(start)

	var conn map[string]string
	a.az(&conn, "vmss", "list-instance-connection-info", "-g", "demo", "-n", "web")
	if len(conn) != 3 {
		t.Fatalf("list-instance-connection-info: %v, want 3 instances", conn)
	}
	// SSH with the key az generated, through every NAT port az listed.
	c := newSSHClient(t)
	key, err := os.ReadFile(filepath.Join(a.home, ".ssh", "id_rsa"))
	if err != nil {
		t.Fatalf("az --generate-ssh-keys made no key: %v", err)
	}
	pub, err := os.ReadFile(filepath.Join(a.home, ".ssh", "id_rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.WriteFile(c.Key, key, 0o600), os.WriteFile(c.Pub, pub, 0o644)); err != nil {
		t.Fatal(err)
	}
	for name, ep := range conn {
		var host string
		for i := 0; ; i++ {
			r := c.ssh(ep, "hostname")
			if r.Code == 0 {
				host = r.Out()
				break
			}
			if i == 100 {
				t.Fatalf("ssh %s (%s): %s", ep, name, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.HasPrefix(host, "web") {
			t.Errorf("%s: hostname %q", name, host)
		}
	}
	t.Logf("az vmss create -> every instance answers SSH through its NAT port: %v (create returned after %v)", time.Since(start), created)

	a.az(nil, "vmss", "scale", "-g", "demo", "-n", "web", "--new-capacity", "5", "-o", "none")
	var insts []struct {
		InstanceID        string `json:"instanceId"`
		ProvisioningState string `json:"provisioningState"`
	}
	a.az(&insts, "vmss", "list-instances", "-g", "demo", "-n", "web")
	if len(insts) != 5 {
		t.Fatalf("after scale to 5: %d instances", len(insts))
	}
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.InstanceID
	}
	sort.Strings(ids)
	victim := ids[0]
	a.az(nil, "vmss", "delete-instances", "-g", "demo", "-n", "web", "--instance-ids", victim, "-o", "none")
	a.az(&insts, "vmss", "list-instances", "-g", "demo", "-n", "web")
	if len(insts) != 4 {
		t.Errorf("after delete-instances %s: %d instances", victim, len(insts))
	}
	for _, in := range insts {
		if in.InstanceID == victim {
			t.Errorf("instance %s still listed after delete-instances", victim)
		}
	}
	var sset struct {
		SKU struct{ Capacity int } `json:"sku"`
	}
	a.az(&sset, "vmss", "show", "-g", "demo", "-n", "web")
	if sset.SKU.Capacity != 4 {
		t.Errorf("capacity after delete-instances: %d, want 4", sset.SKU.Capacity)
	}

	// Power actions and a reimage on one instance, then it runs again.
	other := ids[1]
	for _, verb := range []string{"stop", "start", "restart"} {
		a.az(nil, "vmss", verb, "-g", "demo", "-n", "web", "--instance-ids", other, "-o", "none")
	}
	a.az(nil, "vmss", "reimage", "-g", "demo", "-n", "web", "--instance-id", other, "-o", "none")
	var view struct {
		Statuses []struct{ Code string }
	}
	a.az(&view, "vmss", "get-instance-view", "-g", "demo", "-n", "web", "--instance-id", other)
	var power string
	for _, s := range view.Statuses {
		if strings.HasPrefix(s.Code, "PowerState/") {
			power = s.Code
		}
	}
	if power != "PowerState/running" {
		t.Errorf("instance %s after stop, start, restart: %q (statuses %v)", other, power, view.Statuses)
	}

	// Load balancer reads. (`az network lb show` fails inside Debian's
	// azure-cli before any request: its network SDK lacks the operations of
	// the profile's api-version; list, the sub-resource lists and
	// `az resource show` work.)
	var lbs []struct{ Name string }
	a.az(&lbs, "network", "lb", "list", "-g", "demo")
	if len(lbs) != 1 || lbs[0].Name != "webLB" {
		t.Errorf("az network lb list: %+v", lbs)
	}
	var nat []struct {
		FrontendPort int `json:"frontendPort"`
		BackendPort  int `json:"backendPort"`
	}
	a.az(&nat, "network", "lb", "inbound-nat-rule", "list", "-g", "demo", "--lb-name", "webLB")
	if len(nat) != 4 {
		t.Errorf("inbound NAT rules: %+v, want one per instance (4)", nat)
	}
	for _, r := range nat {
		if r.BackendPort != 22 || r.FrontendPort < 50000 {
			t.Errorf("NAT rule %+v", r)
		}
	}

	var lbRes struct {
		Name       string
		Properties struct {
			FrontendIPConfigurations []struct{ Name string } `json:"frontendIPConfigurations"`
		}
	}
	a.az(&lbRes, "resource", "show", "-g", "demo", "-n", "webLB", "--resource-type", "Microsoft.Network/loadBalancers")
	if lbRes.Name != "webLB" || len(lbRes.Properties.FrontendIPConfigurations) != 1 {
		t.Errorf("az resource show webLB: %+v", lbRes)
	}
	a.az(nil, "network", "lb", "probe", "create", "-g", "demo", "--lb-name", "webLB", "-n", "p80", "--protocol", "tcp", "--port", "80", "-o", "none")
	a.az(nil, "network", "lb", "rule", "create", "-g", "demo", "--lb-name", "webLB", "-n", "r80", "--protocol", "tcp",
		"--frontend-port", "80", "--backend-port", "80", "--probe-name", "p80", "--frontend-ip-name", lbRes.Properties.FrontendIPConfigurations[0].Name,
		"--backend-pool-name", "webLBBEPool", "-o", "none")
	var rules []struct {
		Name  string
		Probe struct{ ID string }
	}
	a.az(&rules, "network", "lb", "rule", "list", "-g", "demo", "--lb-name", "webLB")
	if len(rules) != 1 || rules[0].Name != "r80" || !strings.HasSuffix(rules[0].Probe.ID, "/probes/p80") {
		t.Errorf("az network lb rule list after rule create: %+v", rules)
	}

	// An api-version Azure does not publish is refused as ARM refuses it;
	// the same request with az's own version is served (positive control).
	lbURL := "/subscriptions/" + e.Client.Subscription + "/resourceGroups/demo/providers/Microsoft.Network/loadBalancers/webLB?api-version="
	if out, err := a.sh("az rest --method get --url '" + lbURL + "2099-01-01'"); err == nil || !strings.Contains(err.Error(), "NoRegisteredProviderFound") {
		t.Errorf("az rest with api-version 2099-01-01: %q %v, want NoRegisteredProviderFound", out, err)
	}
	if out, err := a.sh("az rest --method get --url '" + lbURL + "2022-07-01' --query name -o tsv"); err != nil || strings.TrimSpace(out) != "webLB" {
		t.Errorf("az rest with api-version 2022-07-01: %q %v", out, err)
	}

	azJumpboxAndRunCommands(t, a, c, other)
	azDeployments(t, a)

	a.az(nil, "group", "delete", "-n", "demo", "--yes")
	var groups []struct{ Name string }
	a.az(&groups, "group", "list")
	for _, g := range groups {
		if strings.EqualFold(g.Name, "demo") {
			t.Errorf("group demo still listed after az group delete")
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), e.Prefix) {
			t.Errorf("namespace %s left after az group delete", en.Name())
		}
	}

	// The way back to Azure.
	undo, err := e.CLI("az-config", "--undo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.sh(undo); err != nil {
		t.Fatalf("undo lines: %v\n%s", err, undo)
	}
	var cloud struct{ Name string }
	a.az(&cloud, "cloud", "show")
	if cloud.Name != "AzureCloud" {
		t.Errorf("after the undo lines the current cloud is %q", cloud.Name)
	}
}

// azJumpboxAndRunCommands: az vm create of a jumpbox in the scale set's
// subnet with az's defaults (public IP, NSG allowing SSH, NIC), SSH through
// it to an instance, az vm list-ip-addresses, and run commands on the VM
// (with parameters) and on an instance.
func azJumpboxAndRunCommands(t *testing.T, a *azCLI, c *sshClient, instanceID string) {
	t.Helper()
	var vm struct {
		PowerState       string `json:"powerState"`
		PrivateIPAddress string `json:"privateIpAddress"`
		PublicIPAddress  string `json:"publicIpAddress"`
	}
	a.az(&vm, "vm", "create", "-g", "demo", "-n", "jumpbox", "--image", "Ubuntu2204", "--vnet-name", "webVNET", "--subnet", "webSubnet",
		"--admin-username", sshUser, "--generate-ssh-keys")
	priv, err := netip.ParseAddr(vm.PrivateIPAddress)
	if err != nil || vm.PowerState != "VM running" || !netip.MustParsePrefix("10.0.0.0/16").Contains(priv) {
		t.Fatalf("az vm create: %+v", vm)
	}
	if _, err := netip.ParseAddr(vm.PublicIPAddress); err != nil {
		t.Fatalf("az vm create gave no public IP: %+v", vm)
	}
	var ports, pips []string
	a.az(&ports, "network", "nsg", "list", "-g", "demo", "--query", "[?name=='jumpboxNSG'].securityRules[].destinationPortRange")
	a.az(&pips, "network", "public-ip", "list", "-g", "demo", "--query", "[?name=='jumpboxPublicIP'].ipAddress")
	if fmt.Sprint(ports) != "[22]" || fmt.Sprint(pips) != "["+vm.PublicIPAddress+"]" {
		t.Errorf("az vm create's defaults: jumpboxNSG allows ports %v (want [22]), jumpboxPublicIP has %v (want [%s])", ports, pips, vm.PublicIPAddress)
	}
	var ips []struct {
		VirtualMachine struct {
			Name    string
			Network struct {
				PrivateIPAddresses []string `json:"privateIpAddresses"`
				PublicIPAddresses  []struct {
					IPAddress string `json:"ipAddress"`
					Name      string
				} `json:"publicIpAddresses"`
			}
		} `json:"virtualMachine"`
	}
	a.az(&ips, "vm", "list-ip-addresses", "-g", "demo", "-n", "jumpbox")
	if len(ips) != 1 || fmt.Sprint(ips[0].VirtualMachine.Network.PrivateIPAddresses) != "["+vm.PrivateIPAddress+"]" ||
		len(ips[0].VirtualMachine.Network.PublicIPAddresses) != 1 || ips[0].VirtualMachine.Network.PublicIPAddresses[0].IPAddress != vm.PublicIPAddress ||
		ips[0].VirtualMachine.Network.PublicIPAddresses[0].Name != "jumpboxPublicIP" {
		t.Errorf("az vm list-ip-addresses: %+v (vm create said %+v)", ips, vm)
	}

	// Private SSH: through the jumpbox's public IP to the instance, by the
	// name the VNET's DNS gives it.
	var inst struct {
		OSProfile struct {
			ComputerName string `json:"computerName"`
		} `json:"osProfile"`
	}
	a.az(&inst, "vmss", "show", "-g", "demo", "-n", "web", "--instance-id", instanceID)
	// ... and by the private IP of its NIC (az vmss nic list-vm-nics).
	var nicIPs []string
	a.az(&nicIPs, "vmss", "nic", "list-vm-nics", "-g", "demo", "--vmss-name", "web", "--instance-id", instanceID, "--query", "[].ipConfigurations[0].privateIPAddress")
	if len(nicIPs) != 1 {
		t.Fatalf("az vmss nic list-vm-nics: %v, want one private IP", nicIPs)
	}
	var allIPs []string
	a.az(&allIPs, "vmss", "nic", "list", "-g", "demo", "--vmss-name", "web", "--query", "[].ipConfigurations[0].privateIPAddress")
	if len(allIPs) != 4 || !slices.Contains(allIPs, nicIPs[0]) {
		t.Errorf("az vmss nic list: %v, want 4 private IPs with %s", allIPs, nicIPs[0])
	}
	jump := net.JoinHostPort(vm.PublicIPAddress, "22")
	for _, target := range []string{inst.OSProfile.ComputerName, nicIPs[0]} {
		Eventually(t, 30*time.Second, "ssh -J jumpbox instance", func() error {
			if r := c.jump(jump, target, "hostname"); r.Code != 0 || r.Out() != inst.OSProfile.ComputerName {
				return fmt.Errorf("ssh -J %s %s hostname: %s, want %s", jump, target, r, inst.OSProfile.ComputerName)
			}
			return nil
		})
	}

	type runResult struct {
		Value []struct {
			Code    string
			Message string
		}
	}
	var rr runResult
	a.az(&rr, "vm", "run-command", "invoke", "-g", "demo", "-n", "jumpbox", "--command-id", "RunShellScript",
		"--scripts", `echo "$1-$2"; hostname`, "--parameters", "hello", "world")
	if len(rr.Value) != 1 || rr.Value[0].Code != "ProvisioningState/succeeded" || !strings.Contains(rr.Value[0].Message, "[stdout]\nhello-world\njumpbox\n") {
		t.Errorf("az vm run-command invoke: %+v", rr)
	}
	a.az(&rr, "vmss", "run-command", "invoke", "-g", "demo", "-n", "web", "--instance-id", instanceID, "--command-id", "RunShellScript", "--scripts", "hostname")
	if len(rr.Value) != 1 || !strings.Contains(rr.Value[0].Message, "[stdout]\n"+inst.OSProfile.ComputerName+"\n") {
		t.Errorf("az vmss run-command invoke (instance %s, %s): %+v", instanceID, inst.OSProfile.ComputerName, rr)
	}
}

// azTemplate is a template as people write them for az: comments and
// trailing commas, which az sends to ARM as written.
const azTemplate = `{
  // a storage account and a virtual network
  "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "prefix": { "type": "string" },
    "addressPrefix": { "type": "string", "defaultValue": "10.1.0.0/16" }, /* overridden below */
  },
  "resources": [
    { "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2021-04-01", "name": "[concat(parameters('prefix'), 'diag')]",
      "location": "[resourceGroup().location]", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2", "properties": {} },
    { "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2020-06-01", "name": "[concat(parameters('prefix'), 'vnet')]",
      "location": "[resourceGroup().location]",
      "properties": { "addressSpace": { "addressPrefixes": [ "[parameters('addressPrefix')]" ] },
        "subnets": [ { "name": "default", "properties": { "addressPrefix": "[parameters('addressPrefix')]" } } ] } },
  ],
  "outputs": { "vnet": { "type": "string", "value": "[concat(parameters('prefix'), 'vnet')]" } },
}`

// azDeployments: az deployment group create with a template file (az
// validates, then deploys), and what-if of a change.
func azDeployments(t *testing.T, a *azCLI) {
	t.Helper()
	file := filepath.Join(a.home, "azuredeploy.json")
	if err := os.WriteFile(file, []byte(azTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	a.az(nil, "group", "create", "-n", "demo2", "-l", "eastus", "-o", "none")
	var dep struct {
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
			Outputs           map[string]struct{ Value string }
		}
	}
	a.az(&dep, "deployment", "group", "create", "-g", "demo2", "-n", "net", "--template-file", file, "--parameters", "prefix=d2", "addressPrefix=10.2.0.0/16")
	if dep.Properties.ProvisioningState != "Succeeded" || dep.Properties.Outputs["vnet"].Value != "d2vnet" {
		t.Fatalf("az deployment group create: %+v", dep)
	}
	var vnets []string
	a.az(&vnets, "network", "vnet", "list", "-g", "demo2", "--query", "[].addressSpace.addressPrefixes[0]")
	if fmt.Sprint(vnets) != "[10.2.0.0/16]" {
		t.Errorf("after the deployment: VNET address spaces %v, want [10.2.0.0/16]", vnets)
	}
	var wi struct {
		Status  string
		Changes []struct {
			ChangeType string `json:"changeType"`
			ResourceID string `json:"resourceId"`
		}
	}
	a.az(&wi, "deployment", "group", "what-if", "-g", "demo2", "-n", "net", "--template-file", file, "--parameters", "prefix=d2", "addressPrefix=10.3.0.0/16", "--no-pretty-print")
	got := map[string]string{}
	for _, c := range wi.Changes {
		got[c.ResourceID[strings.LastIndex(c.ResourceID, "/")+1:]] = c.ChangeType
	}
	if wi.Status != "Succeeded" || got["d2vnet"] != "Modify" || got["d2diag"] != "NoChange" {
		t.Errorf("az deployment group what-if (address space 10.2 -> 10.3): %+v", wi)
	}
	a.az(&vnets, "network", "vnet", "list", "-g", "demo2", "--query", "[].addressSpace.addressPrefixes[0]")
	if fmt.Sprint(vnets) != "[10.2.0.0/16]" {
		t.Errorf("what-if changed the VNET: %v", vnets)
	}
	a.az(nil, "group", "delete", "-n", "demo2", "--yes")
}
