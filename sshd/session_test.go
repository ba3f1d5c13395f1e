package sshd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// These tests use x/crypto's client for what OpenSSH's cannot be told to do
// on demand: signal requests, window changes at a chosen moment, a client
// that goes silent.

// startLine starts command on sess and returns its first output line.
func startLine(t *testing.T, sess *ssh.Session, command string) (*bufio.Reader, string) {
	t.Helper()
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(command); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: first line: %v", command, err)
	}
	return r, strings.TrimSpace(line)
}

func TestSignalsAndExitSignal(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	client := goClient(t, ts.addr, c.signer)
	tests := []struct {
		name, command string
		send          ssh.Signal
		wantSignal    string
		wantStatus    int
	}{
		{"INT kills sleep", "echo ready; exec sleep 30", ssh.SIGINT, "INT", 0},
		{"KILL", "echo ready; sleep 30", ssh.SIGKILL, "KILL", 0},
		{"trapped USR1", "trap 'exit 9' USR1; echo ready; while :; do sleep 0.05; done", ssh.SIGUSR1, "", 9},
		{"non-RFC name", "trap 'exit 8' WINCH; echo ready; while :; do sleep 0.05; done", "WINCH@openssh.com", "", 8},
		{"exit-signal without a request", "echo ready; kill -SEGV $$", "", "SEGV", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if _, line := startLine(t, sess, tt.command); line != "ready" {
				t.Fatalf("first line %q", line)
			}
			if tt.send != "" {
				if err := sess.Signal(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			err = sess.Wait()
			var ee *ssh.ExitError
			if !errors.As(err, &ee) || ee.Signal() != tt.wantSignal || tt.wantSignal == "" && ee.ExitStatus() != tt.wantStatus {
				t.Fatalf("Wait: %v; want signal %q / status %d", err, tt.wantSignal, tt.wantStatus)
			}
		})
	}
}

func TestWindowChangeAndModes(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	client := goClient(t, ts.addr, c.signer)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0, ssh.ICRNL: 1, ssh.VINTR: 7}); err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, line := startLine(t, sess, "stty size; read x; stty size; stty -a")
	if line != "24 80" {
		t.Fatalf("first size %q; want \"24 80\"", line)
	}
	if err := sess.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	// The window change and the newline travel in order on the channel.
	io.WriteString(stdin, "\n")
	rest, _ := io.ReadAll(r)
	out := string(rest)
	if !strings.Contains(out, "50 132") || !strings.Contains(out, " -echo ") || !strings.Contains(out, "intr = ^G") {
		t.Fatalf("after window-change: %q; want size 50 132, -echo and intr = ^G", out)
	}
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestDirectTCPIPThroughDial(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	noDial := newTestServer(t, c, func(cfg *Config) { cfg.Dial = nil })
	echo := echoServer(t)

	conn, err := goClient(t, ts.addr, c.signer).Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, conn)
	conn.Close()

	_, err = goClient(t, ts.addr, c.signer).Dial("tcp", "192.0.2.1:80") // the test Dial refuses it
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || !strings.Contains(oce.Message, "192.0.2.1:80") {
		t.Fatalf("dial refused by Config.Dial: %v; want connect failed naming the address", err)
	}
	if _, err = goClient(t, noDial.addr, c.signer).Dial("tcp", echo); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("server without Dial: %v; want administratively prohibited", err)
	}
	if n := ts.dials.Load(); n != 2 {
		t.Fatalf("Config.Dial called %d times; want 2", n)
	}
}

func TestRefusedRequests(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c, func(cfg *Config) { cfg.SFTPCommand = nil })
	client := goClient(t, ts.addr, c.signer)
	for _, sub := range []string{"sftp", "netconf"} {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.RequestSubsystem(sub); err == nil {
			t.Errorf("subsystem %s accepted", sub)
		}
		sess.Close()
	}
	if ok, _, err := client.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})); ok || err != nil {
		t.Errorf("tcpip-forward: ok %v, err %v; want a refusal", ok, err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Run("true"); err != nil {
		t.Fatal(err)
	}
	if err := sess.Run("true"); err == nil {
		t.Error("a second program on one session was accepted")
	}
}

// failingRunner refuses to build commands.
type failingRunner struct{}

func (failingRunner) Command(context.Context, ExecRequest) (*exec.Cmd, error) {
	return nil, errors.New("instance vmss_3 is stopped")
}

func TestOpenSSHStartFailure(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c, func(cfg *Config) { cfg.Runner = failingRunner{} })
	c.addHost(t, "vm", ts)
	r := c.run(t, "", "ssh", "vm", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "instance vmss_3 is stopped") {
		t.Fatalf("code %d stderr %q; want 1 and the Runner's error", r.code, r.stderr)
	}
}

// freezingProxy forwards one TCP connection to addr until frozen, then
// drops everything; upstreamClosed is closed when the server hangs up.
type freezingProxy struct {
	addr           string
	frozen         atomic.Bool
	upstreamClosed chan struct{}
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &freezingProxy{addr: ln.Addr().String(), upstreamClosed: make(chan struct{})}
	go func() {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		defer down.Close()
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		pump := func(dst, src net.Conn) error {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if err != nil {
					return err
				}
				if !p.frozen.Load() {
					dst.Write(buf[:n])
				}
			}
		}
		go pump(up, down)
		pump(down, up)
		close(p.upstreamClosed)
	}()
	return p
}

func TestClientAliveClosesSilentConnections(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	const interval = 200 * time.Millisecond
	ts := newTestServer(t, c, func(cfg *Config) {
		cfg.ClientAliveInterval, cfg.ClientAliveCountMax = interval, 3
	})
	proxy := newFreezingProxy(t, ts.addr)
	client, err := ssh.Dial("tcp", proxy.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	_, line := startLine(t, sess, "echo $$; exec sleep 60")
	pid, _ := strconv.Atoi(line)
	// An answering client is kept well past CountMax intervals.
	time.Sleep(8 * interval)
	select {
	case <-proxy.upstreamClosed:
		t.Fatal("the server closed a connection whose client answers keepalives")
	default:
	}
	proxy.frozen.Store(true)
	select {
	case <-proxy.upstreamClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept a silent connection open")
	}
	if !waitFor(10*time.Second, func() bool { return processGone(pid) }) {
		t.Fatalf("process %d of the dropped connection still runs", pid)
	}
	if !strings.Contains(ts.logs.String(), "stopped answering keepalives") {
		t.Errorf("not logged:\n%s", ts.logs.String())
	}
}

func TestCloseEndsSessionsAndServe(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	sess, err := goClient(t, ts.addr, c.signer).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	_, line := startLine(t, sess, "echo $$; exec sleep 60")
	pid, _ := strconv.Atoi(line)
	ts.close(t)
	if err := sess.Wait(); err == nil {
		t.Fatal("session survived Close")
	}
	if !processGone(pid) {
		t.Fatalf("process %d still runs after Close returned", pid)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(context.Background(), ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v; want ErrServerClosed", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve after Close left its listener open")
	}
}

func TestServeEndsWithContext(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ts.srv.Serve(ctx, ln) }()
	sess, err := goClient(t, ln.Addr().String(), c.signer).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	_, line := startLine(t, sess, "echo $$; exec sleep 60")
	pid, _ := strconv.Atoi(line)
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if !processGone(pid) {
		t.Fatalf("process %d outlived Serve", pid)
	}
	// The server's other listener still serves.
	if out, err := goSession(t, ts, c.signer).Output("echo alive"); err != nil || string(out) != "alive\n" {
		t.Fatalf("first listener after the second one stopped: %q, %v", out, err)
	}
}

func goSession(t *testing.T, ts *testServer, signer ssh.Signer) *ssh.Session {
	t.Helper()
	sess, err := goClient(t, ts.addr, signer).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

func TestFiftyConcurrentSessions(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			client, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
				User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			})
			if err != nil {
				errs <- err
				return
			}
			defer client.Close()
			sess, err := client.NewSession()
			if err != nil {
				errs <- err
				return
			}
			defer sess.Close()
			// Everyone is connected before anyone finishes.
			out, err := sess.Output(fmt.Sprintf("sleep 0.2; echo %d", i))
			if err != nil || string(out) != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Errorf("session %d: %q, %v", i, out, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNoGoroutineLeaks runs every kind of session, then checks that the
// server's goroutines are gone: per connection once the clients are gone,
// and all of them after Close. It is not parallel, so the counts are its
// own.
func TestNoGoroutineLeaks(t *testing.T) {
	testHostKeys(t)
	echo := echoServer(t)
	before := runtime.NumGoroutine()
	c := newClient(t)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	waitFor(200*time.Millisecond, func() bool { return false })
	idle := runtime.NumGoroutine()

	if r := c.run(t, "in\n", "ssh", "vm", "cat; echo err >&2"); r.code != 0 || r.stdout != "in\n" {
		t.Fatalf("exec: %+v", r)
	}
	if r := c.run(t, "", "ssh", "-tt", "vm", "tty"); r.code != 0 {
		t.Fatalf("ssh -tt: %+v", r)
	}
	if r := c.run(t, "", "scp", c.config, "vm:copied"); r.code != 0 {
		t.Fatalf("scp: %+v", r)
	}
	func() {
		client := goClient(t, ts.addr, c.signer)
		defer client.Close()
		conn, err := client.Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		checkEcho(t, conn)
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		startLine(t, sess, "echo started; exec sleep 60") // left running: the client goes away
	}()
	leaked := func(limit int) bool {
		return !waitFor(10*time.Second, func() bool { return runtime.NumGoroutine() <= limit })
	}
	if leaked(idle) {
		t.Fatalf("%d goroutines after the clients left; %d while idle:\n%s", runtime.NumGoroutine(), idle, stacks())
	}
	ts.close(t)
	if leaked(before) {
		t.Fatalf("%d goroutines after Close; %d before the server:\n%s", runtime.NumGoroutine(), before, stacks())
	}
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func TestBannerVersionAndMissingHostKeys(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c, func(cfg *Config) {
		cfg.Banner = "Authorized use only.\n"
		cfg.ServerVersion = "SSH-2.0-vmss_test"
	})
	var banner string
	client, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		BannerCallback:  func(m string) error { banner = m; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if banner != "Authorized use only.\n" || string(client.ServerVersion()) != "SSH-2.0-vmss_test" {
		t.Fatalf("banner %q, version %q", banner, client.ServerVersion())
	}

	none := newTestServer(t, c, func(cfg *Config) { cfg.HostKeys = func() []ssh.Signer { return nil } })
	if _, err := ssh.Dial("tcp", none.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}); err == nil {
		t.Fatal("handshake without host keys succeeded")
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(none.logs.String(), "returned no keys") }) {
		t.Fatalf("missing host keys not logged:\n%s", none.logs.String())
	}
}

// TestSessionLifetimeWithBackgroundJobs: without a PTY, output of a
// background job that keeps stdout open is still delivered; with a PTY the
// session ends with its program.
func TestSessionLifetimeWithBackgroundJobs(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	client := goClient(t, ts.addr, c.signer)

	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("(sleep 0.3; echo late) & echo now")
	if err != nil || string(out) != "now\nlate\n" {
		t.Fatalf("without a PTY: %q, %v; want the background job's output too", out, err)
	}

	sess, err = client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err = sess.Output("(sleep 20; echo late) & echo now")
	if err != nil || strings.TrimSpace(string(out)) != "now" || time.Since(start) > 10*time.Second {
		t.Fatalf("with a PTY: %q, %v after %v; want only \"now\", well before the job ends", out, err, time.Since(start))
	}
}
