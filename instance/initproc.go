package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initArg is the argument that makes the program (the daemon's executable,
// see Exe) run as the init process of an instance's PID namespace.
const initArg = "vmss-instance-init"

// initReady is what the init process writes on its stdout once the
// instance's /proc shows its PID namespace.
const initReady = "ready"

// initTimeout bounds the wait for a new init process to get ready.
const initTimeout = 30 * time.Second

// The init process is this program, run by startInit as pid 1 of a new PID
// namespace. The hook runs during package initialization, before main, so
// any program that links this package (the vmss binary, test binaries) can
// serve as the init without a change to its main.
func init() {
	if len(os.Args) == 2 && os.Args[1] == initArg && os.Getpid() == 1 {
		os.Exit(runInit())
	}
}

// runInit mounts a /proc of the new PID namespace over the instance's /proc
// (in the instance's mount namespace, which the process already is in), tells
// the daemon it is ready, and then only reaps the processes that end up as
// its children (orphans of the namespace), for the instance's life. Signals
// from inside the namespace cannot reach it (pid 1 has no handler for
// them); SIGKILL from the host (Stop, Delete) ends it and, with it, every
// process of the namespace.
//
// Memory: one OS thread doing work, a tiny heap, no goroutines besides the
// runtime's; text pages are shared with every other init and the daemon.
func runInit() int {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(10)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2)
	if err := mountProc(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", initArg, err)
		return 1
	}
	if _, err := os.Stdout.WriteString(initReady + "\n"); err != nil {
		return 1
	}
	// Let go of the daemon's pipes and terminal.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(int(null.Fd()), fd)
		}
		null.Close()
	}
	_ = os.Chdir("/")
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
		}
		<-children
	}
}

// mountProc replaces the instance's /proc (the host's, copied into its
// mount namespace, or one of an earlier init) with one of the caller's PID
// namespace.
func mountProc() error {
	var b []byte
	for tries := 0; ; tries++ {
		var err error
		if b, err = os.ReadFile("/proc/self/mountinfo"); err == nil {
			break
		}
		// The /proc of an earlier init's namespace, where this process
		// has no pid: unmount it.
		if tries == 8 || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount an earlier /proc: %w", err)
		}
	}
	layers := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/proc" {
			layers++
		}
	}
	// Keep the bottom layer (the copy of the host's): unmounting it would
	// uncover the host's submounts' mount points and gains nothing.
	for ; layers > 1; layers-- {
		if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount an earlier /proc: %w", err)
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc of the instance's PID namespace: %w", err)
	}
	return nil
}

// pidNsFile and ipcNsFile are the bind mounts that pin the PID and IPC
// namespaces of the running init (RuntimeDir/instances/<name>/{pid,ipc});
// initFile records its host pid.
func (m *Manager) pidNsFile(name string) string { return m.nsFile(name, "pid") }
func (m *Manager) ipcNsFile(name string) string { return m.nsFile(name, "ipc") }
func (m *Manager) initFile(name string) string  { return m.nsFile(name, "init") }

// initPid returns the host pid of the running init of instance name, or 0
// when none runs (never started, stopped, killed). It needs no memory of
// the process that started it: a restarted daemon adopts the init it finds.
func (m *Manager) initPid(name string) int {
	b, err := os.ReadFile(m.initFile(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	want, ok := nsIDOf(m.pidNsFile(name))
	if !ok {
		return 0
	}
	var st unix.Stat_t
	// Once the init is gone, nothing is left in its namespace: a process
	// with the pid recorded that is in that namespace is the init.
	if unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/pid", &st) != nil || (nsID{uint64(st.Dev), st.Ino}) != want {
		return 0
	}
	return pid
}

// ensureInit starts the init of instance name unless one runs. The caller
// holds the instance's lock.
func (m *Manager) ensureInit(ctx context.Context, name string) error {
	if m.initPid(name) != 0 {
		return nil
	}
	if err := m.dropInitPins(name); err != nil {
		return err
	}
	pid, err := m.startInit(ctx, name)
	if err != nil {
		return fmt.Errorf("start the init process of instance %s: %w", name, err)
	}
	m.log().Debug("started instance init", "instance", name, "pid", pid)
	return nil
}

// dropInitPins removes the pins of a stopped init's namespaces, so the IPC
// objects of a stopped instance are freed, as a powered-off VM's memory is.
func (m *Manager) dropInitPins(name string) error {
	var errs []error
	for _, p := range []string{m.initFile(name), m.pidNsFile(name), m.ipcNsFile(name)} {
		errs = append(errs, unmountAndRemove(p))
	}
	return errors.Join(errs...)
}

// startInit runs the init process of instance name: /bin/sh joins the
// instance's cgroups as pid 1 of a new PID and IPC namespace, nsenter moves
// it into the instance's network, UTS and mount namespaces and execs Exe
// as the init. The namespaces are pinned by bind mounts once it is ready.
func (m *Manager) startInit(ctx context.Context, name string) (int, error) {
	exe, err := m.Exe()
	if err != nil {
		return 0, err
	}
	tools, err := m.execTools()
	if err != nil {
		return 0, err
	}
	procs, err := m.procsFiles(name)
	if err != nil {
		return 0, err
	}
	args := append([]string{"-c", wrapperScript, "vmss-enter"}, procs...)
	args = append(args, "--", tools.nsenter, "-F",
		"--net="+m.NetnsPath(name), "--uts="+m.nsFile(name, "uts"), "--mount="+m.nsFile(name, "mnt"),
		"--", exe, initArg)
	cmd := exec.Command(tools.sh, args...)
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=10", "PATH=" + defaultPath}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWIPC, Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != initReady {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	// The daemon reaps its own init; a later daemon adopts it without
	// needing to (the init is then a child of the host's init).
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	fail := func(err error) (int, error) {
		_ = cmd.Process.Kill()
		<-waited
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return 0, err
	}
	t := time.NewTimer(initTimeout)
	defer t.Stop()
	select {
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
	case <-t.C:
		return fail(errors.New("not ready after " + initTimeout.String()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	for _, k := range []string{"pid", "ipc"} {
		src := fmt.Sprintf("/proc/%d/ns/%s", pid, k)
		if err := bindNsFile(src, m.nsFile(name, k)); err != nil {
			_ = m.dropInitPins(name)
			return fail(err)
		}
	}
	if err := os.WriteFile(m.initFile(name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = m.dropInitPins(name)
		return fail(err)
	}
	return pid, nil
}

// limitWriter keeps the first n bytes written to w.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p
		if len(q) > l.n {
			q = q[:l.n]
		}
		l.n -= len(q)
		_, _ = l.w.Write(q)
	}
	return len(p), nil
}

var _ = filepath.Join
