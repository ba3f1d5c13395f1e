package vnet

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// detachBatches coalesces concurrent Detach calls per VNET: the calls that
// arrive while a deletion runs are done together by the next one, in one
// kernel batch. Deleting a veth waits for an RCU grace period under the
// host-wide RTNL lock; a batch waits once, so deleting many instances at
// once does not queue one grace period per instance.
//
// The zero value is ready.
type detachBatches struct {
	mu      sync.Mutex
	pending map[string][]*detachReq // by VNET namespace
	running map[string]bool
}

type detachReq struct {
	names []string
	done  chan struct{}
	err   error // set before done is closed
}

// detach runs del for names, together with the names of other calls for
// vnet that wait meanwhile. When a batch fails, each call's names are
// deleted on their own, so one bad name fails only its own call. A caller
// whose ctx ends gets its error; its names are still deleted.
func (b *detachBatches) detach(ctx context.Context, vnet string, names []string,
	del func(ctx context.Context, vnet string, names []string) error) error {
	r := &detachReq{names: names, done: make(chan struct{})}
	b.mu.Lock()
	if b.pending == nil {
		b.pending, b.running = map[string][]*detachReq{}, map[string]bool{}
	}
	b.pending[vnet] = append(b.pending[vnet], r)
	if !b.running[vnet] {
		b.running[vnet] = true
		// The batch is not the first caller's alone: it outlives that
		// caller's cancellation (its netlink steps retry a bounded time).
		go b.run(context.WithoutCancel(ctx), vnet, del)
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("detach from VNET %s: %w", vnet, ctx.Err())
	}
}

// run deletes the pending batches of vnet until none is left.
func (b *detachBatches) run(ctx context.Context, vnet string, del func(context.Context, string, []string) error) {
	for {
		b.mu.Lock()
		batch := b.pending[vnet]
		delete(b.pending, vnet)
		if len(batch) == 0 {
			delete(b.running, vnet)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		var names []string
		for _, r := range batch {
			names = append(names, r.names...)
		}
		slices.Sort(names)
		err := del(ctx, vnet, slices.Compact(names))
		for _, r := range batch {
			r.err = err
			if err != nil && len(batch) > 1 {
				r.err = del(ctx, vnet, r.names)
			}
			close(r.done)
		}
	}
}
