package sshd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// These tests drive the server with the real OpenSSH clients (ssh, scp,
// sftp). They need no root.

func TestOpenSSHExec(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)

	t.Run("exit status and separate stderr", func(t *testing.T) {
		r := c.run(t, "", "ssh", "vm", "echo out; echo err >&2; exit 7")
		if r.code != 7 || r.stdout != "out\n" || r.stderr != "err\n" {
			t.Fatalf("got code %d stdout %q stderr %q; want 7, \"out\\n\", \"err\\n\"", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("stdin EOF is forwarded", func(t *testing.T) {
		r := c.run(t, "hi\n", "ssh", "vm", "cat")
		if r.code != 0 || r.stdout != "hi\n" {
			t.Fatalf("echo hi | ssh vm cat: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("1 MiB through cat", func(t *testing.T) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		r := c.run(t, string(data), "ssh", "vm", "cat")
		if r.code != 0 || sha256.Sum256([]byte(r.stdout)) != sha256.Sum256(data) {
			t.Fatalf("code %d, got %d bytes back, stderr %q", r.code, len(r.stdout), r.stderr)
		}
	})
	t.Run("killed by a signal", func(t *testing.T) {
		// OpenSSH reports exit-signal as exit code 255 (no exit status).
		r := c.run(t, "", "ssh", "vm", "echo before; kill -TERM $$; echo after")
		if r.code != 255 || r.stdout != "before\n" {
			t.Fatalf("got code %d stdout %q stderr %q; want 255 and only \"before\"", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("legacy scp binary found through the session PATH", func(t *testing.T) {
		r := c.run(t, "", "ssh", "vm", "command -v scp")
		if r.code != 0 || !strings.HasSuffix(strings.TrimSpace(r.stdout), "/scp") {
			t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	reqs := ts.runner.requests()
	if len(reqs) == 0 {
		t.Fatal("the Runner was never asked to run anything")
	}
	for _, req := range reqs {
		if req.User != testUser || req.Dir != ts.home || req.PTY || req.Login ||
			len(req.Argv) != 3 || req.Argv[0] != "/bin/sh" || req.Argv[1] != "-c" {
			t.Errorf("unexpected ExecRequest %+v", req)
		}
	}
}

func TestOpenSSHEnvironment(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts, "SendEnv LANG LC_* MY_VAR", "SetEnv FOO=bar LD_PRELOAD=/tmp/x.so PATH=/evil SSH_TTY=/dev/evil")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "ssh", "vm", "env")
	cmd.Env = append(cmd.Env, "LC_TIME=C.UTF-8", "MY_VAR=sent by SendEnv")
	r := runCmd(t, cmd, "")
	if r.code != 0 {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	env := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"HOME": ts.home, "USER": testUser, "LOGNAME": testUser, "SHELL": "/bin/sh", "PATH": DefaultPath,
		"LANG": "C.UTF-8", "LC_TIME": "C.UTF-8", "MY_VAR": "sent by SendEnv", "FOO": "bar",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"LD_PRELOAD", "SSH_TTY", "TERM"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is set; want it absent", k, v)
		}
	}
	client := strings.Fields(env["SSH_CLIENT"])
	conn := strings.Fields(env["SSH_CONNECTION"])
	if len(client) != 3 || client[0] != "127.0.0.1" || client[2] != ts.port {
		t.Errorf("SSH_CLIENT=%q, want \"127.0.0.1 <port> %s\"", env["SSH_CLIENT"], ts.port)
	}
	if len(conn) != 4 || len(client) == 3 && (conn[0] != client[0] || conn[1] != client[1]) ||
		conn[2] != "127.0.0.1" || conn[3] != ts.port {
		t.Errorf("SSH_CONNECTION=%q, want \"127.0.0.1 <port> 127.0.0.1 %s\"", env["SSH_CONNECTION"], ts.port)
	}
}

func TestOpenSSHForcedTTY(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "ssh", "-tt", "vm", "tty; echo TERM=$TERM; echo SSH_TTY=$SSH_TTY; exit 4")
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	r := runCmd(t, cmd, "")
	out := strings.ReplaceAll(r.stdout, "\r\n", "\n")
	lines := strings.Split(out, "\n")
	if r.code != 4 || len(lines) < 3 || !strings.HasPrefix(lines[0], "/dev/pts/") ||
		lines[1] != "TERM=xterm-256color" || lines[2] != "SSH_TTY="+lines[0] {
		t.Fatalf("ssh -tt: code %d output %q stderr %q", r.code, r.stdout, r.stderr)
	}
	reqs := ts.runner.requests()
	if len(reqs) != 1 || !reqs[0].PTY {
		t.Fatalf("ExecRequest %+v; want one with PTY set", reqs)
	}
}

// TestOpenSSHInteractiveShell runs ssh in a terminal of its own, as a person
// would: login shell, window size and its changes, exit status.
func TestOpenSSHInteractiveShell(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	if err := os.WriteFile(filepath.Join(ts.home, ".profile"), []byte("export FROM_PROFILE=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "ssh", "vm")
	cmd.Env = append(cmd.Env, "TERM=vt100")
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := term.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(screen.String(), s)
	}
	// expect types line (again every second) until want shows up.
	expect := func(line, want string) {
		t.Helper()
		ok := waitFor(10*time.Second, func() bool {
			if seen(want) {
				return true
			}
			io.WriteString(term, line+"\n")
			return waitFor(time.Second, func() bool { return seen(want) })
		})
		if !ok {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("no %q after typing %q; screen:\n%s", want, line, screen.String())
		}
	}
	expect(`echo "zero=$0 profile=$FROM_PROFILE term=$TERM"`, "zero=-sh profile=yes term=vt100")
	expect(`stty size | sed 's/ /x/'`, "24x80")
	if err := pty.Setsize(term, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	expect(`stty size | sed 's/ /x/'`, "40x100")
	io.WriteString(term, "exit 3\n")
	err = cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("ssh exited with %v; want exit status 3", err)
	}
	reqs := ts.runner.requests()
	if len(reqs) != 1 || !reqs[0].Login || !reqs[0].PTY || reqs[0].Argv0() != "-sh" {
		t.Fatalf("ExecRequest %+v; want one login shell with a PTY", reqs)
	}
}

func TestOpenSSHFileTransfer(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	data := make([]byte, 300<<10)
	rand.Read(data)
	local := filepath.Join(c.dir, "data.bin")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sameAs := func(t *testing.T, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, err %v; want the %d bytes sent", path, len(got), err, len(data))
		}
	}
	for _, mode := range []struct{ name, flag string }{{"scp over sftp", "-q"}, {"legacy scp", "-O"}} {
		t.Run(mode.name, func(t *testing.T) {
			remote := strings.ReplaceAll(mode.name, " ", "-") + ".bin"
			if r := c.run(t, "", "scp", mode.flag, local, "vm:"+remote); r.code != 0 {
				t.Fatalf("upload: code %d stderr %q", r.code, r.stderr)
			}
			sameAs(t, filepath.Join(ts.home, remote))
			back := filepath.Join(c.dir, "back-"+remote)
			if r := c.run(t, "", "scp", mode.flag, "vm:"+remote, back); r.code != 0 {
				t.Fatalf("download: code %d stderr %q", r.code, r.stderr)
			}
			sameAs(t, back)
		})
	}
	t.Run("sftp batch", func(t *testing.T) {
		batch := strings.Join([]string{
			"mkdir dir", "put " + local + " dir/f.bin", "rename dir/f.bin dir/g.bin", "ls dir",
			"get dir/g.bin " + filepath.Join(c.dir, "sftp-back.bin"), "pwd",
		}, "\n") + "\n"
		batchFile := filepath.Join(c.dir, "batch")
		if err := os.WriteFile(batchFile, []byte(batch), 0o644); err != nil {
			t.Fatal(err)
		}
		r := c.run(t, "", "sftp", "-b", batchFile, "vm")
		if r.code != 0 || !strings.Contains(r.stdout, "dir/g.bin") || !strings.Contains(r.stdout, "Remote working directory: "+ts.home) {
			t.Fatalf("sftp: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		sameAs(t, filepath.Join(ts.home, "dir", "g.bin"))
		sameAs(t, filepath.Join(c.dir, "sftp-back.bin"))
	})
	var subsystem, legacy int
	for _, req := range ts.runner.requests() {
		switch {
		case len(req.Argv) == 2 && req.Argv[1] == "sftp-server":
			subsystem++
		case len(req.Argv) == 3 && strings.HasPrefix(req.Argv[2], "scp "):
			legacy++
		}
	}
	if subsystem != 3 || legacy != 2 {
		t.Fatalf("the Runner started %d sftp servers and %d scp commands; want 3 and 2", subsystem, legacy)
	}
}

// echoServer accepts loopback connections and echoes them, closing its
// write side on EOF.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(conn, conn)
				conn.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// checkEcho sends a message through conn, half-closes, and expects the echo
// and then EOF.
func checkEcho(t *testing.T, conn net.Conn) {
	t.Helper()
	msg := "ping through the tunnel"
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v; want %q then EOF", got, err, msg)
	}
}

func TestOpenSSHLocalForward(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts, "ExitOnForwardFailure yes")
	echo := echoServer(t)
	sock := filepath.Join(c.dir, "fwd.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "ssh", "-N", "-L", sock+":"+echo, "vm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var conn net.Conn
	if !waitFor(10*time.Second, func() bool {
		var err error
		conn, err = net.Dial("unix", sock)
		return err == nil
	}) {
		t.Fatalf("ssh -L did not open %s; stderr %q", sock, stderr.String())
	}
	defer conn.Close()
	checkEcho(t, conn)
	if n := ts.dials.Load(); n != 1 {
		t.Fatalf("Config.Dial called %d times; want 1 (forwarding must dial through it)", n)
	}
}

func TestOpenSSHProxyJump(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	jump := newTestServer(t, c)
	target := newTestServer(t, c, func(cfg *Config) { cfg.Dial = nil })
	c.addHost(t, "jumpbox", jump)
	c.addHost(t, "vm1", target, "ProxyJump jumpbox")
	r := c.run(t, "", "ssh", "vm1", "echo reached via jump; echo $SSH_CLIENT")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "reached via jump\n127.0.0.1 ") {
		t.Fatalf("ssh -J: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := jump.dials.Load(); n != 1 {
		t.Fatalf("jumpbox Config.Dial called %d times; want 1", n)
	}
	if len(target.runner.requests()) != 1 || len(jump.runner.requests()) != 0 {
		t.Fatalf("commands ran on target %d times and on jumpbox %d times; want 1 and 0",
			len(target.runner.requests()), len(jump.runner.requests()))
	}
	// The target refuses forwarding: its Dial is nil.
	r = c.run(t, "", "ssh", "-o", "ExitOnForwardFailure=yes", "-W", echoServer(t), "vm1")
	if r.code == 0 || !strings.Contains(r.stderr, "forwarding failed") {
		t.Fatalf("ssh -W through a server without Dial: code %d stderr %q; want a refusal", r.code, r.stderr)
	}
}

func TestOpenSSHKeepalive(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	// With one unanswered keepalive allowed, the client gives up after 2s
	// of silence unless the server answers.
	c.addHost(t, "vm", ts, "ServerAliveInterval 1", "ServerAliveCountMax 1")
	// The server probes too (ClientAlive); OpenSSH's answers keep it happy.
	probing := newTestServer(t, c, func(cfg *Config) {
		cfg.ClientAliveInterval, cfg.ClientAliveCountMax = 200*time.Millisecond, 3
	})
	c.addHost(t, "probing", probing)
	for _, host := range []string{"vm", "probing"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			r := c.run(t, "", "ssh", host, "sleep 2.5; echo alive")
			if r.code != 0 || r.stdout != "alive\n" {
				t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestOpenSSHClientGoneEndsSession kills the client mid-command: the
// server must end the command's process.
func TestOpenSSHClientGoneEndsSession(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	for _, tty := range []string{"-T", "-tt"} {
		t.Run(tty, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := c.command(ctx, "ssh", tty, "vm", "echo $$; exec sleep 60")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			pid, perr := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || perr != nil {
				t.Fatalf("reading the remote pid: %q, %v, %v", line, err, perr)
			}
			if processGone(pid) {
				t.Fatalf("process %d is not running", pid)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if !waitFor(10*time.Second, func() bool { return processGone(pid) }) {
				t.Fatalf("process %d still runs after its client died", pid)
			}
		})
	}
}
