// Package sshd is the SSH server of one scale-set instance.
//
// One vmss daemon serves SSH for every instance. For each instance it creates
// a listener on port 22 inside the instance's network namespace and hands it
// to a Server built for that instance. Everything a session runs is started
// through the Runner the instance package provides, so commands, shells, the
// SFTP subsystem and legacy scp all run inside the instance's namespaces and
// cgroup as the instance's admin user. TCP forwarding (ssh -L, ssh -J) dials
// through Config.Dial, which dials from inside the instance as well.
//
// Typical usage:
//
//	keys, err := sshd.LoadOrCreateHostKeys(ctx, stateDir, sshd.HostKeyOptions{Logger: log})
//	srv, err := sshd.New(sshd.Config{
//		HostKeys:    keys.Signers,
//		Auth:        sshd.Auth{User: "azureuser", AuthorizedKeys: adminKeys},
//		Runner:      inst, // implements sshd.Runner
//		Dial:        inst.DialContext,
//		SFTPCommand: []string{"/usr/local/bin/vmss", "sftp-server"},
//		Logger:      log,
//	})
//	go srv.Serve(ctx, ln) // ln: port 22 inside the instance
//	...
//	srv.SetAuth(newAuth) // model update: new connections use the new credentials
//	srv.Close()          // instance stop or delete: ends every session
//
// What OpenSSH clients get: exec with exit-status and a separate stderr,
// exit-signal when the command dies of a signal, shells with a PTY (pty-req,
// window-change, terminal modes, login shell), env requests (policy in
// [AcceptEnv]), signal requests, the "sftp" subsystem (scp and sftp),
// legacy scp (scp -O runs the instance's own scp binary), direct-tcpip
// (ssh -L, ssh -J), answered keepalives and optional server-side ClientAlive
// probes.
//
// Authentication accepts only Auth.User, with a key from Auth.AuthorizedKeys
// or, when Auth.PasswordAuth is set, the password. Failed password attempts
// are delayed (growing with each failure) and every connection is limited to
// Config.MaxAuthTries failures and to Config.AuthTimeout before it has
// authenticated. Each connection is handled on its own goroutine, so a stalled
// client never delays another one.
//
// Limits (see Limits and Config): a cap on concurrent unauthenticated
// connections with OpenSSH's MaxStartups semantics (random early drop, then
// a hard cap); a per-source failure budget (a source with too many failed
// authentications in a window is refused for a while; Config.ClientAddr
// names the real client when a proxy stands in front); and per-connection
// caps on open sessions (Config.MaxSessions) and channels of any type
// (Config.MaxChannels), answered with a resource-shortage refusal. A
// Limiter can be shared by many servers so its limits hold for all of them.
//
// Session lifetime follows OpenSSH: without a PTY the channel closes once
// the program has exited and its stdout and stderr are at EOF (a background
// job that keeps them open keeps the session open); with a PTY it closes
// when the program exits, after at most 250ms more of output. When the
// client goes away first, the program's process group gets SIGHUP, and
// SIGKILL 2s later.
//
// Non-goals: remote forwarding (ssh -R, tcpip-forward), agent and X11
// forwarding, keyboard-interactive and certificate authentication, user
// switching (there is one user per instance), deciding which uid a session
// runs as (the Runner does), and non-Linux systems.
package sshd
