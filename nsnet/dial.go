package nsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
	"github.com/vmss-emulator/vmss/tcpfd"
	"golang.org/x/sys/unix"
)

// DialFunc has the shape of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns a DialFunc whose connections are made from inside the
// network namespace at nsPath ("" = the process namespace). Networks are
// tcp, tcp4, tcp6, udp, udp4, udp6; the host in addr must be an IP address
// (names are not resolved: a lookup would not happen inside the namespace).
//
// Each dial opens nsPath, so a namespace that is deleted and created again
// under the same name is picked up, and nothing is held open between dials.
// The thread is switched only while the socket is created; the connect and
// the wait for it happen on an ordinary thread. For the hot path, Open the
// namespace once and use Namespace.Dialer, which saves the open.
func Dialer(nsPath string) DialFunc { return DialerFrom(nsPath, netip.Addr{}) }

// DialerFrom is Dialer with the local address bound to src (port chosen by
// the kernel). src must be an address of the namespace, for example
// 168.63.129.16 on a VNET's loopback, the source of load balancer probes.
// The zero src lets the kernel choose. It always waits for the handshake:
// under tcpfd.NoWait it fails with tcpfd.ErrWouldBlock.
func DialerFrom(nsPath string, src netip.Addr) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !tcpfd.MayWait(ctx) {
			return nil, fmt.Errorf("dial %s %s: %w", network, addr, tcpfd.ErrWouldBlock)
		}
		d, err := dialer(network, addr, src)
		if err != nil {
			return nil, err
		}
		if nsPath == "" {
			return d.DialContext(ctx, network, addr)
		}
		h, err := open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
		}
		defer h.Close()
		return dialIn(ctx, d, h, nsPath, network, addr)
	}
}

// dialer returns a net.Dialer for one literal address.
func dialer(network, addr string, src netip.Addr) (*net.Dialer, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("dial %s %s: unsupported network (want tcp or udp)", network, addr)
	}
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return nil, fmt.Errorf("dial %s %s: want IP:port, names are not resolved: %w", network, addr, err)
	}
	// No TCP keepalive: the dialled connections are short proxy legs, and
	// the three setsockopt calls per dial are measurable on the LB's hot path.
	d := &net.Dialer{KeepAlive: -1}
	if src.IsValid() {
		ap := netip.AddrPortFrom(src, 0)
		if network[:3] == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		}
		d.ControlContext = func(_ context.Context, network, _ string, rc syscall.RawConn) error {
			return bindNoPort(d, network, rc)
		}
	}
	return d, nil
}

// bindNoPort defers the choice of a TCP connection's local port from bind
// to connect (IP_BIND_ADDRESS_NO_PORT) when the dialer binds a source
// address: bind alone must take a port no other socket of that address
// holds, for every destination, so thousands of flows from one address
// (a load balancer's) run out of ports, while connect reuses a port for
// other destinations and after TIME_WAIT.
func bindNoPort(d *net.Dialer, network string, rc syscall.RawConn) error {
	if d.LocalAddr == nil || network[:3] != "tcp" {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// dialIn dials with d from inside target (d's control hook is replaced).
// The dial runs on its own goroutine, locked to its thread and switched into
// target; the control hook, which runs right after the socket is created,
// switches the thread back and unlocks it, so connecting and waiting cost
// no more than an ordinary dial.
// If the thread cannot be switched back, the goroutine ends still locked
// and the runtime discards the thread.
func dialIn(ctx context.Context, d *net.Dialer, target netns.NsHandle, nsPath, network, addr string) (net.Conn, error) {
	home, err := origin()
	if err != nil {
		return nil, err
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(target), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("dial %s %s: enter network namespace %s: %w", network, addr, nsPath, err)}
			return
		}
		switched := true
		back := func() error {
			switched = false
			if err := unix.Setns(int(home), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("return from network namespace %s: %w (thread discarded)", nsPath, err)
			}
			runtime.UnlockOSThread()
			return nil
		}
		d.ControlContext = func(_ context.Context, network, _ string, rc syscall.RawConn) error {
			if !switched {
				return errors.New("second socket for one dial; only IP addresses are dialed")
			}
			return errors.Join(bindNoPort(d, network, rc), back())
		}
		c, err := d.DialContext(ctx, network, addr)
		if switched {
			err = errors.Join(err, back())
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			done <- result{nil, fmt.Errorf("network namespace %s: %w", nsPath, err)}
			return
		}
		done <- result{c, nil}
	}()
	r := <-done
	return r.c, r.err
}
