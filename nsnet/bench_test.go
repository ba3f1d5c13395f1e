package nsnet

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The dial benchmarks connect to a listener on 127.0.0.1 that closes each
// connection; the client resets its end (SO_LINGER 0) so that no TIME_WAIT
// piles up. They run in parallel (GOMAXPROCS goroutines), like a load
// balancer dialing a backend per client connection.

func benchListener(b *testing.B, nsPath string) string {
	l, err := ListenTCP(context.Background(), nsPath, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go acceptClose(l)
	return l.Addr().String()
}

func reset(b *testing.B, c net.Conn, err error) {
	if err != nil {
		b.Fatal(err)
	}
	c.(interface{ SetLinger(int) error }).SetLinger(0) // *net.TCPConn or *tcpfd.Conn
	c.Close()
}

func benchDial(b *testing.B, dial DialFunc, addr string) {
	ctx := context.Background()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := dial(ctx, "tcp", addr)
			reset(b, c, err)
		}
	})
}

// cpuPerOp reports the process's CPU time (user + system, both ends of
// the connections) per op: unlike ns/op it does not grow when other
// processes compete for the CPUs. Call the result when the timing ends.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDial compares the ways to dial.
//
//	host-plain     net.Dialer in the process namespace (the reference)
//	ns-locked      goroutines locked into the namespace for the whole run,
//	               dialing with net.Dialer: the floor for dials inside it
//	ns-Namespace   Namespace.Dialer: namespace opened once, pooled sockets (the hot path)
//	ns-Dialer      Dialer(path): opens the namespace file per dial
//	ns-whole-Do    net.Dialer run entirely inside Do: the thread stays
//	               switched and locked while the connect completes
//	ns-pool        a pool of goroutines locked permanently in the
//	               namespace, dial requests handed over a channel
func BenchmarkDial(b *testing.B) {
	p := testNS(b)
	addr := benchListener(b, p)
	b.Run("host-plain", func(b *testing.B) {
		hostAddr := benchListener(b, "")
		var d net.Dialer
		benchDial(b, d.DialContext, hostAddr)
	})
	b.Run("ns-locked", func(b *testing.B) {
		target, _ := handles(b, p)
		ctx := context.Background()
		defer cpuPerOp(b)()
		b.RunParallel(func(pb *testing.PB) {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			if err := unix.Setns(int(target), unix.CLONE_NEWNET); err != nil {
				b.Error(err)
				return
			}
			var d net.Dialer
			for pb.Next() {
				c, err := d.DialContext(ctx, "tcp", addr)
				reset(b, c, err)
			}
		})
	})
	b.Run("ns-Namespace", func(b *testing.B) {
		ns, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Close()
		benchDial(b, ns.Dialer(netip.Addr{}), addr)
	})
	b.Run("ns-Dialer", func(b *testing.B) {
		benchDial(b, Dialer(p), addr)
	})
	b.Run("ns-whole-Do", func(b *testing.B) {
		var d net.Dialer
		benchDial(b, func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = Do(p, func() error {
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}, addr)
	})
	b.Run("ns-pool", func(b *testing.B) {
		target, _ := handles(b, p)
		type req struct {
			ctx   context.Context
			reply chan net.Conn
		}
		reqs := make(chan req)
		var ready, exited sync.WaitGroup
		for i := 0; i < 2*runtime.GOMAXPROCS(0); i++ {
			ready.Add(1)
			exited.Add(1)
			go func() {
				defer exited.Done()
				runtime.LockOSThread() // never unlocked: discarded at exit
				err := unix.Setns(int(target), unix.CLONE_NEWNET)
				ready.Done()
				if err != nil {
					b.Error(err)
					return
				}
				var d net.Dialer
				for r := range reqs {
					c, _ := d.DialContext(r.ctx, "tcp", addr)
					r.reply <- c
				}
			}()
		}
		ready.Wait()
		defer exited.Wait() // before handles' cleanup closes target
		defer close(reqs)
		benchDial(b, func(ctx context.Context, _, _ string) (net.Conn, error) {
			r := req{ctx, make(chan net.Conn, 1)}
			reqs <- r
			return <-r.reply, nil
		}, addr)
	})
}

// BenchmarkSwitch is the cost of entering and leaving a namespace.
func BenchmarkSwitch(b *testing.B) {
	p := testNS(b)
	b.Run("setns-pair", func(b *testing.B) {
		target, home := handles(b, p)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for b.Loop() {
			if err := unix.Setns(int(target), unix.CLONE_NEWNET); err != nil {
				b.Fatal(err)
			}
			if err := unix.Setns(int(home), unix.CLONE_NEWNET); err != nil {
				runtime.Goexit() // leave the thread locked
			}
		}
	})
	b.Run("Do", func(b *testing.B) {
		for b.Loop() {
			if err := Do(p, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Namespace.Do", func(b *testing.B) {
		ns, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Close()
		for b.Loop() {
			if err := ns.Do(func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
