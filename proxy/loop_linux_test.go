package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
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
	fs := forwarderTo(t, slow.Addr().String(), PipeConfig{})
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
