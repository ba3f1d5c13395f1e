package sshd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// killGrace is how long a session's processes get between SIGHUP and
	// SIGKILL once the client has gone.
	killGrace = 2 * time.Second
	// ptyDrain bounds how long output is still read from a terminal after
	// its process exited (background jobs may keep it open).
	ptyDrain = 250 * time.Millisecond
)

// session is one "session" channel: environment, optional terminal, and at
// most one program.
type session struct {
	srv *Server
	ci  *connInfo
	ch  ssh.Channel
	log *slog.Logger

	env  []string // accepted client variables, NAME=value
	tty  *ptyPair // set by pty-req
	term string   // TERM from pty-req
	// started is set by the first shell, exec or subsystem request; proc
	// is the program it started, nil when starting failed.
	started bool
	proc    *process
	wg      sync.WaitGroup
}

// serveSession accepts nch and serves its requests until the channel is
// closed, by either side or because the connection ended.
func (s *Server) serveSession(ctx context.Context, ci *connInfo, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	ss := &session{srv: s, ci: ci, ch: ch, log: ci.log}
	defer ss.end(cancel)
	for req := range reqs {
		ok, after := ss.handle(ctx, req)
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if after != nil {
			after() // only once the client has its reply
		}
	}
}

// handle serves one channel request. after, when non-nil, runs once the
// reply has been sent.
func (ss *session) handle(ctx context.Context, req *ssh.Request) (ok bool, after func()) {
	switch req.Type {
	case "env":
		var m struct{ Name, Value string }
		if ssh.Unmarshal(req.Payload, &m) != nil || ss.started || len(ss.env) >= maxClientEnv ||
			!AcceptEnv(m.Name, m.Value) {
			return false, nil
		}
		ss.env = setEnv(ss.env, m.Name, m.Value)
		return true, nil
	case "pty-req":
		return ss.allocPTY(req.Payload), nil
	case "window-change":
		var m struct{ Cols, Rows, Width, Height uint32 }
		if ss.tty == nil || ssh.Unmarshal(req.Payload, &m) != nil {
			return false, nil
		}
		return ss.tty.setSize(m.Cols, m.Rows, m.Width, m.Height) == nil, nil
	case "shell":
		return ss.start(ctx, ExecRequest{Argv: []string{ss.srv.cfg.Shell}, Login: true}, ss.tty, "shell")
	case "exec":
		var m struct{ Command string }
		if ssh.Unmarshal(req.Payload, &m) != nil {
			return false, nil
		}
		return ss.start(ctx, ExecRequest{Argv: []string{ss.srv.cfg.Shell, "-c", m.Command}}, ss.tty, "command")
	case "subsystem":
		var m struct{ Name string }
		if ssh.Unmarshal(req.Payload, &m) != nil || m.Name != "sftp" || len(ss.srv.cfg.SFTPCommand) == 0 {
			ss.log.Info("ssh subsystem refused", "subsystem", m.Name)
			return false, nil
		}
		// A binary protocol never goes through a terminal.
		return ss.start(ctx, ExecRequest{Argv: ss.srv.cfg.SFTPCommand}, nil, "sftp subsystem")
	case "signal":
		var m struct{ Name string }
		sig, known := syscall.Signal(0), false
		if ssh.Unmarshal(req.Payload, &m) == nil {
			sig, known = signalByName(m.Name)
		}
		if !known || ss.proc == nil {
			return false, nil
		}
		ss.proc.signal(sig)
		return true, nil
	default:
		// keepalive@openssh.com is answered (with failure, as OpenSSH does);
		// x11-req, auth-agent-req@openssh.com, break and others are refused.
		return false, nil
	}
}

// allocPTY serves pty-req: the terminal is opened now, so its size and
// modes are in place before the program starts.
func (ss *session) allocPTY(payload []byte) bool {
	var m struct {
		Term                      string
		Cols, Rows, Width, Height uint32
		Modes                     string
	}
	if ss.tty != nil || ss.started || ssh.Unmarshal(payload, &m) != nil {
		return false
	}
	tty, err := openPTY([]byte(m.Modes))
	if err != nil {
		ss.log.Warn("ssh pty-req failed", "err", err)
		return false
	}
	_ = tty.setSize(m.Cols, m.Rows, m.Width, m.Height)
	ss.tty, ss.term = tty, m.Term
	return true
}

// start runs the session's one program, on tty when not nil; what names it
// in messages. A program that cannot be started is reported as OpenSSH does
// when it cannot run the shell: a message on stderr and exit status 1 (a
// refused request would make the client exit before printing the message).
func (ss *session) start(ctx context.Context, req ExecRequest, tty *ptyPair, what string) (bool, func()) {
	if ss.started {
		return false, nil
	}
	ss.started = true
	cfg := &ss.srv.cfg
	req.User = ss.ci.user
	req.Dir = ss.ci.home
	req.PTY = tty != nil
	req.Env = ss.environ(tty)
	cmd, err := cfg.Runner.Command(ctx, req)
	if err == nil {
		ss.proc, err = startProcess(cmd, tty)
	}
	if err != nil {
		ss.log.Warn("ssh session could not start "+what, "argv", req.Argv, "err", err)
		return true, func() {
			fmt.Fprintf(ss.ch.Stderr(), "vmss: cannot start %s: %v\r\n", what, err)
			finish(ss.ch, "exit-status", exitStatus(1))
		}
	}
	ss.log.Debug("ssh session started "+what, "pid", cmd.Process.Pid, "pty", req.PTY)
	return true, ss.runIO
}

// environ builds the program's environment: fixed variables, then the
// client's, then those describing the connection and terminal.
func (ss *session) environ(tty *ptyPair) []string {
	ci, cfg := ss.ci, &ss.srv.cfg
	env := []string{
		"HOME=" + ci.home,
		"USER=" + ci.user,
		"LOGNAME=" + ci.user,
		"SHELL=" + cfg.Shell,
		"PATH=" + DefaultPath,
		"MAIL=/var/mail/" + ci.user,
	}
	env = append(env, ss.env...) // AcceptEnv keeps the names above out
	rhost, rport := splitAddr(ci.remote)
	lhost, lport := splitAddr(ci.local)
	env = append(env,
		"SSH_CLIENT="+rhost+" "+rport+" "+lport,
		"SSH_CONNECTION="+rhost+" "+rport+" "+lhost+" "+lport)
	if tty != nil {
		if ss.term != "" {
			env = setEnv(env, "TERM", ss.term)
		}
		env = append(env, "SSH_TTY="+tty.name)
	}
	return env
}

func splitAddr(a net.Addr) (host, port string) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), "0"
	}
	return host, port
}

// runIO copies the program's I/O and, when it has exited and its output is
// drained, sends its exit status and closes the channel.
func (ss *session) runIO() {
	p, ch := ss.proc, ss.ch
	var out sync.WaitGroup
	copyOut := func(w io.Writer, r *os.File) {
		ss.wg.Add(1)
		out.Add(1)
		go func() {
			defer ss.wg.Done()
			defer out.Done()
			_, _ = io.Copy(w, r)
		}()
	}
	copyOut(ch, p.stdout)
	if p.stderr != nil {
		copyOut(ch.Stderr(), p.stderr)
	}
	ss.wg.Add(2)
	go func() {
		defer ss.wg.Done()
		_, _ = io.Copy(p.stdin, ch)
		if p.tty == nil {
			p.stdin.Close() // forward EOF; a terminal has no EOF to forward
		}
	}()
	go func() {
		defer ss.wg.Done()
		_ = p.cmd.Wait()
		close(p.exited)
		if p.tty != nil {
			_ = p.stdout.SetReadDeadline(time.Now().Add(ptyDrain))
		}
		out.Wait()
		name, payload := exitMessage(p.cmd.ProcessState)
		finish(ch, name, payload)
	}()
}

// end runs when the channel is closed: a program still running is sent
// SIGHUP, then SIGKILL after killGrace; then everything is released.
func (ss *session) end(cancel context.CancelFunc) {
	defer cancel()
	if p := ss.proc; p != nil {
		select {
		case <-p.exited:
		default:
			p.signal(syscall.SIGHUP)
			p.closeFiles() // a terminal hangs up; pipes give EOF and EPIPE
			t := time.NewTimer(killGrace)
			select {
			case <-p.exited:
			case <-t.C:
				p.signal(syscall.SIGKILL)
			}
			t.Stop()
		}
		p.closeFiles()
	}
	if ss.tty != nil {
		ss.tty.close()
	}
	ss.wg.Wait()
}

// process is a started program and the parent's ends of its stdio.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait has returned
	tty    *ptyPair
	stdin  io.WriteCloser
	stdout *os.File // the terminal's master side when tty != nil
	stderr *os.File // nil with a terminal
}

// startProcess starts cmd as a session leader with pipes, or with tty as
// its controlling terminal.
func startProcess(cmd *exec.Cmd, tty *ptyPair) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	attr := cmd.SysProcAttr
	attr.Setsid = true
	attr.Setpgid = false // a session leader cannot change its group
	attr.Foreground = false
	attr.Setctty = tty != nil
	attr.Ctty = 0 // the child's stdin
	p := &process{cmd: cmd, exited: make(chan struct{}), tty: tty}
	if tty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty.slave, tty.slave, tty.slave
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		tty.closeSlave()
		p.stdin, p.stdout = tty.master, tty.master
		return p, nil
	}
	var files [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	for i := 0; i < len(files); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(files[:i]...)
			return nil, fmt.Errorf("sshd: create pipe: %w", err)
		}
		files[i], files[i+1] = r, w
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[3], files[5]
	if err := cmd.Start(); err != nil {
		closeAll(files[:]...)
		return nil, err
	}
	closeAll(files[0], files[3], files[5]) // the child's ends
	p.stdin, p.stdout, p.stderr = files[1], files[2], files[4]
	return p, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// signal sends sig to the program's process group while it runs.
func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// closeFiles closes the parent's ends; safe to call more than once.
func (p *process) closeFiles() {
	p.stdin.Close()
	p.stdout.Close()
	if p.stderr != nil {
		p.stderr.Close()
	}
}

// exitMessage returns the request reporting how the program ended.
func exitMessage(ps *os.ProcessState) (string, []byte) {
	if ps == nil {
		return "exit-status", exitStatus(255)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "exit-signal", ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{signalName(ws.Signal()), ws.CoreDump(), "", ""})
	}
	return "exit-status", exitStatus(uint32(ps.ExitCode()))
}

func exitStatus(code uint32) []byte { return ssh.Marshal(struct{ Status uint32 }{code}) }

// finish ends a session channel as OpenSSH does: EOF, then the exit-status
// or exit-signal request, then close.
func finish(ch ssh.Channel, request string, payload []byte) {
	_ = ch.CloseWrite()
	_, _ = ch.SendRequest(request, false, payload)
	_ = ch.Close()
}
