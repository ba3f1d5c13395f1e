// Package tcpfd is a TCP connection on a raw non-blocking descriptor,
// registered with the Go runtime's poller through os.NewFile: a net.Conn
// without the system calls net.TCPConn makes on every accept and dial.
//
// net's accept asks the kernel for the local address (getsockname) and sets
// TCP_NODELAY; its dial asks for both addresses (getsockname, getpeername)
// and sets TCP_NODELAY after the connect. A proxy knows the peer from
// accept4's or connect's arguments, never needs the local address on its
// hot path, and gets TCP_NODELAY from the listening socket (Linux copies it
// into accepted sockets) or sets it once when the socket is made. Here the
// addresses are what the caller passed, the local one asked for only when
// LocalAddr is called.
//
// Pieces:
//
//   - New wraps a connected (or connecting) non-blocking descriptor.
//   - Listener takes the connections of a net.TCPListener's socket with
//     accept4(2).
//   - Connect starts a non-blocking connect(2) on a fresh socket and waits
//     for it through the poller; the socket may have been made in another
//     network namespace (see nsnet). Under a context made by NoWait it does
//     not wait: a handshake that connect(2) did not complete fails with
//     ErrWouldBlock (an event loop's dial, which must not block).
//   - Accept takes one connection from a listening descriptor, for event
//     loops that watch the listener themselves.
//
// A Conn behaves as a *net.TCPConn for its users: errors are *net.OpError,
// a closed Conn reports net.ErrClosed, deadlines are the poller's, and it
// offers CloseWrite, SetLinger and SyscallConn (for splice(2) and socket
// options).
//
// Non-goals: IPv6 scopes, listening (use net.ListenConfig), TCP keepalive.
package tcpfd
