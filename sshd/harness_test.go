package sshd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/testutil"

	"golang.org/x/crypto/ssh"
)

const testUser = "azureuser"

// hostRunner is the tests' Runner: it runs programs directly on the host as
// the current user and records every request.
type hostRunner struct {
	mu   sync.Mutex
	reqs []ExecRequest
}

func (r *hostRunner) Command(ctx context.Context, req ExecRequest) (*exec.Cmd, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Args[0] = req.Argv0()
	cmd.Env = req.Env
	cmd.Dir = req.Dir
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		cmd.Dir = "/"
	}
	return cmd, nil
}

func (r *hostRunner) requests() []ExecRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ExecRequest(nil), r.reqs...)
}

// testServer is a Server on 127.0.0.1:0 with a temporary home.
type testServer struct {
	srv    *Server
	addr   string
	port   string
	home   string
	keys   *HostKeys
	runner *hostRunner
	logs   *testutil.SyncBuffer
	dials  atomic.Int32
	served chan error
}

// testHostKeys shares one host key directory per test binary run (TestMain
// removes it); tests that need their own keys call LoadOrCreateHostKeys.
var (
	sharedKeysOnce sync.Once
	sharedKeysDir  string
	sharedKeys     *HostKeys
	sharedKeysErr  error
)

func testHostKeys(t testing.TB) *HostKeys {
	t.Helper()
	sharedKeysOnce.Do(func() {
		sharedKeysDir, sharedKeysErr = os.MkdirTemp("", "vmsst-sshd-hostkeys-")
		if sharedKeysErr != nil {
			return
		}
		sharedKeys, sharedKeysErr = LoadOrCreateHostKeys(context.Background(), sharedKeysDir, HostKeyOptions{RSABits: 2048})
		if sharedKeysErr == nil {
			sharedKeysErr = sharedKeys.Wait(context.Background())
		}
	})
	if sharedKeysErr != nil {
		t.Fatalf("host keys: %v", sharedKeysErr)
	}
	return sharedKeys
}

// loopbackDial is the tests' Config.Dial: loopback only.
func (ts *testServer) loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	ts.dials.Add(1)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("test dialer: %s is not a loopback address", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// newTestServer starts a server for client c (its key is authorized);
// opts adjust the configuration.
func newTestServer(t testing.TB, c *client, opts ...func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{
		home:   t.TempDir(),
		keys:   testHostKeys(t),
		runner: &hostRunner{},
		logs:   &testutil.SyncBuffer{},
		served: make(chan error, 1),
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		HostKeys:    ts.keys.Signers,
		Auth:        Auth{User: testUser},
		Home:        ts.home,
		Runner:      ts.runner,
		Dial:        ts.loopbackDial,
		SFTPCommand: []string{self, "sftp-server"},
		AuthTimeout: 10 * time.Second,
		FailDelay:   10 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if c != nil {
		cfg.Auth.AuthorizedKeys = []ssh.PublicKey{c.signer.PublicKey()}
	}
	for _, o := range opts {
		o(&cfg)
	}
	ts.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	_, ts.port, _ = net.SplitHostPort(ts.addr)
	go func() { ts.served <- ts.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() { ts.close(t) })
	return ts
}

// close closes the server and checks that Serve returned cleanly.
func (ts *testServer) close(t testing.TB) {
	t.Helper()
	if err := ts.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-ts.served:
		if err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
		ts.served <- nil // a second close finds it again
	case <-time.After(10 * time.Second):
		t.Errorf("Serve did not return after Close")
	}
}

// client is an OpenSSH client set-up: a key, a config file and a
// known_hosts file, in a temporary HOME.
type client struct {
	dir        string
	keyFile    string
	signer     ssh.Signer
	config     string
	knownHosts string
}

func newClient(t testing.TB) *client {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newClientWithKey(t, key)
}

func newClientWithKey(t testing.TB, key crypto.Signer) *client {
	t.Helper()
	dir := t.TempDir()
	c := &client{dir: dir, keyFile: filepath.Join(dir, "id"),
		config: filepath.Join(dir, "ssh_config"), knownHosts: filepath.Join(dir, "known_hosts")}
	block, err := ssh.MarshalPrivateKey(key, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.signer, err = ssh.NewSignerFromKey(key); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{c.config, c.knownHosts} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// addHost adds "Host alias" for ts to the client's config, with ts's host
// keys in known_hosts and strict host key checking; extra lines are added
// to the block.
func (c *client) addHost(t testing.TB, alias string, ts *testServer, extra ...string) {
	t.Helper()
	// OpenSSH takes the first value of an option, so extra lines go first.
	block := []string{"Host " + alias}
	for _, e := range extra {
		block = append(block, "  "+e)
	}
	block = append(block,
		"  HostName 127.0.0.1",
		"  Port "+ts.port,
		"  User "+testUser,
		"  HostKeyAlias "+alias,
		"  IdentityFile "+c.keyFile,
		"  IdentitiesOnly yes",
		"  UserKnownHostsFile "+c.knownHosts,
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
		"  LogLevel ERROR",
		"  ConnectTimeout 10",
	)
	appendFile(t, c.config, strings.Join(block, "\n")+"\n")
	for _, s := range ts.keys.Signers() {
		appendFile(t, c.knownHosts, alias+" "+string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	}
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// command builds an OpenSSH command (ssh, scp or sftp) that uses the
// client's config and a clean environment.
func (c *client) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, append([]string{"-F", c.config}, args...)...)
	cmd.Env = []string{"HOME=" + c.dir, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	cmd.Dir = c.dir
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// result is what an OpenSSH command produced.
type result struct {
	stdout, stderr string
	code           int
}

// run runs an OpenSSH command to completion with stdin as input.
func (c *client) run(t testing.TB, stdin string, prog string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, prog, args...)
	return runCmd(t, cmd, stdin)
}

func runCmd(t testing.TB, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v (stderr %q)", cmd.Args, err, r.stderr)
	}
	return r
}

// goClient connects with x/crypto's client as testUser with signer.
func goClient(t testing.TB, addr string, signer ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            testUser,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid has exited and been reaped.
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}
