package e2e

// Isolation between instances and from the host, through OpenSSH as the
// admin user: processes (ps, /proc, signals), files through /proc, and
// protected settings that must not leak; and resource exhaustion in one
// instance (a fork bomb, a memory hog) that must leave the daemon and the
// other instances responsive.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// hostPidsWithArgs returns the host pids whose command line is exactly args
// (space-separated).
func hostPidsWithArgs(args string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")) == args {
			out = append(out, pid)
		}
	}
	return out
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestIsolationMatrix: the admin of instance A sees and signals its own
// processes only; B's processes and the host's (even one running as A's
// uid) are invisible in ps and /proc and cannot be signalled; B's files
// cannot be read through /proc/<pid>/root; A and B have distinct uids and
// System V IPC namespaces.
func TestIsolationMatrix(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	sshCreate(e, c, "iso", 2)
	info := sshConnInfo(e, "iso")
	a, b := info["0"], info["1"]
	uidA, uidB := c.mustSSH(a, "id -u"), c.mustSSH(b, "id -u")
	if uidA == uidB {
		t.Fatalf("instances share the admin uid %s", uidA)
	}

	// In B: a file in /tmp and in the home, a detached process and an IPC queue.
	secret := "b-secret-" + e.ID
	c.mustSSH(b, "echo "+secret+" > /tmp/b-secret; echo "+secret+" > ~/b-secret; ipcmk -Q >/dev/null; "+
		"setsid sleep 1001 </dev/null >/dev/null 2>&1 & echo started")
	var bPid int
	Eventually(t, 10*time.Second, "B's sleep on the host", func() error {
		if p := hostPidsWithArgs("sleep 1001"); len(p) == 1 {
			bPid = p[0]
			return nil
		}
		return fmt.Errorf("no single sleep 1001")
	})
	// On the host: a process with A's uid (the worst case: same uid).
	uid, _ := strconv.Atoi(uidA)
	host := exec.Command("sleep", "1002")
	host.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	hPid, dPid := host.Process.Pid, e.cmd.Process.Pid

	// Positive controls in A: its own sleep is listed, readable through
	// /proc, its /tmp through /proc/<pid>/root, and it can be killed.
	got := c.mustSSH(a, `echo mine > /tmp/a-file; sleep 1003 & p=$!; sleep 0.2
ps -e -o args= | grep -c '^sleep 1003$'
cat /proc/$p/cmdline | tr '\0' ' '; echo
cat /proc/$p/root/tmp/a-file
ipcs -q | grep -c '^0x' || true
kill $p && echo killed
ps -e -o pid= | wc -l`)
	lines := strings.Split(got, "\n")
	if len(lines) != 6 || lines[0] != "1" || lines[1] != "sleep 1003 " || lines[2] != "mine" || lines[3] != "0" || lines[4] != "killed" {
		t.Fatalf("A's view of its own processes:\n%s", got)
	}
	if n, _ := strconv.Atoi(lines[5]); n > 12 {
		t.Errorf("A's ps -e lists %d processes: more than its own", n)
	}

	// Negative: nothing of B or of the host, by ps, by /proc, by signal.
	got = c.mustSSH(a, "ps -e -o args=")
	for _, marker := range []string{"sleep 1001", "sleep 1002", "vmss serve", "sshd", "systemd"} {
		if strings.Contains(got, marker) {
			t.Errorf("A's ps shows %q:\n%s", marker, got)
		}
	}
	for what, pid := range map[string]int{"B's sleep": bPid, "the host's sleep with A's uid": hPid, "the daemon": dPid} {
		p := strconv.Itoa(pid)
		r := c.ssh(a, fmt.Sprintf("cat /proc/%s/cmdline /proc/%s/environ; ls /proc/%s/root/tmp; kill -0 %s && echo SIGNALLED; kill -9 %s && echo KILLED", p, p, p, p, p))
		if strings.Contains(r.Stdout, "SIGNALLED") || strings.Contains(r.Stdout, "KILLED") || strings.Contains(r.Stdout, "sleep") ||
			strings.Contains(r.Stdout, "b-secret") {
			t.Errorf("A reaches %s (host pid %d): %s", what, pid, r)
		}
	}
	// B's files: not through any /proc entry A has, and not in A's /home.
	r := c.ssh(a, "cat /proc/*/root/tmp/b-secret /proc/*/root/home/*/b-secret /home/*/b-secret 2>/dev/null; ls /home")
	if strings.Contains(r.Stdout, secret) || r.Out() != sshUser {
		t.Errorf("A reads B's files or sees other homes: %s", r)
	}
	for what, pid := range map[string]int{"B's sleep": bPid, "the host's sleep": hPid, "the daemon": dPid} {
		if !pidAlive(pid) {
			t.Errorf("%s (pid %d) died", what, pid)
		}
	}
	// B still sees its own queue and process (the positive control for B).
	if got := c.mustSSH(b, "ipcs -q | grep -c '^0x'; ps -e -o args= | grep -c '^sleep 1001$'"); got != "1\n1" {
		t.Errorf("B's own queue and process: %q", got)
	}
}

// TestProtectedSettingsNeverLeak: a CustomScript whose command is in
// protectedSettings runs (its output is in the instance view), but the
// command's text is in no host process's argv, no API answer, not in the
// daemon's log and in no file of the state directory.
func TestProtectedSettingsNeverLeak(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	sshCreate(e, c, "prot", 0)
	secret := "protected-" + e.ID
	ext := appExt(t, "cse", "Microsoft.Azure.Extensions", "CustomScript", "2.1", map[string]any{"timestamp": 7})
	ext.Properties.ProtectedSettings = json.RawMessage(fmt.Sprintf(`{"commandToExecute":"echo started-%s; exec sleep 1004 # %s"}`, e.ID, secret))
	appSetModel(e, "prot", 1, ext)
	var view string
	Eventually(t, 30*time.Second, "the workload runs", func() error {
		view = lbInstanceView(e, "prot", "0")
		if !strings.Contains(view, "started-"+e.ID) || len(hostPidsWithArgs("sleep 1004")) != 1 {
			return fmt.Errorf("instance view %.300s", view)
		}
		return nil
	})
	// ps on the host: the workload is there (positive control), its
	// command text nowhere.
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		b, _ := os.ReadFile("/proc/" + en.Name() + "/cmdline")
		if strings.Contains(string(b), secret) {
			t.Errorf("process %s has the protected command in its argv: %q", en.Name(), b)
		}
	}
	// The API: the model, the instance list, the instance view.
	answers := map[string]string{"instance view": view}
	for _, args := range [][]string{{"show", "-n", "prot"}, {"list-instances", "-n", "prot"}, {"get-instance-view", "-n", "prot", "--instance-id", "0"}} {
		answers[strings.Join(args, " ")] = e.MustCLI(args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var raw json.RawMessage
	if _, err := e.Client.Do(ctx, http.MethodGet, e.Client.ResourceID("default", arm.TypeScaleSet, "prot"), nil, &raw); err != nil {
		t.Fatal(err)
	}
	answers["GET scale set"] = string(raw)
	if !strings.Contains(answers["GET scale set"], `"timestamp"`) {
		t.Errorf("GET scale set lacks the public settings (positive control): %.500s", raw)
	}
	answers["daemon log"] = e.log.String()
	for what, text := range answers {
		if strings.Contains(text, secret) {
			t.Errorf("%s has the protected command", what)
		}
	}
	// Every file of the state directory (the instances' filesystem image
	// holds what the instances wrote; the script is never written).
	checked := 0
	_ = filepath.WalkDir(e.StateDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".img") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		checked++
		if strings.Contains(string(data), secret) {
			t.Errorf("state file %s has the protected command in clear", p)
		}
		return nil
	})
	if checked < 3 {
		t.Errorf("checked %d files of the state directory; want state.json, the key, the logs", checked)
	}
}

// TestResourceExhaustionContained: a fork bomb, then a memory hog, in one
// instance: the daemon answers the API within a second throughout, the
// other instance keeps serving through the load balancer, the memory hog
// is killed at the instance's memory limit, and stopping the instance ends
// the fork bomb.
// Not parallel: a fork bomb and a memory hog would starve the timing of the
// tests running beside it (probe intervals of a quarter second).
func TestResourceExhaustionContained(t *testing.T) {
	e := Start(t, Options{})
	c := newSSHClient(t)
	sshCreate(e, c, "hog", 2, "--lb-rule-port", "80", "--custom-script", "exec vmss webapp --addr :80")
	lbWaitAllUp(e, "hogLB", "", "hog", 60*time.Second)
	url := "http://" + lbPublicIP(e, "hogLBPublicIP") + "/"
	bomber := sshConnInfo(e, "hog")["0"]

	// watch polls the API and the other instance (1) until stop is closed
	// and reports the slowest API answer and any failure.
	watch := func(stop chan struct{}) (slowest time.Duration, errs []string) {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			var raw json.RawMessage
			_, err := e.Client.Do(ctx, http.MethodGet, e.Client.ResourceID("default", arm.TypeScaleSet, "hog"), nil, &raw)
			d := time.Since(start)
			cancel()
			slowest = max(slowest, d)
			if err != nil {
				errs = append(errs, "API: "+err.Error())
			}
			if _, err := lbHit(url, netip.Addr{}); err != nil {
				errs = append(errs, "load balancer: "+err.Error())
			}
		}
	}
	run := func(name string, during func()) {
		stop := make(chan struct{})
		type res struct {
			slowest time.Duration
			errs    []string
		}
		done := make(chan res, 1)
		go func() { s, errs := watch(stop); done <- res{s, errs} }()
		during()
		close(stop)
		r := <-done
		if r.slowest > time.Second {
			t.Errorf("%s: the API took %s to answer", name, r.slowest)
		}
		if len(r.errs) > 0 {
			t.Errorf("%s: %d failures, first: %s", name, len(r.errs), r.errs[0])
		}
		t.Logf("%s: slowest API answer %s", name, r.slowest)
	}

	// Memory hog: tail keeps all of a line-less input; it is killed at the
	// instance's memory limit (1 GiB), the command ends.
	run("memory hog", func() {
		r := c.ssh(bomber, "head -c 4G /dev/zero | tail > /dev/null; echo status=$?")
		if !strings.Contains(r.Stdout, "status=137") {
			t.Errorf("memory hog: %s, want tail killed (137) by the memory limit", r)
		}
	})
	// Fork bomb: runs for 8 s at the pids limit, then Stop ends it all.
	in0 := ""
	for _, in := range e.Instances("hog") {
		if in.InstanceID == "0" {
			in0 = in.Netns
		}
	}
	group := strings.TrimRight(e.Prefix, "-") + "/" + in0
	peak := 0
	run("fork bomb", func() {
		c.mustSSH(bomber, "setsid bash -c 'b() { b | b & }; b' </dev/null >/dev/null 2>&1 & echo bombed")
		for i := 0; i < 40; i++ {
			time.Sleep(200 * time.Millisecond)
			for _, f := range []string{"/sys/fs/cgroup/pids/" + group + "/pids.current", "/sys/fs/cgroup/" + group + "/pids.current"} {
				if b, err := os.ReadFile(f); err == nil {
					n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					peak = max(peak, n)
				}
			}
		}
		e.MustCLI("stop", "-n", "hog", "--instance-ids", "0")
	})
	t.Logf("fork bomb: peak of %d tasks in the instance (limit 1024)", peak)
	if peak < 100 || peak > 1024 {
		t.Errorf("fork bomb: peak of %d tasks in the instance, want it to reach toward the limit (1024) and stay within it", peak)
	}
	if got := e.Instances("hog"); len(got) != 2 {
		t.Fatalf("instances after the bomb: %d", len(got))
	}
	// Ended: instance 0's cgroup is empty, the other instance serves.
	for _, in := range e.Instances("hog") {
		if in.InstanceID != "0" {
			continue
		}
		procs, _ := filepath.Glob("/sys/fs/cgroup/*/" + strings.TrimRight(e.Prefix, "-") + "/" + in.Netns + "/cgroup.procs")
		for _, p := range procs {
			if b, _ := os.ReadFile(p); len(strings.TrimSpace(string(b))) > 0 {
				t.Errorf("processes left in %s after stop: %s", p, b)
			}
		}
	}
	e.MustCLI("start", "-n", "hog", "--instance-ids", "0")
	lbWaitAllUp(e, "hogLB", "", "hog", 60*time.Second)
}
