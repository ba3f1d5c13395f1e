package rawsys

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func socket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitFor polls fd until it has one of events (the calls here never wait).
func waitFor(t *testing.T, fd int, events int16) {
	t.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	if n, err := unix.Poll(p, 5000); n != 1 || err != nil {
		t.Fatalf("poll %d for %#x: %d, %v", fd, events, n, err)
	}
}

// The raw calls do what their unix counterparts do, over a loopback
// connection: bind, connect, accept with the peer's address, a TCP state,
// options, read and write, shutdown, close; and errors come back as
// values equal to the unix package's.
func TestLoopbackConnection(t *testing.T) {
	ln := socket(t)
	defer unix.Close(ln)
	if err := Bind(ln, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 8); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*unix.SockaddrInet4).Addr), uint16(sa.(*unix.SockaddrInet4).Port))
	if _, _, err := Accept4(ln, unix.SOCK_NONBLOCK); err != unix.EAGAIN {
		t.Fatalf("accept with nobody queued = %v, want EAGAIN", err)
	}

	c := socket(t)
	if err := Bind(c, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := Connect(c, addr); err != nil && err != unix.EINPROGRESS {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	waitFor(t, c, unix.POLLOUT)
	if st, err := TCPState(c); err != nil || st != 1 {
		t.Fatalf("TCP state after connect = %d, %v; want 1 (established)", st, err)
	}
	if soerr, err := GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 || err != nil {
		t.Fatalf("SO_ERROR = %d, %v", soerr, err)
	}
	csa, _ := unix.Getsockname(c)
	local := netip.AddrPortFrom(netip.AddrFrom4(csa.(*unix.SockaddrInet4).Addr), uint16(csa.(*unix.SockaddrInet4).Port))

	waitFor(t, ln, unix.POLLIN)
	s, remote, err := Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if remote != local {
		t.Fatalf("accept says the client is %s; it is %s", remote, local)
	}

	if err := SetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		t.Fatal(err)
	}
	if v, err := GetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 1 || err != nil {
		t.Fatalf("TCP_NODELAY = %d, %v after setting it", v, err)
	}
	if n, err := Write(c, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	waitFor(t, s, unix.POLLIN)
	buf := make([]byte, 16)
	if n, err := Read(s, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}
	if _, err := Read(s, buf); err != unix.EAGAIN {
		t.Fatalf("read of an empty socket = %v, want EAGAIN", err)
	}
	if err := Shutdown(c, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, unix.POLLIN)
	if n, err := Read(s, buf); n != 0 || err != nil {
		t.Fatalf("read after the peer's shutdown = %d, %v; want 0 (EOF)", n, err)
	}

	// A reset: linger 0, then close.
	if err := SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		t.Fatal(err)
	}
	if err := Close(s); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := Read(c, buf)
		if err == unix.ECONNRESET {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read after the peer's reset = %v, want ECONNRESET", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := Close(c); err != nil {
		t.Fatal(err)
	}
	if err := Close(c); err != unix.EBADF {
		t.Fatalf("second close = %v, want EBADF", err)
	}
}

// A refused connect shows in the TCP state (closed) and SO_ERROR.
func TestConnectRefused(t *testing.T) {
	ln := socket(t)
	if err := Bind(ln, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(ln)
	unix.Close(ln) // bound, never listening: the port refuses
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	c := socket(t)
	defer unix.Close(c)
	err := Connect(c, addr)
	if err == unix.ECONNREFUSED {
		return
	}
	if err != unix.EINPROGRESS {
		t.Fatalf("connect to a closed port = %v", err)
	}
	waitFor(t, c, unix.POLLOUT)
	if st, _ := TCPState(c); st != 7 {
		t.Fatalf("TCP state = %d, want 7 (closed)", st)
	}
	if soerr, err := GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR); soerr != int(unix.ECONNREFUSED) || err != nil {
		t.Fatalf("SO_ERROR = %d, %v; want ECONNREFUSED", soerr, err)
	}
}

// EpollWait returns the ready events of a set, and none at once with a
// zero timeout.
func TestEpollWait(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 42}); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 4)
	if n, err := EpollWait(ep, evs, 0); n != 0 || err != nil {
		t.Fatalf("epoll_wait with nothing ready = %d, %v", n, err)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := Write(efd, one); err != nil {
		t.Fatal(err)
	}
	if n, err := EpollWait(ep, evs, 1000); n != 1 || err != nil || evs[0].Fd != 42 || evs[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("epoll_wait = %d, %v, %+v; want the eventfd readable", n, err, evs[0])
	}
}

// Bind and Connect take IPv6 addresses too, and an IPv4 one given mapped
// into IPv6; the port reaches the kernel in network byte order. Neither
// allocates (connect runs once per proxied connection).
func TestBindConnectFamilies(t *testing.T) {
	for _, tc := range []struct {
		family int
		bind   string
	}{{unix.AF_INET6, "[::1]:0"}, {unix.AF_INET, "[::ffff:127.0.0.1]:0"}} {
		ln, err := unix.Socket(tc.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skipf("no socket of family %d: %v", tc.family, err)
		}
		defer unix.Close(ln)
		if err := Bind(ln, netip.MustParseAddrPort(tc.bind)); err != nil {
			t.Fatalf("bind %s: %v", tc.bind, err)
		}
		if err := unix.Listen(ln, 8); err != nil {
			t.Fatal(err)
		}
		sa, err := unix.Getsockname(ln)
		if err != nil {
			t.Fatal(err)
		}
		var addr netip.AddrPort
		switch sa := sa.(type) {
		case *unix.SockaddrInet6:
			addr = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
		case *unix.SockaddrInet4:
			addr = netip.AddrPortFrom(netip.AddrFrom16(netip.AddrFrom4(sa.Addr).As16()), uint16(sa.Port)) // mapped
		}
		c, err := unix.Socket(tc.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(c)
		if err := Connect(c, addr); err != nil && err != unix.EINPROGRESS {
			t.Fatalf("connect to %s: %v", addr, err)
		}
		waitFor(t, c, unix.POLLOUT)
		if st, err := TCPState(c); err != nil || st != 1 {
			t.Fatalf("TCP state after connect to %s = %d, %v; want 1 (established)", addr, st, err)
		}
	}
	fd := socket(t)
	defer unix.Close(fd)
	refused := netip.MustParseAddrPort("127.0.0.1:1")
	if n := testing.AllocsPerRun(20, func() { _ = Connect(fd, refused) }); n != 0 {
		t.Errorf("Connect allocates %.0f times, want 0", n)
	}
}
