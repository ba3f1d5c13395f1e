package sshd

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// rfcSignals are the signal names of RFC 4254, section 6.10.
var rfcSignals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// signalByName maps a signal request name ("TERM", or "WINCH@openssh.com"
// for signals outside the RFC list) to a signal.
func signalByName(name string) (syscall.Signal, bool) {
	if sig, ok := rfcSignals[name]; ok {
		return sig, true
	}
	base, found := strings.CutSuffix(name, "@openssh.com")
	if !found || base == "" {
		return 0, false
	}
	sig := unix.SignalNum("SIG" + base)
	return sig, sig != 0
}

// signalName is the inverse of signalByName, for exit-signal.
func signalName(sig syscall.Signal) string {
	for name, s := range rfcSignals {
		if s == sig {
			return name
		}
	}
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG") + "@openssh.com"
	}
	return "SIG" + strconv.Itoa(int(sig)) + "@openssh.com"
}
