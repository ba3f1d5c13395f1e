package e2e

// The example program of examples/azsdk (the Azure SDK for Go, pointed at
// the emulator by its cloud configuration) runs against a daemon whose lists
// page every 10 items: it creates 25 instances and lists them and their NICs
// through the SDK's pagers, and az lists them through nextLink too.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAzSDKExampleAndPaging(t *testing.T) {
	e, a, addr := startAz(t, "--page-size", "10")
	bin := filepath.Join(t.TempDir(), "azsdk")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/azsdk").CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	var creds struct{ ClientID, ClientSecret string }
	b, err := os.ReadFile(filepath.Join(e.StateDir, "state", "identity", "credentials.json"))
	if err != nil || json.Unmarshal(b, &creds) != nil {
		t.Fatalf("credentials: %v", err)
	}
	c := newSSHClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-endpoint", "https://"+addr, "-authority", "https://"+addr+"/",
		"-group", "ex", "-instances", "25", "-scale-to", "27", "-ssh-public-key", c.Pub, "-keep")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+filepath.Join(e.RuntimeDir, "https", "ca-bundle.pem"),
		"AZURE_CLIENT_ID="+creds.ClientID, "AZURE_CLIENT_SECRET="+creds.ClientSecret)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example: %v\n%s\n%s", err, out.String(), errb.String())
	}
	t.Logf("the example (25 instances, scaled to 27): %v\n%s", time.Since(start).Round(10*time.Millisecond), out.String())

	// Every instance once, each with a private IP of the subnet (the NIC pager).
	ips := map[string]bool{}
	var ssh []string
	var frontend string
	for _, l := range strings.Split(out.String(), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "instance":
			ip, err := netip.ParseAddr(f[3])
			if err != nil || !netip.MustParsePrefix("10.0.0.0/24").Contains(ip) || ips[f[3]] {
				t.Errorf("instance line %q: want a private IP of 10.0.0.0/24, once", l)
			}
			ips[f[3]] = true
		case len(f) >= 2 && f[0] == "frontend":
			frontend = f[1]
		case len(f) >= 4 && f[0] == "ssh" && f[1] == "-p":
			ssh = append(ssh, f[2])
		}
	}
	if len(ips) != 25 || len(ssh) != 25 || frontend == "" {
		t.Errorf("the example listed %d instances with private IPs and %d NAT ports, frontend %q; want 25, 25 and an address", len(ips), len(ssh), frontend)
	}
	if !strings.Contains(out.String(), "scaled to 27: 27 instances\n") {
		t.Errorf("after scaling to 27 the example's pager listed: %q", out.String())
	}
	// The printed SSH command works.
	ep := frontend + ":" + ssh[0]
	Eventually(t, 30*time.Second, "ssh through the example's first NAT port", func() error {
		if r := c.ssh(ep, "hostname"); r.Code != 0 || !strings.HasPrefix(r.Out(), "web") {
			return fmt.Errorf("ssh %s hostname: %s", ep, r)
		}
		return nil
	})

	// One page holds 10 (what the pagers above followed): a plain GET with
	// az's token answers 10 and a nextLink.
	tok, err := a.sh("az account get-access-token --query accessToken -o tsv")
	if err != nil {
		t.Fatal(err)
	}
	hc := e.HTTPSClient(t)
	req, _ := http.NewRequest("GET", "https://"+addr+"/subscriptions/"+e.Client.Subscription+
		"/resourceGroups/ex/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines?api-version=2024-03-01", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Value    []json.RawMessage `json:"value"`
		NextLink string            `json:"nextLink"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(page.Value) != 10 || !strings.HasPrefix(page.NextLink, "https://"+addr+"/") || !strings.Contains(page.NextLink, "$skiptoken=") {
		t.Errorf("first page: %d, %d items, nextLink %q, %v", resp.StatusCode, len(page.Value), page.NextLink, err)
	}

	// az follows nextLink too.
	var insts []struct {
		InstanceID string `json:"instanceId"`
	}
	a.az(&insts, "vmss", "list-instances", "-g", "ex", "-n", "web")
	seen := map[string]bool{}
	for _, in := range insts {
		seen[in.InstanceID] = true
	}
	if len(insts) != 27 || len(seen) != 27 {
		t.Errorf("az vmss list-instances with pages of 10: %d instances (%d distinct), want 27", len(insts), len(seen))
	}
	var nics []string
	a.az(&nics, "vmss", "nic", "list", "-g", "ex", "--vmss-name", "web", "--query", "[].ipConfigurations[0].privateIPAddress")
	if len(nics) != 27 {
		t.Errorf("az vmss nic list with pages of 10: %d NICs, want 27", len(nics))
	}
	a.az(nil, "group", "delete", "-n", "ex", "--yes")
}
