package instance

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProcs is a process table for the sweeper: pids in namespaces, some
// of them unkillable.
type fakeProcs struct {
	mu      sync.Mutex
	ns      map[int]nsID
	stuck   map[int]bool
	scanned chan struct{} // receives each scan's start, when set
	hold    chan struct{} // a scan waits for it, when set
}

func (f *fakeProcs) members(want map[nsID]bool, _ []string) ([]member, error) {
	if f.scanned != nil {
		f.scanned <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []member
	for pid, id := range f.ns {
		if want[id] {
			out = append(out, member{pid, id})
		}
	}
	return out, nil
}

func (f *fakeProcs) signal(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stuck[pid] {
		delete(f.ns, pid)
	}
	return nil
}

func (f *fakeProcs) alive(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ns[pid]
	return ok
}

// TestSweepsShareScans checks that sweeps asked for while a scan runs are
// served together by the next scan (16 sweeps, 2 scans), and that each
// kills its own namespace's processes.
func TestSweepsShareScans(t *testing.T) {
	const n = 16
	f := &fakeProcs{ns: map[int]nsID{}, scanned: make(chan struct{}, 2*n), hold: make(chan struct{})}
	for i := range n {
		f.ns[1000+i] = nsID{1, uint64(i)}
		f.ns[2000+i] = nsID{1, uint64(i)}
	}
	s := &sweeper{members: f.members, signal: f.signal}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sweep := func(i int) {
		wg.Go(func() { killed[i], errs[i] = s.sweep(ctx, map[nsID]bool{{1, uint64(i)}: true}, []string{"mnt"}, log) })
	}
	sweep(0)
	<-f.scanned // the first scan runs (held); the others queue meanwhile
	for i := 1; i < n; i++ {
		sweep(i)
	}
	for s.queued() < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(f.hold)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || killed[i] != 2 {
			t.Errorf("sweep %d = %d, %v; want 2 processes killed", i, killed[i], errs[i])
		}
	}
	if len(f.ns) != 0 {
		t.Errorf("processes left: %v", f.ns)
	}
	// Scan 1 (sweep 0), scan 2 (the 15 others), then one scan finding
	// nothing for all of them: 4 at most, where a scan per sweep and round
	// would be 32.
	if got := s.scanCount(); got > 4 {
		t.Errorf("%d scans for %d sweeps, want at most 4", got, n)
	}
}

// TestSweepNotHeldByAnother checks that a process that does not die
// delays only its own namespace's sweep, which ends with its context and
// names the process.
func TestSweepNotHeldByAnother(t *testing.T) {
	a, b := nsID{1, 1}, nsID{1, 2}
	f := &fakeProcs{ns: map[int]nsID{100: a, 200: b}, stuck: map[int]bool{100: true}}
	s := &sweeper{members: f.members, signal: f.signal}
	log := slog.New(slog.DiscardHandler)
	ctxA, cancelA := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelA()
	errA := make(chan error, 1)
	go func() {
		_, err := s.sweep(ctxA, map[nsID]bool{a: true}, []string{"mnt"}, log)
		errA <- err
	}()
	ctxB, cancelB := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelB()
	if n, err := s.sweep(ctxB, map[nsID]bool{b: true}, []string{"net"}, log); err != nil || n != 1 {
		t.Errorf("sweep of b = %d, %v; want 1 killed", n, err)
	}
	if f.alive(200) {
		t.Error("pid 200 of b survived its sweep")
	}
	select {
	case err := <-errA:
		t.Fatalf("sweep of a ended (%v) before its context, with pid 100 alive", err)
	default:
	}
	err := <-errA
	if err == nil || !strings.Contains(err.Error(), "100") || !strings.Contains(err.Error(), "still alive") {
		t.Errorf("sweep of a = %v, want an error naming pid 100 still alive", err)
	}
	// The sweeper stops once nobody waits.
	deadline := time.Now().Add(10 * time.Second)
	for s.busy() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.busy() {
		t.Error("the sweeper still runs with no sweep left")
	}
}

// TestSweepEndedContext checks that a sweep with its context already done
// still gets one scan: nothing there is no error, a process there is.
func TestSweepEndedContext(t *testing.T) {
	a, b := nsID{1, 1}, nsID{1, 2}
	f := &fakeProcs{ns: map[int]nsID{100: a}, stuck: map[int]bool{100: true}}
	s := &sweeper{members: f.members, signal: f.signal}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.sweep(ctx, map[nsID]bool{b: true}, []string{"mnt"}, log); err != nil {
		t.Errorf("sweep of an empty namespace with an ended context = %v, want nil", err)
	}
	if _, err := s.sweep(ctx, map[nsID]bool{a: true}, []string{"mnt"}, log); err == nil {
		t.Error("sweep of a namespace with a live process and an ended context = nil, want an error")
	}
	if got := s.scanCount(); got < 2 {
		t.Errorf("%d scans, want one per sweep", got)
	}
	if fmt.Sprint(f.ns) != fmt.Sprint(map[int]nsID{100: a}) {
		t.Errorf("processes = %v", f.ns)
	}
}

func (s *sweeper) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *sweeper) scanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scans
}

func (s *sweeper) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// TestSweepsPacedAfterAScan checks that a scan is followed by a pause of
// its length before the next one, while sweeps are pending, and that
// the sweeps asked for meanwhile share the next scan: deleting many
// instances then costs a number of scans that does not grow with them. A
// sweep alone is not paused.
func TestSweepsPacedAfterAScan(t *testing.T) {
	const scanTime = 5 * time.Millisecond
	const n = 8
	f := &fakeProcs{ns: map[int]nsID{}}
	started := make(chan struct{}, 2*n)
	var hold chan struct{}
	var holdMu sync.Mutex
	members := func(want map[nsID]bool, kinds []string) ([]member, error) {
		started <- struct{}{}
		holdMu.Lock()
		h := hold
		hold = nil // only the first scan after it is set waits
		holdMu.Unlock()
		if h != nil {
			<-h
		}
		time.Sleep(scanTime) // a scan takes at least this long
		return f.members(want, kinds)
	}
	type pauseAt struct {
		d     time.Duration
		scans int
	}
	var pmu sync.Mutex
	var pauses []pauseAt
	s := &sweeper{members: members, signal: f.signal}
	s.pause = func(d time.Duration) {
		pmu.Lock()
		pauses = append(pauses, pauseAt{d, s.scanCount()})
		pmu.Unlock()
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	sweep := func(i int) {
		wg.Go(func() { _, errs[i] = s.sweep(ctx, map[nsID]bool{{1, uint64(i)}: true}, []string{"mnt"}, log) })
	}
	sweep(0)
	wg.Wait()
	<-started
	for s.busy() { // the sweeper ends; a sweep asked before would follow scan 1
		time.Sleep(time.Millisecond)
	}
	pmu.Lock()
	defer pmu.Unlock()
	if len(pauses) != 0 || s.scanCount() != 1 {
		t.Fatalf("a sweep alone: %d scans, pauses %v; want 1 scan, no pause", s.scanCount(), pauses)
	}
	pmu.Unlock()
	release := make(chan struct{})
	holdMu.Lock()
	hold = release
	holdMu.Unlock()
	sweep(1)
	<-started // scan 2 runs (held) for sweep 1; the others queue meanwhile
	for i := 2; i < n; i++ {
		sweep(i)
	}
	for s.queued() < n-2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("sweep %d: %v", i, err)
		}
	}
	if got := s.scanCount(); got != 3 {
		t.Errorf("%d scans, want 3 (sweep 0, sweep 1, one shared by the %d others)", got, n-2)
	}
	pmu.Lock()
	if len(pauses) != 1 || pauses[0].scans != 2 || pauses[0].d < scanTime {
		t.Errorf("pauses (length, scans before) = %v; want one, after scan 2, of at least %v (the scan's length)", pauses, scanTime)
	}
}
