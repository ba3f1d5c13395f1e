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
	// (copies and repeated references make values grow past the template's size).
	maxValue = 16 << 20
)

// checkValue refuses a value larger than maxValue.
func checkValue(path string, v any) error {
	if expr.SizeOf(v, maxValue) > maxValue {
		return atPath(path, fmt.Errorf("the evaluated value is larger than the limit of %d bytes", maxValue))
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
