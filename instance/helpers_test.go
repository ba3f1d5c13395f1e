package instance

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/instance/cgroup"
	"github.com/vmss-emulator/vmss/internal/testutil"
)

func skipUnlessRoot(t testing.TB) { t.Helper(); testutil.RequireRoot(t) }

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestManager returns a Manager with a unique prefix and directories,
// and checks at the end of the test that Cleanup leaves nothing behind.
func newTestManager(t testing.TB) *Manager {
	t.Helper()
	skipUnlessRoot(t)
	id := fmt.Sprintf("vmsst%06x", rand.IntN(1<<24))
	m := &Manager{
		RuntimeDir: "/run/" + id,
		StateDir:   filepath.Join(t.TempDir(), "state"),
		Prefix:     id + "-",
		Logger:     slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Cleanup(ctx); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		assertNothingLeft(t, m)
		_ = os.RemoveAll(m.RuntimeDir) // only if the assertions above failed
	})
	return m
}

// assertNothingLeft checks the kernel and the file system for anything with
// the Manager's prefix.
func assertNothingLeft(t testing.TB, m *Manager) {
	t.Helper()
	if names, err := m.List(context.Background()); err != nil || len(names) > 0 {
		t.Errorf("List after cleanup = %v, %v", names, err)
	}
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), m.Prefix) {
			t.Errorf("network namespace %s left behind", e.Name())
		}
	}
	ents, _ = os.ReadDir(m.netnsEtcRoot())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), m.Prefix) {
			t.Errorf("%s/%s left behind", m.netnsEtcRoot(), e.Name())
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, strings.TrimSuffix(m.Prefix, "-")) {
			t.Errorf("mount left behind: %s", l)
		}
	}
	hs, err := cgroup.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Exists(m.group("")) {
			t.Errorf("cgroup %s left behind", h.Path(m.group("")))
		}
	}
	if ents, err := os.ReadDir(m.uidDir()); err == nil {
		for _, e := range ents {
			if owner, _ := os.Readlink(filepath.Join(m.uidDir(), e.Name())); strings.HasPrefix(owner, m.Prefix) {
				t.Errorf("admin uid claim %s of %s left behind", e.Name(), owner)
			}
		}
	}
	for _, d := range []string{m.RuntimeDir, m.StateDir} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
	}
}

func testSpec(m *Manager, suffix string) Spec {
	return Spec{
		Name:         m.Prefix + suffix,
		Hostname:     "host-" + suffix,
		AdminUser:    "azureuser",
		SearchDomain: "test.internal.cloudapp.net",
	}
}

func create(t testing.TB, m *Manager, s Spec) Spec {
	t.Helper()
	if err := m.Create(context.Background(), s); err != nil {
		t.Fatalf("Create(%s): %v", s.Name, err)
	}
	got, err := m.Lookup(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// run runs argv in an instance and returns its combined output.
func run(t testing.TB, m *Manager, name string, req ExecRequest) string {
	t.Helper()
	out, err := tryRun(m, name, req)
	if err != nil {
		t.Fatalf("run %v in %s: %v\n%s", req.Argv, name, err, out)
	}
	return out
}

func tryRun(m *Manager, name string, req ExecRequest) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd, err := m.Command(ctx, name, req)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func sh(script string) ExecRequest { return ExecRequest{Argv: []string{"sh", "-c", script}} }

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// waitGone waits until none of pids is alive.
func waitGone(t testing.TB, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still alive", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// startTree starts `sh -c 'sleep 1000 & sleep 1000'` in an instance and
// waits until the shell and both sleeps are in the cgroup.
func startTree(t testing.TB, m *Manager, name string) (*exec.Cmd, []int) {
	t.Helper()
	cmd, err := m.Command(context.Background(), name, sh("sleep 1000 & sleep 1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := m.Processes(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) >= 3 && countSleeps(pids) == 2 {
			return cmd, pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of %s = %v, want sh and two sleeps", name, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countSleeps(pids []int) int {
	n := 0
	for _, pid := range pids {
		// (The init's own sleep does not count.)
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.HasPrefix(string(b), "sleep\x00") && string(b) != "sleep\x002147483647\x00" {
			n++
		}
	}
	return n
}

// mountLines returns the lines of the host's mount table that mention s.
func mountLines(t testing.TB, s string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}
