package sshservice

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAckBytes is how much of an SSH connection's input is read with
// immediate ACKs: the version line, key exchange and authentication take a
// few KiB (the version line is read a byte at a time).
const quickAckBytes = 32 << 10

// quickAckListener hands out SSH connections that acknowledge at once
// during the handshake (see quickAckConn).
type quickAckListener struct{ net.Listener }

func (l quickAckListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	qc := &quickAckConn{TCPConn: tc, raw: rc, left: quickAckBytes}
	qc.quickAck()
	return qc, nil
}

// quickAckConn sets TCP_QUICKACK after each read until it has read
// quickAckBytes.
//
// OpenSSH's client leaves Nagle's algorithm on until the session starts, so
// during the handshake it holds a small packet back until the previous one
// is acknowledged. Where the server has nothing to send at that moment (it
// already sent NEWKEYS and EXT_INFO when the client's NEWKEYS arrives), Linux
// delays that ACK by 40 ms, and each login stalls for 40 ms waiting for it.
// TCP_QUICKACK is not sticky (the kernel may leave quick-ACK mode again), so
// it is set again after each read (which also sends an ACK still pending)
// until the handshake is surely over.
type quickAckConn struct {
	*net.TCPConn
	raw  syscall.RawConn
	left int // bytes still to read with quick ACKs; only the connection's reader touches it
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if c.left > 0 {
		c.left -= max(n, 1)
		c.quickAck()
	}
	return n, err
}

func (c *quickAckConn) quickAck() {
	// Best effort: without quick ACKs the handshake is only slower.
	_ = c.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
