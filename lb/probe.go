package lb

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmss-emulator/vmss/proxy"
)

// State is a backend's health as seen by one probe.
type State string

// States.
const (
	Unknown State = "Unknown" // not probed enough yet: no new flows
	Up      State = "Up"
	Down    State = "Down"
)

// health is the threshold state machine, kept pure for testing.
type health struct {
	State           State
	OKRun, FailRun  int // consecutive successes / failures
	LastOK          bool
	LastAt          time.Time
	LastErr         string
	LastDuration    time.Duration
	ProbesSent      int64
	TransitionCount int64
}

// observe records one result; threshold consecutive results of a kind
// move the state there.
func (h health) observe(ok bool, threshold int) health {
	if ok {
		h.OKRun, h.FailRun = h.OKRun+1, 0
		if h.State != Up && h.OKRun >= threshold {
			h.State = Up
			h.TransitionCount++
		}
	} else {
		h.FailRun, h.OKRun = h.FailRun+1, 0
		if h.State != Down && h.FailRun >= threshold {
			h.State = Down
			h.TransitionCount++
		}
	}
	h.LastOK = ok
	h.ProbesSent++
	return h
}

// probeOnce runs one probe of p against addr through dial, bounded by
// p's timeout. A nil error is a healthy answer.
func probeOnce(ctx context.Context, p Probe, addr netip.Addr, dial proxy.DialFunc) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	target := netip.AddrPortFrom(addr, uint16(p.Port)).String()
	c, err := dial(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer c.Close()
	if p.Protocol == Tcp {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if p.Protocol == Https {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // Azure probes do not verify certificates
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		c = tc
	}
	req := "GET " + p.RequestPath + " HTTP/1.1\r\nHost: " + target + "\r\nUser-Agent: Load Balancer Agent\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %v", p.timeout())
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// prober probes one backend with one probe, one probe at a time, until
// stopped.
type prober struct {
	probe  Probe
	addr   netip.Addr
	dial   proxy.DialFunc
	onDone func(ok bool, d time.Duration, h health)

	up     atomic.Bool // State == Up, read on the hot path
	mu     sync.Mutex
	h      health
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newProber(p Probe, addr netip.Addr, dial proxy.DialFunc, inherit *health, onDone func(bool, time.Duration, health)) *prober {
	pr := &prober{probe: p, addr: addr, dial: dial, onDone: onDone, done: make(chan struct{})}
	pr.ctx, pr.cancel = context.WithCancel(context.Background())
	pr.h.State = Unknown
	if inherit != nil {
		pr.h = *inherit
		pr.up.Store(inherit.State == Up)
	}
	return pr
}

// run probes at once and then every interval. Ticks that fall during a
// slow probe are dropped, so one probe at most is in flight.
func (pr *prober) run() {
	defer close(pr.done)
	ctx := pr.ctx
	t := time.NewTicker(pr.probe.interval())
	defer t.Stop()
	for {
		start := time.Now()
		err := probeOnce(ctx, pr.probe, pr.addr, pr.dial)
		d := time.Since(start)
		if ctx.Err() != nil {
			return // a probe cut short by halt is no result
		}
		pr.mu.Lock()
		pr.h = pr.h.observe(err == nil, pr.probe.threshold())
		pr.h.LastAt, pr.h.LastDuration, pr.h.LastErr = start, d, ""
		if err != nil {
			pr.h.LastErr = err.Error()
		}
		pr.up.Store(pr.h.State == Up)
		h := pr.h
		pr.mu.Unlock()
		if pr.onDone != nil {
			pr.onDone(err == nil, d, h)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (pr *prober) health() health {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.h
}

// halt stops the prober and waits for its goroutine.
func (pr *prober) halt() {
	pr.cancel()
	<-pr.done
}
