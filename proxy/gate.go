package proxy

import (
	"errors"
	"log/slog"
	"sync"
)

// serveGate lets Serve run once and lets Close wait until it has returned.
type serveGate struct {
	mu      sync.Mutex
	started bool
	served  chan struct{}
}

// begin marks Serve as running; a second call fails.
func (g *serveGate) begin(what string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return errors.New("proxy: " + what + ".Serve called twice")
	}
	g.started = true
	g.served = make(chan struct{})
	return nil
}

// end marks Serve as returned.
func (g *serveGate) end() { close(g.served) }

// wait blocks until Serve has returned, if it was started.
func (g *serveGate) wait() {
	g.mu.Lock()
	ch := g.served
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
