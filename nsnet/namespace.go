package nsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netns"
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
func (n *Namespace) Dialer(src netip.Addr) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
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

// Close releases the namespace. Calls after Close fail; Close is idempotent.
func (n *Namespace) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.h.IsOpen() {
		return nil
	}
	return n.h.Close()
}
