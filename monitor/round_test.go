package monitor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/metrics"
	"github.com/vmss-emulator/vmss/model"
)

// counterSampler answers counters as the kernel does: each instance's CPU
// time grows at busy × one vCPU from its first read, whether or not a
// round reads it. It records the names each round read, and, as a
// PartialSampler, the instances each round said exist.
type counterSampler struct {
	mu     sync.Mutex
	now    func() time.Time
	busy   float64
	cpu    map[string]time.Duration
	at     map[string]time.Time
	rounds [][]string
	all    []int
}

func (c *counterSampler) Sample(ctx context.Context, ins []Instance) (map[string]metrics.Counters, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := map[string]metrics.Counters{}
	var names []string
	for _, in := range ins {
		if t, ok := c.at[in.Name]; ok {
			c.cpu[in.Name] += time.Duration(float64(now.Sub(t)) * c.busy)
		}
		c.at[in.Name] = now
		out[in.Name] = metrics.Counters{CPU: c.cpu[in.Name], HasCPU: true, MemTotal: 1 << 30, MemAvailable: 1 << 29}
		names = append(names, in.Name)
	}
	c.rounds = append(c.rounds, names)
	return out, nil
}

func (c *counterSampler) SampleSome(ctx context.Context, ins, all []Instance) (map[string]metrics.Counters, error) {
	c.mu.Lock()
	c.all = append(c.all, len(all))
	c.mu.Unlock()
	return c.Sample(ctx, ins)
}

func (f *fixture) scale(t *testing.T, n int) {
	t.Helper()
	if err := f.store.Update(func(s *model.State) error {
		if _, e := s.Scale(f.set, int64(n)); e != nil {
			return e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// With more instances than PerRound, each round reads the next PerRound
// of them, in turn: every instance once per ceil(n / PerRound) rounds, also
// when instances go meanwhile; the sampler is told every instance.
func TestRoundsSpreadReads(t *testing.T) {
	f := newFixture(t, false)
	f.scale(t, 10)
	c := &counterSampler{now: func() time.Time { return f.clock }, cpu: map[string]time.Duration{}, at: map[string]time.Time{}}
	m := New(Options{Store: f.store, Sampler: c, TimeScale: 0.01, Now: c.now, PerRound: 3})
	ctx := context.Background()
	reads := map[string]int{}
	for range 8 { // 24 reads: the 10 instances twice, and 4 of them a third time
		if err := m.SampleOnce(ctx); err != nil {
			t.Fatal(err)
		}
		f.clock = f.clock.Add(m.SampleInterval())
	}
	for i, r := range c.rounds {
		if len(r) != 3 {
			t.Errorf("round %d read %d instances %v, want 3", i, len(r), r)
		}
		for _, n := range r {
			reads[n]++
		}
	}
	if len(reads) != 10 {
		t.Fatalf("%d instances read in 8 rounds, want all 10: %v", len(reads), reads)
	}
	for n, k := range reads {
		if k < 2 || k > 3 {
			t.Errorf("%s read %d times in 8 rounds of 3 of 10, want 2 or 3", n, k)
		}
	}
	if fmt.Sprint(c.all) != fmt.Sprint([]int{10, 10, 10, 10, 10, 10, 10, 10}) {
		t.Errorf("instances the sampler was told exist, by round: %v, want 10 each", c.all)
	}
	if got, want := m.InstanceInterval(), 4*m.SampleInterval(); got != want {
		t.Errorf("InstanceInterval = %v, want 4 rounds (%v)", got, want)
	}
	// Instances go: the turn goes on over those left.
	f.scale(t, 4)
	c.rounds = nil
	for range 2 {
		if err := m.SampleOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left := map[string]bool{}
	for _, r := range c.rounds {
		for _, n := range r {
			left[n] = true
		}
	}
	if len(left) != 4 {
		t.Errorf("2 rounds of 3 after a scale-in to 4 read %v, want the 4 instances", left)
	}
	if got := m.InstanceInterval(); got != 2*m.SampleInterval() {
		t.Errorf("InstanceInterval = %v, want 2 rounds", got)
	}
}

// Autoscale and the metrics answer as before when each round reads one
// instance of three: averages of rates are the same with fewer samples.
func TestSpreadReadsKeepAutoscaleAndMetrics(t *testing.T) {
	f := newFixture(t, true)
	c := &counterSampler{now: func() time.Time { return f.clock }, cpu: map[string]time.Duration{}, at: map[string]time.Time{}, busy: 0.9}
	f.mon = New(Options{Store: f.store, Sampler: c, TimeScale: 0.01, Now: c.now, PerRound: 1})
	if lo, hi := f.run(t, 30*time.Second); hi != 3 || f.capacity() != 3 || lo < 1 {
		t.Fatalf("busy: capacity %d (range %d..%d), want 3", f.capacity(), lo, hi)
	}
	c.mu.Lock()
	c.busy = 0.25
	c.mu.Unlock()
	f.run(t, 5*time.Second)
	f.wantCPUAverage(t, 25)
	c.mu.Lock()
	c.busy = 0.05
	c.mu.Unlock()
	if lo, _ := f.run(t, 60*time.Second); f.capacity() != 1 || lo != 1 {
		t.Fatalf("idle: capacity %d (lowest %d), want 1", f.capacity(), lo)
	}
}
