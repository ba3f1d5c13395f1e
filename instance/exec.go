package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strconv"
)

// ExecRequest describes a command to run in an instance.
type ExecRequest struct {
	// Argv is the program and its arguments; required. A program name
	// without a slash is looked up in the PATH of Env inside the instance.
	Argv []string
	// Env is appended to the default environment: HOME, USER, LOGNAME,
	// SHELL and PATH of the account. Later entries win.
	Env []string
	// Dir is the working directory inside the instance; empty means the
	// account's home (/home/<admin> or /root).
	Dir string
	// AsRoot runs the command as root (uid 0, gid 0), as Azure runs VM
	// extensions. The zero value runs it as the admin account.
	AsRoot bool
}

// defaultPath is the PATH of commands run in an instance, Ubuntu's default.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// wrapperScript joins the instance's cgroups (its arguments up to "--" are
// cgroup.procs files, one per hierarchy) and execs the rest of its
// arguments (nsenter). The shell's $$ is the pid the caller's exec.Cmd
// sees, and it execs rather than forks, so that process keeps the session
// and the controlling terminal set up through SysProcAttr, and nothing runs
// outside the cgroups at any time. PWD is the host's working directory of
// the shell and means nothing inside.
const wrapperScript = `unset PWD; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"`

// relaySignals are the signals a terminal or a closing session sends to the
// whole foreground process group, which the nsenter parent (cmd.Process)
// ignores so that only the program decides what they do (Ctrl-C in a REPL
// run by `ssh -t host python3` must not end the session); the program gets
// their default handling back from env(1). A TERM or KILL sent to
// cmd.Process still ends the program.
const relaySignals = "HUP,INT,QUIT"

// ignoreScript is wrapperScript ignoring relaySignals.
const ignoreScript = `trap '' HUP INT QUIT; ` + wrapperScript

// cdScript changes to the working directory inside the instance when
// nsenter lacks --wdns (util-linux before 2.38).
const cdScript = `cd -- "$0" && exec "$@"`

// execTools are the host programs Command chains.
type execTools struct {
	sh      string
	nsenter string
	setpriv string
	env     string // env(1) supporting --default-signal (coreutils 8.31), or ""
	wdns    bool   // nsenter supports --wdns
}

func (m *Manager) execTools() (execTools, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tools != nil {
		return *m.tools, nil
	}
	t := execTools{sh: "/bin/sh"}
	if !fileExists(t.sh) {
		return execTools{}, errors.New("run commands in instances: /bin/sh is missing")
	}
	var err error
	if t.nsenter, err = exec.LookPath("nsenter"); err != nil {
		return execTools{}, fmt.Errorf("run commands in instances: %w (install util-linux)", err)
	}
	if t.setpriv, err = exec.LookPath("setpriv"); err != nil {
		return execTools{}, fmt.Errorf("run commands in instances: %w (install util-linux)", err)
	}
	if env, err := exec.LookPath("env"); err == nil && exec.Command(env, "--default-signal="+relaySignals, "true").Run() == nil {
		t.env = env
	}
	out, _ := exec.Command(t.nsenter, "--help").Output()
	t.wdns = bytes.Contains(out, []byte("--wdns"))
	m.tools = &t
	return t, nil
}

// Command returns an unstarted command that runs req in instance name: in
// its network, UTS, mount, IPC and PID namespaces, in its cgroups from the
// first instruction on, with the credentials of the admin account (or
// root). It starts the instance's init (the pid 1 of its PID namespace)
// when none runs.
//
// The returned exec.Cmd behaves like one from exec.CommandContext: the
// caller may set Stdin, Stdout, Stderr, ExtraFiles, and SysProcAttr.Setsid,
// Setctty and Ctty (e.g. through creack/pty). Do not set cmd.Env wholesale
// (append to it), cmd.Dir, or SysProcAttr.Credential: the wrapper chain
// needs root and the host's view until it enters the instance; use
// ExecRequest instead. When ctx is done the process is killed, as
// exec.CommandContext does, and the program with it; the program's children
// are not (Stop does that).
//
// The chain is /bin/sh (joins the cgroups) → nsenter (enters the
// namespaces; a process cannot move itself into a PID namespace, so
// nsenter forks there and stays in the host's as the program's parent,
// passing its exit status or signal on) → in the child: changes
// directory, drops to the account's uid and gid with no supplementary
// groups → setpriv (the program is killed when that parent dies) → env
// (restores the default handling of relaySignals) → the program.
// cmd.Process is the parent: signals sent to its process group (its
// session, with Setsid) reach the program, and the parent ignores
// relaySignals; another signal sent to it ends it, and the program with it.
// A program killed by one of relaySignals is reported as exit status 1. Exit status 125 means the command
// could not join the instance's cgroups (the instance was deleted
// meanwhile); 126 and 127 mean the program could not be executed or found,
// as in a shell.
func (m *Manager) Command(ctx context.Context, name string, req ExecRequest) (*exec.Cmd, error) {
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return nil, fmt.Errorf("run command in instance %s: empty Argv", name)
	}
	if req.Dir != "" && !path.IsAbs(req.Dir) {
		return nil, fmt.Errorf("run command in instance %s: working directory %q is not absolute", name, req.Dir)
	}
	s, err := m.Lookup(name)
	if err != nil {
		return nil, err
	}
	if !m.namespacesComplete(name) {
		return nil, fmt.Errorf("run command in instance %s: its namespaces are missing; call Create to repair it: %w", name, ErrNotFound)
	}
	procs, err := m.procsFiles(name)
	if err != nil {
		return nil, err
	}
	tools, err := m.execTools()
	if err != nil {
		return nil, err
	}
	unlock := m.lock(name)
	err = m.ensureInit(ctx, name)
	unlock()
	if err != nil {
		return nil, err
	}
	user, uid, gid, home := s.AdminUser, s.AdminUID, s.AdminGID, s.Home()
	if req.AsRoot {
		user, uid, gid, home = "root", 0, 0, "/root"
	}
	dir := req.Dir
	if dir == "" {
		dir = home
	}
	script := wrapperScript
	if tools.env != "" {
		script = ignoreScript
	}
	args := append([]string{"-c", script, "vmss-enter"}, procs...)
	args = append(args, "--", tools.nsenter,
		"--net="+m.NetnsPath(name), "--uts="+m.nsFile(name, "uts"), "--mount="+m.nsFile(name, "mnt"),
		"--ipc="+m.ipcNsFile(name), "--pid="+m.pidNsFile(name),
		"-S", strconv.Itoa(uid), "-G", strconv.Itoa(gid))
	if tools.wdns {
		args = append(args, "--wdns="+dir, "--")
	} else {
		args = append(args, "--", tools.sh, "-c", cdScript, dir)
	}
	args = append(args, tools.setpriv, "--pdeathsig", "KILL", "--")
	if tools.env != "" {
		args = append(args, tools.env, "--default-signal="+relaySignals, "--")
	}
	args = append(args, req.Argv...)
	cmd := exec.CommandContext(ctx, tools.sh, args...)
	cmd.Env = append([]string{"HOME=" + home, "USER=" + user, "LOGNAME=" + user, "SHELL=" + s.Shell,
		"PATH=" + defaultPath}, req.Env...)
	cmd.Dir = "/"
	return cmd, nil
}

// namespacesComplete reports whether all three namespace bind mounts of name
// are in place.
func (m *Manager) namespacesComplete(name string) bool {
	return isNsfs(m.NetnsPath(name)) && isNsfs(m.nsFile(name, "mnt")) && isNsfs(m.nsFile(name, "uts"))
}
