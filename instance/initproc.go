package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initScript is the init process of an instance: /bin/sh as pid 1 of the
// instance's PID namespace, in its mount namespace. It replaces the
// instance's /proc (a copy of the host's, or that of an earlier init's
// namespace) with one of its own namespace, tells the daemon it is ready,
// and then waits, for the instance's life, for a sleep that never ends:
// the shell's wait reaps any child, and pid 1 is the parent of every orphan
// of the namespace. Signals from inside are ignored, and the OOM killer
// spares it where the host allows lowering oom_score_adj (its sleep
// inherits that, a few KiB); SIGKILL from the host
// (Stop, Delete) ends it and, with it, every process of the namespace.
//
// A shell and a sleep cost about 0.2 MiB of private memory per instance
// (their text is shared with every other process running them), a tenth of
// a Go runtime's.
const initScript = `trap '' HUP INT QUIT TERM USR1 USR2 PIPE
while umount -l /proc 2>/dev/null; do :; done
mount -t proc -o nosuid,nodev,noexec proc /proc || exit 1
echo -1000 2>/dev/null > /proc/self/oom_score_adj
echo ready
exec </dev/null >/dev/null 2>&1
cd /
while :; do sleep 2147483647 & wait; done`

// initReady is what the init process writes on its stdout once the
// instance's /proc shows its PID namespace.
const initReady = "ready"

// initTimeout bounds the wait for a new init process to get ready.
const initTimeout = 30 * time.Second

// pidNsFile and ipcNsFile are the bind mounts that pin the PID and IPC
// namespaces of the running init (RuntimeDir/instances/<name>/{pid,ipc});
// initFile records its host pid.
func (m *Manager) pidNsFile(name string) string { return m.nsFile(name, "pid") }
func (m *Manager) ipcNsFile(name string) string { return m.nsFile(name, "ipc") }
func (m *Manager) initFile(name string) string  { return m.nsFile(name, "init") }

// stoppedFile marks an instance stopped since its init last ran: the next
// init starts with empty /tmp and /dev/shm.
func (m *Manager) stoppedFile(name string) string { return m.nsFile(name, "stopped") }

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
	m.setIdle(name, false) // from now on Stop has something to look for
	if m.initPid(name) != 0 {
		return nil
	}
	if err := m.dropInitPins(name); err != nil {
		return err
	}
	if fileExists(m.stoppedFile(name)) {
		// Powered on after a stop: its RAM is empty.
		if err := m.resetTmpfs(name); err != nil {
			return err
		}
		if err := os.Remove(m.stoppedFile(name)); err != nil {
			return err
		}
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
// it into the instance's network, UTS and mount namespaces and execs
// /bin/sh with initScript. The namespaces are pinned by bind mounts once it
// is ready.
func (m *Manager) startInit(ctx context.Context, name string) (int, error) {
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
		"--", tools.sh, "-c", initScript, "vmss-init")
	cmd := exec.Command(tools.sh, args...)
	cmd.Env = []string{"PATH=" + defaultPath}
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
