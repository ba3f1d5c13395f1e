package nsnet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/rawsys"
	"github.com/vmss-emulator/vmss/tcpfd"
)

// A socket belongs to the namespace it was made in, for its whole life;
// binding and connecting it work from any thread. So a Namespace makes its
// dial sockets ahead of time, a batch at a time on one thread switched in
// and out (two setns(2) calls), and a dial takes one and connects it where
// it runs: no thread is locked or switched per connection.

// A refill makes minSocketBatch sockets, twice as many as the last one
// when that came less than refillSoon before, up to maxSocketBatch: a load
// balancer opening thousands of connections a second refills a few times a
// second (each refill hands the work to a goroutine and back, and blocks
// the dialling event loop meanwhile), a namespace dialled now and then
// keeps few spare sockets. An unconnected socket holds a descriptor and a
// little kernel memory.
const (
	minSocketBatch = 16
	maxSocketBatch = 256
	refillSoon     = time.Second
)

// nextBatch is the size of a refill that comes a duration since after the
// last one, which made prev sockets (prev 0: there was none).
func nextBatch(prev int, since time.Duration) int {
	if prev == 0 || since >= refillSoon {
		return minSocketBatch
	}
	return min(2*prev, maxSocketBatch)
}

// socketPool holds unconnected IPv4 TCP sockets of one namespace.
type socketPool struct {
	mu     sync.Mutex
	fds    []int
	closed bool
	batch  int       // size of the last refill
	filled time.Time // when it ran
}

// take returns a socket, refilling the pool with fill (n more sockets)
// when it is empty.
func (p *socketPool) take(fill func(into []int, n int) ([]int, error)) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return -1, errClosed
	}
	if len(p.fds) == 0 {
		t := time.Now()
		p.batch = nextBatch(p.batch, t.Sub(p.filled))
		p.filled = t
		fds, err := fill(p.fds[:0], p.batch)
		p.fds = fds
		if len(p.fds) == 0 {
			return -1, err
		}
	}
	fd := p.fds[len(p.fds)-1]
	p.fds = p.fds[:len(p.fds)-1]
	return fd, nil
}

// close closes the spare sockets; take fails afterwards.
func (p *socketPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fd := range p.fds {
		unix.Close(fd)
	}
	p.fds, p.closed = nil, true
}

// socket4 takes a fresh IPv4 TCP socket of the namespace.
func (n *Namespace) socket4() (int, error) {
	return n.spare.take(func(into []int, batch int) ([]int, error) {
		n.mu.RLock()
		defer n.mu.RUnlock()
		if !n.h.IsOpen() {
			return into, fmt.Errorf("%s: %w", n.path, errClosed)
		}
		err := doIn(n.h, n.path, func() error {
			for range batch {
				fd, err := tcpfd.Socket(netip.IPv4Unspecified())
				if err != nil {
					return err
				}
				into = append(into, fd)
			}
			return nil
		})
		return into, err
	})
}

// dialTCP4 connects a pooled socket to dst, from src when it is valid.
func (n *Namespace) dialTCP4(ctx context.Context, src netip.Addr, dst netip.AddrPort) (*tcpfd.Conn, error) {
	fd, err := n.socket4()
	if err != nil {
		return nil, fmt.Errorf("dial tcp %s: %w", dst, err)
	}
	if src.IsValid() {
		if err := bindSource(fd, src); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("dial tcp %s from %s in network namespace %s: %w", dst, src, n.path, err)
		}
	}
	c, err := tcpfd.Connect(ctx, fd, dst)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", n.path, err)
	}
	return c, nil
}

// bindSource binds fd to src with the port left to connect
// (IP_BIND_ADDRESS_NO_PORT; see bindNoPort).
func bindSource(fd int, src netip.Addr) error {
	if err := rawsys.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return os.NewSyscallError("bind", rawsys.Bind(fd, netip.AddrPortFrom(src, 0)))
}
