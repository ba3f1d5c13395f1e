package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/model"
)

// retries paces steps that keep failing (VNET creation and deletion):
// each failure doubles the wait before the next attempt, up to a cap, and
// an error is logged when it first appears, not on every attempt; when the
// step succeeds or fails differently, the count of repeats is logged.
type retries struct {
	first, max time.Duration
	log        *slog.Logger

	mu sync.Mutex
	m  map[string]*failing
}

type failing struct {
	what    string // the step, for messages: "delete VNET x"
	msg     string // the error's text
	repeats int    // failures with this text after the first
	n       int    // consecutive failures
	next    time.Time
}

func newRetries(first, max time.Duration, log *slog.Logger) *retries {
	return &retries{first: first, max: max, log: log, m: map[string]*failing{}}
}

// backoff is the wait after n consecutive failures: first·2^(n-1), at most max.
func backoff(first, max time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// due reports whether the step key may be tried now.
func (t *retries) due(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[key]
	return f == nil || !now.Before(f.next)
}

// failed records a failure of step key and returns the wait before the
// next attempt. attrs are logged with the first occurrence of an error.
func (t *retries) failed(key, what string, err error, now time.Time, attrs ...any) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[key]
	if f == nil {
		f = &failing{what: what}
		t.m[key] = f
	}
	f.n++
	wait := backoff(t.first, t.max, f.n)
	f.next = now.Add(wait)
	if f.msg == err.Error() {
		f.repeats++
		return wait
	}
	t.flushLocked(f)
	f.msg, f.repeats = err.Error(), 0
	t.log.Error(what, append(attrs, "err", err, "attempt", f.n, "retry in", wait.Round(time.Millisecond))...)
	return wait
}

// flushLocked logs how often the current error of f repeated since it was logged.
func (t *retries) flushLocked(f *failing) {
	if f.repeats > 0 {
		t.log.Warn(f.what+": the same error repeated", "times", f.repeats, "err", f.msg)
		f.repeats = 0
	}
}

// succeeded clears the failures of step key.
func (t *retries) succeeded(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.m[key]; f != nil {
		t.flushLocked(f)
		t.log.Info(f.what+": succeeded", "after failures", f.n)
		delete(t.m, key)
	}
}

// summary logs the repeat counts of errors still failing and lists them.
func (t *retries) summary() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, f := range t.m {
		t.flushLocked(f)
		out = append(out, fmt.Sprintf("%s: %s (%d attempts)", f.what, f.msg, f.n))
	}
	slices.Sort(out)
	return out
}

// ErrLeftBehind is returned (wrapped) by WaitRemoved when its context ends
// before everything is removed.
var ErrLeftBehind = errors.New("not everything was removed")

// WaitRemoved triggers passes until the desired state holds no resource
// group, scale set, VM or VNET and the kernel no instance or VNET, or until
// ctx ends. It then returns nil, or an error wrapping ErrLeftBehind that
// lists what is left and the steps still failing. Run must be running.
func (r *Reconciler) WaitRemoved(ctx context.Context) error {
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		left := r.leftovers(ctx)
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			failing := r.retry.summary()
			r.mu.Lock()
			for netns, st := range r.inst {
				if st.err != nil {
					failing = append(failing, fmt.Sprintf("%s: %v (%d attempts)", netns, st.err, st.failures))
				}
			}
			r.mu.Unlock()
			msg := "left: " + fmt.Sprint(left)
			if len(failing) > 0 {
				msg += "; failing: " + fmt.Sprint(failing)
			}
			return fmt.Errorf("%w (%v): %s", ErrLeftBehind, ctx.Err(), msg)
		case <-poll.C:
			r.Trigger()
		}
	}
}

// leftovers lists what WaitRemoved waits for.
func (r *Reconciler) leftovers(ctx context.Context) []string {
	var left []string
	r.store.View(func(st *model.State) {
		n := len(st.ResourceGroups) + len(st.ScaleSets) + len(st.VMs) + len(st.VNets)
		if n > 0 {
			left = append(left, fmt.Sprintf("%d resources in the desired state", n))
		}
	})
	bg := context.WithoutCancel(ctx)
	if obs, err := r.kernel.Instances(bg); err != nil {
		left = append(left, "instances: "+err.Error())
	} else {
		for n := range obs {
			left = append(left, "instance "+n)
		}
	}
	if vn, err := r.kernel.VNets(bg); err != nil {
		left = append(left, "VNETs: "+err.Error())
	} else {
		for _, n := range vn {
			left = append(left, "VNET "+n)
		}
	}
	slices.Sort(left)
	return left
}
