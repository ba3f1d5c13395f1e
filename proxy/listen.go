package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vmss-emulator/vmss/tcpfd"
)

// DialTCP dials addr over TCP with dial, for at most timeout. Under
// tcpfd.NoWait the dial does not wait at all (see DialFunc) and needs no
// timer.
func DialTCP(ctx context.Context, dial DialFunc, addr string, timeout time.Duration) (net.Conn, error) {
	if !tcpfd.MayWait(ctx) {
		return dial(ctx, "tcp", addr)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return dial(dctx, "tcp", addr)
}

// ListenFunc opens a stream listener, e.g. inside a VNET namespace.
type ListenFunc func(ctx context.Context, network, address string) (net.Listener, error)

// ListenPacketFunc opens a datagram socket, e.g. inside a VNET namespace.
type ListenPacketFunc func(ctx context.Context, network, address string) (net.PacketConn, error)

// DialFunc dials a backend, e.g. inside a VNET namespace. Under a context
// made by tcpfd.NoWait (a Forwarder's event loop dialling) it must not
// wait for a TCP handshake: it fails with an error matching
// tcpfd.ErrWouldBlock instead, as tcpfd.Connect, HostDial and nsnet's
// dialers do.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// HostListen listens in the calling process's namespace. Accepted
// connections get no TCP keepalive: the proxy's idle timeout governs idle
// flows (Azure's load balancer sends no keepalives of its own either), and
// it saves four setsockopt calls per connection. Namespace-aware seams
// should do the same (net.ListenConfig{KeepAlive: -1}). The socket is
// plain TCP, not MPTCP (Go's default for listeners), with the options
// accepted sockets inherit set before it listens (tcpfd.ListenControl), so that
// a Forwarder accepts without setting options per connection.
func HostListen(ctx context.Context, network, address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: tcpfd.ListenControl}
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, network, address)
}

// HostListenPacket opens a datagram socket in the calling process's namespace.
func HostListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, address)
}

// HostDial dials from the calling process's namespace, without TCP
// keepalive (see HostListen; seams should use net.Dialer{KeepAlive: -1}).
//
// Under tcpfd.NoWait (an event loop dialling) a TCP address connects on a
// tcpfd socket, which fails with tcpfd.ErrWouldBlock instead of waiting for
// a handshake that connect(2) did not complete; other addresses fail so at
// once.
func HostDial(ctx context.Context, network, address string) (net.Conn, error) {
	if !tcpfd.MayWait(ctx) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || (network != "tcp" && network != "tcp4" && network != "tcp6") {
			return nil, fmt.Errorf("dial %s %s: %w", network, address, tcpfd.ErrWouldBlock)
		}
		fd, err := tcpfd.Socket(ap.Addr())
		if err != nil {
			return nil, fmt.Errorf("dial %s %s: %w", network, address, err)
		}
		c, err := tcpfd.Connect(ctx, fd, ap)
		if err != nil {
			return nil, err // a nil *tcpfd.Conn must not become a non-nil net.Conn
		}
		return c, nil
	}
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
