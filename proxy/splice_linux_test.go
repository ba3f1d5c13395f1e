package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
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
// fills its buffer, and back to copying after a small one.
func TestSplicerMode(t *testing.T) {
	src, in := pair(t)
	out, dst := pair(t)
	s := newSplicer(out, in)
	if s == nil {
		t.Fatal("no splicer for two TCP connections")
	}
	go io.Copy(io.Discard, dst)
	step := func(size int, wantBulk bool) {
		t.Helper()
		errc := make(chan error, 1)
		go func() { _, err := src.Write(make([]byte, size)); errc <- err }()
		moved, bulk := 0, false
		for moved < size {
			n, err, unsupported := s.chunk()
			if err != nil || unsupported {
				t.Fatalf("chunk: %v (unsupported %v)", err, unsupported)
			}
			moved += n
			bulk = bulk || s.bulk
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if bulk != wantBulk {
			t.Fatalf("moving %d bytes: spliced %v, want %v", size, bulk, wantBulk)
		}
		if s.buf != nil || s.pipe != nil {
			t.Fatal("a buffer or pipe is held between chunks")
		}
	}
	step(100, false)
	step(4<<20, true)
	step(10, false)
}
