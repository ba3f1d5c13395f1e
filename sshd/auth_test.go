package sshd

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// passwordSSH runs OpenSSH with password authentication only, typing
// password through SSH_ASKPASS.
func (c *client) passwordSSH(t *testing.T, host, password string, args ...string) result {
	t.Helper()
	askpass := filepath.Join(c.dir, "askpass")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s\\n' \"$TEST_PASSWORD\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "ssh", append([]string{"-o", "BatchMode=no", "-o", "PreferredAuthentications=password",
		"-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", host}, args...)...)
	cmd.Env = append(cmd.Env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "TEST_PASSWORD="+password)
	return runCmd(t, cmd, "")
}

func TestOpenSSHAuthentication(t *testing.T) {
	t.Parallel()
	const password = "S3cret-pass-word"
	good, other := newClient(t), newClient(t)
	keysOnly := newTestServer(t, good, func(cfg *Config) { cfg.Auth.Password = password })
	withPassword := newTestServer(t, good, func(cfg *Config) {
		cfg.Auth.Password, cfg.Auth.PasswordAuth = password, true
	})
	for _, c := range []*client{good, other} {
		c.addHost(t, "keys-only", keysOnly)
		c.addHost(t, "with-password", withPassword)
		c.addHost(t, "wrong-user", keysOnly, "User root")
	}
	tests := []struct {
		name string
		run  func(t *testing.T) result
		ok   bool
	}{
		{"authorized key", func(t *testing.T) result { return good.run(t, "", "ssh", "keys-only", "echo ok") }, true},
		{"unknown key", func(t *testing.T) result { return other.run(t, "", "ssh", "keys-only", "echo ok") }, false},
		{"other user with an authorized key", func(t *testing.T) result { return good.run(t, "", "ssh", "wrong-user", "echo ok") }, false},
		{"password while disabled", func(t *testing.T) result { return other.passwordSSH(t, "keys-only", password, "echo ok") }, false},
		{"password", func(t *testing.T) result { return other.passwordSSH(t, "with-password", password, "echo ok") }, true},
		{"wrong password", func(t *testing.T) result { return other.passwordSSH(t, "with-password", "guess", "echo ok") }, false},
		{"key while password is enabled", func(t *testing.T) result { return good.run(t, "", "ssh", "with-password", "echo ok") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(t)
			if tt.ok && (r.code != 0 || r.stdout != "ok\n") {
				t.Fatalf("want login: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			if !tt.ok && (r.code != 255 || !strings.Contains(r.stderr, "Permission denied") || r.stdout != "") {
				t.Fatalf("want denial: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	// The server that refuses passwords does not even offer them.
	r := other.passwordSSH(t, "keys-only", password, "true")
	if !strings.Contains(r.stderr, "Permission denied (publickey)") {
		t.Errorf("keys-only server offered more than publickey: %q", r.stderr)
	}
	for _, ts := range []*testServer{keysOnly, withPassword} {
		logs := ts.logs.String()
		if strings.Contains(logs, password) || strings.Contains(logs, "guess") {
			t.Errorf("a password was logged:\n%s", logs)
		}
		if !strings.Contains(logs, `msg="ssh authentication failed" remote=127.0.0.1:`) {
			t.Errorf("failed attempts are not logged with the remote address:\n%s", logs)
		}
	}
}

// TestOpenSSHRSAClientKey: Azure keyData is most often an ssh-rsa key; OpenSSH
// signs with rsa-sha2-512 for it.
func TestOpenSSHRSAClientKey(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := newClientWithKey(t, key)
	ts := newTestServer(t, c)
	c.addHost(t, "vm", ts)
	if r := c.run(t, "", "ssh", "vm", "echo ok"); r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestSetAuthIsLive(t *testing.T) {
	t.Parallel()
	first, second := newClient(t), newClient(t)
	ts := newTestServer(t, first)
	first.addHost(t, "vm", ts)
	second.addHost(t, "vm", ts)
	login := func(c *client) bool {
		r := c.run(t, "", "ssh", "vm", "echo ok")
		return r.code == 0 && r.stdout == "ok\n"
	}
	if !login(first) || login(second) {
		t.Fatal("before SetAuth: want only the first key accepted")
	}
	// An established connection outlives the change.
	kept := goClient(t, ts.addr, first.signer)
	if err := ts.srv.SetAuth(Auth{User: testUser, AuthorizedKeys: []ssh.PublicKey{second.signer.PublicKey()}}); err != nil {
		t.Fatal(err)
	}
	if login(first) || !login(second) {
		t.Fatal("after SetAuth: want only the second key accepted")
	}
	sess, err := kept.NewSession()
	if err != nil {
		t.Fatalf("connection made before SetAuth: %v", err)
	}
	if out, err := sess.Output("echo still here"); err != nil || string(out) != "still here\n" {
		t.Fatalf("session on the old connection: %q, %v", out, err)
	}
	// Bad credentials are refused and change nothing.
	for _, bad := range []Auth{{}, {User: testUser, PasswordAuth: true}, {User: "a b"}} {
		if err := ts.srv.SetAuth(bad); err == nil {
			t.Errorf("SetAuth(%+v) accepted", bad)
		}
	}
	if !login(second) {
		t.Fatal("a refused SetAuth changed the credentials")
	}
}

// TestFailedPasswordsSlowedAndLimited counts the attempts a client gets and
// checks they were delayed by 1, 2, 3, ... × FailDelay.
func TestFailedPasswordsSlowedAndLimited(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	ts := newTestServer(t, nil, func(cfg *Config) {
		cfg.Auth.Password, cfg.Auth.PasswordAuth = "right", true
		cfg.FailDelay = delay
	})
	attempts := 0
	start := time.Now()
	_, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User: testUser,
		Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			attempts++
			return "wrong", nil
		}), 100)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if attempts != defaultMaxAuthTries {
		t.Fatalf("client made %d attempts before being disconnected; want %d", attempts, defaultMaxAuthTries)
	}
	var minimum time.Duration
	for n := 1; n <= attempts; n++ {
		minimum += failDelay(delay, n)
	}
	if elapsed < minimum {
		t.Fatalf("%d failures took %v; the delays alone add up to %v", attempts, elapsed, minimum)
	}
	if got := strings.Count(ts.logs.String(), `msg="ssh authentication failed"`); got != attempts {
		t.Fatalf("logged %d failures; want %d", got, attempts)
	}
}

// TestStalledClientTimesOut: a client that never speaks delays nobody, and
// is dropped after AuthTimeout.
func TestStalledClientTimesOut(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	// Short, yet long enough for the real login below on a busy machine.
	ts := newTestServer(t, c, func(cfg *Config) { cfg.AuthTimeout = 1500 * time.Millisecond })
	c.addHost(t, "vm", ts)
	stalled, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if r := c.run(t, "", "ssh", "vm", "echo ok"); r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("login next to a stalled connection: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(stalled) // the server's version line, then EOF
	if err != nil || !strings.HasPrefix(string(got), "SSH-2.0-vmss") {
		t.Fatalf("stalled connection: read %q, %v; want the version line and EOF", got, err)
	}
	// NewServerConn closes the socket itself, just before the log line.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "timed out before authentication") }) {
		t.Errorf("the timeout was not logged:\n%s", ts.logs.String())
	}
}

func TestWrongUserAndKeyWithGoClient(t *testing.T) {
	t.Parallel()
	c, other := newClient(t), newClient(t)
	ts := newTestServer(t, c)
	for _, tt := range []struct {
		user   string
		signer ssh.Signer
	}{{"root", c.signer}, {testUser, other.signer}} {
		_, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
			User: tt.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(tt.signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("user %s: got %v; want an authentication failure", tt.user, err)
		}
	}
	var opErr *net.OpError
	if _, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{User: testUser, HostKeyCallback: ssh.InsecureIgnoreHostKey()}); err == nil || errors.As(err, &opErr) {
		t.Errorf("login without credentials: %v; want an authentication failure", err)
	}
}
