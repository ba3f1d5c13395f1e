package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// freshEnv marks the re-executed child of TestFreshHostNoLeaks, which runs
// inside a private mount namespace.
const freshEnv = "VMSS_E2E_FRESH_CHILD"

// TestFreshHostNoLeaks runs the emulator on a host as freshly booted, where
// /run/netns is not a mount point (nothing has run `ip netns add`), and
// checks that create → delete → cleanup, and `vmss up` → Ctrl-C, leave no
// namespace, mount, link or process behind, and that neither hangs.
//
// The fresh-boot state is made without touching the host's mounts: the test
// re-executes itself in a private mount namespace (unshare -m --propagation
// private) and unmounts /run/netns there only.
func TestFreshHostNoLeaks(t *testing.T) {
	if os.Getenv(freshEnv) == "" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("needs unshare (util-linux)")
		}
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "--",
			os.Args[0], "-test.run", "^TestFreshHostNoLeaks$", "-test.v", "-test.timeout", "10m")
		cmd.Env = append(os.Environ(), freshEnv+"=1", binEnv+"="+vmssBin)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("fresh-host scenarios done")) {
			t.Fatalf("fresh-host scenarios in a private mount namespace: %v\n%s", err, out)
		}
		t.Logf("%s", tail(string(out), 3000))
		return
	}
	runFreshScenarios(t)
	t.Log("fresh-host scenarios done")
}

func runFreshScenarios(t *testing.T) {
	t.Run("CreateDeleteCleanup", func(t *testing.T) {
		makeFresh(t)
		e := Start(t, Options{})
		e.MustCLI("create", "-n", "fr", "--instance-count", "2", "--disable-overprovision", "--admin-password", password, "-o", "none")
		vnetNs := e.netnsWith(strings.TrimRight(e.Prefix, "-") + "vnet-")
		if len(vnetNs) != 1 || len(e.netnsWith(e.Prefix)) != 2 {
			t.Fatalf("after create: VNET namespaces %v, instance namespaces %v; want 1 and 2", vnetNs, e.netnsWith(e.Prefix))
		}
		e.MustCLI("group", "delete", "-n", "default")
		Eventually(t, 60*time.Second, "namespaces deleted after the group's deletion", func() error {
			if left := freshLeftovers(e, false); left != "" {
				return errors.New(left)
			}
			return nil
		})
		stopDaemon(t, e, syscall.SIGTERM)
		out, err := exec.Command(vmssBin, "cleanup", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"),
			"--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput()
		if err != nil {
			t.Fatalf("vmss cleanup: %v\n%s", err, out)
		}
		if left := freshLeftovers(e, true); left != "" {
			t.Errorf("left after cleanup: %s", left)
		}
	})
	t.Run("UpInterrupt", func(t *testing.T) {
		makeFresh(t)
		e := newUpEnv(t)
		home := t.TempDir()
		cmd := exec.Command(vmssBin, "up", "--instance-count", "1", "--socket", e.Socket, "--state-dir", filepath.Join(e.StateDir, "state"),
			"--runtime-dir", e.RuntimeDir, "--prefix", e.Prefix, "--public-ip-range", e.PIPRange, "--metrics-addr", "off",
			"--probe-interval-scale", "0.05", "--drain-period", "1s")
		cmd.Env = append(os.Environ(), "HOME="+home, "SUDO_USER=")
		var log bytes.Buffer
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = pw, pw
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		ready := make(chan struct{})
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			sc := bufio.NewScanner(pr)
			once := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !once && strings.HasPrefix(sc.Text(), "Ready in ") {
					once = true
					close(ready)
				}
			}
		}()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_, _ = exec.Command(vmssBin, "cleanup", "--force", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"),
				"--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput()
		})
		select {
		case <-ready:
		case <-copied:
			t.Fatalf("vmss up ended before it was ready:\n%s", log.String())
		case <-time.After(3 * time.Minute):
			t.Fatalf("vmss up not ready after 3 minutes:\n%s", tail(log.String(), 4000))
		}
		if n := len(e.netnsWith(strings.TrimRight(e.Prefix, "-") + "vnet-")); n != 1 {
			t.Fatalf("vmss up made %d VNET namespaces, want 1", n)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			<-copied
			if err != nil {
				t.Errorf("vmss up after Ctrl-C: %v\n%s", err, tail(log.String(), 4000))
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("vmss up still running 2 minutes after Ctrl-C:\n%s", tail(log.String(), 4000))
		}
		// vmss up removes its state directory with everything else (the
		// sealing key of protected settings used to stay).
		if ents, err := os.ReadDir(filepath.Join(e.StateDir, "state")); err == nil {
			var names []string
			for _, en := range ents {
				names = append(names, en.Name())
			}
			t.Errorf("vmss up left its state directory with %v", names)
		}
		if left := settledLeftovers(e, true); left != "" {
			t.Errorf("left after vmss up ended: %s\n%s", left, tail(log.String(), 4000))
		}
	})
}

// makeFresh puts this (private) mount namespace in the state of a freshly
// booted host: /run/netns is not a mount point.
func makeFresh(t *testing.T) {
	t.Helper()
	if os.Getenv(freshEnv) == "" {
		t.Fatal("makeFresh outside the private mount namespace")
	}
	for range 16 {
		if err := unix.Unmount("/run/netns", unix.MNT_DETACH); err != nil {
			break
		}
	}
	if isMountPoint("/run/netns") {
		t.Fatal("/run/netns is still a mount point")
	}
}

func isMountPoint(path string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// newUpEnv is an Env with its names but no daemon (vmss up runs it).
func newUpEnv(t *testing.T) *Env {
	id := randHex(3)
	b := []byte(randHex(2))
	e := &Env{T: t, ID: id, Prefix: "vmsst" + id + "-", StateDir: t.TempDir(), RuntimeDir: "/run/vmsst" + id,
		PIPRange: fmt.Sprintf("127.%d.%d.0/24", 100+int(b[0])%150, b[1])}
	e.Socket = filepath.Join(e.StateDir, "vmss.sock")
	return e
}

// netnsWith lists /run/netns entries that start with prefix.
func (e *Env) netnsWith(prefix string) []string {
	var out []string
	ents, _ := os.ReadDir("/run/netns")
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), prefix) {
			out = append(out, en.Name())
		}
	}
	return out
}

func stopDaemon(t *testing.T, e *Env, sig syscall.Signal) {
	t.Helper()
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
		t.Errorf("daemon still running 60s after %v:\n%s", sig, tail(e.log.String(), 4000))
	}
	e.cmd = nil
}

// freshLeftovers lists what the env left: namespace files and every mount
// (covered ones included: mountinfo lists them) with its names, the links
// in namespaces that are still reachable, processes in its cgroups, and,
// when all is true, its runtime directory and cgroups.
// settledLeftovers is freshLeftovers once killed processes have finished
// exiting: a killed instance's init leaves its cgroups at once but still
// waits, for a few milliseconds, for the rest of its PID namespace to die,
// and /proc shows it (with its cgroup2 group) until then. Anything left
// after 5 s is a leftover.
func settledLeftovers(e *Env, all bool) string {
	left := freshLeftovers(e, all)
	for end := time.Now().Add(5 * time.Second); left != "" && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		left = freshLeftovers(e, all)
	}
	return left
}

// reapedByHostInit reports whether the process at dir (/proc/PID) is a
// zombie whose parent is the host's init: an instance's init that exited
// after the daemon that started it did, so it was handed to the host's init
// to reap (a dead process keeps its cgroup2 group in /proc/PID/cgroup until
// it is reaped). Nothing of it runs; how soon it goes is up to the host's
// init.
func reapedByHostInit(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return true // gone meanwhile
	}
	var state, ppid string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "State:"); ok {
			state = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			ppid = strings.TrimSpace(v)
		}
	}
	return strings.HasPrefix(state, "Z") && ppid == "1"
}

func freshLeftovers(e *Env, all bool) string {
	var left []string
	vnetPrefix := strings.TrimRight(e.Prefix, "-") + "vnet-"
	for _, n := range append(e.netnsWith(e.Prefix), e.netnsWith(vnetPrefix)...) {
		path := "/run/netns/" + n
		links := "unreachable"
		if out, err := exec.Command("ip", "-n", n, "-o", "link", "show").Output(); err == nil {
			links = strconv.Itoa(strings.Count(strings.TrimSpace(string(out)), "\n") + 1)
		}
		left = append(left, fmt.Sprintf("netns %s (links: %s)", path, links))
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		base := filepath.Base(mp)
		if strings.HasPrefix(base, e.Prefix) || strings.HasPrefix(base, vnetPrefix) || (all && strings.HasPrefix(mp, e.RuntimeDir)) {
			left = append(left, "mount "+l)
		}
	}
	group := strings.TrimRight(e.Prefix, "-")
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("/"+group+"/")) && !reapedByHostInit(filepath.Dir(p)) {
			left = append(left, "process "+filepath.Base(filepath.Dir(p)))
		}
	}
	if all {
		if l := e.Leftovers(); l != "" {
			left = append(left, l)
		}
	}
	return strings.Join(left, ", ")
}
