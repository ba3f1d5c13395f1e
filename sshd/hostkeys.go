package sshd

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/internal/atomicfile"
)

// Host key file names inside the directory given to LoadOrCreateHostKeys,
// as OpenSSH names them. Private keys are mode 0600, public keys 0644.
const (
	Ed25519KeyFile = "ssh_host_ed25519_key"
	RSAKeyFile     = "ssh_host_rsa_key"
)

const defaultRSABits = 3072

// HostKeyOptions configures LoadOrCreateHostKeys. The zero value is valid.
type HostKeyOptions struct {
	// RSABits is the size of a newly generated RSA key; at least 2048.
	// Zero: 3072.
	RSABits int
	// Limit bounds how many RSA keys are generated at the same time. It is
	// a buffered channel shared by all LoadOrCreateHostKeys calls of a
	// daemon; its capacity is the number of concurrent generations (1 keeps
	// RSA work to one core while instances start). Nil: no limit.
	Limit chan struct{}
	// Logger receives a line when a background RSA key is ready or failed.
	// Nil: discard.
	Logger *slog.Logger
}

// HostKeys are the host keys of one instance. Signers grows when a
// background RSA key is ready. Safe for concurrent use.
type HostKeys struct {
	dir     string
	mu      sync.Mutex
	signers []ssh.Signer
	rsaDone chan struct{}
	rsaErr  error

	rsaOnce    sync.Once
	rsaStart   func() // starts the RSA generation; nil when the key was loaded
	rsaStarted bool   // under mu; for tests
}

// startRSA starts generating the missing RSA key, once.
func (h *HostKeys) startRSA() {
	if h.rsaStart == nil {
		return
	}
	h.rsaOnce.Do(func() {
		h.mu.Lock()
		h.rsaStarted = true
		h.mu.Unlock()
		go h.rsaStart()
	})
}

// LoadOrCreateHostKeys loads the host keys stored in dir, creating dir
// (0700) and any missing key. The ed25519 key is ready on return. A missing
// RSA key is generated in the background once it is first asked for (the
// first Signers call, that is the instance's first SSH connection, or Wait):
// one core takes about 60 ms for 2048 bits, 0.4 s on average for 3072, with
// a wide spread, which thousands of instances nobody logs into need not
// spend. It is offered from then on; Wait waits for it. The goroutine stops
// early when ctx is done. Keys are stable across restarts: a daemon that
// calls again with the same dir gets the same keys; a fresh dir (reimage)
// gets new ones. A key file that cannot be parsed or is readable by others
// is an error, and is left as it is.
func LoadOrCreateHostKeys(ctx context.Context, dir string, opts HostKeyOptions) (*HostKeys, error) {
	bits := opts.RSABits
	if bits == 0 {
		bits = defaultRSABits
	}
	if bits < 2048 {
		return nil, fmt.Errorf("sshd: HostKeyOptions.RSABits %d is too small; use 2048 or more", bits)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sshd: create host key directory: %w", err)
	}
	ed, err := loadOrCreateKey(filepath.Join(dir, Ed25519KeyFile), func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	h := &HostKeys{dir: dir, signers: []ssh.Signer{ed}, rsaDone: make(chan struct{})}
	rsaPath := filepath.Join(dir, RSAKeyFile)
	rk, err := loadKey(rsaPath)
	switch {
	case err == nil:
		h.signers = append(h.signers, rk)
		close(h.rsaDone)
	case errors.Is(err, fs.ErrNotExist):
		h.rsaStart = func() { h.generateRSA(ctx, rsaPath, bits, opts.Limit, log) }
	default:
		return nil, err
	}
	return h, nil
}

func (h *HostKeys) generateRSA(ctx context.Context, path string, bits int, limit chan struct{}, log *slog.Logger) {
	defer close(h.rsaDone)
	fail := func(err error) {
		h.mu.Lock()
		h.rsaErr = err
		h.mu.Unlock()
	}
	if limit != nil {
		select {
		case limit <- struct{}{}:
			defer func() { <-limit }()
		case <-ctx.Done():
			fail(fmt.Errorf("sshd: RSA host key for %s not generated: %w", h.dir, ctx.Err()))
			return
		}
	}
	if err := ctx.Err(); err != nil {
		fail(fmt.Errorf("sshd: RSA host key for %s not generated: %w", h.dir, err))
		return
	}
	start := time.Now()
	k, err := loadOrCreateKey(path, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) })
	if err != nil {
		log.Error("ssh RSA host key generation failed; only ed25519 is offered", "dir", h.dir, "err", err)
		fail(err)
		return
	}
	h.mu.Lock()
	h.signers = append(h.signers, k)
	h.mu.Unlock()
	log.Info("ssh RSA host key ready", "dir", h.dir, "fingerprint", ssh.FingerprintSHA256(k.PublicKey()),
		"took", time.Since(start).Round(time.Millisecond))
}

// Signers returns the keys available now, and starts generating a missing
// RSA key; pass the method as Config.HostKeys.
func (h *HostKeys) Signers() []ssh.Signer {
	h.startRSA()
	return h.available()
}

func (h *HostKeys) available() []ssh.Signer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ssh.Signer(nil), h.signers...)
}

// Fingerprints returns "type SHA256:…" for each key available now, for
// logs and the instance view (without starting a missing RSA key).
func (h *HostKeys) Fingerprints() []string {
	var fps []string
	for _, s := range h.available() {
		fps = append(fps, s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
	}
	return fps
}

// Wait starts generating a missing RSA key, waits until it is available,
// and returns why it is not when generation failed or was stopped.
func (h *HostKeys) Wait(ctx context.Context) error {
	h.startRSA()
	select {
	case <-h.rsaDone:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.rsaErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Settle waits for an RSA key generation that has started to end (stored
// or failed), so the key directory is no longer written to; it starts none.
func (h *HostKeys) Settle() {
	h.mu.Lock()
	started := h.rsaStarted
	h.mu.Unlock()
	if started {
		<-h.rsaDone
	}
}

// loadOrCreateKey loads the private key at path or stores a new one from
// gen. When two callers race, both end up with the key stored first.
func loadOrCreateKey(path string, gen func() (crypto.Signer, error)) (ssh.Signer, error) {
	s, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	key, err := gen()
	if err != nil {
		return nil, fmt.Errorf("sshd: generate host key %s: %w", path, err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return nil, fmt.Errorf("sshd: encode host key %s: %w", path, err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key %s: %w", path, err)
	}
	switch err := writeNew(path, pem.EncodeToMemory(block), 0o600); {
	case errors.Is(err, fs.ErrExist):
		return loadKey(path)
	case err != nil:
		return nil, err
	}
	if err := writeNew(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil &&
		!errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return signer, nil
}

// writeNew writes data to path, which must not exist, atomically and
// durably: readers see the whole file or none (fs.ErrExist when path
// exists), and a power loss cannot lose a key once it was used.
func writeNew(path string, data []byte, mode os.FileMode) error {
	err := atomicfile.WriteNew(path, data, mode)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sshd: %w", err)
	}
	return err
}

// loadKey reads a private key, refusing one that others can read (errors
// wrap fs.ErrNotExist when the file is missing).
func loadKey(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sshd: open host key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("sshd: host key %s has mode %04o but must be private to its owner; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("sshd: read host key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("sshd: parse host key %s: %w; move the file away to generate a new key", path, err)
	}
	return s, nil
}
