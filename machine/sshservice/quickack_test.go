package sshservice

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestQuickAckListener: accepted connections read the peer's bytes intact,
// are in quick-ACK mode after each read of the handshake, and stop
// re-arming it after quickAckBytes.
func TestQuickAckListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ql := quickAckListener{ln}
	want := bytes.Repeat([]byte("0123456789abcdef"), (quickAckBytes+4096)/16)
	const exchanges = 8
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		// Request and answer, as in a handshake: the server's answers
		// would put its socket in delayed-ACK (ping-pong) mode.
		b := make([]byte, 1)
		for range exchanges {
			if _, err := c.Write([]byte{'?'}); err != nil {
				return
			}
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
		}
		_, _ = c.Write(want)
	}()
	c, err := ql.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	qc, ok := c.(*quickAckConn)
	if !ok {
		t.Fatalf("Accept returned %T, want *quickAckConn", c)
	}
	quick := func() int {
		v := -1
		_ = qc.raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK) })
		return v
	}
	b := make([]byte, 1)
	for i := range exchanges {
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		if q := quick(); q != 1 {
			t.Fatalf("after read %d: TCP_QUICKACK = %d, want 1 (quick-ACK mode)", i, q)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d intact", len(got), len(want))
	}
	if qc.left > 0 {
		t.Errorf("after %d bytes the connection still re-arms quick ACKs (left %d)", len(want), qc.left)
	}
}
