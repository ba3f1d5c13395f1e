package instance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/instance/cgroup"
)

// TestPIDAndIPCNamespaces: each instance has its own PID namespace (its
// /proc and ps show its processes only; pid 1 is its init) and IPC
// namespace, and its own admin uid; the admin of one instance cannot see or
// signal the processes of another or of the host.
func TestPIDAndIPCNamespaces(t *testing.T) {
	m := newTestManager(t)
	a := create(t, m, testSpec(m, "pa"))
	b := create(t, m, testSpec(m, "pb"))
	if a.AdminUID == b.AdminUID || a.AdminUID < AdminUIDBase || b.AdminUID < AdminUIDBase {
		t.Fatalf("admin uids %d and %d: want distinct allocated uids", a.AdminUID, b.AdminUID)
	}
	// A process in b, and one on the host, both as b's admin uid would be
	// the worst case: the same uid as a's processes would make it
	// signalable; use b's own uid for b's process.
	bcmd, err := m.Command(context.Background(), b.Name, ExecRequest{Argv: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bcmd.Process.Kill(); _ = bcmd.Wait() })
	bSleep := hostChild(t, bcmd.Process.Pid)

	// Positive controls: inside a, the admin sees and signals its own
	// processes, and the init is pid 1.
	got := run(t, m, a.Name, sh(`sleep 1000 & p=$!; ps -e -o pid=,comm= | awk '{print $2}' | sort | tr '\n' ' '; echo; cat /proc/1/comm; kill $p && wait $p; echo killed=$?`))
	lines := strings.Split(got, "\n")
	if len(lines) < 3 {
		t.Fatalf("output %q", got)
	}
	lines[2] = lines[len(lines)-1] // after the shell's "Terminated"
	// ps -e shows the init, the shell, the sleep, ps and its pipeline, nothing of b or the host.
	for _, want := range []string{"sleep", "sh", "ps"} {
		if !strings.Contains(" "+lines[0], " "+want+" ") {
			t.Errorf("ps -e in a = %q, want %s among them", lines[0], want)
		}
	}
	if n := len(strings.Fields(lines[0])); n > 10 {
		t.Errorf("ps -e in a lists %d processes: %q", n, lines[0])
	}
	if lines[1] != "sh" {
		t.Errorf("/proc/1/comm = %q, want the init (sh)", lines[1])
	}
	if lines[2] != "killed=143" {
		t.Errorf("killing its own sleep: %q, want killed=143 (SIGTERM)", lines[2])
	}
	// Negative: b's sleep and the host's processes do not exist in a.
	for _, pid := range []int{bSleep, os.Getpid(), 1 /* host init: in a, pid 1 is a's init */} {
		out, _ := tryRun(m, a.Name, sh("cat /proc/"+strconv.Itoa(pid)+"/cmdline 2>/dev/null | tr '\\0' ' '"))
		if strings.Contains(out, "sleep 1000") && pid == bSleep || pid == os.Getpid() && strings.Contains(out, os.Args[0]) {
			t.Errorf("a reads /proc/%d/cmdline of another instance or the host: %q", pid, out)
		}
	}
	if out, err := tryRun(m, a.Name, sh("kill -0 "+strconv.Itoa(bSleep))); err == nil {
		t.Errorf("kill -0 %d (b's sleep) from a succeeded: %q", bSleep, out)
	}
	if !alive(bSleep) {
		t.Error("b's sleep died")
	}
	// IPC: a System V message queue made in a is not in b; a sees its own.
	run(t, m, a.Name, sh("ipcmk -Q >/dev/null"))
	if got := run(t, m, a.Name, sh("ipcs -q | grep -c '^0x' || true")); got != "1" {
		t.Errorf("a sees %s of its own queues, want 1", got)
	}
	if got := run(t, m, b.Name, sh("ipcs -q | grep -c '^0x' || true")); got != "0" {
		t.Errorf("b sees %s queues of a", got)
	}
}

// hostChild returns the host pid of the only child of parent.
func hostChild(t *testing.T, parent int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(parent) + "/task/" + strconv.Itoa(parent) + "/children")
		if f := strings.Fields(string(b)); len(f) == 1 {
			pid, _ := strconv.Atoi(f[0])
			if comm, _ := os.ReadFile("/proc/" + f[0] + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child of %d", parent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInitReapsOrphans: processes whose parent died end up as children of
// the instance's init, which reaps them (no zombies pile up against the
// pids limit).
func TestInitReapsOrphans(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "reap"))
	run(t, m, s.Name, sh("for i in 1 2 3 4 5; do (sleep 0.1 &); done; (true &)"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := run(t, m, s.Name, sh("ps -e -o stat=,ppid=,comm= | grep -c '^Z' || true"))
		if got == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s zombies left in the instance:\n%s", got, run(t, m, s.Name, sh("ps -e -o pid,ppid,stat,comm")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The OOM killer spares the init (it would take the whole instance
	// down), where the host lets root lower oom_score_adj.
	if exec.Command("sh", "-c", "echo -1 > /proc/self/oom_score_adj").Run() != nil {
		t.Log("this host refuses to lower oom_score_adj: the init's is not checked")
	} else if got := run(t, m, s.Name, sh("cat /proc/1/oom_score_adj /proc/self/oom_score_adj")); got != "-1000\n0" {
		t.Errorf("oom_score_adj of the init and of a command = %q, want -1000 and 0", got)
	}
	// Positive control: the orphans were the init's children (ppid 1)
	// while they ran.
	if got := run(t, m, s.Name, sh("(sleep 5 &); sleep 0.2; ps -e -o ppid=,args= | grep 'sleep 5' | grep -v grep | awk '{print $1}'")); got != "1" {
		t.Errorf("parent of an orphan = %q, want 1 (the init)", got)
	}
}

// TestInitAdoptedAndRestarted: a second Manager (a restarted daemon) uses
// the init it finds; Stop ends it (and the PID namespace), the next command
// starts a new one; files persist, /tmp and /dev/shm (RAM) are emptied.
func TestInitAdoptedAndRestarted(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "init"))
	run(t, m, s.Name, sh("echo kept > ~/f; echo ram > /tmp/f; echo ram > /dev/shm/f; sleep 1000 >/dev/null 2>&1 &"))
	first := m.initPid(s.Name)
	if first == 0 {
		t.Fatal("no init after a command")
	}
	m2 := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix, UIDDir: m.UIDDir}
	if got := run(t, m2, s.Name, sh("pgrep -c -f -x 'sleep 1000'")); got != "1" {
		t.Errorf("the restarted Manager's command sees %s sleeps, want the one left running", got)
	}
	if got := m2.initPid(s.Name); got != first {
		t.Errorf("init %d after restart, want the adopted %d", got, first)
	}
	if err := m2.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	if alive(first) {
		t.Error("init alive after Stop")
	}
	if got := run(t, m2, s.Name, sh("cat ~/f; pgrep -c -f -x 'sleep 1000' || true; cat /proc/1/comm; ls /tmp /dev/shm; df -B1 --output=size /tmp | tail -n 1")); got != "kept\n0\nsh\n/dev/shm:\n\n/tmp:\n"+strconv.Itoa(DefaultTmpSize) {
		t.Errorf("after Stop and a new command: %q", got)
	}
	if second := m2.initPid(s.Name); second == 0 || second == first {
		t.Errorf("init after restart = %d (first %d)", second, first)
	}
}

// TestLimits: the instance's cgroups carry the pids and memory limits, and
// its tmpfs mounts the size caps.
func TestLimits(t *testing.T) {
	m := newTestManager(t)
	m.PidsMax, m.MemoryMax, m.TmpSize, m.ShmSize = 64, 128<<20, 8<<20, 4<<20
	s := create(t, m, testSpec(m, "lim"))
	hs, err := m.groupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, h := range hs {
		for _, f := range []string{"pids.max", "memory.max", "memory.limit_in_bytes"} {
			if b, err := os.ReadFile(filepath.Join(h.Path(m.group(s.Name)), f)); err == nil && (h.Version == cgroup.V2 || strings.HasPrefix(f, h.Controller)) {
				found[f] = strings.TrimSpace(string(b))
			}
		}
	}
	if found["pids.max"] != "64" {
		t.Errorf("pids.max = %q, want 64", found["pids.max"])
	}
	if mem := cmpOr(found["memory.max"], found["memory.limit_in_bytes"]); mem != strconv.Itoa(128<<20) {
		t.Errorf("memory limit = %q, want %d", mem, 128<<20)
	}
	if got := run(t, m, s.Name, sh("df -B1 --output=size /tmp /dev/shm | tail -n 2 | tr -d ' '")); got != strconv.Itoa(8<<20)+"\n"+strconv.Itoa(4<<20) {
		t.Errorf("tmpfs sizes = %q", got)
	}
	// The cap holds: writing past it fails inside, nothing else.
	if out, err := tryRun(m, s.Name, sh("head -c 16M /dev/zero > /tmp/big")); err == nil || !strings.Contains(out, "No space left") {
		t.Errorf("writing 16 MiB to an 8 MiB /tmp: %v %q", err, out)
	}
}

// TestHomesFilesystemCapped: an instance that fills its /home fills the
// instances' filesystem only; the state directory stays writable.
func TestHomesFilesystemCapped(t *testing.T) {
	m := newTestManager(t)
	m.HomesSize = minHomesSize
	s := create(t, m, testSpec(m, "home"))
	if !isMountPoint(m.homesDir()) {
		t.Fatalf("%s is not a mount point", m.homesDir())
	}
	// Positive control: the admin writes to its home.
	if got := run(t, m, s.Name, sh("head -c 1M /dev/zero > ~/small && stat -c %s ~/small")); got != "1048576" {
		t.Fatalf("writing 1 MiB to the home: %q", got)
	}
	out, err := tryRun(m, s.Name, sh("head -c 200M /dev/zero > ~/big"))
	if err == nil || !strings.Contains(out, "No space left") {
		t.Errorf("writing 200 MiB to a %d MiB home: %v %q", minHomesSize>>20, err, out)
	}
	if err := os.WriteFile(filepath.Join(m.StateDir, "probe"), make([]byte, 1<<20), 0o600); err != nil {
		t.Errorf("the state directory is not writable with a full home: %v", err)
	}
	_ = os.Remove(filepath.Join(m.StateDir, "probe"))
	// The recorded spec sits on the instances' filesystem, still readable.
	m.forget(s.Name)
	if _, err := m.Lookup(s.Name); err != nil {
		t.Error(err)
	}
}

// TestTerminalSignalsReachTheProgram: SIGINT sent to the command's process
// group (as a terminal's Ctrl-C or an SSH session does) is the program's
// to handle: a program that traps it goes on and exits as it chooses, the
// nsenter parent (cmd.Process) does not die of it; a program that does not
// trap it dies of it.
func TestTerminalSignalsReachTheProgram(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "sig"))
	start := func(script string) (*exec.Cmd, *lockedBuffer) {
		cmd, err := m.Command(context.Background(), s.Name, sh(script))
		if err != nil {
			t.Fatal(err)
		}
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "ready") {
			if time.Now().After(deadline) {
				t.Fatalf("not ready: %q", out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return cmd, out
	}
	cmd, out := start(`trap 'echo caught; exit 7' INT; echo ready; while :; do sleep 0.05; done`)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(out.String(), "caught") {
		t.Errorf("trapped SIGINT: %v, output %q; want the trap's exit status 7", err, out.String())
	}
	// Positive control: without a trap, SIGINT ends the program.
	cmd, _ = start(`echo ready; exec sleep 1000`)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("sleep interrupted by SIGINT exited 0")
		}
	case <-time.After(10 * time.Second):
		t.Error("SIGINT did not end the program")
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAccountedFromBirth: a process started in an instance is, from its
// start, in the instance's group of every hierarchy that accounts it (the
// cgroup2 one for CPU time, the v1 blkio one for disk I/O on v1 hosts), and
// a direct write to its /home (the instances' ext4 image) is counted there.
func TestAccountedFromBirth(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "acct"))
	hs, err := m.groupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var blkio string
	want := []string{}
	for _, h := range hs {
		switch {
		case h.Version == cgroup.V2:
			want = append(want, "0::/"+m.group(s.Name)+"\n")
		case h.Controller == "blkio":
			blkio = h.Path(m.group(s.Name))
			want = append(want, ":blkio:/"+m.group(s.Name)+"\n")
		}
	}
	if len(want) == 0 {
		t.Skip("no cgroup2 or blkio hierarchy mounted")
	}
	got := run(t, m, s.Name, sh("cat /proc/self/cgroup"))
	for _, w := range want {
		if !strings.Contains(got+"\n", w) {
			t.Errorf("/proc/self/cgroup in the instance lacks %q:\n%s", w, got)
		}
	}
	if blkio == "" {
		return
	}
	written := func() int {
		b, err := os.ReadFile(filepath.Join(blkio, "blkio.throttle.io_service_bytes"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[1] == "Write" {
				v, _ := strconv.Atoi(f[2])
				n += v
			}
		}
		return n
	}
	before := written()
	run(t, m, s.Name, sh("dd if=/dev/zero of=$HOME/f bs=64k count=64 oflag=direct status=none; rm -f $HOME/f"))
	if after := written(); after-before < 4<<20 {
		t.Errorf("blkio counted %d bytes written for a 4 MiB direct write", after-before)
	}
}
