package tcpfd

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/rawsys"
)

// Conn is a TCP connection on a non-blocking descriptor. Safe for
// concurrent use as a net.Conn is (one reader and one writer at a time).
//
// The descriptor is registered with the runtime poller on the first call
// that may wait (Read, Write, deadlines, SyscallConn's Read and Write), not
// before: a connection that is only handed on (Detach) or closed costs no
// registration.
type Conn struct {
	fd     int // the descriptor; os.File owns it once registered
	reg    atomic.Pointer[registered]
	regMu  sync.Mutex // registration and closing of an unregistered fd
	remote netip.AddrPort
	closed atomic.Bool

	mu    sync.Mutex
	local net.Addr // asked for on first use
}

// registered is a Conn's descriptor as the runtime poller knows it.
type registered struct {
	f   *os.File
	raw syscall.RawConn
}

var _ net.Conn = (*Conn)(nil)

// New takes ownership of fd, a non-blocking TCP socket. remote is the
// peer's address (reported by RemoteAddr; never checked). The error is
// always nil: the descriptor is registered with the poller when first
// waited on.
func New(fd int, remote netip.AddrPort) (*Conn, error) {
	return &Conn{fd: fd, remote: remote}, nil
}

// os returns the registered descriptor, registering it on first use.
func (c *Conn) os() (*registered, error) {
	if r := c.reg.Load(); r != nil {
		return r, nil
	}
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if r := c.reg.Load(); r != nil {
		return r, nil
	}
	if c.closed.Load() {
		return nil, net.ErrClosed
	}
	f := os.NewFile(uintptr(c.fd), "tcp")
	if f == nil {
		return nil, syscall.EBADF
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err // f is left to its finalizer: it owns nothing else
	}
	r := &registered{f: f, raw: raw}
	c.reg.Store(r)
	return r, nil
}

// withFD runs fn on the descriptor without registering it, if it is not
// registered yet, and reports whether it did. Closing waits for fn.
func (c *Conn) withFD(fn func(fd int)) (done bool, err error) {
	if c.reg.Load() != nil {
		return false, nil
	}
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if c.reg.Load() != nil {
		return false, nil
	}
	if c.closed.Load() {
		return true, net.ErrClosed
	}
	fn(c.fd)
	return true, nil
}

// Listener accepts connections of a listening socket with accept4(2) as
// Conns. net's TCPListener gives no way to wait for a connection on its
// descriptor, so the Listener works on a duplicate of it, registered with
// the poller (the two share the socket: options set on one are the
// other's). The socket stays open until both are closed.
type Listener struct {
	f      *os.File
	raw    syscall.RawConn
	closed atomic.Bool
}

// NewListener returns a Listener on the socket of l; l keeps working (its
// Addr, its Close) and must be closed as well.
func NewListener(l *net.TCPListener) (*Listener, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd, err := Dup(rc)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "tcp-listener")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Listener{f: f, raw: raw}, nil
}

// Accept takes the next connection, non-blocking and close-on-exec, and
// wraps it. It waits through the poller and fails with net.ErrClosed once
// the Listener is closed.
func (l *Listener) Accept() (*Conn, error) {
	var (
		c   *Conn
		err error
	)
	rerr := l.raw.Read(func(fd uintptr) bool {
		c, err = Accept(int(fd))
		return err != unix.EAGAIN
	})
	if rerr != nil {
		if l.closed.Load() {
			rerr = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: rerr}
	}
	return c, err
}

// Close closes the Listener's descriptor; an Accept waiting returns.
func (l *Listener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	return l.f.Close()
}

// Connect connects fd, a fresh non-blocking TCP socket of remote's family
// (bound or not), to remote, and returns once the handshake is done, ctx
// ends, or the connect fails; under a context made by NoWait it fails with
// ErrWouldBlock instead of waiting. fd is registered with the poller
// before the wait, so the completion is never missed. On error fd is
// closed.
func Connect(ctx context.Context, fd int, remote netip.AddrPort) (*Conn, error) {
	c := &Conn{fd: fd, remote: remote}
	fail := func(cerr error) (*Conn, error) {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(remote), Err: cerr}
	}
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errTimeout{}
		}
		return fail(err)
	}
	var cerr error
	for {
		if cerr = rawsys.Connect(fd, remote); cerr != unix.EINTR {
			break
		}
	}
	switch cerr {
	case nil:
		return c, nil
	case unix.EINPROGRESS, unix.EALREADY:
	default:
		return fail(os.NewSyscallError("connect", cerr))
	}
	// A peer on this host has often answered before connect returned:
	// then the Conn needs no registration to wait.
	if done, err := connectDone(fd); done {
		if err != nil {
			return fail(err)
		}
		return c, nil
	}
	if !MayWait(ctx) {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(remote), Err: ErrWouldBlock}
	}
	r, err := c.os()
	if err != nil {
		return fail(err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = r.f.SetWriteDeadline(d) // a pollable file: cannot fail
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = r.f.SetWriteDeadline(aLongTimeAgo) })
	}
	werr := r.raw.Write(func(fd uintptr) bool {
		var done bool
		done, cerr = connectDone(int(fd))
		return done
	})
	if stop != nil {
		stop()
	}
	if werr == nil && cerr == nil && ctx.Err() == nil {
		_ = r.f.SetWriteDeadline(time.Time{})
		return c, nil
	}
	switch {
	case ctx.Err() != nil:
		cerr = ctx.Err()
		if errors.Is(cerr, context.DeadlineExceeded) {
			cerr = errTimeout{}
		}
	case werr != nil && errors.Is(werr, os.ErrDeadlineExceeded):
		cerr = errTimeout{}
	case cerr == nil:
		cerr = werr
	}
	return fail(cerr)
}

// connectDone tells a connect's outcome in one call: established (done,
// nil), still in progress (not done), or failed (done, the error).
func connectDone(fd int) (bool, error) {
	state, err := rawsys.TCPState(fd)
	if err != nil {
		return true, os.NewSyscallError("getsockopt", err)
	}
	switch state {
	case tcpSynSent:
		return false, nil
	case tcpClose:
		soerr, err := rawsys.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return true, os.NewSyscallError("getsockopt", err)
		}
		if soerr != 0 {
			return true, os.NewSyscallError("connect", syscall.Errno(soerr))
		}
		return true, os.NewSyscallError("connect", syscall.ECONNREFUSED)
	}
	return true, nil
}

var aLongTimeAgo = time.Unix(1, 0)

// TCP states of linux/tcp_states.h, as TCP_INFO reports them.
const (
	tcpSynSent = 2
	tcpClose   = 7
)

// errTimeout is a connect that ran out of time: a net.Error with Timeout.
type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
func (errTimeout) Is(err error) bool {
	return err == context.DeadlineExceeded || err == os.ErrDeadlineExceeded
}

// Read implements net.Conn.
func (c *Conn) Read(b []byte) (int, error) {
	r, err := c.os()
	if err != nil {
		return 0, c.opError("read", err)
	}
	n, err := r.f.Read(b)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	r, err := c.os()
	if err != nil {
		return 0, c.opError("write", err)
	}
	n, err := r.f.Write(b)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// Close implements net.Conn.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	c.regMu.Lock()
	r := c.reg.Load()
	if r == nil {
		err := unix.Close(c.fd)
		c.regMu.Unlock()
		if err != nil {
			return c.opError("close", os.NewSyscallError("close", err))
		}
		return nil
	}
	c.regMu.Unlock()
	if err := r.f.Close(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// Detach hands the socket over to the caller and closes the Conn: it
// returns a descriptor of the socket that the runtime poller does not
// watch, non-blocking. That is the Conn's own descriptor if it was never
// registered (no system call), else a duplicate (the original is
// deregistered and closed). An event loop of the caller's can then watch
// it without the runtime's poller waking up for it too. On error the Conn
// is unchanged.
func (c *Conn) Detach() (int, error) {
	c.regMu.Lock()
	if c.reg.Load() == nil {
		defer c.regMu.Unlock()
		if c.closed.Swap(true) {
			return -1, c.opError("detach", net.ErrClosed)
		}
		return c.fd, nil
	}
	c.regMu.Unlock()
	nfd, err := Dup(c.reg.Load().raw)
	if err != nil {
		return -1, c.opError("detach", err)
	}
	_ = c.Close() // deregisters and closes the original; the duplicate keeps the socket
	return nfd, nil
}

// Dup returns a close-on-exec duplicate of the descriptor behind rc, which
// no poller watches; the caller owns it.
func Dup(rc syscall.RawConn) (int, error) {
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return nfd, nil
}

// CloseWrite shuts down the sending side (FIN), as net.TCPConn.CloseWrite.
func (c *Conn) CloseWrite() error { return c.shutdown("close", unix.SHUT_WR) }

// CloseRead shuts down the receiving side, as net.TCPConn.CloseRead.
func (c *Conn) CloseRead() error { return c.shutdown("close", unix.SHUT_RD) }

func (c *Conn) shutdown(op string, how int) error {
	return c.control(op, func(fd int) error { return os.NewSyscallError("shutdown", unix.Shutdown(fd, how)) })
}

// SetLinger is net.TCPConn.SetLinger: 0 makes Close send RST.
func (c *Conn) SetLinger(sec int) error {
	l := unix.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return c.control("set", func(fd int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l))
	})
}

// SetNoDelay is net.TCPConn.SetNoDelay.
func (c *Conn) SetNoDelay(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return c.control("set", func(fd int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v))
	})
}

func (c *Conn) control(op string, fn func(fd int) error) error {
	var ferr error
	err := rawConn{c}.Control(func(fd uintptr) { ferr = fn(int(fd)) })
	if err != nil {
		return c.opError(op, err)
	}
	if ferr != nil {
		return c.opError(op, ferr)
	}
	return nil
}

// SyscallConn gives the descriptor to splice(2) and friends. Its Read,
// Write and Control report net.ErrClosed once the Conn is closed.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return rawConn{c}, nil }

type rawConn struct{ c *Conn }

// Control runs f on the descriptor; it does not register it.
func (r rawConn) Control(f func(uintptr)) error {
	if done, err := r.c.withFD(func(fd int) { f(uintptr(fd)) }); done {
		return err
	}
	return r.c.rawErr(r.c.reg.Load().raw.Control(f))
}

func (r rawConn) Read(f func(uintptr) bool) error {
	reg, err := r.c.os()
	if err != nil {
		return r.c.rawErr(err)
	}
	return r.c.rawErr(reg.raw.Read(f))
}

func (r rawConn) Write(f func(uintptr) bool) error {
	reg, err := r.c.os()
	if err != nil {
		return r.c.rawErr(err)
	}
	return r.c.rawErr(reg.raw.Write(f))
}

// rawErr turns os's "use of closed file" into net's error for a closed
// connection; deadlines stay os.ErrDeadlineExceeded.
func (c *Conn) rawErr(err error) error {
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// RemoteAddr implements net.Conn: the address given when the Conn was made.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// RemoteAddrPort is RemoteAddr without an allocation.
func (c *Conn) RemoteAddrPort() netip.AddrPort { return c.remote }

// LocalAddr implements net.Conn; the kernel is asked on the first call.
func (c *Conn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local != nil {
		return c.local
	}
	var sa unix.Sockaddr
	if (rawConn{c}).Control(func(fd uintptr) { sa, _ = unix.Getsockname(int(fd)) }) != nil || sa == nil {
		return &net.TCPAddr{} // closed: as net, an empty address
	}
	c.local = net.TCPAddrFromAddrPort(addrPort(sa))
	return c.local
}

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	return c.deadline(func(f *os.File) error { return f.SetDeadline(t) })
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.deadline(func(f *os.File) error { return f.SetReadDeadline(t) })
}

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.deadline(func(f *os.File) error { return f.SetWriteDeadline(t) })
}

func (c *Conn) deadline(set func(*os.File) error) error {
	r, err := c.os()
	if err == nil {
		err = set(r.f)
	}
	if err != nil {
		return c.opError("set", err)
	}
	return nil
}

// opError is the *net.OpError net would return: os's wrapping removed,
// a closed file reported as net.ErrClosed.
func (c *Conn) opError(op string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) || (c.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded)) {
		err = net.ErrClosed
	}
	var se *os.SyscallError
	if errno, ok := err.(syscall.Errno); ok && !errors.As(err, &se) {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: nil, Addr: net.TCPAddrFromAddrPort(c.remote), Err: err}
}

func addrPort(sa any) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// Socket makes a non-blocking, close-on-exec TCP socket of the family of
// a (IPv4 or IPv6) in the calling thread's network namespace, with
// TCP_NODELAY set as net sets it on its connections.
func Socket(a netip.Addr) (int, error) {
	family := unix.AF_INET
	if !a.Unmap().Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	return fd, nil
}
