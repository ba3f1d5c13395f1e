package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/model"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// find returns the records with the level and message.
func (h *logRecorder) find(level slog.Level, msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if r.Level == level && r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := backoff(time.Second, time.Minute, i+1); got != w {
			t.Errorf("backoff after %d failures = %v, want %v", i+1, got, w)
		}
	}
}

// TestStopWithinDeadlineWhileAStepKeepsFailing: the VNET's deletion fails
// on every attempt; waiting for the removal ends when its deadline does,
// naming what is left and why; the deletion is retried with backoff, and
// its error is logged once, then with a count.
func TestStopWithinDeadlineWhileAStepKeepsFailing(t *testing.T) {
	logs := &logRecorder{}
	e := setupWith(t, Options{Backoff: 20 * time.Millisecond, BackoffMax: 160 * time.Millisecond, Logger: slog.New(logs)})
	st, k := e.store, e.k
	e.putSet(1, false)
	e.converge()
	vnets, _ := k.VNets(context.Background())
	if len(vnets) != 1 {
		t.Fatalf("VNETs %v, want one", vnets)
	}
	vnet := vnets[0]
	busy := errors.New("remove /run/netns/" + vnet + ": device or resource busy")
	k.mu.Lock()
	k.fail["delvnet:"+vnet] = busy
	k.mu.Unlock()

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.r.Run(runCtx) }()
	if err := st.Update(func(s *model.State) error {
		_, ae := s.DeleteGroup("rg")
		if ae != nil {
			return ae
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.r.WaitRemoved(ctx)
	took := time.Since(start)
	stop()
	<-done

	if !errors.Is(err, ErrLeftBehind) || !strings.Contains(err.Error(), "VNET "+vnet) || !strings.Contains(err.Error(), "resource busy") {
		t.Fatalf("WaitRemoved = %v; want ErrLeftBehind naming VNET %s and its error", err, vnet)
	}
	if took > 10*time.Second {
		t.Errorf("WaitRemoved took %v with a 1.5s deadline", took)
	}
	if k.count("delete:") == 0 {
		t.Error("the instance was not deleted (the VNET is deleted after its instances)")
	}
	calls := k.count("delvnet:" + vnet)
	// Every 50ms poll triggers a pass: without backoff that is ~30 attempts in 1.5s.
	if calls < 2 || calls > 20 {
		t.Errorf("VNET deletion attempted %d times in 1.5s; want retries (≥2) with backoff (≤20)", calls)
	}
	first := logs.find(slog.LevelError, "delete VNET "+vnet)
	if len(first) != 1 {
		t.Errorf("the failing deletion was logged %d times at error level, want once", len(first))
	}
	rep := logs.find(slog.LevelWarn, "delete VNET "+vnet+": the same error repeated")
	if len(rep) != 1 || attr(rep[0], "times").Int64() != int64(calls-1) {
		t.Errorf("repeat count records %v, want one saying %d times", rep, calls-1)
	}
}

// A pass ended by shutdown logs no error; a failure to observe the
// instances while running does (the positive control).
func TestPassAtShutdownLogsNoError(t *testing.T) {
	logs := &logRecorder{}
	e := setupWith(t, Options{Logger: slog.New(logs)})
	e.putSet(1, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.r.Pass(ctx)
	e.r.Wait()
	if got := logs.find(slog.LevelError, "observe instances"); len(got) != 0 {
		t.Fatalf("a pass at shutdown logged %d errors: %v", len(got), got[0].Message)
	}
	e.k.mu.Lock()
	e.k.fail["instances"] = errors.New("reading /run/netns: permission denied")
	e.k.mu.Unlock()
	e.r.Pass(context.Background())
	e.r.Wait()
	if got := logs.find(slog.LevelError, "observe instances"); len(got) != 1 {
		t.Fatalf("a failed observation logged %d errors, want 1", len(got))
	}
}
