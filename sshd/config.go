package sshd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Runner starts programs inside an instance. The instance package implements
// it; sshd declares only what it needs.
type Runner interface {
	// Command returns an unstarted command that runs req.Argv inside the
	// instance as req.User, with req.Env as its whole environment and req.Dir
	// as its working directory. sshd sets Stdin, Stdout and Stderr, and in
	// SysProcAttr (allocating it when nil) Setsid, and for a PTY Setctty and
	// Ctty; the Runner must leave those to sshd and keep the rest of its
	// SysProcAttr. ctx is cancelled when the session has ended; a Runner may
	// use exec.CommandContext with it. sshd signals the command's process
	// group (the command is a session leader) to deliver signal requests and
	// to end it when the client goes away.
	//
	// Env carries variables the client chose (see AcceptEnv): the Runner
	// must give them only to the user's program, never to a privileged
	// helper that runs before the switch to the user.
	Command(ctx context.Context, req ExecRequest) (*exec.Cmd, error)
}

// ExecRequest describes one program a session wants to run.
type ExecRequest struct {
	// User is the authenticated user name (Auth.User).
	User string
	// Argv is the program and its arguments; Argv[0] is a path inside the
	// instance.
	Argv []string
	// Env is the complete environment, "NAME=value" entries.
	Env []string
	// Dir is the working directory inside the instance: the user's home.
	// When it does not exist the Runner should use "/" (as OpenSSH does).
	Dir string
	// PTY is true when the program's stdin, stdout and stderr are a
	// terminal.
	PTY bool
	// Login asks for a login shell: the program should see argv[0] as "-"
	// followed by the base name of Argv[0] (for example "-bash").
	Login bool
}

// Argv0 is the argv[0] the program should see: Argv[0], or for a login
// shell "-" and the base name of Argv[0] ("-bash"). A Runner that builds the
// command itself sets cmd.Args[0] = req.Argv0().
func (r ExecRequest) Argv0() string {
	if len(r.Argv) == 0 {
		return ""
	}
	if r.Login {
		return "-" + path.Base(r.Argv[0])
	}
	return r.Argv[0]
}

// DialFunc opens a TCP connection from inside the instance. network is
// "tcp"; addr is "host:port" as the client asked for it.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Auth holds the credentials of an instance; SetAuth replaces them live.
type Auth struct {
	// User is the only user name accepted (osProfile.adminUsername).
	// Required.
	User string
	// AuthorizedKeys are the public keys that may log in as User
	// (osProfile.linuxConfiguration.ssh.publicKeys[].keyData). Empty means
	// no key is accepted.
	AuthorizedKeys []ssh.PublicKey
	// Password is the user's password (osProfile.adminPassword). It is used
	// only when PasswordAuth is true and must then be non-empty.
	Password string
	// PasswordAuth enables password authentication (true when
	// disablePasswordAuthentication is false). Zero: keys only.
	PasswordAuth bool
}

// validate reports what makes a unusable, so that a bad update changes
// nothing.
func (a Auth) validate() error {
	var errs []error
	if a.User == "" {
		errs = append(errs, errors.New("sshd: Auth.User is empty; set it to the admin user name"))
	} else if strings.ContainsAny(a.User, "/:\x00 \t\n") {
		errs = append(errs, fmt.Errorf("sshd: Auth.User %q contains characters a user name cannot have", a.User))
	}
	if a.PasswordAuth && a.Password == "" {
		errs = append(errs, errors.New("sshd: password authentication is enabled but Auth.Password is empty; set a password or disable PasswordAuth"))
	}
	for i, k := range a.AuthorizedKeys {
		if k == nil {
			errs = append(errs, fmt.Errorf("sshd: Auth.AuthorizedKeys[%d] is nil", i))
		}
	}
	return errors.Join(errs...)
}

// Config configures a Server. Fields marked required have no default; every
// other zero value is valid and documented.
type Config struct {
	// HostKeys returns the host keys to offer. It is called for each new
	// connection, so keys added later (an RSA key generated in the
	// background, see HostKeys.Signers) are offered from then on. Required.
	HostKeys func() []ssh.Signer

	// Auth holds the initial credentials; see SetAuth. Required (User).
	Auth Auth

	// Shell is the login shell inside the instance. Zero: "/bin/sh".
	Shell string
	// Home is the user's home directory inside the instance. Zero:
	// "/home/" + Auth.User, following Auth.User when SetAuth changes it.
	Home string

	// Runner starts every program of every session. Required.
	Runner Runner
	// Dial serves direct-tcpip channels (ssh -L, ssh -J). It must dial from
	// inside the instance. Zero: TCP forwarding is refused.
	Dial DialFunc
	// SFTPCommand is the argv of the SFTP server started (through Runner, as
	// the user) for the "sftp" subsystem, for example
	// {"/usr/local/bin/vmss", "sftp-server"}. Zero: the subsystem is refused,
	// so scp and sftp work only in legacy mode (scp -O).
	SFTPCommand []string

	// AuthTimeout bounds how long a connection may take from accept to a
	// successful authentication, failure delays included. Zero: 30s (long
	// enough for a person to type a password). Negative: no limit.
	AuthTimeout time.Duration
	// FailDelay is the pause after the first failed password; the n-th
	// failure on a connection waits n×FailDelay, at most 5s. Zero: 500ms.
	// Negative: no delay.
	FailDelay time.Duration
	// MaxAuthTries is how many failed authentication attempts a connection
	// may make before it is disconnected. Offered public keys that are not
	// authorized count only beyond a separate allowance of the same size,
	// so a client with many keys in its agent still gets through. Zero: 6.
	// Negative: unlimited.
	MaxAuthTries int

	// Limiter enforces MaxStartups and the per-source failure budget (see
	// Limits). Share one Limiter between servers to make its limits hold
	// for all of them together. Zero: a Limiter with the default Limits,
	// for this server alone.
	Limiter *Limiter
	// ClientAddr returns the address a connection comes from, for the
	// per-source failure budget and the logs. A proxy in front of the
	// server uses it to name the real client. Zero (or an invalid result):
	// the connection's peer address.
	ClientAddr func(net.Conn) netip.Addr
	// MaxSessions caps the session channels (shells, commands, SFTP) open
	// at once on one connection; more are refused. Zero: 10 (OpenSSH's
	// MaxSessions). Negative: no limit.
	MaxSessions int
	// MaxChannels caps the channels of every type (sessions and TCP
	// forwards) open at once on one connection. Zero: 64. Negative: no
	// limit.
	MaxChannels int

	// ClientAliveInterval, when positive, makes the server send a keepalive
	// request on a connection every interval; a connection that leaves
	// ClientAliveCountMax requests in a row unanswered is closed. Zero: off.
	ClientAliveInterval time.Duration
	// ClientAliveCountMax is the number of unanswered keepalives tolerated.
	// Zero: 3.
	ClientAliveCountMax int

	// Banner is sent to clients before authentication. Zero: none.
	Banner string
	// ServerVersion is the identification string; it must start with
	// "SSH-2.0-". Zero: "SSH-2.0-vmss".
	ServerVersion string

	// Logger receives connection and authentication events. Zero: discard.
	Logger *slog.Logger
}

const (
	defaultShell         = "/bin/sh"
	defaultAuthTimeout   = 30 * time.Second
	defaultFailDelay     = 500 * time.Millisecond
	maxFailDelay         = 5 * time.Second
	defaultMaxAuthTries  = 6
	defaultAliveCountMax = 3
	defaultMaxSessions   = 10
	defaultMaxChannels   = 64
	defaultServerVersion = "SSH-2.0-vmss"
)

// DefaultPath is the PATH of every session.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withDefaults validates c and returns it with zero values replaced.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.HostKeys == nil {
		errs = append(errs, errors.New("sshd: Config.HostKeys is nil; pass HostKeys.Signers from LoadOrCreateHostKeys"))
	}
	if c.Runner == nil {
		errs = append(errs, errors.New("sshd: Config.Runner is nil; sessions need a Runner to start programs in the instance"))
	}
	if err := c.Auth.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ServerVersion != "" && !strings.HasPrefix(c.ServerVersion, "SSH-2.0-") {
		errs = append(errs, fmt.Errorf("sshd: Config.ServerVersion %q must start with \"SSH-2.0-\"", c.ServerVersion))
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if c.Shell == "" {
		c.Shell = defaultShell
	}
	if c.AuthTimeout == 0 {
		c.AuthTimeout = defaultAuthTimeout
	}
	if c.FailDelay == 0 {
		c.FailDelay = defaultFailDelay
	}
	if c.MaxAuthTries == 0 {
		c.MaxAuthTries = defaultMaxAuthTries
	}
	if c.Limiter == nil {
		c.Limiter = NewLimiter(Limits{})
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = defaultMaxSessions
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = defaultMaxChannels
	}
	if c.ClientAliveCountMax <= 0 {
		c.ClientAliveCountMax = defaultAliveCountMax
	}
	if c.ServerVersion == "" {
		c.ServerVersion = defaultServerVersion
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.SFTPCommand = append([]string(nil), c.SFTPCommand...)
	return c, nil
}
