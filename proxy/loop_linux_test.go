package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/tcpfd"
	"golang.org/x/sys/unix"
)

// flowGoroutines counts the goroutines copying a flow's bytes (the
// per-direction path).
func flowGoroutines() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "proxy.(*flow).copyDir")
}

// Established flows run on the event loops: holding 50 of them takes no
// goroutine per flow. With the loops off each flow has its goroutines
// (the control).
func TestForwarderFlowsRunOnLoops(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: flows run on goroutines")
	}
	for _, loops := range []bool{true, false} {
		t.Run(map[bool]string{true: "loops", false: "goroutines"}[loops], func(t *testing.T) {
			useLoops.Store(loops)
			defer useLoops.Store(true)
			be := echoServer(t)
			f := forwarderTo(t, be.Addr().String(), PipeConfig{})
			const n = 50
			for i := range n {
				c, err := net.Dial("tcp", f.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write([]byte{byte(i)})
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					t.Fatalf("flow %d: %v", i, err)
				}
			}
			waitFor(t, func() bool { return f.Active() == n })
			got := flowGoroutines()
			if loops && got != 0 {
				t.Fatalf("%d goroutines copy flows with the loops on, want 0", got)
			}
			if !loops && got < n {
				t.Fatalf("%d goroutines copy %d flows with the loops off, want at least %d", got, n, n)
			}
		})
	}
}

// A backend that stops reading holds its own flow back (the loop keeps the
// unwritten bytes and waits for room) without holding back the loop's
// other flows; once it reads, every byte arrives in order.
func TestLoopBackpressure(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: flows run on goroutines")
	}
	stalled := make(chan net.Conn, 1)
	slow := server(t, func(c net.Conn) {
		stalled <- c
		<-t.Context().Done()
	})
	fast := echoServer(t)
	// Receive buffers that cannot grow: with the host's tcp_rmem (up to 32
	// MiB here) the sockets on the way could take the whole message. The
	// send buffers on the way take at most 2 × tcp_wmem's 4 MiB. (Set
	// before the forwarder serves: on a loop it closes its Listener.)
	ln := listen(t)
	smallRcvbuf(t, slow, ln)
	fs := forwarderOn(t, ln, slow.Addr().String(), PipeConfig{})
	ff := forwarderTo(t, fast.Addr().String(), PipeConfig{})

	c, err := net.Dial("tcp", fs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 16<<20) // far more than the socket buffers on the way hold
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	werr := make(chan error, 1)
	go func() { _, err := c.Write(msg); werr <- err }()
	var be net.Conn
	select {
	case be = <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no connection")
	}
	// The writer is stuck: the backend reads nothing.
	select {
	case err := <-werr:
		t.Fatalf("16 MiB written to a backend that reads nothing (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Meanwhile other flows (on every loop) are served.
	for i := range 8 {
		e, err := net.Dial("tcp", ff.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		e.Write([]byte("ping"))
		e.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(e, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("flow %d beside a stalled one: %q %v", i, buf, err)
		}
		e.Close()
	}
	be.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(be, got); err != nil {
		t.Fatalf("backend read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the backend got different bytes")
	}
	if err := <-werr; err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// A flow handed over with its sockets already closed by the peers ends
// at once (both EOFs come with the first events) and is reported.
func TestLoopFlowOfClosedPeers(t *testing.T) {
	client, pc := pair(t)
	pb, backend := pair(t)
	client.Write([]byte("last words"))
	client.Close()
	res := make(chan Result, 1)
	go func() { res <- Pipe(context.Background(), pc, pb, PipeConfig{}) }()
	backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(backend)
	if err != nil || string(got) != "last words" {
		t.Fatalf("backend got %q, %v", got, err)
	}
	backend.Close()
	select {
	case r := <-res:
		if r.Up != 10 || r.Down != 0 || r.Err != nil {
			t.Fatalf("result %+v, want Up 10", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flow did not end")
	}
}

// An idle flow ends on time even when its loop never sleeps for a whole
// check interval because another flow keeps it busy.
func TestLoopIdleBesideBusyFlow(t *testing.T) {
	n := len(loops())
	if pickLoop() == nil || n == 0 {
		t.Skip("VMSS_PROXY_LOOPS=0: flows run on goroutines")
	}
	const idle = 200 * time.Millisecond
	// n busy flows, then n idle ones: handed out in turn, every loop gets
	// one of each.
	type pipeEnds struct {
		client, backend *net.TCPConn
		res             chan Result
	}
	start := func() pipeEnds {
		client, pc := pair(t)
		pb, backend := pair(t)
		p := pipeEnds{client, backend, make(chan Result, 1)}
		go func() { p.res <- Pipe(context.Background(), pc, pb, PipeConfig{IdleTimeout: idle, ResetOnIdle: true}) }()
		return p
	}
	var busy, quiet []pipeEnds
	for range n {
		busy = append(busy, start())
	}
	for range n {
		quiet = append(quiet, start())
	}
	stop := make(chan struct{})
	defer close(stop)
	for _, b := range busy {
		go func() { io.Copy(b.backend, b.backend) }()
		go func() {
			buf := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := b.client.Write(buf); err != nil {
					return
				}
				if _, err := io.ReadFull(b.client, buf); err != nil {
					return
				}
			}
		}()
	}
	deadline := time.After(20 * idle)
	for i, q := range quiet {
		select {
		case r := <-q.res:
			if !r.Idle {
				t.Fatalf("quiet flow %d: result %+v, want Idle", i, r)
			}
		case <-deadline:
			t.Fatalf("quiet flow %d still open after %v beside a busy flow (idle timeout %v)", i, 20*idle, idle)
		}
	}
	for i, b := range busy {
		select {
		case r := <-b.res:
			t.Fatalf("busy flow %d ended: %+v", i, r)
		default:
		}
	}
}

// serveOnLoopTo starts a Forwarder with ConnectOnLoop whose Connect is
// connect; it stops at the end of the test.
func serveOnLoopTo(t *testing.T, onLoop bool, connect ConnectFunc) *Forwarder {
	t.Helper()
	return serve(t, &Forwarder{Listener: listen(t), Connect: connect, ConnectOnLoop: onLoop})
}

func echoOnce(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the forwarder: %q, %v", buf, err)
	}
}

// With ConnectOnLoop the loop calls Connect itself, under tcpfd.NoWait;
// without it (the control) Connect runs on a goroutine that may wait.
func TestConnectOnLoopDialsWithoutWaiting(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted on goroutines")
	}
	be := echoServer(t)
	for _, onLoop := range []bool{true, false} {
		t.Run(map[bool]string{true: "on loop", false: "goroutine"}[onLoop], func(t *testing.T) {
			var mayWait atomic.Int32
			var calls atomic.Int32
			f := serveOnLoopTo(t, onLoop, func(ctx context.Context, _ net.Conn) (Target, error) {
				calls.Add(1)
				if tcpfd.MayWait(ctx) {
					mayWait.Add(1)
				}
				c, err := HostDial(ctx, "tcp", be.Addr().String())
				return Target{Conn: c}, err
			})
			for range 3 {
				echoOnce(t, f.Listener.Addr().String())
			}
			if calls.Load() != 3 {
				t.Fatalf("Connect called %d times for 3 clients", calls.Load())
			}
			if want := map[bool]int32{true: 0, false: 3}[onLoop]; mayWait.Load() != want {
				t.Fatalf("Connect may wait in %d of 3 calls, want %d", mayWait.Load(), want)
			}
		})
	}
}

// A Connect that would block on the loop is called again on a goroutine
// of its own, which may wait; the client is served and not refused.
func TestConnectOnLoopWouldBlockMovesToGoroutine(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted on goroutines")
	}
	be := echoServer(t)
	var noWait, wait atomic.Int32
	f := serveOnLoopTo(t, true, func(ctx context.Context, _ net.Conn) (Target, error) {
		if !tcpfd.MayWait(ctx) {
			noWait.Add(1)
			return Target{}, fmt.Errorf("backend: %w", tcpfd.ErrWouldBlock)
		}
		wait.Add(1)
		c, err := HostDial(ctx, "tcp", be.Addr().String())
		return Target{Conn: c}, err
	})
	var refused atomic.Int32
	f.Refused = func(net.Conn, error) { refused.Add(1) }
	echoOnce(t, f.Listener.Addr().String())
	if noWait.Load() != 1 || wait.Load() != 1 || refused.Load() != 0 {
		t.Fatalf("Connect without waiting %d, waiting %d, refused %d; want 1, 1, 0", noWait.Load(), wait.Load(), refused.Load())
	}
}

// An accept error on the loop pauses the listener as the goroutine path
// does (EMFILE: back off, then accept again), and a client waiting in the
// queue is served afterwards.
func TestConnectOnLoopBacksOffOnEMFILE(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted on goroutines")
	}
	var fails atomic.Int32
	fails.Store(3)
	loopAccept = func(fd int) (*tcpfd.Conn, error) {
		if fails.Add(-1) >= 0 {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
		}
		return tcpfd.Accept(fd)
	}
	defer func() { loopAccept = tcpfd.Accept }()
	be := echoServer(t)
	f := serveOnLoopTo(t, true, func(ctx context.Context, _ net.Conn) (Target, error) {
		c, err := HostDial(ctx, "tcp", be.Addr().String())
		return Target{Conn: c}, err
	})
	start := time.Now()
	echoOnce(t, f.Listener.Addr().String())
	// 5 + 10 + 20 ms of backoff before the fourth accept. Loops that
	// share the listener may fail at once, and back off once for all.
	want := 35 * time.Millisecond
	if len(usableLoops()) > 1 {
		want = 5 * time.Millisecond
	}
	if el := time.Since(start); el < want {
		t.Fatalf("served after %v: less than %v of backoff", el, want)
	}
	if fails.Load() >= 0 {
		t.Fatalf("accept failed only %d of 3 times", 3-fails.Load()-1)
	}
}

// An accept error that is not temporary ends Serve with that error, as on
// the goroutine path.
func TestConnectOnLoopServeReturnsAcceptError(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted on goroutines")
	}
	loopAccept = func(int) (*tcpfd.Conn, error) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EINVAL)}
	}
	defer func() { loopAccept = tcpfd.Accept }()
	f := &Forwarder{Listener: listen(t), ConnectOnLoop: true, Connect: func(context.Context, net.Conn) (Target, error) {
		return Target{}, errors.New("not reached")
	}}
	done := make(chan error, 1)
	go func() { done <- f.Serve(context.Background()) }()
	defer f.Close()
	// Serve closes the listener when the accept fails, and that can reset
	// this connection before the dial has read its outcome: Go connects
	// without blocking, then reads SO_ERROR, which may already hold the
	// reset. Only a reset is expected here.
	c, err := net.Dial("tcp", f.Listener.Addr().String())
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if c != nil {
		defer c.Close()
	}
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("Serve: %v, want EINVAL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running after a failed accept")
	}
}

// Shutdown and Close stop the loop accepting: once Serve has returned, a
// client is not accepted (its connect fails or it is never served).
func TestConnectOnLoopStopsAccepting(t *testing.T) {
	if pickLoop() == nil {
		t.Skip("VMSS_PROXY_LOOPS=0: clients are accepted on goroutines")
	}
	be := echoServer(t)
	var calls atomic.Int32
	f := &Forwarder{Listener: listen(t), ConnectOnLoop: true, Connect: func(ctx context.Context, _ net.Conn) (Target, error) {
		calls.Add(1)
		c, err := HostDial(ctx, "tcp", be.Addr().String())
		return Target{Conn: c}, err
	}}
	done := make(chan error, 1)
	go func() { done <- f.Serve(context.Background()) }()
	addr := f.Listener.Addr().String()
	echoOnce(t, addr)
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("connected to %s after Shutdown", addr)
	}
	if calls.Load() != 1 {
		t.Fatalf("Connect called %d times, want 1", calls.Load())
	}
}

// Every loop accepts on a Forwarder's listener, and Shutdown takes it from
// every loop. (Runs where there are several loops: CI runs the suite with
// GOMAXPROCS=3, as SetLoopProcs gives a 2-core host.)
func TestListenerOnEveryLoop(t *testing.T) {
	ls := usableLoops()
	if len(ls) < 2 {
		t.Skipf("%d loop(s): run with GOMAXPROCS=3 or more", len(ls))
	}
	be := echoServer(t)
	f := &Forwarder{Listener: listen(t), ConnectOnLoop: true, Connect: func(ctx context.Context, _ net.Conn) (Target, error) {
		c, err := HostDial(ctx, "tcp", be.Addr().String())
		return Target{Conn: c}, err
	}}
	done := make(chan error, 1)
	go func() { done <- f.Serve(context.Background()) }()
	addr := f.Listener.Addr().String()
	watching := func() int {
		n := 0
		for _, l := range ls {
			l.mu.Lock()
			for _, ll := range l.lns {
				if ll.f == f {
					n++
				}
			}
			l.mu.Unlock()
		}
		return n
	}
	echoOnce(t, addr) // Serve has handed the listener to the loops
	for deadline := time.Now().Add(5 * time.Second); watching() < len(ls); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d loops watch the listener", watching(), len(ls))
		}
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() { echoOnce(t, addr) })
	}
	wg.Wait()
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := watching(); n != 0 {
		t.Fatalf("%d loops still watch the listener after Shutdown", n)
	}
}

// smallRcvbuf gives the sockets the listeners accept from now on a fixed
// 64 KiB receive buffer (accepted sockets inherit it; no autotuning).
func smallRcvbuf(t *testing.T, lns ...net.Listener) {
	t.Helper()
	for _, ln := range lns {
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10) }); err != nil || serr != nil {
			t.Fatalf("SO_RCVBUF: %v %v", err, serr)
		}
	}
}

// SetLoopProcs changes nothing once the loops exist (their number is fixed
// then), nor where the user set GOMAXPROCS.
func TestSetLoopProcsLeavesMadeLoopsAndTheUsersChoice(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	loops()
	if before, after := SetLoopProcs(); before != procs || after != procs || runtime.GOMAXPROCS(0) != procs {
		t.Fatalf("after the loops were made: SetLoopProcs() = %d, %d and GOMAXPROCS %d, want all %d", before, after, runtime.GOMAXPROCS(0), procs)
	}
	loopsMade.Store(false)
	defer loopsMade.Store(true)
	t.Setenv("GOMAXPROCS", strconv.Itoa(procs))
	if _, after := SetLoopProcs(); after != procs || runtime.GOMAXPROCS(0) != procs {
		t.Fatalf("with GOMAXPROCS set: SetLoopProcs() made %d Ps (GOMAXPROCS %d), want %d", after, runtime.GOMAXPROCS(0), procs)
	}
}
