package tcpfd

import (
	"context"
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/rawsys"
)

// ErrWouldBlock is the error of a dial that would have had to wait for its
// handshake under a context made by NoWait. Nothing was left behind: the
// socket is closed before the handshake completed, so the peer never
// accepted the connection.
var ErrWouldBlock = errors.New("connect would block")

type noWaitKey struct{}

// NoWait returns a context under which Connect does not wait for a
// handshake that connect(2) did not complete at once: it fails with
// ErrWouldBlock instead. An event loop dials under it, to connect a client
// at once when the peer is on this host (its handshake completes within
// connect(2)) and to hand the client to a goroutine of its own otherwise.
func NoWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// MayWait reports whether a dial under ctx may wait for its handshake
// (ctx was not made by NoWait). A dial function that cannot connect
// without waiting must fail with ErrWouldBlock when it may not.
func MayWait(ctx context.Context) bool { return ctx.Value(noWaitKey{}) == nil }

// Accept takes one connection from the listening socket fd with
// accept4(2), non-blocking and close-on-exec, and wraps it (not
// registered with the poller). With nothing queued the error is
// unix.EAGAIN, unwrapped, for event loops to test.
func Accept(fd int) (*Conn, error) {
	for {
		nfd, remote, err := rawsys.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			return New(nfd, remote)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return nil, unix.EAGAIN
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
	}
}
