package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenFunc opens a stream listener, e.g. inside a VNET namespace.
type ListenFunc func(ctx context.Context, network, address string) (net.Listener, error)

// ListenPacketFunc opens a datagram socket, e.g. inside a VNET namespace.
type ListenPacketFunc func(ctx context.Context, network, address string) (net.PacketConn, error)

// DialFunc dials a backend, e.g. inside a VNET namespace.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// HostListen listens in the calling process's namespace. Accepted
// connections get no TCP keepalive: the proxy's idle timeout governs idle
// flows (Azure's load balancer sends no keepalives of its own either), and
// it saves four setsockopt calls per connection. Namespace-aware seams
// should do the same (net.ListenConfig{KeepAlive: -1}). The socket is
// plain TCP, not MPTCP (Go's default for listeners), with the options
// accepted sockets inherit set before it listens (ListenControl), so that
// a Forwarder accepts without setting options per connection.
func HostListen(ctx context.Context, network, address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: ListenControl}
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, network, address)
}

// ListenControl is a net.ListenConfig.Control that prepares a TCP
// listening socket for a Forwarder: TCP_NODELAY (as net sets it on every
// connection) and TCP_INQ (the pipe's reads learn that nothing is left;
// see splice_linux.go), which accepted sockets inherit from it. Other
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

// prepared reports whether a listening socket has the options of
// ListenControl.
func prepared(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		inq, err1 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ)
		nd, err2 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		ok = err1 == nil && err2 == nil && inq == 1 && nd == 1
	})
	return ok
}

// HostListenPacket opens a datagram socket in the calling process's namespace.
func HostListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, address)
}

// HostDial dials from the calling process's namespace, without TCP
// keepalive (see HostListen; seams should use net.Dialer{KeepAlive: -1}).
func HostDial(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: -1}
	return d.DialContext(ctx, network, address)
}

// AddrInUseError says a frontend address is taken by someone else.
type AddrInUseError struct {
	Network string // "tcp" or "udp"
	Addr    string // ip:port
	Owner   string // what wanted it, e.g. "inbound NAT rule natpool.0"; may be empty
	Err     error
}

func (e *AddrInUseError) Error() string {
	who := ""
	if e.Owner != "" {
		who = " for " + e.Owner
	}
	_, port, _ := net.SplitHostPort(e.Addr)
	flag := "t"
	if e.Network == "udp" {
		flag = "u"
	}
	return fmt.Sprintf("%s/%s%s is already in use by another program; free it (`ss -%slnp 'sport = :%s'` shows the owner) or move the public IP to another loopback address",
		e.Addr, e.Network, who, flag, port)
}

func (e *AddrInUseError) Unwrap() error { return e.Err }

// ClassifyListenError turns EADDRINUSE into an *AddrInUseError and wraps
// other errors with the address.
func ClassifyListenError(network, addr, owner string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return &AddrInUseError{Network: network, Addr: addr, Owner: owner, Err: err}
	}
	if owner != "" {
		return fmt.Errorf("listen on %s/%s for %s: %w", addr, network, owner, err)
	}
	return fmt.Errorf("listen on %s/%s: %w", addr, network, err)
}
