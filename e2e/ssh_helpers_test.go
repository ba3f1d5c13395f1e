package e2e

// Helpers of the SSH, inbound NAT and jumpbox tests (ssh_test.go): an
// OpenSSH client with its own key, config and known_hosts, and small probes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmss-emulator/vmss/internal/testutil"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sshUser is the admin account the SSH tests create.
const sshUser = "azureuser"

// sshClient is Debian's OpenSSH client with a key generated for one test,
// its own ssh_config and its own known_hosts (nothing of ~/.ssh is read).
type sshClient struct {
	t          testing.TB
	dir        string
	Key, Pub   string // private and public key files
	Config     string // ssh_config used with -F
	KnownHosts string
}

// newSSHClient generates an ed25519 key with ssh-keygen and writes a
// config: batch mode, no agent, host keys accepted on first use into the
// test's own known_hosts.
func newSSHClient(t testing.TB) *sshClient {
	t.Helper()
	for _, prog := range []string{"ssh", "scp", "sftp", "ssh-keygen"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("needs OpenSSH's %s (apt-get install openssh-client)", prog)
		}
	}
	dir := t.TempDir()
	c := &sshClient{t: t, dir: dir, Key: filepath.Join(dir, "id_ed25519"), Config: filepath.Join(dir, "ssh_config"),
		KnownHosts: filepath.Join(dir, "known_hosts")}
	c.Pub = c.Key + ".pub"
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmss-e2e", "-f", c.Key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	cfg := fmt.Sprintf(`Host *
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  StrictHostKeyChecking accept-new
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  HashKnownHosts no
  CheckHostIP no
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  ControlMaster no
  ControlPath none
  ConnectTimeout 15
  ServerAliveInterval 5
  LogLevel ERROR
`, sshUser, c.Key, c.KnownHosts)
	if err := os.WriteFile(c.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// sshResult is what one client run gave.
type sshResult struct {
	Stdout, Stderr string
	Code           int // exit status; -1 when the client did not exit normally
}

// Out is stdout without surrounding white space (and PTY carriage returns).
func (r sshResult) Out() string { return strings.TrimSpace(strings.ReplaceAll(r.Stdout, "\r", "")) }

func (r sshResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, tail(r.Stdout, 500), tail(r.Stderr, 800))
}

// command builds an OpenSSH program's command line with the test's config.
func (c *sshClient) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, append([]string{"-F", c.Config}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	// A new session: no controlling terminal, so nothing ever prompts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs an OpenSSH program (ssh, scp, sftp) with stdin and waits up to
// a minute.
func (c *sshClient) run(stdin string, prog string, args ...string) sshResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := sshResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		c.t.Fatalf("%s %s: %v", prog, strings.Join(args, " "), err)
	}
	return r
}

// ssh runs `ssh -p port ADDR command...`.
func (c *sshClient) ssh(ep string, args ...string) sshResult {
	c.t.Helper()
	host, port := splitEP(c.t, ep)
	return c.run("", "ssh", append([]string{"-p", port, host}, args...)...)
}

// mustSSH runs a command and fails the test unless it exits 0; it returns
// the trimmed stdout.
func (c *sshClient) mustSSH(ep string, args ...string) string {
	c.t.Helper()
	r := c.ssh(ep, args...)
	if r.Code != 0 {
		c.t.Fatalf("ssh %s %s: %s", ep, strings.Join(args, " "), r)
	}
	return r.Out()
}

// jump runs `ssh -J azureuser@JUMP target command...` (ProxyJump).
func (c *sshClient) jump(jumpEP, target string, args ...string) sshResult {
	c.t.Helper()
	host, port := splitEP(c.t, jumpEP)
	return c.run("", "ssh", append([]string{"-J", sshUser + "@" + net.JoinHostPort(host, port), target}, args...)...)
}

// start starts an OpenSSH program in the background; the test's cleanup
// kills it.
func (c *sshClient) start(prog string, args ...string) (*exec.Cmd, *testutil.SyncBuffer) {
	c.t.Helper()
	cmd := c.command(context.Background(), prog, args...)
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// waitExit waits for a command started with start to end.
func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", strings.Join(cmd.Args, " "), timeout)
	}
}

func splitEP(t testing.TB, ep string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		t.Fatalf("endpoint %q: %v", ep, err)
	}
	return host, port
}

// sshCreate creates a scale set whose admin logs in with c's key, without
// overprovisioning (ids 0..count-1), and returns its instances.
func sshCreate(e *Env, c *sshClient, name string, count int, extra ...string) []Instance {
	e.T.Helper()
	args := []string{"create", "-n", name, "--instance-count", strconv.Itoa(count), "--admin-username", sshUser,
		"--disable-overprovision", "-o", "none"}
	if c != nil {
		args = append(args, "--ssh-key-values", c.Pub)
	}
	e.MustCLI(append(args, extra...)...)
	insts := e.Instances(name)
	if len(insts) != count {
		e.T.Fatalf("scale set %s has %d instances, want %d", name, len(insts), count)
	}
	return insts
}

// sshConnInfo is list-instance-connection-info: instance id -> ADDR:PORT.
func sshConnInfo(e *Env, set string) map[string]string {
	e.T.Helper()
	var raw map[string]string
	e.JSON(&raw, "list-instance-connection-info", "-n", set)
	out := map[string]string{}
	for k, v := range raw {
		id, ok := strings.CutPrefix(k, "instance ")
		if !ok {
			e.T.Fatalf("list-instance-connection-info: key %q is not \"instance N\"", k)
		}
		out[id] = v
	}
	return out
}

// sshVMDetails is the part of `vm show -d` the tests read.
type sshVMDetails struct {
	PublicIps   string `json:"publicIps"`
	PrivateIps  string `json:"privateIps"`
	SSHEndpoint string `json:"sshEndpoint"`
	SSHError    string `json:"sshError"`
	PowerState  string `json:"powerState"`
}

func sshVMShow(e *Env, name string) sshVMDetails {
	e.T.Helper()
	var d sshVMDetails
	e.JSON(&d, "vm", "show", "-d", "-n", name)
	return d
}

// sshPublicIP runs `network public-ip VERB -n NAME` (create or show) and
// returns the public IP's host address.
func sshPublicIP(e *Env, verb, name string) string {
	e.T.Helper()
	var pip struct {
		IPAddress string `json:"ipAddress"`
	}
	e.JSON(&pip, "network", "public-ip", verb, "-n", name)
	if _, err := netip.ParseAddr(pip.IPAddress); err != nil {
		e.T.Fatalf("public IP %s has no address: %q", name, pip.IPAddress)
	}
	return pip.IPAddress
}

// spareAddr is an address of the env's public range that the daemon does
// not hand out early (.200 and up), for the tests' own listeners.
func (e *Env) spareAddr(n int) string {
	p := netip.MustParsePrefix(e.PIPRange)
	a := p.Addr().As4()
	a[3] = byte(200 + n)
	return netip.AddrFrom4(a).String()
}

// canaryServer is a TCP service on the host that tells whoever connects a
// secret and counts the connections it accepted.
type canaryServer struct {
	ln       net.Listener
	accepted atomic.Int64
}

const canarySecret = "HOST-ONLY-CANARY"

func newCanary(t testing.TB, addr string) *canaryServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("canary listener on %s: %v", addr, err)
	}
	s := &canaryServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			// Read the request, if any, before answering, so that closing
			// does not reset the connection under the client.
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, _ = c.Read(make([]byte, 4096))
			_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n" + canarySecret + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *canaryServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// procsWithArgs lists host pids whose command line is exactly argv.
func procsWithArgs(argv ...string) []int {
	want := strings.Join(argv, "\x00")
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.TrimRight(string(b), "\x00") == want {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// dialBoundTo dials addr from the host namespace with the socket bound to
// one interface (SO_BINDTODEVICE), so the attempt cannot leave the host
// through another one.
func dialBoundTo(dev, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), dev) }); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// askpass writes an SSH_ASKPASS program that prints password.
func askpass(t testing.TB, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "askpass.sh")
	script := "#!/bin/sh\ncat <<'EOF'\n" + password + "\nEOF\n"
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// passwordSSH logs in with a password given by SSH_ASKPASS (no sshpass):
// public keys are not offered.
func (c *sshClient) passwordSSH(password, ep string, args ...string) sshResult {
	c.t.Helper()
	host, port := splitEP(c.t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, "ssh", append([]string{"-o", "BatchMode=no", "-o", "PasswordAuthentication=yes",
		"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1",
		"-o", "LogLevel=INFO", "-p", port, host}, args...)...)
	cmd.Env = append(cmd.Env, "SSH_ASKPASS="+askpass(c.t, password), "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := sshResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// authMethods returns the methods the server offers after "none" (ssh -v).
func (c *sshClient) authMethods(ep string) string {
	c.t.Helper()
	host, port := splitEP(c.t, ep)
	r := c.run("", "ssh", "-v", "-o", "LogLevel=DEBUG1", "-o", "PreferredAuthentications=none", "-p", port, host, "true")
	m := regexp.MustCompile(`Authentications that can continue: (\S+)`).FindStringSubmatch(r.Stderr)
	if m == nil {
		c.t.Fatalf("ssh -v to %s printed no authentication methods: %s", ep, r)
	}
	return m[1]
}

// knownHostKeys returns the key types recorded in a known_hosts file for a
// host pattern ("[ADDR]:PORT").
func knownHostKeys(t testing.TB, file, pattern string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var types []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == pattern {
			types = append(types, fields[1])
		}
	}
	return types
}

// jsonString is a compact rendering for messages.
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
