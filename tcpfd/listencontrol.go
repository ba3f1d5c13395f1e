package tcpfd

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenControl is a net.ListenConfig.Control that prepares a TCP
// listening socket for accepting with Listener: TCP_NODELAY (as net sets
// it on every connection) and TCP_INQ (recvmsg(2) reports the bytes left,
// so a reader learns that nothing is left without an empty read), which
// accepted sockets inherit from it. Other
// networks are left alone. Use it with SetMultipathTCP(false): an MPTCP
// listener takes the options but its TCP connections do not inherit
// TCP_INQ.
func ListenControl(network, _ string, rc syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.TCP_NODELAY, unix.TCP_INQ} {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, opt, 1); err != nil {
				serr = errors.Join(serr, os.NewSyscallError("setsockopt", err))
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// Prepared reports whether a listening socket has the options of
// ListenControl.
func Prepared(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		inq, err1 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ)
		nd, err2 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		ok = err1 == nil && err2 == nil && inq == 1 && nd == 1
	})
	return ok
}
