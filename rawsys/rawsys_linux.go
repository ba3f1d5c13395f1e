package rawsys

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errno returns nil for 0, else e as an error comparable with the unix
// package's values (err == unix.EAGAIN).
func errno(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Read is read(2).
func Read(fd int, p []byte) (int, error) { return readWrite(unix.SYS_READ, fd, p) }

// Write is write(2).
func Write(fd int, p []byte) (int, error) { return readWrite(unix.SYS_WRITE, fd, p) }

func readWrite(trap uintptr, fd int, p []byte) (int, error) {
	var b unsafe.Pointer
	if len(p) > 0 {
		b = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(b), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Close is close(2) of a socket that does not linger (SO_LINGER off, or on
// with a zero time).
func Close(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errno(e)
}

// Shutdown is shutdown(2).
func Shutdown(fd, how int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errno(e)
}

func setsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	return errno(e)
}

// SetsockoptInt is setsockopt(2) with an int value.
func SetsockoptInt(fd, level, opt, v int) error {
	x := int32(v)
	return setsockopt(fd, level, opt, unsafe.Pointer(&x), 4)
}

// SetsockoptLinger is setsockopt(2) with a linger value.
func SetsockoptLinger(fd, level, opt int, l *unix.Linger) error {
	return setsockopt(fd, level, opt, unsafe.Pointer(l), unsafe.Sizeof(*l))
}

func getsockopt(fd, level, opt int, p unsafe.Pointer, n *uint32) error {
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(n)), 0)
	return errno(e)
}

// GetsockoptInt is getsockopt(2) of an int value.
func GetsockoptInt(fd, level, opt int) (int, error) {
	var x int32
	n := uint32(4)
	err := getsockopt(fd, level, opt, unsafe.Pointer(&x), &n)
	return int(x), err
}

// TCPState is the socket's TCP state (tcp_states.h: 1 established, 2
// SYN sent, 7 closed, ...) from TCP_INFO.
func TCPState(fd int) (uint8, error) {
	var info unix.TCPInfo
	n := uint32(unsafe.Sizeof(info))
	err := getsockopt(fd, unix.IPPROTO_TCP, unix.TCP_INFO, unsafe.Pointer(&info), &n)
	return info.State, err
}

// Accept4 is accept4(2); remote is the client's address and port, an IPv4
// one unmapped.
func Accept4(fd, flags int) (nfd int, remote netip.AddrPort, err error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(r), addrPort(&rsa), nil
}

// Connect is connect(2) to ap.
func Connect(fd int, ap netip.AddrPort) error {
	var sa unix.RawSockaddrInet6 // on the stack: connect runs once per connection
	n := putSockaddr(&sa, ap)
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), n)
	return errno(e)
}

// Bind is bind(2) to ap.
func Bind(fd int, ap netip.AddrPort) error {
	var sa unix.RawSockaddrInet6
	n := putSockaddr(&sa, ap)
	_, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), n)
	return errno(e)
}

// putSockaddr writes ap into sa as the kernel reads it, IPv4 (also a
// mapped one) as sockaddr_in (which fits in sa's space), else sockaddr_in6,
// and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uintptr {
	a := ap.Addr()
	port := htons(ap.Port())
	if a.Is4() || a.Is4In6() {
		*(*unix.RawSockaddrInet4)(unsafe.Pointer(sa)) = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: port, Addr: a.Unmap().As4()}
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: port, Addr: a.As16()}
	return unix.SizeofSockaddrInet6
}

// htons is the port in network byte order as the sockaddr's field holds
// it (read as a native uint16).
func htons(p uint16) uint16 {
	b := [2]byte{byte(p >> 8), byte(p)}
	return *(*uint16)(unsafe.Pointer(&b[0]))
}

func addrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// EpollWait is epoll_wait(2) with a timeout in milliseconds; give 0, or a
// short one only from a goroutine that may hold its P that long (the call
// waits).
func EpollWait(ep int, evs []unix.EpollEvent, msec int) (int, error) {
	var p unsafe.Pointer
	if len(evs) > 0 {
		p = unsafe.Pointer(&evs[0])
	}
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(p), uintptr(len(evs)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
