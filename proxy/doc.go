// Package proxy is the userspace data path shared by the load balancer (package
// lb) and inbound NAT (package nat): it moves bytes between a client that
// arrived on a public address and a backend dialled inside a VNET.
//
// Pieces:
//
//   - Pipe copies a TCP flow both ways, half-closes with shutdown(2),
//     waits for both directions and counts bytes. A flow of two TCP
//     connections (*net.TCPConn or *tcpfd.Conn) runs on one of
//     GOMAXPROCS-1 event loops (one at least; loop_linux.go; SetLoopProcs
//     adds the P that gives every core a loop): each owns an
//     epoll set of its flows' sockets, edge-triggered, and moves the bytes
//     of every ready flow in one pass with one scratch buffer, so a flow
//     costs no goroutine and a chunk no trip through the scheduler. While
//     events keep coming (within a millisecond of the last) a loop waits
//     in epoll_pwait holding its thread and P, so that its wake-up is the
//     kernel's alone, as an HAProxy thread's is; otherwise it parks in the
//     runtime poller (its epoll descriptor is registered there) and gives
//     the P back (VMSS_PROXY_HOLD=0: always). A loop ends after a second
//     without flows or listeners, checks idle timeouts by the clock and
//     gives each socket at most 1 MiB per turn. Its socket calls are
//     made raw (package rawsys), so the kernel switching away inside one
//     does not cost the loop its P.
//     The connections are detached from the runtime poller when handed
//     over (tcpfd.Conn.Detach, no system call for a connection that never
//     waited). VMSS_PROXY_LOOPS=0 turns the loops off: then, and for other
//     net.Conn types, each direction gets a goroutine with its own loop
//     rather than io.Copy: small chunks go through recvmsg(2)/write(2) and
//     a pooled 16 KiB buffer, a chunk that fills the buffer switches the
//     direction to splice(2), and TCP_INQ (the bytes left, reported by
//     each recvmsg) lets it wait after a chunk without a read that finds
//     nothing. On both paths an optional idle timeout (Azure
//     idleTimeoutInMinutes) ends a flow between the timeout and 1.25 × it
//     after its last byte: silently (TCP_REPAIR close: nothing on the
//     wire) or with a reset both ways (enableTcpReset). PipeConfig.QuickAck
//     acknowledges the first reads at once, for peers that keep Nagle on
//     during a handshake (OpenSSH).
//   - Forwarder runs a TCP listener: accept loop with backoff on EMFILE and
//     friends, a goroutine per client until its backend is connected (then
//     the flow goes to a loop), flow tracking per backend key (count,
//     force-close; a shard of the table per loop), graceful Shutdown and
//     forced Close. With ConnectOnLoop
//     (the load balancer's and NAT's, whose dials honour tcpfd.NoWait) the
//     event loops watch the listener themselves (each with EPOLLEXCLUSIVE:
//     the kernel wakes one that waits): the loop that accepts a client
//     connects the backend and serves the flow on its goroutine, with no hand-over
//     between threads; only a client whose backend's handshake did not
//     complete within connect(2) gets a goroutine, where the dial may
//     wait. A listener of
//     HostListen (or prepared with tcpfd.ListenControl, as nsnet.ListenTCP's
//     are) is accepted from with accept4(2) as *tcpfd.Conn: no address
//     lookup and no socket option per client, since accepted sockets
//     inherit TCP_NODELAY and TCP_INQ from it.
//   - UDPForwarder forwards datagrams with a flow table keyed by the client
//     address and idle expiry.
//   - RaiseFileLimit lifts RLIMIT_NOFILE; a flow holds two descriptors
//     plus pooled pipes while it moves bytes, so 10,000 flows need a limit
//     above 20,000.
//
// Typical usage:
//
//	f := &proxy.Forwarder{
//		Listener: ln,
//		Connect: func(ctx context.Context, c net.Conn) (proxy.Target, error) {
//			b, err := dial(ctx, "tcp", "10.0.0.4:80")
//			return proxy.Target{Key: "vmss_0", Conn: b, Pipe: proxy.PipeConfig{IdleTimeout: 4 * time.Minute}}, err
//		},
//	}
//	go f.Serve(ctx)
//	...
//	f.Shutdown(ctx) // stop accepting, wait for flows (force-close when ctx ends)
//
// Non-goals: choosing backends (package lb), health probing, preserving the
// client's source address (a userspace proxy cannot), TLS, HTTP awareness.
package proxy
