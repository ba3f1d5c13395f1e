package sshd

import "strings"

const (
	maxClientEnv   = 64        // env requests accepted per session
	maxEnvNameLen  = 128       // bytes
	maxEnvValueLen = 32 * 1024 // bytes
)

// AcceptEnv is the policy for "env" requests (OpenSSH's SendEnv and
// SetEnv). Any variable is accepted (LANG, LC_*, TERM, TZ and whatever the
// client sends) unless
//   - its name is not a shell identifier ([A-Za-z_][A-Za-z0-9_]*, at most
//     128 bytes) or its value holds a NUL byte or exceeds 32 KiB;
//   - sshd sets it itself: HOME, USER, LOGNAME, SHELL, PATH, MAIL and SSH_*;
//   - it changes how programs are loaded or started rather than what they
//     do: LD_*, GCONV_PATH, GLIBC_TUNABLES, MALLOC_*, NLSPATH, HOSTALIASES,
//     LOCALDOMAIN, RES_OPTIONS, BASH_ENV, ENV, BASH_FUNC_*, SHELLOPTS,
//     BASHOPTS, IFS and PS4 — kept out in case a privileged helper runs
//     before the switch to the user.
//
// A session takes at most 64 variables; a TERM from pty-req wins over one
// sent by env.
func AcceptEnv(name, value string) bool {
	if !validEnvName(name) || len(value) > maxEnvValueLen || strings.IndexByte(value, 0) >= 0 {
		return false
	}
	switch name {
	case "HOME", "USER", "LOGNAME", "SHELL", "PATH", "MAIL",
		"GCONV_PATH", "GLIBC_TUNABLES", "NLSPATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",
		"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "IFS", "PS4":
		return false
	}
	for _, prefix := range []string{"SSH_", "LD_", "MALLOC_", "BASH_FUNC_"} {
		if strings.HasPrefix(name, prefix) {
			return false
		}
	}
	return true
}

func validEnvName(name string) bool {
	if name == "" || len(name) > maxEnvNameLen {
		return false
	}
	for i, c := range []byte(name) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// setEnv sets name=value in env, replacing an earlier entry of name.
func setEnv(env []string, name, value string) []string {
	prefix := name + "="
	for i, kv := range env {
		if strings.HasPrefix(kv, prefix) {
			env[i] = prefix + value
			return env
		}
	}
	return append(env, prefix+value)
}
