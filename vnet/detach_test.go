package vnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDetachBatchesCoalesce checks that calls made while a deletion runs
// are deleted together by the next one, per VNET, and that a failing batch
// fails only the call with the bad name.
func TestDetachBatchesCoalesce(t *testing.T) {
	var b detachBatches
	var mu sync.Mutex
	var calls [][]string
	started, hold := make(chan struct{}, 16), make(chan struct{})
	del := func(_ context.Context, vnet string, names []string) error {
		mu.Lock()
		calls = append(calls, append([]string{vnet}, names...))
		mu.Unlock()
		started <- struct{}{}
		<-hold
		if slices.Contains(names, "bad") {
			return errors.New("bad is not a veth")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := map[string]error{}
	var emu sync.Mutex
	var wg sync.WaitGroup
	call := func(vnet, name string) {
		wg.Go(func() {
			err := b.detach(ctx, vnet, []string{name}, del)
			emu.Lock()
			errs[vnet+"/"+name] = err
			emu.Unlock()
		})
	}
	call("a", "v0")
	<-started // the first deletion runs (held); these wait for the next
	for _, n := range []string{"v3", "v1", "bad", "v2"} {
		call("a", n)
	}
	call("b", "v9") // another VNET: its own batch, at once
	<-started
	for queued := 0; queued < 4; {
		b.mu.Lock()
		queued = len(b.pending["a"])
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	for k, err := range errs {
		if (err != nil) != (k == "a/bad") {
			t.Errorf("detach %s = %v", k, err)
		}
	}
	got := fmt.Sprint(calls)
	for _, want := range []string{"[a v0]", "[a bad v1 v2 v3]", "[b v9]"} {
		if !strings.Contains(got, want) {
			t.Errorf("deletions %s, want one of %s", got, want)
		}
	}
	// The failed batch: each call's names on their own.
	if n := len(calls); n != 3+4 {
		t.Errorf("%d deletions (%s), want 7: 3 batches, then the failed one's 4 calls one by one", n, got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.running) != 0 || len(b.pending) != 0 {
		t.Errorf("left running %v, pending %v", b.running, b.pending)
	}
}

// TestDetachConcurrent detaches instances of one VNET with concurrent
// calls, as deletes of many instances do: every pair is gone, the others
// stay.
func TestDetachConcurrent(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	var m Manager
	a := newVNET(t, &m, "10.0.0.0/24")
	var insts []string
	for j := range 8 {
		insts = append(insts, newInstance(t))
		attach(t, &m, a, insts[j], "vmssbr0", fmt.Sprintf("10.0.0.%d/24", 4+j))
	}
	var wg sync.WaitGroup
	for _, inst := range insts[:6] {
		wg.Go(func() {
			if err := m.Detach(ctx, a, VethName(inst)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for j, inst := range insts {
		if got, want := hasLink(t, inst, "eth0"), j >= 6; got != want {
			t.Errorf("instance %d has eth0: %v, want %v", j, got, want)
		}
		if got, want := hasLink(t, a, VethName(inst)), j >= 6; got != want {
			t.Errorf("VNET has the veth of instance %d: %v, want %v", j, got, want)
		}
	}
}
