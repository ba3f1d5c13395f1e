package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// listenPair listens on UDP and TCP on the same loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener, string) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, pc.LocalAddr().String()
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil, ""
}

// serveTest runs s.Serve until the test ends and checks that it stops.
func serveTest(t testing.TB, s *Server, pc net.PacketConn, l net.Listener) {
	runUntilCleanup(t, func(ctx context.Context) error { return s.Serve(ctx, pc, l) })
}

// runUntilCleanup runs serve until the test's cleanup, which cancels its
// context and checks that it returns nil promptly.
func runUntilCleanup(t testing.TB, serve func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
}

func dig(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"+time=2", "+tries=1"}, args...)
	out, err := exec.Command("dig", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestServeWithDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed")
	}
	s := testServer(t)
	pc, l, addr := listenPair(t)
	serveTest(t, s, pc, l)
	host, port, _ := net.SplitHostPort(addr)
	at := []string{"@" + host, "-p", port}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"+short", "web000002." + suffix}, "10.0.0.4"},
		{[]string{"+short", "+tcp", "WEB000002." + suffix}, "10.0.0.4"},
		{[]string{"+short", "web00000a"}, "10.0.1.5"},
		{[]string{"+short", "-x", "10.0.1.5"}, "web00000a." + suffix + "."},
		{[]string{"+short", "AAAA", "web000002"}, ""},
	} {
		if got := strings.TrimSpace(dig(t, append(at, tc.args...)...)); got != tc.want {
			t.Errorf("dig %v = %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch." + suffix}, "status: NXDOMAIN"},
		{[]string{"-x", "10.0.9.9"}, "status: NXDOMAIN"},
		{[]string{"example.com"}, "status: REFUSED"},
		{[]string{"AAAA", "web000002"}, "status: NOERROR"},
	} {
		if got := dig(t, append(at, tc.args...)...); !strings.Contains(got, tc.want) {
			t.Errorf("dig %v: want %q in\n%s", tc.args, tc.want, got)
		}
	}
	// Changes are visible at once.
	if err := s.Add(Record{Name: "new1", IP: netip.MustParseAddr("10.0.3.3")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(dig(t, append(at, "+short", "new1")...)); got != "10.0.3.3" {
		t.Errorf("after Add: %q", got)
	}
	s.Remove("new1")
	if got := dig(t, append(at, "new1")...); !strings.Contains(got, "status: NXDOMAIN") {
		t.Errorf("after Remove:\n%s", got)
	}
}

func TestServeStops(t *testing.T) {
	s := testServer(t)
	if err := s.Serve(context.Background(), nil, nil); err == nil {
		t.Fatal("Serve without sockets succeeded")
	}
	pc, l, addr := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, l) }()
	c := &mdns.Client{Timeout: 2 * time.Second}
	q := new(mdns.Msg).SetQuestion("web000002.", mdns.TypeA)
	if r, _, err := c.Exchange(q, addr); err != nil || len(r.Answer) != 1 {
		t.Fatalf("query before stop: %v %v", r, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
	// Both sockets are closed.
	if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("UDP socket still open: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("TCP listener still open: %v", err)
	}
}

// TestConcurrentUpdates reads while records change: every answer is one
// of the consistent states. Run with -race.
func TestConcurrentUpdates(t *testing.T) {
	s := testServer(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := ask(s, "churn.", mdns.TypeA)
				switch {
				case m.Rcode == mdns.RcodeNameError:
				case m.Rcode == mdns.RcodeSuccess && len(m.Answer) == 1 && m.Answer[0].(*mdns.A).A.String() == "10.0.7.7":
				default:
					t.Errorf("inconsistent answer %s", summary(m))
					return
				}
			}
		}()
	}
	for i := range 500 {
		if err := s.Add(Record{Name: "churn", IP: netip.MustParseAddr("10.0.7.7")}); err != nil {
			t.Fatal(err)
		}
		s.Remove("churn")
		if err := s.SetRecords([]Record{{Name: fmt.Sprintf("n%d", i), IP: netip.MustParseAddr("10.0.8.8")}}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// BenchmarkServeUDP measures queries per second through a real UDP socket
// on loopback, with 4×GOMAXPROCS clients each waiting for its answer.
func BenchmarkServeUDP(b *testing.B) {
	s := testServer(b)
	pc, l, addr := listenPair(b)
	serveTest(b, s, pc, l)
	q := new(mdns.Msg).SetQuestion("web000002."+suffix+".", mdns.TypeA)
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := mdns.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		for pb.Next() {
			if err := conn.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			r, err := conn.ReadMsg()
			if err != nil || len(r.Answer) != 1 {
				b.Errorf("answer %v, %v", r, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}
