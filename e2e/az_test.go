package e2e

// The real az CLI (Debian's azure-cli) drives the emulator over HTTPS, set
// up by `vmss az-config`, with HOME and AZURE_CONFIG_DIR in a temporary
// directory so the machine's az configuration is untouched.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
func startAz(t *testing.T) (*Env, *azCLI, string) {
	a := newAzCLI(t)
	addr := lbMetricsAddr(t) // a free loopback port
	e := Start(t, Options{Extra: []string{"--https-addr", addr}})
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
	caPEM, err := os.ReadFile(filepath.Join(e.RuntimeDir, "https", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
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

	// Power actions on one instance, then it answers SSH again.
	other := ids[1]
	for _, verb := range []string{"stop", "start", "restart"} {
		a.az(nil, "vmss", verb, "-g", "demo", "-n", "web", "--instance-ids", other, "-o", "none")
	}
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
	// the profile's api-version; list and the sub-resource lists work.)
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
