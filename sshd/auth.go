package sshd

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/crypto/ssh"
)

// authState is an immutable snapshot of Auth prepared for checking; each
// connection checks against the snapshot it started with.
type authState struct {
	user     string
	home     string
	keys     map[string]struct{} // ssh wire encoding of each authorized key
	password bool
	pwHash   [sha256.Size]byte
}

func newAuthState(a Auth, home string) *authState {
	st := &authState{
		user:     a.User,
		home:     home,
		keys:     make(map[string]struct{}, len(a.AuthorizedKeys)),
		password: a.PasswordAuth,
	}
	if home == "" {
		st.home = "/home/" + a.User
	}
	for _, k := range a.AuthorizedKeys {
		st.keys[string(k.Marshal())] = struct{}{}
	}
	if a.PasswordAuth {
		st.pwHash = sha256.Sum256([]byte(a.Password))
	}
	return st
}

// checkKey reports whether user may log in with key.
func (a *authState) checkKey(user string, key ssh.PublicKey) bool {
	_, ok := a.keys[string(key.Marshal())]
	return ok && user == a.user
}

// checkPassword compares in constant time; hashing first hides the length.
func (a *authState) checkPassword(user string, password []byte) bool {
	if !a.password {
		return false
	}
	h := sha256.Sum256(password)
	okPW := subtle.ConstantTimeCompare(h[:], a.pwHash[:]) == 1
	return okPW && user == a.user
}

var errDenied = errors.New("sshd: access denied")

// failDelay is the pause after the n-th failed attempt (n from 1).
func failDelay(base time.Duration, n int) time.Duration {
	if base <= 0 || n <= 0 {
		return 0
	}
	d := base * time.Duration(n)
	if d > maxFailDelay || d < 0 {
		d = maxFailDelay
	}
	return d
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Permission extensions recorded by the callbacks, read back for logging.
const (
	extMethod = "vmss-auth-method"
	extKeyFP  = "vmss-pubkey-fp"
)

// sshConfig builds the ssh.ServerConfig for one connection from the current
// host keys (nil when there are none) and the auth snapshot a, counting
// failures in att.
func (s *Server) sshConfig(ctx context.Context, a *authState, att *attempts) *ssh.ServerConfig {
	log := s.log
	conf := &ssh.ServerConfig{
		MaxAuthTries:  s.cfg.MaxAuthTries,
		ServerVersion: s.cfg.ServerVersion,
		PublicKeyCallback: func(cm ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			fp := ssh.FingerprintSHA256(key)
			if a.checkKey(cm.User(), key) {
				return &ssh.Permissions{Extensions: map[string]string{extMethod: "publickey", extKeyFP: fp}}, nil
			}
			// Offered keys cannot be guessed, so a rejection is not delayed:
			// clients with several keys in their agent stay fast. Rejections
			// still count towards MaxAuthTries.
			att.keys++
			log.Info("ssh authentication failed", "remote", cm.RemoteAddr().String(),
				"user", cm.User(), "method", "publickey", "key", fp)
			return nil, errDenied
		},
	}
	if a.password {
		conf.PasswordCallback = func(cm ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			// A source that spent its failure budget (on this or a
			// parallel connection) gets no more guesses.
			if s.cfg.Limiter.refused(att.src) {
				return nil, errDenied
			}
			if a.checkPassword(cm.User(), password) {
				return &ssh.Permissions{Extensions: map[string]string{extMethod: "password"}}, nil
			}
			att.passwords++
			s.cfg.Limiter.fail(att.src, log)
			log.Info("ssh authentication failed", "remote", cm.RemoteAddr().String(),
				"user", cm.User(), "method", "password", "failures", att.passwords)
			sleepCtx(ctx, failDelay(s.cfg.FailDelay, att.passwords))
			return nil, errDenied
		}
	}
	if s.cfg.Banner != "" {
		banner := s.cfg.Banner
		conf.BannerCallback = func(ssh.ConnMetadata) string { return banner }
	}
	keys := s.cfg.HostKeys()
	if len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		conf.AddHostKey(k)
	}
	return conf
}

// attempts counts one connection's failed authentications. The x/crypto
// server calls the callbacks of one connection one at a time, so it needs no
// lock.
type attempts struct {
	src       netip.Addr // the client, for the per-source budget
	keys      int        // rejected public keys
	passwords int        // wrong passwords
}

// logLogin records a successful authentication.
func logLogin(log *slog.Logger, sc *ssh.ServerConn) {
	attrs := []any{"remote", sc.RemoteAddr().String(), "user", sc.User()}
	if p := sc.Permissions; p != nil {
		attrs = append(attrs, "method", p.Extensions[extMethod])
		if fp := p.Extensions[extKeyFP]; fp != "" {
			attrs = append(attrs, "key", fp)
		}
	}
	log.Info("ssh login accepted", attrs...)
}
