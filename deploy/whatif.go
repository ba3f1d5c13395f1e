package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/template"
)

// Change types of a what-if answer (Azure's names).
const (
	changeCreate   = "Create"
	changeModify   = "Modify"
	changeNoChange = "NoChange"
	changeDelete   = "Delete"
	changeIgnore   = "Ignore"
)

// Property change types of a what-if delta.
const (
	propCreate   = "Create"
	propModify   = "Modify"
	propArray    = "Array"
	propNoEffect = "NoEffect"
)

// delta is one property difference.
type delta struct {
	Path               string `json:"path"`
	PropertyChangeType string `json:"propertyChangeType"`
	Before             any    `json:"before,omitempty"`
	After              any    `json:"after,omitempty"`
}

// change is one resource of a what-if answer.
type change struct {
	ResourceID        string  `json:"resourceId"`
	ChangeType        string  `json:"changeType"`
	UnsupportedReason string  `json:"unsupportedReason,omitempty"`
	Before            any     `json:"before,omitempty"`
	After             any     `json:"after,omitempty"`
	Delta             []delta `json:"delta,omitempty"`
}

// WhatIf answers what the deployment would change, changing nothing:
// reference() is answered from existing resources, each evaluated body is
// compared with the resource's current GET (properties the server adds are
// ignored), and in Complete mode the group's other resources are listed as
// Delete.
func (e *Engine) WhatIf(ctx context.Context, id arm.ID, body []byte) (any, error) {
	p, err := e.prepare(ctx, id, body)
	if err != nil {
		return nil, err
	}
	changes := []change{}
	for _, level := range p.d.Levels() {
		for _, res := range level {
			c, err := e.whatIfOne(ctx, p, res)
			if err != nil {
				return nil, err
			}
			changes = append(changes, c)
		}
	}
	if p.mode == "Complete" {
		extra, err := e.extraResources(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, it := range extra {
			rid := fmt.Sprint(it["id"])
			c := change{ResourceID: rid, ChangeType: changeDelete}
			if cur, err := e.arm.get(ctx, rid, ""); err == nil {
				c.Before = cur
			}
			changes = append(changes, c)
		}
	}
	return map[string]any{"status": "Succeeded", "properties": map[string]any{"changes": changes}}, nil
}

func (e *Engine) whatIfOne(ctx context.Context, p *plan, res *template.Resource) (change, error) {
	c := change{ResourceID: res.ID}
	desired, _, err := p.d.WhatIf(ctx, res)
	if err != nil {
		return c, invalidTemplate("%s", p.red.str(err.Error()))
	}
	switch kindOf(res.Type) {
	case kindUnknown:
		c.ChangeType, c.UnsupportedReason = changeIgnore, fmt.Sprintf("resource type %s is not emulated; a deployment skips it", res.Type)
		return c, nil
	case kindNoop:
		c.ChangeType, c.UnsupportedReason = changeIgnore, "virtual machine extensions are accepted as no-ops"
		return c, nil
	}
	dropEnvelope(desired)
	cur, err := e.arm.get(ctx, res.ID, res.APIVersion)
	if errors.Is(err, errNotFound) {
		c.ChangeType = changeCreate
		c.After = p.red.value(normalize(desired))
		return c, nil
	}
	if err != nil {
		return c, err
	}
	var ds []delta
	diff("", normalize(desired), cur, &ds)
	c.ChangeType = changeNoChange
	for i := range ds {
		ds[i].Before, ds[i].After = p.red.value(ds[i].Before), p.red.value(ds[i].After)
		if ds[i].PropertyChangeType != propNoEffect {
			c.ChangeType = changeModify
		}
	}
	c.Delta = ds
	c.Before, c.After = p.red.value(cur), p.red.value(normalize(desired))
	return c, nil
}

// normalize turns a template value into plain JSON types.
func normalize(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(data, &out) // what Marshal made decodes
	return out
}

// writeOnly are properties the API never answers (secrets).
var writeOnly = map[string]bool{"adminpassword": true, "customdata": true, "protectedsettings": true}

// diff compares what the template asks (want) with what the API answers
// (have). Only properties the template sets are compared, so read-only
// properties the server adds do not count. A property the template sets
// that the server does not keep is NoEffect, except at the top level
// (tags, sku, zones, ...), where it is a Create.
func diff(path string, want, have any, out *[]delta) {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			*out = append(*out, delta{Path: path, PropertyChangeType: propModify, Before: have, After: want})
			return
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			wv := w[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			hv, found := lookupFold(h, k)
			if !found {
				if writeOnly[strings.ToLower(k)] || wv == nil {
					continue
				}
				pc := propNoEffect
				if path == "" {
					pc = propCreate
				}
				*out = append(*out, delta{Path: p, PropertyChangeType: pc, After: wv})
				continue
			}
			diff(p, wv, hv, out)
		}
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			*out = append(*out, delta{Path: path, PropertyChangeType: propArray, Before: have, After: want})
			return
		}
		for i := range w {
			diff(path+"["+strconv.Itoa(i)+"]", w[i], h[i], out)
		}
	default:
		if !sameScalar(path, want, have) {
			*out = append(*out, delta{Path: path, PropertyChangeType: propModify, Before: have, After: want})
		}
	}
}

func lookupFold(m map[string]any, k string) (any, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return nil, false
}

// sameScalar compares as ARM does: "true" equals true, "5" equals 5, ids and
// names case-insensitively, locations without spaces.
func sameScalar(path string, want, have any) bool {
	if want == nil || have == nil {
		return want == nil && have == nil
	}
	_, wb := want.(bool)
	_, hb := have.(bool)
	if wb || hb {
		a, err1 := template.Bool(want)
		b, err2 := template.Bool(have)
		return err1 == nil && err2 == nil && a == b
	}
	wf, wn := number(want)
	hf, hn := number(have)
	if wn && hn {
		return wf == hf
	}
	ws, ok1 := want.(string)
	hs, ok2 := have.(string)
	if ok1 && ok2 {
		if strings.EqualFold(path[strings.LastIndex(path, ".")+1:], "location") {
			ws, hs = strings.ReplaceAll(ws, " ", ""), strings.ReplaceAll(hs, " ", "")
		}
		if strings.HasPrefix(ws, "/subscriptions/") {
			return template.SameID(ws, hs)
		}
		return strings.EqualFold(ws, hs)
	}
	if wn || hn {
		a, err1 := template.Int(want)
		b, err2 := template.Int(have)
		return err1 == nil && err2 == nil && a == b
	}
	return fmt.Sprint(want) == fmt.Sprint(have)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x)
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
