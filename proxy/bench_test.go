package proxy

import (
	"context"
	"io"
	"net"
	"testing"
)

// Benchmarks compare a proxied loopback flow with a direct one. Run:
//
//	go test ./proxy -run '^$' -bench . -benchtime 2s
//
// and divide the proxied figures by the direct ones for the ratio.

// sinkServer reads and discards everything, then closes.
func sinkServer(b *testing.B) net.Listener {
	return server(b, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// wrapped hides *net.TCPConn so io.Copy falls back to a userspace buffer.
type wrapped struct{ net.Conn }

func benchThroughput(b *testing.B, target string) {
	c, err := net.Dial("tcp", target)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func proxiedTo(b *testing.B, backend string, wrap bool) string {
	f := &Forwarder{
		Listener: listen(b),
		Connect: func(ctx context.Context, _ net.Conn) (Target, error) {
			c, err := HostDial(ctx, "tcp", backend)
			if err == nil && wrap {
				c = wrapped{c}
			}
			return Target{Conn: c}, err
		},
	}
	go f.Serve(context.Background())
	b.Cleanup(func() { f.Close() })
	return f.Listener.Addr().String()
}

func BenchmarkThroughput(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchThroughput(b, sinkServer(b).Addr().String()) })
	b.Run("proxy-splice-loop", func(b *testing.B) {
		benchThroughput(b, proxiedTo(b, sinkServer(b).Addr().String(), false))
	})
	b.Run("proxy-io.Copy-splice", func(b *testing.B) {
		forceStdCopy = true
		defer func() { forceStdCopy = false }()
		benchThroughput(b, proxiedTo(b, sinkServer(b).Addr().String(), false))
	})
	b.Run("proxy-userspace-copy", func(b *testing.B) {
		benchThroughput(b, proxiedTo(b, sinkServer(b).Addr().String(), true))
	})
}

// pongServer answers each connection's first byte and closes.
func pongServer(b *testing.B) net.Listener {
	return server(b, func(c net.Conn) {
		var one [1]byte
		if _, err := c.Read(one[:]); err == nil {
			_, _ = c.Write(one[:])
		}
	})
}

// benchConnRate opens a connection, exchanges one byte and closes, in
// parallel. Each op is one full connection.
func benchConnRate(b *testing.B, target string) {
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		var one [1]byte
		for pb.Next() {
			c, err := net.Dial("tcp", target)
			if err != nil {
				b.Error(err)
				return
			}
			c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT pile-up on the client side
			c.Write(one[:])
			if _, err := io.ReadFull(c, one[:]); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
}

func BenchmarkConnRate(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchConnRate(b, pongServer(b).Addr().String()) })
	b.Run("proxy", func(b *testing.B) { benchConnRate(b, proxiedTo(b, pongServer(b).Addr().String(), false)) })
}
