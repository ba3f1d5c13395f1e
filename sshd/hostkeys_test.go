package sshd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestHostKeysStableAndFresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	keys, err := LoadOrCreateHostKeys(ctx, dir, HostKeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys.Signers()); n < 1 || keys.Signers()[0].PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("ed25519 must be ready at once; have %d keys", n)
	}
	if err := keys.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	fps := keys.Fingerprints()
	if len(fps) != 2 || !strings.HasPrefix(fps[0], "ssh-ed25519 SHA256:") || !strings.HasPrefix(fps[1], "ssh-rsa SHA256:") {
		t.Fatalf("fingerprints %q; want ed25519 and RSA", fps)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("key directory: %v, %v; want mode 0700", fi, err)
	}
	for i, name := range []string{Ed25519KeyFile, RSAKeyFile} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", name, fi, err)
		}
		// OpenSSH reads the files and agrees on the fingerprint.
		for _, f := range []string{path, path + ".pub"} {
			out, err := exec.Command("ssh-keygen", "-l", "-f", f).CombinedOutput()
			if fp := strings.Fields(fps[i])[1]; err != nil || !strings.Contains(string(out), fp) {
				t.Fatalf("ssh-keygen -l -f %s: %q, %v; want %s", f, out, err, fp)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Fatalf("key directory holds %d files; want the 2 keys and their .pub (no temporary files)", len(entries))
	}

	again, err := LoadOrCreateHostKeys(ctx, dir, HostKeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Fingerprints(); !slices.Equal(got, fps) {
		t.Fatalf("after reload: %q; want the same keys %q", got, fps)
	}
	fresh, err := LoadOrCreateHostKeys(ctx, filepath.Join(t.TempDir(), "reimaged"), HostKeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, fp := range fresh.Fingerprints() {
		if fp == fps[i] {
			t.Fatalf("a fresh directory reused key %s", fp)
		}
	}
}

func TestHostKeyFilesRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, want string
		prepare    func(path string) error
	}{
		{"corrupt", "move the file away", func(p string) error { return os.WriteFile(p, []byte("not a key"), 0o600) }},
		{"readable by others", "chmod 600", func(p string) error {
			if err := os.WriteFile(p, []byte("whatever"), 0o644); err != nil {
				return err
			}
			return os.Chmod(p, 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, Ed25519KeyFile)
			if err := tt.prepare(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			_, err := LoadOrCreateHostKeys(context.Background(), dir, HostKeyOptions{})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error naming %s and saying %q", err, path, tt.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Fatal("the refused file was changed")
			}
		})
	}
	if _, err := LoadOrCreateHostKeys(context.Background(), t.TempDir(), HostKeyOptions{RSABits: 1024}); err == nil {
		t.Fatal("a 1024-bit RSA key was accepted")
	}
}

// TestRSAGenerationWaitsForLimit: with the limit taken, no RSA key is
// generated, and cancelling ctx ends the wait.
func TestRSAGenerationWaitsForLimit(t *testing.T) {
	t.Parallel()
	limit := make(chan struct{}, 1)
	limit <- struct{}{} // taken by someone else
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	keys, err := LoadOrCreateHostKeys(ctx, dir, HostKeyOptions{RSABits: 2048, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	short, done := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer done()
	if err := keys.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with the limit taken: %v; want it still waiting", err)
	}
	cancel()
	if err := keys.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v; want context.Canceled", err)
	}
	if len(keys.Signers()) != 1 {
		t.Fatal("an RSA key appeared although generation was stopped")
	}
	if _, err := os.Stat(filepath.Join(dir, RSAKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RSA key file: %v; want none", err)
	}
	// Released, the next start generates it.
	<-limit
	keys, err = LoadOrCreateHostKeys(context.Background(), dir, HostKeyOptions{RSABits: 2048, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Wait(context.Background()); err != nil || len(keys.Signers()) != 2 || len(limit) != 0 {
		t.Fatalf("Wait: %v with %d keys and the limit at %d; want 2 keys and the limit released", err, len(keys.Signers()), len(limit))
	}
}

// TestOpenSSHRSAHostKey: a client that accepts only RSA host keys gets the
// RSA key, and it is the one on file.
func TestOpenSSHRSAHostKey(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ts := newTestServer(t, c)
	for _, alg := range []string{"rsa-sha2-512", "rsa-sha2-256"} {
		c.addHost(t, alg, ts, "HostKeyAlgorithms "+alg)
		r := c.run(t, "", "ssh", alg, "echo ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("HostKeyAlgorithms=%s: code %d stdout %q stderr %q", alg, r.code, r.stdout, r.stderr)
		}
	}
	// Against a known_hosts holding only a different RSA key, strict
	// checking fails: the key above really was verified.
	other := newClient(t)
	fresh, err := LoadOrCreateHostKeys(context.Background(), t.TempDir(), HostKeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	other.addHost(t, "vm", &testServer{port: ts.port, keys: fresh}, "HostKeyAlgorithms rsa-sha2-512")
	r := other.run(t, "", "ssh", "vm", "echo ok")
	if r.code == 0 || !strings.Contains(r.stderr, "HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("with a wrong known RSA key: code %d stderr %q; want a host key mismatch", r.code, r.stderr)
	}
}

// TestRSAKeyOnDemand: a missing RSA key is not generated until it is asked
// for (Signers, that is a connection, or Wait); Fingerprints does not ask.
func TestRSAKeyOnDemand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, err := LoadOrCreateHostKeys(context.Background(), dir, HostKeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	started := func() bool { keys.mu.Lock(); defer keys.mu.Unlock(); return keys.rsaStarted }
	if fps := keys.Fingerprints(); len(fps) != 1 || started() {
		t.Fatalf("before any connection: fingerprints %q, generation started %v; want the ed25519 key only, not started", fps, started())
	}
	if got := keys.Signers(); len(got) < 1 || !started() {
		t.Fatalf("Signers: %d keys, generation started %v; want it started", len(got), started())
	}
	if err := keys.Wait(context.Background()); err != nil || len(keys.Signers()) != 2 {
		t.Fatalf("Wait: %v, %d keys; want the RSA key too", err, len(keys.Signers()))
	}
	if _, err := os.Stat(filepath.Join(dir, RSAKeyFile)); err != nil {
		t.Fatal(err)
	}
	// Loaded from file: nothing to start.
	again, err := LoadOrCreateHostKeys(context.Background(), dir, HostKeyOptions{RSABits: 2048})
	if err != nil || len(again.Fingerprints()) != 2 {
		t.Fatalf("reload: %v, %q", err, again.Fingerprints())
	}
}

// Settle starts no generation, and after one has started it returns only
// once the RSA key is stored (nothing writes to the directory afterwards).
func TestHostKeysSettle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h, err := LoadOrCreateHostKeys(context.Background(), dir, HostKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Settle()
	if _, err := os.Stat(filepath.Join(dir, RSAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Settle started an RSA key: %v", err)
	}
	h.Signers()
	h.Settle()
	if _, err := os.Stat(filepath.Join(dir, RSAKeyFile)); err != nil {
		t.Fatalf("after Settle the RSA key is not stored: %v", err)
	}
	if n := len(h.Signers()); n != 2 {
		t.Errorf("%d signers after Settle, want ed25519 and RSA", n)
	}
}
