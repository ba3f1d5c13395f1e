// Package proxy is the userspace data path shared by the load balancer (package
// lb) and inbound NAT (package nat): it moves bytes between a client that
// arrived on a public address and a backend dialled inside a VNET.
//
// Pieces:
//
//   - Pipe copies a TCP flow both ways, half-closes with CloseWrite, waits
//     for both directions and counts bytes. It works on the raw
//     connections (*net.TCPConn or *tcpfd.Conn; no wrapper types on the
//     hot path) with its own loop rather than io.Copy: small chunks go
//     through recvmsg(2)/write(2) and a pooled 16 KiB buffer (cheaper than
//     splicing a few hundred bytes), a chunk that fills the buffer
//     switches the direction to splice(2) for bulk data. A direction stays
//     inside one RawConn.Read while bytes come, and TCP_INQ (the bytes
//     left, reported by each recvmsg) lets it wait after a chunk without a
//     read that finds nothing, as an event loop does. io.Copy also
//     splices, but it pins a pipe (two descriptors) per direction for the
//     flow's whole life, so an idle flow would hold six descriptors
//     instead of two; the loop takes pooled buffers and pipes only while
//     bytes are in transit, and reports bytes per chunk. Other net.Conn
//     types fall back to io.Copy. An optional idle timeout (Azure
//     idleTimeoutInMinutes) uses read deadlines of a quarter of the
//     timeout, re-armed when they fire; a direction that wakes checks the
//     flow's last-activity time. An idle flow is dropped silently
//     (TCP_REPAIR close: nothing on the wire) or reset both ways
//     (enableTcpReset). PipeConfig.QuickAck acknowledges the first reads
//     at once, for peers that keep Nagle on during a handshake (OpenSSH).
//   - Forwarder runs a TCP listener: accept loop with backoff on EMFILE and
//     friends, a goroutine per flow, flow tracking per backend key (count,
//     force-close), graceful Shutdown and forced Close. A listener of
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
