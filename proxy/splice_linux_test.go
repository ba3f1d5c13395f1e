package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Small chunks are copied and bulk ones spliced: a flow that alternates
// request/response rounds with bulk transfers delivers every byte in order,
// in both directions, across the switches.
func TestPipeSwitchesBetweenCopyAndSplice(t *testing.T) {
	client, pc := pair(t)
	pb, backend := pair(t)
	res := make(chan Result, 1)
	go func() { res <- Pipe(context.Background(), pc, pb, PipeConfig{}) }()

	rng := rand.New(rand.NewPCG(1, 2))
	var up, down int64
	for round, size := range []int{200, 3 << 20, 100, 1, copyBuf, 5 << 20, 300} {
		for _, dir := range []struct {
			from, to interface {
				io.Writer
				io.Reader
			}
		}{{client, backend}, {backend, client}} {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			errc := make(chan error, 1)
			go func() { _, err := dir.from.Write(msg); errc <- err }()
			got := make([]byte, size)
			if _, err := io.ReadFull(dir.to, got); err != nil {
				t.Fatalf("round %d (%d bytes): read: %v", round, size, err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("round %d: write: %v", round, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("round %d (%d bytes): the bytes differ", round, size)
			}
		}
		up += int64(size)
		down += int64(size)
	}
	client.Close()
	backend.Close()
	if r := <-res; r.Up != up || r.Down != down {
		t.Fatalf("result %+v, want Up %d Down %d", r, up, down)
	}
}

// The splicer copies small chunks, switches to splice after a chunk that
// fills its buffer, and back to copying after a small one; it holds no
// buffer or pipe once its session ends.
func TestSplicerMode(t *testing.T) {
	src, in := pair(t)
	out, dst := pair(t)
	s := newSplicer(out, in, 0)
	if s == nil {
		t.Fatal("no splicer for two TCP connections")
	}
	go io.Copy(io.Discard, dst)
	type chunk struct {
		n    int
		bulk bool
	}
	chunks := make(chan chunk, 1024)
	done := make(chan error, 1)
	go func() {
		// s.bulk is the mode of the chunk being reported.
		_, err, unsupported := s.session(func(n int) { chunks <- chunk{n, s.bulk} })
		if unsupported {
			err = errors.New("unsupported")
		}
		done <- err
	}()
	// step writes size bytes and reports whether any of their chunks was
	// spliced.
	step := func(size int) bool {
		t.Helper()
		if _, err := src.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		moved, bulk := 0, false
		for moved < size {
			select {
			case c := <-chunks:
				bulk = bulk || c.bulk
				moved += c.n
			case <-time.After(10 * time.Second):
				t.Fatalf("moving %d bytes: no chunk for 10 s", size)
			}
		}
		return bulk
	}
	if step(100) {
		t.Fatal("100 bytes were spliced, want copied")
	}
	if !step(4 << 20) {
		t.Fatal("4 MiB were copied, want spliced")
	}
	step(10) // may still be spliced (the last 4 MiB chunk may have filled a buffer): it switches back
	if step(10) {
		t.Fatal("10 bytes after a small chunk were spliced, want copied")
	}
	src.Close()
	if err := <-done; err != nil {
		t.Fatalf("session: %v", err)
	}
	if s.buf != nil || s.pipe != nil {
		t.Fatal("a buffer or pipe is held after the session")
	}
}

// A response that arrives with the sender's FIN right behind it is read
// in one recvmsg that also takes the FIN; TCP_INQ says so (a non-zero
// count), and the direction reads on to the EOF instead of waiting for a
// wakeup that already happened. Each round must see the bytes and the EOF
// at once, through the Forwarder (accepted sockets inherit TCP_INQ) and
// through a Pipe whose sockets got TCP_INQ before their first read.
func TestPipeDataThenFIN(t *testing.T) {
	msg := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	backend := server(t, func(c net.Conn) {
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			return
		}
		c.Write(msg) // the deferred Close sends the FIN right behind it
	})
	f := forwarderTo(t, backend.Addr().String(), PipeConfig{})
	for i := range 200 {
		c, err := net.Dial("tcp", f.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round %d: read %q, %v; want the response and EOF", i, got, err)
		}
	}

	for i := range 50 {
		client, pc := pair(t)
		pb, srv := pair(t)
		for _, c := range []*net.TCPConn{pc, pb} {
			rc, _ := c.SyscallConn()
			rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ, 1) })
		}
		go Pipe(context.Background(), pc, pb, PipeConfig{})
		srv.Write(msg)
		srv.Close()
		client.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(client)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("pipe round %d: read %q, %v; want the response and EOF", i, got, err)
		}
	}
}

// A Forwarder's accepted clients inherit TCP_NODELAY and TCP_INQ from a
// listener of HostListen (plain TCP; an MPTCP listener, Go's default,
// does not pass TCP_INQ on), so no accept sets them; a listener without
// them is accepted from by net (which sets TCP_NODELAY).
func TestAcceptedInheritOptions(t *testing.T) {
	got := make(chan [2]int, 1)
	f := &Forwarder{
		Listener: listen(t),
		Connect: func(_ context.Context, c net.Conn) (Target, error) {
			var v [2]int
			rc, _ := c.(interface {
				SyscallConn() (syscall.RawConn, error)
			}).SyscallConn()
			rc.Control(func(fd uintptr) {
				v[0], _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
				v[1], _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ)
			})
			got <- v
			return Target{}, errors.New("refused")
		},
	}
	check := func(want [2]int) {
		t.Helper()
		// The client is refused (reset), maybe before its dial returns.
		if c, err := net.Dial("tcp", f.Listener.Addr().String()); err == nil {
			defer c.Close()
		}
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("accepted socket: TCP_NODELAY %d, TCP_INQ %d; want %d, %d", v[0], v[1], want[0], want[1])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no client accepted")
		}
	}
	go f.Serve(context.Background())
	t.Cleanup(func() { f.Close() })
	check([2]int{1, 1})

	// A listener of net.Listen: net's accept (TCP_NODELAY, no TCP_INQ).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f = &Forwarder{Listener: ln, Connect: f.Connect}
	go f.Serve(context.Background())
	t.Cleanup(func() { f.Close() })
	check([2]int{1, 0})
}

// A source without TCP_INQ (a backend's socket) gets it on its second
// chunk, not its first: a connection of one request and one response
// pays no setsockopt for it.
func TestSplicerSetsInqOnSecondChunk(t *testing.T) {
	in, src := pair(t) // in: a dialled socket, without TCP_INQ
	out, dst := pair(t)
	s := newSplicer(out, in, 0)
	go io.Copy(io.Discard, dst)
	chunks := make(chan int, 16)
	go s.session(func(n int) { chunks <- n })
	inq := func() int {
		rc, _ := in.SyscallConn()
		v := -1
		rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ) })
		return v
	}
	for round, want := range []int{0, 1, 1} {
		if _, err := src.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-chunks:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no chunk", round)
		}
		if got := inq(); got != want {
			t.Fatalf("after chunk %d: TCP_INQ %d, want %d", round+1, got, want)
		}
	}
}
