package sshd

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Startups is OpenSSH's MaxStartups "start:rate:full": once Start
// connections are unauthenticated, a new connection is dropped with
// probability Rate percent, rising linearly to 100% at Full unauthenticated
// connections; from Full on every new connection is dropped. The zero value
// means 10:30:100 (OpenSSH's default). Rate 0 with Start equal to Full is a
// plain cap. Full negative: no limit.
type Startups struct {
	Start, Rate, Full int
}

// Limits bounds what clients can make a server do before they have
// authenticated. Every zero value is valid and documented.
type Limits struct {
	// MaxStartups caps concurrent unauthenticated connections; see Startups.
	MaxStartups Startups
	// MaxAuthFailures is how many failed authentications one source address
	// may have within FailureWindow before its connections are refused for
	// Penalty. A wrong password counts one; a connection that ends without
	// authenticating after offering only rejected keys counts one. Zero: 20.
	// Negative: no budget.
	MaxAuthFailures int
	// FailureWindow is the window MaxAuthFailures is counted in. Zero: 10m.
	FailureWindow time.Duration
	// Penalty is how long a source that spent its budget is refused. Zero:
	// 10m.
	Penalty time.Duration
}

const (
	defaultStartupsStart   = 64
	defaultStartupsRate    = 30
	defaultStartupsFull    = 256
	defaultMaxAuthFailures = 20
	defaultFailureWindow   = 10 * time.Minute
	defaultPenalty         = 10 * time.Minute
	// maxSources bounds the failure table; the oldest entries go first.
	maxSources = 10000
	// dropLogEvery rate-limits the warning about dropped connections.
	dropLogEvery = time.Minute
)

// Limiter enforces Limits. One Limiter may be shared by many Servers (the
// daemon shares one between every instance) so that the budgets hold for
// the whole host; it is safe for concurrent use.
type Limiter struct {
	lim Limits

	mu       sync.Mutex
	unauth   int
	sources  map[netip.Addr]*source
	dropped  int // since the last warning
	lastWarn time.Time

	now  func() time.Time // seams for tests
	roll func() int       // 0..99
}

// source is the failure record of one address.
type source struct {
	since    time.Time // start of the current window
	failures int
	until    time.Time // refused until then
}

// NewLimiter returns a Limiter for l with zero values replaced by their
// defaults.
func NewLimiter(l Limits) *Limiter {
	if l.MaxStartups == (Startups{}) {
		l.MaxStartups = Startups{Start: defaultStartupsStart, Rate: defaultStartupsRate, Full: defaultStartupsFull}
	}
	if l.MaxStartups.Full >= 0 {
		l.MaxStartups.Start = min(max(l.MaxStartups.Start, 0), l.MaxStartups.Full)
		l.MaxStartups.Rate = min(max(l.MaxStartups.Rate, 0), 100)
	}
	if l.MaxAuthFailures == 0 {
		l.MaxAuthFailures = defaultMaxAuthFailures
	}
	if l.FailureWindow <= 0 {
		l.FailureWindow = defaultFailureWindow
	}
	if l.Penalty <= 0 {
		l.Penalty = defaultPenalty
	}
	return &Limiter{
		lim:     l,
		sources: map[netip.Addr]*source{},
		now:     time.Now,
		roll:    func() int { return rand.IntN(100) },
	}
}

// admit decides whether a new connection from src may start its handshake.
// When it may, the connection counts as unauthenticated until done is
// called (exactly once).
func (l *Limiter) admit(src netip.Addr, log *slog.Logger) (done func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if s := l.sources[src]; s != nil && now.Before(s.until) {
		log.Debug("ssh connection refused: the source spent its authentication failure budget",
			"source", src.String(), "refused_until", s.until.Format(time.RFC3339))
		return nil, false
	}
	if l.drop() {
		l.dropped++
		if now.Sub(l.lastWarn) >= dropLogEvery {
			ms := l.lim.MaxStartups
			log.Warn("ssh connections dropped: too many unauthenticated connections (MaxStartups)",
				"dropped", l.dropped, "unauthenticated", l.unauth,
				"max_startups", []int{ms.Start, ms.Rate, ms.Full})
			l.dropped, l.lastWarn = 0, now
		}
		return nil, false
	}
	l.unauth++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.unauth--
			l.mu.Unlock()
		})
	}, true
}

// drop applies MaxStartups to one more connection. l.mu is held.
func (l *Limiter) drop() bool {
	ms, n := l.lim.MaxStartups, l.unauth
	switch {
	case ms.Full < 0 || n < ms.Start:
		return false
	case n >= ms.Full:
		return true
	}
	p := ms.Rate + (100-ms.Rate)*(n-ms.Start)/(ms.Full-ms.Start)
	return l.roll() < p
}

// fail records one failed authentication from src; the failure that spends
// its budget starts its penalty.
func (l *Limiter) fail(src netip.Addr, log *slog.Logger) {
	if l.lim.MaxAuthFailures < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.sources[src]
	if s == nil {
		if len(l.sources) >= maxSources {
			l.prune(now)
		}
		s = &source{since: now}
		l.sources[src] = s
	}
	if now.Sub(s.since) > l.lim.FailureWindow {
		s.since, s.failures = now, 0
	}
	s.failures++
	if s.failures >= l.lim.MaxAuthFailures && !now.Before(s.until) {
		s.until = now.Add(l.lim.Penalty)
		s.since, s.failures = now, 0
		log.Warn("ssh source refused: too many failed authentications",
			"source", src.String(), "failures", l.lim.MaxAuthFailures,
			"window", l.lim.FailureWindow, "refused_for", l.lim.Penalty)
	}
}

// refused reports whether src is serving a penalty.
func (l *Limiter) refused(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sources[src]
	return s != nil && l.now().Before(s.until)
}

// prune drops records that no longer matter, and when that is not enough
// the oldest ones. l.mu is held.
func (l *Limiter) prune(now time.Time) {
	var oldest netip.Addr
	var oldestSince time.Time
	for a, s := range l.sources {
		if !now.Before(s.until) && now.Sub(s.since) > l.lim.FailureWindow {
			delete(l.sources, a)
			continue
		}
		if !oldest.IsValid() || s.since.Before(oldestSince) {
			oldest, oldestSince = a, s.since
		}
	}
	if len(l.sources) >= maxSources && oldest.IsValid() {
		delete(l.sources, oldest)
	}
}

// unauthenticated is the number of connections that have not authenticated
// yet.
func (l *Limiter) unauthenticated() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unauth
}

// peerAddr is the address a connection comes from (the zero Addr when it
// is not an IP connection).
func peerAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
