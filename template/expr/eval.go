package expr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Error is an expression error with the place it happened.
type Error struct {
	// Src is the whole template string the expression came from.
	Src string
	// Pos is the 1-based position in Src of the failing part (0 = unknown).
	Pos int
	// Call is the source text of the failing call or sub-expression (empty
	// for syntax errors).
	Call string
	// Syntax is true for parse errors.
	Syntax bool
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	if e.Syntax {
		return fmt.Sprintf("%s: at position %d: %v", e.Src, e.Pos, e.Err)
	}
	return fmt.Sprintf("%s: %v", shorten(e.Call, 160), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "…" + s[len(s)-n/2:]
}

// Host supplies the functions that depend on the deployment (parameters,
// variables, copyIndex, resourceId, reference, ...). The evaluator asks the
// host first, then the built-in pure functions.
type Host interface {
	// CallFunc evaluates the function name (lower case) with evaluated
	// arguments. ok=false means the host does not provide that function.
	CallFunc(ctx context.Context, name string, args []any) (v any, ok bool, err error)
	// FuncNames lists the host's functions, for "did you mean" suggestions.
	FuncNames() []string
}

// Eval evaluates e. A literal evaluates to its string. h may be nil (only
// built-in functions are then available).
func (e *Expr) Eval(ctx context.Context, h Host) (any, error) {
	if e.Root == nil {
		return e.Literal, nil
	}
	ev := evaluator{e: e, h: h}
	return ev.eval(ctx, e.Root)
}

// EvalString evaluates s (compiling it first) with only the built-in
// functions and h. Handy for tests and one-off evaluations.
func EvalString(ctx context.Context, s string, h Host) (any, error) {
	e, err := Compile(s)
	if err != nil {
		return nil, err
	}
	return e.Eval(ctx, h)
}

type evaluator struct {
	e *Expr
	h Host
}

func (ev *evaluator) wrap(n Node, err error) error {
	if _, ok := err.(*Error); ok {
		return err
	}
	s, _ := n.Span()
	return &Error{Src: ev.e.Src, Pos: s + 1, Call: ev.e.Text(n), Err: err}
}

func (ev *evaluator) eval(ctx context.Context, n Node) (any, error) {
	switch n := n.(type) {
	case *StringLit:
		return n.Value, nil
	case *IntLit:
		return n.Value, nil
	case *Property:
		x, err := ev.eval(ctx, n.X)
		if err != nil {
			return nil, err
		}
		v, err := property(x, n.Name)
		if err != nil {
			return nil, ev.wrap(n, err)
		}
		return v, nil
	case *Index:
		x, err := ev.eval(ctx, n.X)
		if err != nil {
			return nil, err
		}
		i, err := ev.eval(ctx, n.Index)
		if err != nil {
			return nil, err
		}
		v, err := index(x, i)
		if err != nil {
			return nil, ev.wrap(n, err)
		}
		return v, nil
	case *Call:
		return ev.call(ctx, n)
	}
	return nil, fmt.Errorf("unknown expression node %T", n)
}

func (ev *evaluator) call(ctx context.Context, n *Call) (any, error) {
	name := strings.ToLower(n.Name)
	if name == "if" {
		// if() evaluates only the branch it takes, as ARM does.
		if len(n.Args) != 3 {
			return nil, ev.wrap(n, fmt.Errorf("takes 3 arguments (condition, trueValue, falseValue), got %d", len(n.Args)))
		}
		c, err := ev.eval(ctx, n.Args[0])
		if err != nil {
			return nil, err
		}
		b, ok := c.(bool)
		if !ok {
			return nil, ev.wrap(n, fmt.Errorf("the condition must be a bool, got %s", describe(c)))
		}
		if b {
			return ev.eval(ctx, n.Args[1])
		}
		return ev.eval(ctx, n.Args[2])
	}
	args := make([]any, len(n.Args))
	for i, a := range n.Args {
		v, err := ev.eval(ctx, a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	if ev.h != nil {
		v, ok, err := ev.h.CallFunc(ctx, name, args)
		if ok {
			if err != nil {
				return nil, ev.wrap(n, err)
			}
			return v, nil
		}
	}
	b, ok := builtins[name]
	if !ok {
		names := BuiltinNames()
		if ev.h != nil {
			names = append(names, ev.h.FuncNames()...)
		}
		msg := fmt.Sprintf("unknown function '%s'", n.Name)
		if s := Suggest(n.Name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean '%s'?)", s)
		}
		return nil, ev.wrap(n, errors.New(msg))
	}
	if err := b.checkArity(len(args)); err != nil {
		return nil, ev.wrap(n, err)
	}
	v, err := b.fn(args)
	if err == nil {
		err = checkSize(v)
	}
	if err != nil {
		return nil, ev.wrap(n, err)
	}
	return v, nil
}

// Limits on values built by functions, so that a template cannot make the
// evaluator exhaust memory or time (ARM itself refuses templates over 4 MiB).
const (
	maxSize  = 4 << 20 // bytes of a value, counted deeply
	maxArray = 100000  // elements of one array
)

func checkSize(v any) error {
	if a, ok := v.([]any); ok && len(a) > maxArray {
		return fmt.Errorf("the result is an array of %d elements, over the limit of %d", len(a), maxArray)
	}
	if SizeOf(v, maxSize) > maxSize {
		return fmt.Errorf("the result is larger than the limit of %d bytes", maxSize)
	}
	return nil
}

// SizeOf estimates the size of v in bytes (strings by length, other values
// 8 bytes each, repeated references counted each time), stopping early once
// it passes budget.
func SizeOf(v any, budget int) int {
	switch x := v.(type) {
	case string:
		return len(x) + 8
	case []any:
		n := 8
		for _, e := range x {
			if n += SizeOf(e, budget-n); n > budget {
				return n
			}
		}
		return n
	case map[string]any:
		n := 8
		for k, e := range x {
			if n += len(k) + SizeOf(e, budget-n-len(k)); n > budget {
				return n
			}
		}
		return n
	}
	return 8
}

// property reads x.name. Object keys match case-insensitively, as in ARM.
func property(x any, name string) (any, error) {
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cannot read property '%s' of %s", name, describe(x))
	}
	if v, ok := Lookup(m, name); ok {
		return v, nil
	}
	msg := fmt.Sprintf("the object has no property '%s'", name)
	if s := Suggest(name, Keys(m)); s != "" {
		msg += fmt.Sprintf(" (did you mean '%s'?)", s)
	} else if len(m) > 0 && len(m) <= 12 {
		msg += fmt.Sprintf(" (it has: %s)", strings.Join(Keys(m), ", "))
	}
	return nil, errors.New(msg)
}

func index(x, i any) (any, error) {
	switch x := x.(type) {
	case []any:
		n, ok := toInt(i)
		if !ok {
			return nil, fmt.Errorf("an array index must be an integer, got %s", describe(i))
		}
		if n < 0 || n >= int64(len(x)) {
			return nil, fmt.Errorf("index %d is out of range: the array has %d elements", n, len(x))
		}
		return x[n], nil
	case map[string]any:
		s, ok := i.(string)
		if !ok {
			return nil, fmt.Errorf("an object can only be indexed by a string, got %s", describe(i))
		}
		return property(x, s)
	}
	return nil, fmt.Errorf("cannot index %s", describe(x))
}

// Lookup finds key in m: exactly first, then case-insensitively.
func Lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// Keys returns m's keys sorted.
func Keys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// Suggest returns the candidate closest to name (case-insensitive edit
// distance), or "" when none is close enough to be a likely typo.
func Suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	ln := strings.ToLower(name)
	for _, c := range candidates {
		d := distance(ln, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(name) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD == 0 || bestD > limit {
		if bestD == 0 && best != name {
			return best
		}
		return ""
	}
	return best
}

func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// EvalNode evaluates one node of e (for example one argument of a call).
func (e *Expr) EvalNode(ctx context.Context, n Node, h Host) (any, error) {
	ev := evaluator{e: e, h: h}
	return ev.eval(ctx, n)
}
