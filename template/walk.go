package template

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

const (
	// maxCopy is ARM's limit on a copy loop's count.
	maxCopy = 800
	// maxResources is ARM's limit on resources of a template, copies included.
	maxResources = 800
	// maxValue bounds the size of one evaluated variable, body or output
	// (copies and repeated references make values grow past the template's
	// size). It is enforced while the value is built, so evaluation stops
	// as soon as it is passed.
	maxValue = 16 << 20
	// maxTotal bounds the evaluated template: every variable, resource
	// body and output together.
	maxTotal = 64 << 20
)

// checkValue refuses a value larger than maxValue.
func checkValue(path string, v any) error {
	if expr.SizeOf(v, maxValue) > maxValue {
		return atPath(path, errTooLarge)
	}
	return nil
}

var errTooLarge = fmt.Errorf("the evaluated value is larger than the limit of %d bytes (%d MiB): lower copy counts or repeat less data", maxValue, maxValue>>20)

// charge counts v, just evaluated at path, against the budget of the value
// being built (env.spent) and fails once that passes maxValue.
func (e *env) charge(path string, v any) error {
	if e.spent == nil {
		return nil
	}
	*e.spent += expr.SizeOf(v, maxValue-*e.spent+1)
	if *e.spent > maxValue {
		return atPath(path, errTooLarge)
	}
	return nil
}

// record notes the size of one finished top-level value (key names it) and
// fails when the template's values together pass maxTotal. A value
// evaluated again replaces its earlier size.
func (d *Deployment) record(key, path string, v any) error {
	n := expr.SizeOf(v, maxValue+1)
	d.sizeMu.Lock()
	defer d.sizeMu.Unlock()
	if d.sizes == nil {
		d.sizes = map[string]int{}
	}
	d.total += n - d.sizes[key]
	d.sizes[key] = n
	if d.total > maxTotal {
		total := d.total
		d.total -= n
		delete(d.sizes, key)
		return atPath(path, fmt.Errorf("the evaluated template (variables, resource bodies and outputs together) is larger than the limit of %d bytes (%d MiB), at %d bytes: lower copy counts or repeat less data", maxTotal, maxTotal>>20, total))
	}
	return nil
}

// evalValue evaluates every expression inside v (a raw template value) and
// expands property "copy" arrays. path is v's JSON path.
func (d *Deployment) evalValue(ctx context.Context, env *env, v any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		e, err := d.tpl.compiled(x)
		if err != nil {
			return nil, atPath(path, err)
		}
		if e.Root == nil {
			// A literal costs too: copies repeat it.
			if err := env.charge(path, e.Literal); err != nil {
				return nil, err
			}
			return e.Literal, nil
		}
		d.evaluated.Add(1)
		val, err := e.Eval(ctx, env)
		if err != nil {
			if env.whatIf && errors.Is(err, ErrNotDeployed) {
				*env.unresolvedPtr() = append(*env.unresolvedPtr(), path)
				return x, nil
			}
			return nil, atPath(path, err)
		}
		if err := env.charge(path, val); err != nil {
			return nil, err
		}
		return val, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			val, err := d.evalValue(ctx, env, e, indexPath(path, i))
			if err != nil {
				return nil, err
			}
			out[i] = val
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range expr.Keys(x) {
			if strings.EqualFold(k, "copy") && isCopyArray(x[k]) {
				specs, err := parseCopyArray(joinPath(path, k), x[k])
				if err != nil {
					return nil, err
				}
				for i := range specs {
					arr, err := d.expandCopy(ctx, env, &specs[i])
					if err != nil {
						return nil, err
					}
					out[specs[i].name] = arr
				}
				continue
			}
			val, err := d.evalValue(ctx, env, x[k], joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	}
	return v, nil
}

// count evaluates a copy count.
func (d *Deployment) count(ctx context.Context, env *env, raw any, path string) (int, error) {
	v, err := d.evalValue(ctx, env, raw, path)
	if err != nil {
		return 0, err
	}
	n, err := Int(v)
	if err != nil {
		return 0, atPath(path, fmt.Errorf("copy count: %w", err))
	}
	if n < 0 || n > maxCopy {
		return 0, atPath(path, fmt.Errorf("copy count %d must be between 0 and %d", n, maxCopy))
	}
	return int(n), nil
}

// expandCopy evaluates a property, variable or output copy into an array.
func (d *Deployment) expandCopy(ctx context.Context, env *env, cs *copySpec) ([]any, error) {
	n, err := d.count(ctx, env, cs.count, joinPath(cs.path, "count"))
	if err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		sub := env.with(loopPos{name: cs.name, index: i})
		v, err := d.evalValue(ctx, sub, cs.input, joinPath(cs.path, "input"))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, checkValue(cs.path, out)
}
