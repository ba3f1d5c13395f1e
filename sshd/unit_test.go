package sshd

import (
	"encoding/binary"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

func TestAcceptEnv(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
	}{
		{"LANG", "C.UTF-8", true},
		{"LC_ALL", "C", true},
		{"TERM", "xterm", true},
		{"MY_VAR", "anything at all", true},
		{"_x1", "", true},
		{"HOME", "/root", false},
		{"PATH", "/evil", false},
		{"SHELL", "/bin/bash", false},
		{"SSH_TTY", "/dev/pts/9", false},
		{"SSH_AUTH_SOCK", "/tmp/x", false},
		{"LD_PRELOAD", "/tmp/x.so", false},
		{"LD_LIBRARY_PATH", "/tmp", false},
		{"BASH_ENV", "/tmp/x", false},
		{"GLIBC_TUNABLES", "x", false},
		{"IFS", " ", false},
		{"1ABC", "x", false},
		{"A-B", "x", false},
		{"A=B", "x", false},
		{"", "x", false},
		{strings.Repeat("A", 129), "x", false},
		{"BIG", strings.Repeat("x", 32*1024+1), false},
		{"NUL", "a\x00b", false},
	}
	for _, tt := range tests {
		if got := AcceptEnv(tt.name, tt.value); got != tt.want {
			t.Errorf("AcceptEnv(%.20q, %.20q) = %v, want %v", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestSetEnvReplaces(t *testing.T) {
	env := setEnv([]string{"A=1", "AB=2"}, "A", "3")
	env = setEnv(env, "C", "4")
	if want := []string{"A=3", "AB=2", "C=4"}; !slices.Equal(env, want) {
		t.Fatalf("got %q, want %q", env, want)
	}
}

func TestApplyModes(t *testing.T) {
	enc := func(pairs ...uint32) []byte {
		var b []byte
		for i := 0; i+1 < len(pairs); i += 2 {
			b = append(b, byte(pairs[i]))
			b = binary.BigEndian.AppendUint32(b, pairs[i+1])
		}
		return b
	}
	tests := []struct {
		name  string
		modes []byte
		check func(t *unix.Termios) bool
	}{
		{"echo off", enc(53, 0), func(t *unix.Termios) bool { return t.Lflag&unix.ECHO == 0 }},
		{"echo on", enc(53, 1), func(t *unix.Termios) bool { return t.Lflag&unix.ECHO != 0 }},
		{"intr char", enc(1, 3), func(t *unix.Termios) bool { return t.Cc[unix.VINTR] == 3 }},
		{"output flags", enc(72, 1, 70, 0), func(t *unix.Termios) bool {
			return t.Oflag&unix.ONLCR != 0 && t.Oflag&unix.OPOST == 0
		}},
		{"utf8 input", enc(42, 1), func(t *unix.Termios) bool { return t.Iflag&unix.IUTF8 != 0 }},
		{"stops at TTY_OP_END", append(enc(53, 0), append([]byte{0}, enc(51, 0)...)...), func(t *unix.Termios) bool {
			return t.Lflag&unix.ECHO == 0 && t.Lflag&unix.ICANON != 0
		}},
		{"stops at opcode 160", append(enc(160, 0), enc(53, 0)...), func(t *unix.Termios) bool {
			return t.Lflag&unix.ECHO != 0
		}},
		{"speeds ignored", enc(128, 38400, 129, 38400), func(t *unix.Termios) bool {
			return t.Lflag&unix.ECHO != 0
		}},
		{"truncated entry ignored", enc(53, 0)[:3], func(t *unix.Termios) bool { return t.Lflag&unix.ECHO != 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := unix.Termios{Lflag: unix.ECHO | unix.ICANON}
			applyModes(&term, tt.modes)
			if !tt.check(&term) {
				t.Fatalf("termios after %x: %+v", tt.modes, term)
			}
		})
	}
}

func TestSignalNames(t *testing.T) {
	tests := []struct {
		name string
		sig  syscall.Signal
		ok   bool
	}{
		{"TERM", syscall.SIGTERM, true},
		{"INT", syscall.SIGINT, true},
		{"USR2", syscall.SIGUSR2, true},
		{"WINCH@openssh.com", syscall.SIGWINCH, true},
		{"CHLD@openssh.com", syscall.SIGCHLD, true},
		{"WINCH", 0, false},
		{"SIGTERM", 0, false},
		{"@openssh.com", 0, false},
		{"BOGUS@openssh.com", 0, false},
	}
	for _, tt := range tests {
		sig, ok := signalByName(tt.name)
		if sig != tt.sig || ok != tt.ok {
			t.Errorf("signalByName(%q) = %v, %v; want %v, %v", tt.name, sig, ok, tt.sig, tt.ok)
		}
		if ok && signalName(sig) != tt.name {
			t.Errorf("signalName(%v) = %q; want %q", sig, signalName(sig), tt.name)
		}
	}
}

func TestFailDelay(t *testing.T) {
	tests := []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{500 * time.Millisecond, 1, 500 * time.Millisecond},
		{500 * time.Millisecond, 2, time.Second},
		{500 * time.Millisecond, 6, 3 * time.Second},
		{500 * time.Millisecond, 100, maxFailDelay},
		{-1, 3, 0},
		{time.Second, 0, 0},
	}
	for _, tt := range tests {
		if got := failDelay(tt.base, tt.n); got != tt.want {
			t.Errorf("failDelay(%v, %d) = %v, want %v", tt.base, tt.n, got, tt.want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	keys := func() []ssh.Signer { return nil }
	runner := &hostRunner{}
	valid := Config{HostKeys: keys, Runner: runner, Auth: Auth{User: "azureuser"}}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no host keys", func(c *Config) { c.HostKeys = nil }, "HostKeys"},
		{"no runner", func(c *Config) { c.Runner = nil }, "Runner"},
		{"no user", func(c *Config) { c.Auth.User = "" }, "Auth.User"},
		{"empty password", func(c *Config) { c.Auth.PasswordAuth = true }, "password"},
		{"bad version", func(c *Config) { c.ServerVersion = "vmss" }, "SSH-2.0-"},
		{"nil key", func(c *Config) { c.Auth.AuthorizedKeys = []ssh.PublicKey{nil} }, "AuthorizedKeys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			s, err := New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New: %v; want an error mentioning %q", err, tt.want)
			}
			if s != nil {
				s.Close()
			}
		})
	}
	s, err := New(valid)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.cfg
	if c.Shell != "/bin/sh" || c.AuthTimeout != 30*time.Second || c.FailDelay != 500*time.Millisecond ||
		c.MaxAuthTries != 6 || c.ClientAliveInterval != 0 || c.ServerVersion != "SSH-2.0-vmss" ||
		s.auth.Load().home != "/home/azureuser" {
		t.Fatalf("defaults: %+v, home %q", c, s.auth.Load().home)
	}
}

func TestExecRequestArgv0(t *testing.T) {
	tests := []struct {
		req  ExecRequest
		want string
	}{
		{ExecRequest{Argv: []string{"/bin/bash"}, Login: true}, "-bash"},
		{ExecRequest{Argv: []string{"/bin/sh", "-c", "x"}}, "/bin/sh"},
		{ExecRequest{Login: true}, ""},
	}
	for _, tt := range tests {
		if got := tt.req.Argv0(); got != tt.want {
			t.Errorf("%+v.Argv0() = %q, want %q", tt.req, got, tt.want)
		}
	}
}
