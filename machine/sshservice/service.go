package sshservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/sshd"
)

// Instances is what the SSH service needs of the instances: their spec
// (shell, home, resolver), a listener and connections inside them, and
// commands run inside them as the admin user. The instance manager
// implements it (with nsnet for the network); machinetest.Instances is a
// fake on loopback.
type Instances interface {
	// Exe is the vmss executable (its sftp-server subcommand serves SFTP).
	Exe() (string, error)
	// Lookup returns the spec the instance was created with.
	Lookup(name string) (instance.Spec, error)
	// ListenTCP listens inside the named instance.
	ListenTCP(ctx context.Context, name, addr string) (net.Listener, error)
	// Dialer dials from inside the named instance.
	Dialer(name string) nsnet.DialFunc
	// Command prepares a command inside the named instance.
	Command(ctx context.Context, name string, req instance.ExecRequest) (*exec.Cmd, error)
}

// Config configures a Service. Zero values take the defaults given.
type Config struct {
	// Instances are served (required).
	Instances Instances
	// KeyDir holds one directory of host keys per instance (required).
	KeyDir string
	// AuthTimeout drops connections that have not authenticated; default 10s.
	AuthTimeout time.Duration
	Logger      *slog.Logger
}

// Service serves SSH on port 22 inside every started instance, with the
// instance's own host keys, and generates those keys (RSA in the
// background, out of the way of a burst of instance creations).
type Service struct {
	cfg  Config
	inst Instances
	log  *slog.Logger
	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	rsa  chan struct{} // the RSA generation slot

	mu      sync.Mutex
	servers map[string]*server // instance netns -> server
	keys    map[string]*keyGen // instance netns -> its host keys, loaded once
	rsaBusy time.Time          // background RSA key generation waits until then
}

// keyGen is an instance's host keys and the stop of their background RSA
// generation.
type keyGen struct {
	keys   *sshd.HostKeys
	cancel context.CancelFunc
}

type server struct {
	srv  *sshd.Server
	keys *sshd.HostKeys
	done chan struct{}
}

// New returns a Service. Close stops every server.
func New(cfg Config) *Service {
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, inst: cfg.Instances, log: lg, base: ctx, stop: cancel,
		rsa: make(chan struct{}, 1), servers: map[string]*server{}, keys: map[string]*keyGen{}}
	s.wg.Add(1)
	go s.holdRSA()
	return s
}

// KeyDir is where an instance's host keys are kept.
func (s *Service) KeyDir(netns string) string { return filepath.Join(s.cfg.KeyDir, netns) }

// rsaQuiet is how long background RSA host-key generation waits after the
// last instance creation, so a burst of creations is not slowed by it.
const rsaQuiet = 2 * time.Second

// Creating postpones background RSA key generation (instances are being created).
func (s *Service) Creating() {
	s.mu.Lock()
	s.rsaBusy = time.Now().Add(rsaQuiet)
	s.mu.Unlock()
}

// holdRSA occupies the RSA generation slot while instances are being created.
func (s *Service) holdRSA() {
	defer s.wg.Done()
	held := false
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		busy := time.Now().Before(s.rsaBusy)
		s.mu.Unlock()
		switch {
		case busy && !held:
			select {
			case s.rsa <- struct{}{}:
				held = true
			default: // a key is being generated now; hold the slot next time
			}
		case !busy && held:
			<-s.rsa
			held = false
		}
		select {
		case <-s.base.Done():
			if held {
				<-s.rsa
			}
			return
		case <-t.C:
		}
	}
}

// HostKeys loads an instance's host keys, creating the missing ones (the
// RSA key in the background), once: later calls answer the same keys.
func (s *Service) HostKeys(netns, vmName string) (*sshd.HostKeys, error) {
	s.mu.Lock()
	if k := s.keys[netns]; k != nil {
		s.mu.Unlock()
		return k.keys, nil
	}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(s.base)
	keys, err := sshd.LoadOrCreateHostKeys(ctx, s.KeyDir(netns), sshd.HostKeyOptions{RSABits: 2048, Limit: s.rsa, Logger: s.log})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("host keys of %s: %w", vmName, err)
	}
	s.mu.Lock()
	if k := s.keys[netns]; k != nil { // a concurrent call won: keep its keys
		s.mu.Unlock()
		cancel()
		_ = keys.Wait(context.Background()) // the loser's generator has stopped (its error is the cancellation)
		return k.keys, nil
	}
	s.keys[netns] = &keyGen{keys: keys, cancel: cancel}
	s.mu.Unlock()
	return keys, nil
}

// DropKeys stops an instance's background key generation, waits until it
// has stopped writing, and forgets the keys: call it before the instance's
// key directory is removed (delete, reimage), so nothing writes into it
// afterwards.
func (s *Service) DropKeys(netns string) {
	s.mu.Lock()
	k := s.keys[netns]
	delete(s.keys, netns)
	s.mu.Unlock()
	if k != nil {
		k.cancel()
		_ = k.keys.Wait(context.Background()) // stopped or finished: either way it no longer writes
	}
}

// Serving reports whether SSH is served inside the instance.
func (s *Service) Serving(netns string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servers[netns] != nil
}

// Serve serves SSH inside the instance; when it already does, only the
// accepted users and keys are updated.
func (s *Service) Serve(ctx context.Context, in reconcile.InstanceSpec) error {
	auth := sshd.Auth{User: in.AdminUser, Password: in.Password, PasswordAuth: in.Password != ""}
	for _, k := range in.PublicKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return fmt.Errorf("SSH key of %s: %w", in.VMName, err)
		}
		auth.AuthorizedKeys = append(auth.AuthorizedKeys, pk)
	}
	s.mu.Lock()
	if cur := s.servers[in.Netns]; cur != nil {
		s.mu.Unlock()
		cur.srv.SetAuth(auth)
		return nil
	}
	s.mu.Unlock()
	keys, err := s.HostKeys(in.Netns, in.VMName)
	if err != nil {
		return err
	}
	exe, err := s.inst.Exe()
	if err != nil {
		return err
	}
	spec, err := s.inst.Lookup(in.Netns)
	if err != nil {
		return err
	}
	srv, err := sshd.New(sshd.Config{
		HostKeys:    keys.Signers,
		Auth:        auth,
		Shell:       spec.Shell,
		Home:        spec.Home(),
		Runner:      runner{inst: s.inst, name: in.Netns},
		Dial:        instanceDialer(s.inst.Dialer(in.Netns), spec),
		SFTPCommand: []string{exe, "sftp-server"},
		AuthTimeout: s.cfg.AuthTimeout,
		Logger:      s.log.With("instance", in.VMName),
	})
	if err != nil {
		return fmt.Errorf("SSH server of %s: %w", in.VMName, err)
	}
	ln, err := s.inst.ListenTCP(ctx, in.Netns, "0.0.0.0:22")
	if err != nil {
		return fmt.Errorf("SSH listener in %s: %w", in.VMName, err)
	}
	sv := &server{srv: srv, keys: keys, done: make(chan struct{})}
	s.mu.Lock()
	s.servers[in.Netns] = sv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(sv.done)
		if err := srv.Serve(s.base, quickAckListener{ln}); err != nil && !errors.Is(err, sshd.ErrServerClosed) && s.base.Err() == nil {
			s.log.Error("SSH server stopped", "instance", in.VMName, "err", err)
		}
	}()
	return nil
}

// Stop ends the instance's SSH server and its sessions.
func (s *Service) Stop(netns string) {
	s.mu.Lock()
	sv := s.servers[netns]
	delete(s.servers, netns)
	s.mu.Unlock()
	if sv != nil {
		_ = sv.srv.Close() // closing ends every session; there is no one to report a close error to
		<-sv.done
	}
}

// Close stops every server and waits for the service's goroutines and for
// host keys being generated.
func (s *Service) Close() error {
	s.mu.Lock()
	var errs []error
	for _, sv := range s.servers {
		errs = append(errs, sv.srv.Close())
	}
	keys := make([]*sshd.HostKeys, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k.keys)
	}
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	// A background RSA key being generated still writes its file: wait,
	// so nothing writes to the key directories after Close.
	for _, k := range keys {
		k.Settle()
	}
	return errors.Join(errs...)
}

// runner starts SSH session programs inside an instance as its admin.
type runner struct {
	inst Instances
	name string
}

// Command implements sshd.Runner. The client's environment reaches only the
// user's program: it is applied by env(1) after the switch to the user.
func (r runner) Command(ctx context.Context, req sshd.ExecRequest) (*exec.Cmd, error) {
	argv := req.Argv
	if req.Login && len(argv) == 1 {
		argv = []string{argv[0], "-l"}
	}
	full := append([]string{"/usr/bin/env", "-"}, req.Env...)
	full = append(full, argv...)
	return r.inst.Command(ctx, r.name, instance.ExecRequest{Argv: full, Dir: req.Dir})
}
