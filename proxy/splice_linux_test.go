package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
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
