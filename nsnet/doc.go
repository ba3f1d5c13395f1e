// Package nsnet does socket work inside Linux network namespaces from one
// Go process: listen, dial and run code in any namespace without touching
// the process's own namespace.
//
// A socket belongs to the namespace of the thread that created it, for its
// whole life, and may then be used from any goroutine. So the package locks
// a goroutine to its OS thread, switches the thread into the namespace
// (setns), creates the socket and switches back. If switching back fails,
// the thread is never unlocked and the runtime discards it, so no other
// goroutine ever runs in the wrong namespace.
//
// Typical usage:
//
//	l, err := nsnet.ListenTCP(ctx, nsnet.Path("vmss-vnet-demo"), "168.63.129.16:53")
//
//	ns, err := nsnet.Open(nsnet.Path("vmss-vnet-demo")) // once, on the owner's start
//	defer ns.Close()
//	dial := ns.Dialer(netip.Addr{})                   // per backend connection:
//	c, err := dial(ctx, "tcp", "10.0.0.4:80")
//
//	err = nsnet.Do(path, func() error { return cmd.Start() }) // child starts inside
//
// Dials switch the thread only for the socket(2) call: the dialer's control
// hook switches back and unlocks right after the socket exists, so the
// connect and the wait for it run like any other dial. Measured on a 2-core
// VM the added cost is about two setns(2) calls (~3 µs) plus a goroutine
// handoff; see BenchmarkDial. An open Namespace's TCP dials to IPv4
// addresses switch no thread at all: its sockets are made ahead of time,
// 32 per switch in and out, and connected where the dial runs, as
// *tcpfd.Conn (no address lookups after the connect).
//
// ListenTCP listens on plain TCP (not Go's default MPTCP) with TCP_NODELAY
// and TCP_INQ set before listen(2), so that accepted sockets inherit them.
//
// Named namespaces live in RunDir (/run/netns) as iproute2's do: Create,
// Remove, Exists and List manage them. As `ip netns add` does, RunDir is
// made a shared mount point of itself (EnsureRunDir) before the first
// namespace is mounted there; Remove also unmounts a namespace that an
// older order of mounts left covered under that mount point.
//
// Non-goals: resolving host names inside a namespace (dial IP addresses),
// creating other kinds of namespaces, and configuring links or addresses
// (see package vnet).
package nsnet
