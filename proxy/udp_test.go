package proxy

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// udpEcho answers every datagram with "<tag>:" + payload.
func udpEcho(t *testing.T, tag string) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(tag+":"), buf[:n]...), from)
		}
	}()
	return c
}

func TestUDPForwarder(t *testing.T) {
	backends := []*net.UDPConn{udpEcho(t, "a"), udpEcho(t, "b")}
	pub, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var next, ended atomic.Int32
	f := &UDPForwarder{
		Conn: pub,
		Connect: func(ctx context.Context, client netip.AddrPort) (UDPTarget, error) {
			i := int(next.Add(1)-1) % len(backends)
			c, err := HostDial(ctx, "udp", backends[i].LocalAddr().String())
			return UDPTarget{Key: []string{"a", "b"}[i], Conn: c, IdleTimeout: 200 * time.Millisecond,
				Done: func(up, down int64) { ended.Add(1) }}, err
		},
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve(context.Background()) }()

	ask := func(c *net.UDPConn, msg string) string {
		t.Helper()
		c.Write([]byte(msg))
		buf := make([]byte, 100)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to %q: %v", msg, err)
		}
		return string(buf[:n])
	}
	c1, _ := net.DialUDP("udp", nil, pub.LocalAddr().(*net.UDPAddr))
	c2, _ := net.DialUDP("udp", nil, pub.LocalAddr().(*net.UDPAddr))
	defer c1.Close()
	defer c2.Close()
	// A flow sticks to its backend; a second client gets the next one.
	for range 3 {
		if got := ask(c1, "x"); got != "a:x" {
			t.Fatalf("client 1 got %q, want a:x", got)
		}
	}
	if got := ask(c2, "y"); got != "b:y" {
		t.Fatalf("client 2 got %q, want b:y", got)
	}
	if f.Active() != 2 || f.ActiveTo("a") != 1 || f.ActiveTo("b") != 1 {
		t.Fatalf("Active %d a %d b %d, want 2 1 1", f.Active(), f.ActiveTo("a"), f.ActiveTo("b"))
	}
	// Idle flows expire; the client's next datagram opens a new flow.
	waitFor(t, func() bool { return f.Active() == 0 })
	if ended.Load() != 2 {
		t.Fatalf("Done called %d times, want 2", ended.Load())
	}
	if got := ask(c1, "z"); got != "a:z" {
		t.Fatalf("after expiry client 1 got %q, want a:z (third flow, round robin)", got)
	}
	if n := f.CloseTo("a"); n != 1 || f.Active() != 0 {
		t.Fatalf("CloseTo(a) = %d, Active %d", n, f.Active())
	}
	f.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
