package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// run starts the reconciler's loop for the test's life.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.r.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// settle waits (30 s at most) until the set has n instances, all running in
// the kernel, no record of a deleted one left, and no work is pending.
func (e *env) settle(n int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pending, _ := e.r.Pending(e.set.Key())
		e.k.mu.Lock()
		running := 0
		for _, o := range e.k.inst {
			if o.Complete && o.Started {
				running++
			}
		}
		total := len(e.k.inst)
		e.k.mu.Unlock()
		records := 0
		e.store.View(func(s *model.State) {
			if ss, ok := s.ScaleSets[e.set.Key()]; ok {
				records = len(ss.Instances)
			}
		})
		if !pending && running == n && total == n && len(e.live()) == n && records == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("not settled at %d instances: %d live in the state, kernel %v", n, len(e.live()), e.k.inst)
}

func (k *fakeKernel) observations() (lists, looked int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lists, k.looked
}

// Passes that follow changes look at the instances whose work ended, not at
// every instance: creating and deleting instances lists the kernel's
// instances once (the first pass), not once per pass, and looks at each
// instance about once per flow.
func TestPassesAfterChangesLookAtTouchedInstances(t *testing.T) {
	e := setupWith(t, Options{Backoff: time.Hour, Resync: time.Hour})
	e.run()
	e.putSet(20, false)
	e.settle(20)
	e.update(func(s *model.State) *arm.Error { _, ae := s.Scale(e.set, 5); return ae })
	e.settle(5)
	// 20 builds (each starting its instance) and 15 deletes: each instance is
	// looked at once its flow ended (the deleted ones maybe after the set
	// settled: their records may go before their flows end).
	deadline := time.Now().Add(20 * time.Second)
	lists, looked := e.k.observations()
	for looked < 35 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		lists, looked = e.k.observations()
	}
	if lists != 1 {
		t.Errorf("%d listings of every instance, want 1 (the first pass) while Resync is an hour away", lists)
	}
	// A look each, and a second look at most for a flow ending during a pass.
	if looked < 35 || looked > 70 {
		t.Errorf("%d looks at instances, want one or two per flow (35 flows)", looked)
	}
}

// A full observation every Resync still repairs what changed in the kernel
// behind the reconciler's back, with no change of the state to trigger it.
func TestResyncRepairsDriftBetweenChanges(t *testing.T) {
	e := setupWith(t, Options{Backoff: time.Hour, Resync: 50 * time.Millisecond})
	e.run()
	e.putSet(3, false)
	e.settle(3)
	gone := e.live()[1].Netns
	e.k.mu.Lock()
	delete(e.k.inst, gone) // removed by hand
	e.k.inst["vmss-rg-ghost_7"] = &Observed{Complete: true}
	e.k.mu.Unlock()
	e.settle(3)
	e.k.mu.Lock()
	_, rebuilt := e.k.inst[gone]
	e.k.mu.Unlock()
	if !rebuilt {
		t.Errorf("instance %s removed behind the reconciler's back was not rebuilt", gone)
	}
	if lists, _ := e.k.observations(); lists < 2 {
		t.Errorf("%d full observations, want one per Resync", lists)
	}
}
