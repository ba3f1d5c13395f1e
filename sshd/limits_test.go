package sshd

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// greeting dials addr from the local address from (nil: any) and reports
// whether the server started a handshake (sent its version line) or closed
// the connection without a word.
func greeting(t *testing.T, addr string, from net.Addr) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: from, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("SSH-2.0-"))
	_, err = io.ReadFull(c, buf)
	switch {
	case err == nil && string(buf) == "SSH-2.0-":
		c.SetReadDeadline(time.Time{})
		return c, true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err):
		c.Close()
		return nil, false
	}
	t.Fatalf("reading the greeting of %s: %q, %v", addr, buf, err)
	return nil, false
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// TestMaxStartupsCapsUnauthenticatedConnections holds connections that never
// authenticate: past the cap new ones are closed unanswered, and once a held
// one ends a new client gets in again.
func TestMaxStartupsCapsUnauthenticatedConnections(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	lim := NewLimiter(Limits{MaxStartups: Startups{Start: 2, Rate: 0, Full: 2}})
	ts := newTestServer(t, c, func(cfg *Config) { cfg.Limiter = lim })

	first, ok := greeting(t, ts.addr, nil)
	if !ok {
		t.Fatal("first connection refused")
	}
	defer first.Close()
	// Positive control: below the cap a real client logs in.
	goClient(t, ts.addr, c.signer).Close()
	// The client may finish before the server has counted the login.
	if !waitFor(5*time.Second, func() bool { return lim.unauthenticated() == 1 }) {
		t.Fatalf("%d unauthenticated connections counted; want 1", lim.unauthenticated())
	}
	second, ok := greeting(t, ts.addr, nil)
	if !ok {
		t.Fatal("second connection refused with one unauthenticated connection held and a cap of 2")
	}
	defer second.Close()
	if !waitFor(5*time.Second, func() bool { return lim.unauthenticated() == 2 }) {
		t.Fatalf("%d unauthenticated connections counted; want 2", lim.unauthenticated())
	}
	for i := 0; i < 3; i++ {
		if c, ok := greeting(t, ts.addr, nil); ok {
			c.Close()
			t.Fatalf("connection %d past the cap got a greeting", i+3)
		}
	}
	_, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{User: testUser,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(c.signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil {
		t.Fatal("an authorized client got in past MaxStartups")
	}
	if !strings.Contains(ts.logs.String(), "too many unauthenticated connections") {
		t.Errorf("dropping was not logged:\n%s", ts.logs.String())
	}

	second.Close()
	if !waitFor(10*time.Second, func() bool { return lim.unauthenticated() == 1 }) {
		t.Fatalf("%d unauthenticated connections counted after one closed; want 1", lim.unauthenticated())
	}
	goClient(t, ts.addr, c.signer).Close()
	if !waitFor(5*time.Second, func() bool { return lim.unauthenticated() == 1 }) {
		t.Fatalf("%d unauthenticated connections after a login; want 1 (the held one)", lim.unauthenticated())
	}
}

// TestMaxStartupsRandomEarlyDrop checks OpenSSH's start:rate:full curve.
func TestMaxStartupsRandomEarlyDrop(t *testing.T) {
	lim := NewLimiter(Limits{MaxStartups: Startups{Start: 10, Rate: 30, Full: 100}})
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		unauth, roll int
		drop         bool
	}{
		{9, 0, false},   // below start: never
		{10, 29, true},  // at start: 30%
		{10, 30, false}, // positive control
		{55, 64, true},  // halfway: 30 + 70*45/90 = 65%
		{55, 65, false},
		{99, 98, true},
		{99, 99, false},
		{100, 99, true}, // full: always
		{150, 99, true},
	} {
		lim.unauth = tt.unauth
		lim.roll = func() int { return tt.roll }
		done, ok := lim.admit(netip.MustParseAddr("192.0.2.1"), log)
		if ok == tt.drop {
			t.Errorf("%d unauthenticated, roll %d: admitted %v; want %v", tt.unauth, tt.roll, ok, !tt.drop)
		}
		if ok {
			done()
			done() // only once
		}
		if lim.unauth != tt.unauth {
			t.Errorf("%d unauthenticated: count %d after done", tt.unauth, lim.unauth)
		}
	}
	lim = NewLimiter(Limits{MaxStartups: Startups{Full: -1}})
	lim.unauth = 1 << 20
	if _, ok := lim.admit(netip.Addr{}, log); !ok {
		t.Error("Full -1 (no limit) dropped a connection")
	}
}

// TestSourceFailureBudget: a source that fails too often is refused for the
// penalty, even with the right password; other sources are not; the
// penalty ends.
func TestSourceFailureBudget(t *testing.T) {
	t.Parallel()
	c, other := newClient(t), newClient(t)
	lim := NewLimiter(Limits{MaxAuthFailures: 4, FailureWindow: time.Hour, Penalty: time.Hour})
	var mu sync.Mutex
	now := time.Now()
	lim.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := newTestServer(t, c, func(cfg *Config) {
		cfg.Limiter = lim
		cfg.Auth.Password, cfg.Auth.PasswordAuth = "right", true
		cfg.FailDelay = -1
	})
	from := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip)} }
	login := func(ip string, auth ssh.AuthMethod) error {
		d := net.Dialer{LocalAddr: from(ip), Timeout: 10 * time.Second}
		nc, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		sc, chans, reqs, err := ssh.NewClientConn(nc, ts.addr, &ssh.ClientConfig{User: testUser,
			Auth: []ssh.AuthMethod{auth}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err != nil {
			return err
		}
		ssh.NewClient(sc, chans, reqs).Close()
		return nil
	}
	password := func(p string) ssh.AuthMethod { return ssh.Password(p) }

	// Positive control: the right password works, and failures below the
	// budget do not lock anybody out.
	if err := login("127.0.0.1", password("right")); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := login("127.0.0.1", ssh.PublicKeys(other.signer)); err == nil {
		t.Fatal("unauthorized key accepted")
	}
	for i := 0; i < 2; i++ {
		if err := login("127.0.0.1", password("wrong")); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	if err := login("127.0.0.1", password("right")); err != nil {
		t.Fatalf("right password after 3 failures (budget 4): %v", err)
	}
	// The fourth failure spends the budget: the right password no longer
	// gets in, and new connections are closed before the handshake.
	if err := login("127.0.0.1", password("wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := login("127.0.0.1", password("right")); err == nil {
		t.Fatal("a source past its failure budget logged in")
	}
	if c, ok := greeting(t, ts.addr, from("127.0.0.1")); ok {
		c.Close()
		t.Fatal("a source past its failure budget got a greeting")
	}
	if !strings.Contains(ts.logs.String(), "too many failed authentications") {
		t.Errorf("the penalty was not logged:\n%s", ts.logs.String())
	}
	// Another source is unaffected.
	if err := login("127.0.0.2", password("right")); err != nil {
		t.Fatalf("another source: %v", err)
	}
	// The penalty ends.
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if err := login("127.0.0.1", password("right")); err != nil {
		t.Fatalf("after the penalty: %v", err)
	}
}

// TestClientAddrNamesTheSource: behind a proxy every connection comes from
// the proxy; ClientAddr names the real client for the budget and the logs.
func TestClientAddrNamesTheSource(t *testing.T) {
	t.Parallel()
	c, other := newClient(t), newClient(t)
	lim := NewLimiter(Limits{MaxAuthFailures: 1, Penalty: time.Hour})
	ts := newTestServer(t, c, func(cfg *Config) {
		cfg.Limiter = lim
		cfg.ClientAddr = func(nc net.Conn) netip.Addr {
			if strings.HasPrefix(nc.RemoteAddr().String(), "127.0.0.3:") {
				return netip.MustParseAddr("192.0.2.7")
			}
			return netip.Addr{}
		}
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = ssh.NewClientConn(nc, ts.addr, &ssh.ClientConfig{User: testUser,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(other.signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	nc.Close()
	if err == nil {
		t.Fatal("unauthorized key accepted")
	}
	if !waitFor(5*time.Second, func() bool { return lim.refused(netip.MustParseAddr("192.0.2.7")) }) {
		t.Fatal("the failure was not charged to the address ClientAddr named")
	}
	if lim.refused(netip.MustParseAddr("127.0.0.3")) {
		t.Fatal("the failure was charged to the proxy's address")
	}
	if !strings.Contains(ts.logs.String(), "192.0.2.7 via 127.0.0.3:") {
		t.Errorf("logs do not name the client:\n%s", ts.logs.String())
	}
	goClient(t, ts.addr, c.signer).Close() // positive control: 127.0.0.1 is not refused
}

// TestMaxSessionsAndChannelsPerConnection opens channels until the caps
// refuse one, and checks a slot freed by closing is usable again.
func TestMaxSessionsAndChannelsPerConnection(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	echo := echoServer(t)
	ts := newTestServer(t, c, func(cfg *Config) { cfg.MaxSessions, cfg.MaxChannels = 2, 3 })
	cl := goClient(t, ts.addr, c.signer)

	refused := func(err error, what string) {
		t.Helper()
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage || !strings.Contains(oce.Message, what) {
			t.Fatalf("got %v; want a resource shortage naming %q", err, what)
		}
	}
	s1, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.NewSession()
	refused(err, "too many sessions")

	fwd, err := cl.Dial("tcp", echo) // a third channel, not a session
	if err != nil {
		t.Fatalf("forward next to 2 sessions (3 channels allowed): %v", err)
	}
	_, err = cl.Dial("tcp", echo)
	refused(err, "too many channels")

	checkEcho(t, fwd)
	fwd.Close()
	var again net.Conn
	if !waitFor(10*time.Second, func() bool {
		again, err = cl.Dial("tcp", echo)
		return err == nil
	}) {
		t.Fatalf("forward after closing one: %v", err)
	}
	checkEcho(t, again)
	again.Close()

	s1.Close()
	var s3 *ssh.Session
	if !waitFor(10*time.Second, func() bool {
		s3, err = cl.NewSession()
		return err == nil
	}) {
		t.Fatalf("session after closing one: %v", err)
	}
	out, err := s3.Output("echo ok")
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("command in the freed slot: %q, %v", out, err)
	}
	s2.Close()
	// Caps are per connection: a second connection has its own.
	cl2 := goClient(t, ts.addr, c.signer)
	for i := 0; i < 2; i++ {
		if _, err := cl2.NewSession(); err != nil {
			t.Fatalf("session %d on a second connection: %v", i+1, err)
		}
	}
}
