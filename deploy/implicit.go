package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/template"
)

// Implicit dependencies. A template may reference another of its resources
// by id in a body without listing it in dependsOn (the myriad NAT-pool
// template's scale set names the load balancer's pools that way). Azure
// deploys such resources side by side and the reference may or may not exist
// in time; the emulator makes it deterministic: before a resource is put, it
// waits for the resources of its own level that its body references.

// referenced lists the resources of the same level whose ids (or the ids of
// whose children) appear as string values in body.
func referenced(body map[string]any, self *template.Resource, level []*template.Resource) []*template.Resource {
	var out []*template.Resource
	seen := map[*template.Resource]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			lx := strings.ToLower(strings.TrimSuffix(x, "/"))
			for _, r := range level {
				if r == self || seen[r] {
					continue
				}
				id := strings.ToLower(r.ID)
				if lx == id || strings.HasPrefix(lx, id+"/") {
					seen[r] = true
					out = append(out, r)
				}
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(body)
	return out
}

// awaitReferenced waits until the referenced resources of the same level have
// an outcome. It fails when one of them did not succeed. Two resources that
// reference each other do not wait for each other (the first to ask waits).
func (r *run) awaitReferenced(ctx context.Context, res *template.Resource, refs []*template.Resource) error {
	me := strings.ToLower(res.ID)
	for _, ref := range refs {
		id := strings.ToLower(ref.ID)
		r.mu.Lock()
		if r.waiting == nil {
			r.waiting = map[string]string{}
		}
		if r.waiting[id] == me {
			r.mu.Unlock()
			continue
		}
		r.waiting[me] = id
		r.mu.Unlock()
		for {
			r.mu.Lock()
			st := r.status[id]
			r.mu.Unlock()
			if st == outFailed || st == outBlocked {
				return fmt.Errorf("%s references %s, which was not deployed", res, ref)
			}
			if st == outSucceeded {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		r.mu.Lock()
		delete(r.waiting, me)
		r.mu.Unlock()
	}
	return nil
}
