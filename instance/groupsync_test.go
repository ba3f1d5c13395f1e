package instance

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers that arrive while a commit runs share the next one, and none
// returns before a commit that started after its call has ended.
func TestGroupSyncSharesCommits(t *testing.T) {
	var commits atomic.Int64
	var mu sync.Mutex
	var lastStart time.Time
	gate := make(chan struct{})
	g := &groupSync{commit: func(string) error {
		mu.Lock()
		lastStart = time.Now()
		mu.Unlock()
		if commits.Add(1) == 1 {
			<-gate // the first commit runs while the others arrive
		}
		return nil
	}}
	first := make(chan error, 1)
	go func() { first <- g.Sync("/x") }()
	for commits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	const n = 20
	calls := make([]time.Time, n)
	for i := range n {
		calls[i] = time.Now()
		wg.Go(func() {
			if err := g.Sync("/x"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if lastStart.Before(calls[i]) {
				t.Errorf("caller %d returned after a commit that started before its call", i)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all wait behind the first commit
	close(gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d commits for 21 callers, 20 of them waiting together; want 2", got)
	}
	// An error reaches the callers of that commit.
	boom := errors.New("boom")
	g.commit = func(string) error { return boom }
	if err := g.Sync("/x"); !errors.Is(err, boom) {
		t.Errorf("Sync = %v, want %v", err, boom)
	}
}

// syncfs commits a real directory's filesystem.
func TestGroupSyncSyncfs(t *testing.T) {
	var g groupSync
	if err := g.Sync(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := g.Sync("/nonexistent-dir-for-groupsync"); err == nil {
		t.Error("Sync of a missing directory succeeded")
	}
}
