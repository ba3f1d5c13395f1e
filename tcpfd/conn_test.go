package tcpfd

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listener returns a loopback listener and a Listener on it.
func listener(t *testing.T) (*net.TCPListener, *Listener) {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	raw, err := NewListener(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return l, raw
}

// acceptOne accepts one connection on raw in the background.
func acceptOne(t *testing.T, raw *Listener) <-chan *Conn {
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := raw.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	return accepted
}

func dial(t *testing.T, ctx context.Context, to netip.AddrPort) (*Conn, error) {
	t.Helper()
	fd, err := Socket(to.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return Connect(ctx, fd, to)
}

// Connect and Accept make a working pair: bytes both ways, the addresses
// each side was given, half-close, and net's errors after Close.
func TestConnectAccept(t *testing.T) {
	l, raw := listener(t)
	to := l.Addr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	accepted := acceptOne(t, raw)
	c, err := dial(t, ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	defer s.Close()

	if got := c.RemoteAddr().String(); got != to.String() {
		t.Errorf("client RemoteAddr = %s, want %s", got, to)
	}
	if got, want := s.RemoteAddr().String(), c.LocalAddr().String(); got != want {
		t.Errorf("server RemoteAddr = %s, client LocalAddr = %s", got, want)
	}
	if got := s.LocalAddr().String(); got != to.String() {
		t.Errorf("server LocalAddr = %s, want %s", got, to)
	}

	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after CloseWrite the server read %d, %v; want 0, EOF", n, err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q after its CloseWrite, %v", buf, err)
	}

	// Deadlines are the poller's and say Timeout.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline = %v, want a timeout", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close = %v, want net.ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	rc, _ := s.SyscallConn()
	if err := rc.Read(func(uintptr) bool { return true }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SyscallConn().Read after Close = %v, want net.ErrClosed", err)
	}
}

// SetLinger(0) makes Close reset the connection, as net.TCPConn's.
func TestSetLingerResets(t *testing.T) {
	l, raw := listener(t)
	ctx := context.Background()
	go func() {
		s, err := raw.Accept()
		if err != nil {
			return
		}
		s.Read(make([]byte, 1)) // the client is connected
		s.SetLinger(0)
		s.Close()
	}()
	c, err := dial(t, ctx, l.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's reset = %v, want ECONNRESET", err)
	}
}

// A refused connect, a cancelled context and a closed listener fail as
// net's would.
func TestConnectErrors(t *testing.T) {
	l, raw := listener(t)
	to := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	raw.Close()
	if _, err := raw.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
	_, err := dial(t, context.Background(), to)
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("connect to a closed port = %v, want a dial *net.OpError with ECONNREFUSED", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2, _ := listener(t)
	if _, err := dial(t, ctx, l2.Addr().(*net.TCPAddr).AddrPort()); !errors.Is(err, context.Canceled) {
		t.Errorf("connect with a cancelled context = %v, want context.Canceled", err)
	}
	// Positive control: the same listener accepts with a live context.
	c, err := dial(t, context.Background(), l2.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatalf("connect to a listener = %v", err)
	}
	c.Close()
}

// A Conn is registered with the poller only when something waits on it: a
// connect to a peer on this host and an accept leave it unregistered, and
// Detach then hands over the descriptor itself, with no system call. Once
// registered, Detach hands over a duplicate and the original is gone. The
// socket works through what Detach returned in both cases.
func TestDetach(t *testing.T) {
	l, raw := listener(t)
	to := l.Addr().(*net.TCPAddr).AddrPort()
	for _, registerFirst := range []bool{false, true} {
		accepted := acceptOne(t, raw)
		c, err := dial(t, context.Background(), to)
		if err != nil {
			t.Fatal(err)
		}
		s := <-accepted
		if s == nil {
			t.FailNow()
		}
		defer s.Close()
		if c.reg.Load() != nil || s.reg.Load() != nil {
			t.Fatalf("connected (%v) or accepted (%v) Conn registered before any wait", c.reg.Load() != nil, s.reg.Load() != nil)
		}
		own := c.fd
		if registerFirst {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if c.reg.Load() == nil {
				t.Fatal("a deadline did not register the Conn")
			}
		}
		fd, err := c.Detach()
		if err != nil {
			t.Fatal(err)
		}
		if got := fd == own; got == registerFirst {
			t.Fatalf("registered first %v: Detach returned the Conn's own descriptor: %v", registerFirst, got)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Detach: %v, want net.ErrClosed", err)
		}
		if registerFirst {
			if _, err := unix.FcntlInt(uintptr(own), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
				t.Fatalf("the original descriptor is still open after Detach (%v)", err)
			}
		}
		if _, err := unix.Write(fd, []byte("ping")); err != nil {
			t.Fatalf("write through the detached descriptor: %v", err)
		}
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("peer read %q, %v", buf, err)
		}
		unix.Close(fd)
	}
}

// Under NoWait a connect to a peer on this host completes within
// connect(2); one whose SYN goes unanswered (the listener's accept queue
// is full) fails at once with ErrWouldBlock, its socket closed.
func TestConnectNoWait(t *testing.T) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil { // room for one connection
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	to := addrPort(sa)
	ctx, cancel := context.WithTimeout(NoWait(context.Background()), 10*time.Second)
	defer cancel()
	if MayWait(ctx) || !MayWait(context.Background()) {
		t.Fatal("MayWait does not tell NoWait contexts apart")
	}
	first, err := dial(t, ctx, to)
	if err != nil {
		t.Fatalf("connect to a listener with room, without waiting: %v", err)
	}
	defer first.Close()
	fd, err := Socket(to.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, fd, to)
	if err == nil {
		c.Close()
		t.Fatal("connect to a full accept queue returned a connection")
	}
	var oe *net.OpError
	if !errors.Is(err, ErrWouldBlock) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("connect to a full accept queue without waiting = %v, want a dial *net.OpError with ErrWouldBlock", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("the socket of a connect that would block is still open (fcntl: %v)", err)
	}
}
