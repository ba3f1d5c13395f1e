package nsnet

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/tcpfd"
)

// Namespace.Dialer connects sockets made inside the namespace in batches:
// more dials than a batch all reach a listener that exists only inside,
// as *tcpfd.Conn; a refused connect fails with ECONNREFUSED; Close closes
// the spare sockets.
func TestNamespaceDialerPool(t *testing.T) {
	p := testNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := ListenTCP(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoAddr(l)
	addr := l.Addr().String()
	ns, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	dial := ns.Dialer(netip.Addr{})

	for i := range 3*minSocketBatch + 1 { // more than two refills
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if _, ok := c.(*tcpfd.Conn); !ok {
			t.Fatalf("dial %d returned %T, want *tcpfd.Conn", i, c)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(b), "127.0.0.1:") {
			t.Fatalf("dial %d: the listener inside said %q, %v", i, b, err)
		}
	}

	// A port nobody listens on inside the namespace refuses.
	free, err := ListenTCP(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := free.Addr().String()
	free.Close()
	if _, err := dial(ctx, "tcp", refused); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port = %v, want ECONNREFUSED", err)
	}

	// The spare sockets are closed with the namespace.
	ns.spare.mu.Lock()
	spare := append([]int(nil), ns.spare.fds...)
	ns.spare.mu.Unlock()
	if len(spare) == 0 {
		t.Fatal("no spare socket after the dials: the batch was not kept")
	}
	inodes := map[int]uint64{}
	for _, fd := range spare {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatalf("spare socket %d: %v", fd, err)
		}
		inodes[fd] = st.Ino
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	for fd, ino := range inodes {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Ino == ino {
			t.Fatalf("spare socket %d is still open after Close", fd)
		}
	}
	if _, err := dial(ctx, "tcp", addr); !errors.Is(err, errClosed) {
		t.Fatalf("dial after Close = %v, want errClosed", err)
	}
}

// A refill soon after the last makes twice as many sockets, up to the
// most; one after a quiet second, or the first, makes the fewest.
func TestNextBatch(t *testing.T) {
	for _, c := range []struct {
		prev  int
		since time.Duration
		want  int
	}{
		{0, 0, minSocketBatch},
		{0, time.Hour, minSocketBatch},
		{minSocketBatch, time.Millisecond, 2 * minSocketBatch},
		{2 * minSocketBatch, refillSoon - time.Nanosecond, 4 * minSocketBatch},
		{maxSocketBatch / 2, 0, maxSocketBatch},
		{maxSocketBatch, time.Millisecond, maxSocketBatch},
		{maxSocketBatch, refillSoon, minSocketBatch},
		{4 * minSocketBatch, 5 * time.Second, minSocketBatch},
	} {
		if got := nextBatch(c.prev, c.since); got != c.want {
			t.Errorf("nextBatch(%d, %v) = %d, want %d", c.prev, c.since, got, c.want)
		}
	}
}
