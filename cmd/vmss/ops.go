package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/vmss-emulator/vmss/arm"
)

// rid builds a resource id in the current group.
func (g *globals) rid(typ string, names ...string) string {
	return g.client().ResourceID(g.group, typ, names...)
}

// get fetches path into a generic value.
func (g *globals) get(ctx context.Context, path string) (map[string]any, error) {
	var out map[string]any
	_, err := g.client().Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// list fetches a {"value": [...]} list.
func (g *globals) list(ctx context.Context, path string) ([]any, error) {
	var out struct {
		Value []any `json:"value"`
	}
	_, err := g.client().Do(ctx, http.MethodGet, path, nil, &out)
	return out.Value, err
}

// exists reports whether a GET of path succeeds; a 404 is false, other errors are returned.
func (g *globals) exists(ctx context.Context, path string) (bool, error) {
	_, err := g.get(ctx, path)
	if err == nil {
		return true, nil
	}
	if ae, ok := err.(*arm.Error); ok && ae.Status == http.StatusNotFound {
		return false, nil
	}
	return false, err
}

// send sends a change and waits for it unless noWait. progress, when not
// nil, is polled while waiting.
func (g *globals) send(ctx context.Context, method, path string, body any, out any, noWait bool, progress func() (done, total int)) error {
	c := g.client()
	op, err := c.Do(ctx, method, path, body, out)
	if err != nil || noWait {
		return err
	}
	var bar *progressbar.ProgressBar
	tick := func() {}
	if progress != nil && stdoutIsTerminal() {
		tick = func() {
			d, t := progress()
			if t <= 0 {
				return
			}
			if bar == nil {
				bar = progressbar.NewOptions(t, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("instances running"),
					progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
			}
			bar.ChangeMax(t)
			_ = bar.Set(d) // drawing progress on a terminal; a failed draw changes nothing
		}
	}
	err = c.Wait(ctx, op, tick)
	if bar != nil {
		_ = bar.Finish() // drawing progress; a failed draw changes nothing
	}
	if err != nil {
		return err
	}
	if out != nil && method != http.MethodDelete && method != http.MethodPost {
		// Answer with the settled resource, as az does.
		if _, err := c.Do(ctx, http.MethodGet, path, nil, out); err != nil {
			return err
		}
	}
	return nil
}

// instanceProgress counts running instances of a scale set against its capacity.
func (g *globals) instanceProgress(ctx context.Context, setPath string) func() (int, int) {
	return func() (int, int) {
		vms, err := g.list(ctx, setPath+"/virtualMachines")
		if err != nil {
			return 0, 0
		}
		ss, err := g.get(ctx, setPath)
		if err != nil {
			return 0, 0
		}
		total := int(toFloat(dig(ss, "sku.capacity")))
		done := 0
		for _, v := range vms {
			if str(dig(v, "properties.provisioningState")) == "Succeeded" {
				done++
			}
		}
		if done > total {
			done = total
		}
		return done, total
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		var f float64
		fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// parseSet turns --set a.b=c arguments into a nested JSON merge patch. Values
// are JSON when they parse as JSON, strings otherwise.
func parseSet(sets []string) (map[string]any, error) {
	patch := map[string]any{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: expected path=value, for example properties.overprovision=false", s)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		m := patch
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = val
	}
	return patch, nil
}
