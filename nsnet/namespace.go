package nsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netns"
	"github.com/vmss-emulator/vmss/tcpfd"
)

// Namespace is an open network namespace. It saves reopening the namespace
// file on every call, which matters on hot paths such as a load balancer
// dialing a backend per client connection. It keeps the namespace alive
// until Close, even after the name is removed: close it when the owner of
// the namespace (a VNET, an instance) goes away. Safe for concurrent use.
type Namespace struct {
	path string

	mu sync.RWMutex // guards h against Close during use
	h  netns.NsHandle

	spare socketPool // IPv4 TCP sockets made inside, for Dialer
}

// Open opens the namespace at nsPath (for example Path("vmss-vnet-x")).
func Open(nsPath string) (*Namespace, error) {
	h, err := open(nsPath)
	if err != nil {
		return nil, err
	}
	return &Namespace{path: nsPath, h: h}, nil
}

// Path returns the path the namespace was opened from.
func (n *Namespace) Path() string { return n.path }

var errClosed = errors.New("namespace handle is closed")

// Do is the package-level Do for this namespace.
func (n *Namespace) Do(fn func() error) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.h.IsOpen() {
		return fmt.Errorf("%s: %w", n.path, errClosed)
	}
	return doIn(n.h, n.path, fn)
}

// Dialer is the package-level DialerFrom for this namespace; the zero src
// lets the kernel choose the source address.
//
// TCP to an IPv4 address takes its socket from a small pool of sockets made
// inside the namespace in batches (one switch of a thread in and out per
// batch, not per dial) and connects it from any thread: the connection is a
// *tcpfd.Conn, which makes none of the address lookups net's dial does.
// Other networks dial as the package-level DialerFrom does, which waits for
// the handshake: under tcpfd.NoWait they fail with tcpfd.ErrWouldBlock.
func (n *Namespace) Dialer(src netip.Addr) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network == "tcp" || network == "tcp4" {
			if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is4() && (!src.IsValid() || src.Is4()) {
				c, err := n.dialTCP4(ctx, src, ap)
				if err != nil {
					return nil, err // a nil *tcpfd.Conn must not become a non-nil net.Conn
				}
				return c, nil
			}
		}
		if !tcpfd.MayWait(ctx) {
			return nil, fmt.Errorf("dial %s %s: %w", network, addr, tcpfd.ErrWouldBlock)
		}
		d, err := dialer(network, addr, src)
		if err != nil {
			return nil, err
		}
		n.mu.RLock()
		defer n.mu.RUnlock()
		if !n.h.IsOpen() {
			return nil, fmt.Errorf("dial %s %s: %s: %w", network, addr, n.path, errClosed)
		}
		return dialIn(ctx, d, n.h, n.path, network, addr)
	}
}

// Close releases the namespace and its spare sockets. Calls after Close
// fail; Close is idempotent.
func (n *Namespace) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.h.IsOpen() {
		return nil
	}
	n.spare.close()
	return n.h.Close()
}
