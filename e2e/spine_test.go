package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runIn runs a script as root in a scale-set instance through the API.
func (e *Env) runIn(set, id, script string) string {
	e.T.Helper()
	var out struct {
		Value []struct {
			Stdout   string `json:"stdout"`
			Stderr   string `json:"stderr"`
			ExitCode int    `json:"exitCode"`
		} `json:"value"`
	}
	e.JSON(&out, "run-command", "invoke", "-n", set, "--instance-id", id, "--scripts", script)
	if len(out.Value) != 1 {
		e.T.Fatalf("run-command: %+v", out)
	}
	if out.Value[0].ExitCode != 0 {
		e.T.Fatalf("run-command %q in %s/%s: exit %d: %s", script, set, id, out.Value[0].ExitCode, out.Value[0].Stderr)
	}
	return strings.TrimSpace(out.Value[0].Stdout)
}

func netnsList() map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

func ids(insts []Instance) string {
	var s []string
	for _, in := range insts {
		s = append(s, in.InstanceID)
	}
	sort.Slice(s, func(i, j int) bool { a, _ := strconv.Atoi(s[i]); b, _ := strconv.Atoi(s[j]); return a < b })
	return strings.Join(s, ",")
}

const password = "S3cret!pass-e2e"

// TestScaleSetLifecycle walks the spine: create, inspect, scale out and in,
// delete instances, delete, with Azure's identities and the kernel objects.
func TestScaleSetLifecycle(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "web", "--instance-count", "3", "--disable-overprovision", "--admin-password", password, "-o", "none")
	insts := e.Instances("web")
	if got := ids(insts); got != "0,1,2" {
		t.Fatalf("instance ids %s", got)
	}
	present := netnsList()
	for i, in := range insts {
		want := fmt.Sprintf("web%06d", i)
		if in.Name != fmt.Sprintf("web_%d", i) || in.OSProfile.ComputerName != want || in.PrivateIPAddress != fmt.Sprintf("10.0.0.%d", 4+i) ||
			in.FaultDomain != i || in.UpdateDomain != i || in.PowerState != "running" || in.ProvisioningState != "Succeeded" {
			t.Errorf("instance %d: %+v", i, in)
		}
		if !strings.HasPrefix(in.Netns, e.Prefix) || !present[in.Netns] {
			t.Errorf("instance %d: netns %q not in ip netns list", i, in.Netns)
		}
		if h := e.runIn("web", in.InstanceID, "hostname"); h != want {
			t.Errorf("instance %d: hostname %q, want %q", i, h, want)
		}
	}
	// Private files: /etc/hostname and /tmp are the instance's own.
	e.runIn("web", "0", "echo zero > /tmp/marker")
	if got := e.runIn("web", "1", "cat /etc/hostname; ls /tmp"); got != "web000001" {
		t.Errorf("instance 1 sees %q (another instance's /tmp or hostname)", got)
	}
	if _, err := os.Stat("/tmp/marker"); err == nil {
		t.Error("an instance's /tmp file is on the host")
	}

	// Scale out continues ids; delete-instances by id; scale-in takes the highest id of the fullest fault domain.
	e.MustCLI("scale", "-n", "web", "--new-capacity", "5", "-o", "none")
	if got := ids(e.Instances("web")); got != "0,1,2,3,4" {
		t.Fatalf("after scale-out: %s", got)
	}
	e.MustCLI("delete-instances", "-n", "web", "--instance-ids", "1", "3")
	if got := ids(e.Instances("web")); got != "0,2,4" {
		t.Fatalf("after delete-instances 1 3: %s", got)
	}
	e.MustCLI("scale", "-n", "web", "--new-capacity", "4", "-o", "none")
	if got := ids(e.Instances("web")); got != "0,2,4,5" {
		t.Fatalf("ids must continue from the highest ever used: %s", got)
	}
	e.MustCLI("scale", "-n", "web", "--new-capacity", "3", "-o", "none")
	if got := ids(e.Instances("web")); got != "0,2,4" {
		t.Fatalf("scale-in (Default policy): %s, want 5 removed", got)
	}
	gone := insts[1].Netns
	if netnsList()[gone] {
		t.Errorf("deleted instance's netns %s is still there", gone)
	}
	// Delete the scale set: every instance namespace goes.
	e.MustCLI("delete", "-n", "web")
	left := 0
	for n := range netnsList() {
		if strings.HasPrefix(n, e.Prefix) {
			left++
		}
	}
	if left != 0 {
		t.Errorf("%d instance namespaces left after delete", left)
	}
	var sets []any
	e.JSON(&sets, "list")
	if len(sets) != 0 {
		t.Errorf("scale sets left: %v", sets)
	}
}

// TestInternalDNS resolves computer names (short and FQDN), PTR and NXDOMAIN
// at 168.63.129.16 from inside an instance, and follows scale-in.
func TestInternalDNS(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "dns", "--instance-count", "2", "--disable-overprovision", "--admin-password", password, "--lb", "none", "-o", "none")
	insts := e.Instances("dns")
	from := insts[0].Netns
	dig := func(args ...string) string {
		out, err := InNetns(from, append([]string{"dig", "+short", "+time=2", "+tries=1", "@168.63.129.16"}, args...)...)
		if err != nil {
			t.Fatalf("dig %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	name := insts[1].OSProfile.ComputerName
	if got := dig(name); got != insts[1].PrivateIPAddress {
		t.Errorf("A %s = %q, want %s", name, got, insts[1].PrivateIPAddress)
	}
	search := e.runIn("dns", "0", "awk '/^search/{print $2}' /etc/resolv.conf")
	if !strings.HasSuffix(search, ".internal.cloudapp.net") {
		t.Fatalf("search domain %q", search)
	}
	if got := dig(strings.ToUpper(name) + "." + search); got != insts[1].PrivateIPAddress {
		t.Errorf("FQDN %s = %q", name, got)
	}
	if got := dig("-x", insts[1].PrivateIPAddress); !strings.HasPrefix(strings.ToLower(got), strings.ToLower(name)+"."+search) {
		t.Errorf("PTR %s = %q", insts[1].PrivateIPAddress, got)
	}
	out, _ := InNetns(from, "dig", "+time=2", "+tries=1", "@168.63.129.16", "nosuchvm."+search)
	if !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("unknown name: %s", out)
	}
	// The resolver inside the instance uses it too (getent through resolv.conf).
	if got := e.runIn("dns", "0", "getent hosts "+name+" | awk '{print $1}'"); got != insts[1].PrivateIPAddress {
		t.Errorf("getent in instance: %q", got)
	}
	e.MustCLI("delete-instances", "-n", "dns", "--instance-ids", insts[1].InstanceID)
	Eventually(t, 10*time.Second, "name of a deleted instance disappears", func() error {
		out, _ := InNetns(from, "dig", "+time=2", "+tries=1", "@168.63.129.16", name+"."+search)
		if !strings.Contains(out, "NXDOMAIN") {
			return fmt.Errorf("still answered: %s", out)
		}
		return nil
	})
}

// TestOverprovisionAndPolicies: overprovisioning leaves exactly the asked-for
// instances; power actions, reimage and fault injection keep identities.
func TestOverprovisionAndPolicies(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "op", "--instance-count", "4", "--admin-password", password, "--lb", "none", "-o", "none")
	insts := e.Instances("op")
	if len(insts) != 4 {
		t.Fatalf("overprovisioned create left %d instances: %s", len(insts), ids(insts))
	}
	n := 0
	for name := range netnsList() {
		if strings.HasPrefix(name, e.Prefix) {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d instance namespaces after overprovisioning, want 4 (extras deleted)", n)
	}
	first := insts[0]
	e.runIn("op", first.InstanceID, "echo keep > /root/marker")
	e.MustCLI("stop", "-n", "op", "--instance-ids", first.InstanceID)
	if got := e.Instances("op")[0].PowerState; got != "stopped" {
		t.Errorf("after stop: %s", got)
	}
	e.MustCLI("start", "-n", "op", "--instance-ids", first.InstanceID)
	if got := e.runIn("op", first.InstanceID, "cat /root/marker"); got != "keep" {
		t.Errorf("stop/start lost the instance's files: %q", got)
	}
	e.MustCLI("reimage", "-n", "op", "--instance-ids", first.InstanceID)
	after := e.Instances("op")[0]
	if after.InstanceID != first.InstanceID || after.PrivateIPAddress != first.PrivateIPAddress || after.OSProfile.ComputerName != first.OSProfile.ComputerName {
		t.Errorf("reimage changed identity: %+v -> %+v", first, after)
	}
	if got := e.runIn("op", first.InstanceID, "cat /root/marker 2>/dev/null || echo fresh"); got != "fresh" {
		t.Errorf("reimage kept the old disk: %q", got)
	}
	// Fault domain of the first instance goes down and comes back.
	fd := strconv.Itoa(after.FaultDomain)
	e.MustCLI("fault", "down", "-n", "op", "--fault-domain", fd)
	for _, in := range e.Instances("op") {
		want := "running"
		if in.FaultDomain == after.FaultDomain {
			want = "stopped"
		}
		if in.PowerState != want {
			t.Errorf("fault domain %s down: instance %s (fd %d) is %s", fd, in.InstanceID, in.FaultDomain, in.PowerState)
		}
	}
	if len(e.Instances("op")) != 4 {
		t.Error("fault injection removed instances from the model")
	}
	e.MustCLI("fault", "up", "-n", "op", "--fault-domain", fd)
	for _, in := range e.Instances("op") {
		if in.PowerState != "running" {
			t.Errorf("after fault domain up: instance %s is %s", in.InstanceID, in.PowerState)
		}
	}
}

// TestCrashDuringScaleOut kills the daemon with SIGKILL while it scales 0 → 50;
// the restarted daemon converges with nothing leaked.
func TestCrashDuringScaleOut(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "big", "--instance-count", "0", "--disable-overprovision", "--admin-password", password, "--lb", "none", "-o", "none")
	e.MustCLI("scale", "-n", "big", "--new-capacity", "50", "--no-wait", "-o", "none")
	time.Sleep(300 * time.Millisecond)
	e.Kill()
	e.Serve()
	Eventually(t, 90*time.Second, "50 instances running after the crash", func() error {
		insts := e.Instances("big")
		run := 0
		for _, in := range insts {
			if in.PowerState == "running" && in.ProvisioningState == "Succeeded" {
				run++
			}
		}
		if len(insts) != 50 || run != 50 {
			return fmt.Errorf("%d instances, %d running", len(insts), run)
		}
		return nil
	})
	want := map[string]bool{}
	for _, in := range e.Instances("big") {
		want[in.Netns] = true
	}
	for n := range netnsList() {
		if strings.HasPrefix(n, e.Prefix) && !want[n] {
			t.Errorf("leaked namespace %s", n)
		}
	}
	if got := len(want); got != 50 {
		t.Errorf("%d distinct namespaces", got)
	}
	// Crash again in the middle of a scale-in.
	e.MustCLI("scale", "-n", "big", "--new-capacity", "10", "--no-wait", "-o", "none")
	time.Sleep(100 * time.Millisecond)
	e.Kill()
	e.Serve()
	Eventually(t, 60*time.Second, "10 instances after the second crash", func() error {
		if n := len(e.Instances("big")); n != 10 {
			return fmt.Errorf("%d instances", n)
		}
		c := 0
		for n := range netnsList() {
			if strings.HasPrefix(n, e.Prefix) {
				c++
			}
		}
		if c != 10 {
			return fmt.Errorf("%d namespaces", c)
		}
		return nil
	})
}

// TestCleanupWithoutDaemonOrState: kill the daemon, delete its state, and
// `vmss cleanup` still removes everything (Env.Close checks for leftovers).
func TestCleanupWithoutDaemonOrState(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "c", "--instance-count", "3", "--disable-overprovision", "--admin-password", password, "-o", "none")
	e.MustCLI("vm", "create", "-n", "jb", "--vnet-name", "cVNET", "--subnet", "cSubnet", "--public-ip-address", "jbip", "--admin-password", password, "-o", "none")
	// A process started in an instance must die with cleanup.
	// ($! is its pid in the instance's PID namespace; find the host's.)
	e.runIn("c", "0", "sleep 1007 >/dev/null 2>&1 & echo $!")
	var pidStr string
	Eventually(t, 10*time.Second, "the sleep on the host", func() error {
		if p := hostPidsWithArgs("sleep 1007"); len(p) == 1 {
			pidStr = strconv.Itoa(p[0])
			return nil
		}
		return fmt.Errorf("no single sleep 1007 on the host")
	})
	e.Kill()
	// (The mount point of the instances' filesystem stays: it is busy.)
	if err := os.RemoveAll(filepath.Join(e.StateDir, "state")); err != nil && !errors.Is(err, syscall.EBUSY) {
		t.Fatal(err)
	}
	out, err := exec.Command(vmssBin, "cleanup", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"), "--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput()
	if err != nil {
		t.Fatalf("cleanup: %v %s", err, out)
	}
	if left := e.Leftovers(); left != "" {
		t.Errorf("left after cleanup: %s", left)
	}
	pid, _ := strconv.Atoi(pidStr)
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(data), "sleep") {
			t.Errorf("process %d started in an instance survived cleanup", pid)
		}
	}
	// Idempotent.
	if out, err := exec.Command(vmssBin, "cleanup", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"), "--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput(); err != nil {
		t.Errorf("second cleanup: %v %s", err, out)
	}
}

// TestBadInputErrors: clear errors, and nothing changes.
func TestBadInputErrors(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "b", "--instance-count", "2", "--disable-overprovision", "--admin-password", password, "--lb", "none", "-o", "none")
	before := ids(e.Instances("b"))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"scale", "-n", "b", "--new-capacity", "-1"}, "must be 0 or more"},
		{[]string{"scale", "-n", "b", "--new-capacity", "101"}, "singlePlacementGroup"},
		{[]string{"delete-instances", "-n", "b", "--instance-ids", "7"}, "not in scale set b"},
		{[]string{"create", "-n", "-bad", "--admin-password", password}, "InvalidResourceName"},
		{[]string{"network", "vnet", "create", "-n", "v2", "--address-prefixes", "10.0.0.0/33"}, "not a valid IPv4 CIDR"},
		{[]string{"network", "vnet", "create", "-n", "v3", "--address-prefixes", "10.9.0.0/16", "--subnet-name", "s", "--subnet-prefixes", "10.8.0.0/24"}, "outside the IP address range"},
		{[]string{"create", "-n", "weak", "--admin-password", "password"}, "complexity"},
		{[]string{"rest", "--method", "put", "--url", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.Compute/virtualMachineScaleSets/b", "--body", "{not json"}, "InvalidRequestContent"},
		{[]string{"show", "-n", "nope"}, "ResourceNotFound"},
	}
	for _, c := range cases {
		_, err := e.CLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vmss %s: %v (want %q)", strings.Join(c.args, " "), err, c.want)
		}
	}
	if got := ids(e.Instances("b")); got != before {
		t.Errorf("rejected requests changed instances: %s -> %s", before, got)
	}
	// Daemon not running.
	out, err := exec.Command(vmssBin, "--socket", filepath.Join(t.TempDir(), "none.sock"), "list").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "start it with: sudo vmss serve") {
		t.Errorf("daemon down: %v %s", err, out)
	}
	// Not root.
	cmd := exec.Command(vmssBin, "serve", "--socket", filepath.Join(t.TempDir(), "x.sock"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)") {
		t.Errorf("serve as nobody: %v %s", err, out)
	}
}

// TestInstanceViewAndAPI checks the ARM shapes the API answers.
func TestInstanceViewAndAPI(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "v", "--instance-count", "2", "--disable-overprovision", "--admin-password", password, "--lb", "none",
		"--platform-fault-domain-count", "2", "-o", "none")
	var view map[string]any
	e.JSON(&view, "get-instance-view", "-n", "v", "--instance-id", "1")
	if view["platformFaultDomain"] != float64(1) || view["platformUpdateDomain"] != float64(1) || view["computerName"] != "v000001" {
		t.Errorf("instance view: %v", view)
	}
	b, _ := json.Marshal(view["statuses"])
	if !strings.Contains(string(b), "PowerState/running") || !strings.Contains(string(b), "ProvisioningState/succeeded") {
		t.Errorf("statuses: %s", b)
	}
	var raw map[string]any
	if _, err := e.Client.Do(t.Context(), "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/1", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["instanceId"] != "1" || raw["name"] != "v_1" {
		t.Errorf("ARM instance: %v", raw)
	}
	// The control socket is root-only.
	fi, err := os.Stat(e.Socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	// The host namespace has no route into the VNET and no link of ours: no
	// packet is sent here (a dial would leave through the host's default route).
	out, err := exec.Command("ip", "-o", "route", "get", "10.0.0.4").CombinedOutput()
	if err == nil && (strings.Contains(string(out), "vmss") || strings.Contains(string(out), e.Prefix)) {
		t.Errorf("the host routes a VNET address into the emulator: %s", out)
	}
	links, _ := net.Interfaces()
	for _, l := range links {
		if strings.HasPrefix(l.Name, "vmss") {
			t.Errorf("host namespace has link %s", l.Name)
		}
	}
}
