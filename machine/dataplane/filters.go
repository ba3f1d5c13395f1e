package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vmss-emulator/vmss/nsg"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/reconcile"
)

// filters are the network security groups loaded into instances, by
// instance netns: the script last loaded, so an unchanged filter is not
// loaded again.
type filters struct {
	mu      sync.Mutex
	loaded  map[string]string
	noNft   bool // nft is missing: said once, nothing enforced
	runner  nsg.Runner
	nsPaths func(netns string) string
}

func newFilters(r nsg.Runner) filters {
	if r == nil {
		r = nsg.Nft{}
	}
	return filters{loaded: map[string]string{}, runner: r, nsPaths: nsnet.Path}
}

// applyFilters loads each instance's filter when it changed. An instance
// that has never had one and needs none is left alone (nothing to remove).
// A failure is reported for the instance's owner and tried again with the
// next plan.
func (p *Plane) applyFilters(ctx context.Context, fs []reconcile.FilterPlan, errs map[string]error) {
	f := &p.filters
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fp := range fs {
		if f.noNft {
			return
		}
		script := nsg.Script(fp.Filter)
		last, seen := f.loaded[fp.Instance]
		if last == script || !seen && !fp.Filter.Enforced() {
			continue
		}
		err := f.runner.Load(ctx, f.nsPaths(fp.Instance), script)
		switch {
		case errors.Is(err, nsg.ErrNoNft):
			f.noNft = true
			p.log.Warn("network security groups are not enforced", "err", err)
			return
		case err != nil:
			delete(f.loaded, fp.Instance)
			if fp.Owner != "" {
				errs[fp.Owner] = errors.Join(errs[fp.Owner], fmt.Errorf("network security groups of %s: %w", fp.Instance, err))
			}
			p.log.Error("load network security groups", "instance", fp.Instance, "err", err)
		default:
			f.loaded[fp.Instance] = script
		}
	}
}

// ForgetFilter drops what is remembered of an instance's filter: its
// namespace is new (rebuilt), so the filter is loaded again.
func (p *Plane) ForgetFilter(netns string) { p.filters.forget(netns) }

// forget drops what is remembered of a deleted (or rebuilt) instance's
// filter.
func (f *filters) forget(netns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.loaded, netns)
}
