package expr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seeds returns every expression of the template package's testdata
// templates, plus a few hand-written edge cases.
func seeds(t testing.TB) []string {
	out := []string{
		"[concat('a', 'b')]", "[[literal]", "['it''s']", "[-1]", "[createArray(1, 2)[0]]",
		"[createObject('a', createObject('b', 1)).a.b]", "[if(true(), 'x', y())]", "[format('{0:D3}', 5)]",
		"[json('{\"a\":[1,2]}').a[1]]", "[parameters('p')]", "[variables('v')[0].x]",
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if IsExpression(x) {
					out = append(out, x)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for _, k := range Keys(x) {
					walk(x[k])
				}
			}
		}
		walk(v)
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Compile(s)
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) || !xe.Syntax || xe.Pos < 1 || xe.Pos > len(s)+1 {
				t.Fatalf("Compile(%q): bad error %#v", s, err)
			}
			return
		}
		if e.Root == nil {
			if IsExpression(s) {
				t.Fatalf("Compile(%q): an expression compiled to a literal", s)
			}
			return
		}
		// Every node's span lies inside the source.
		Walk(e.Root, func(n Node) bool {
			a, b := n.Span()
			if a < 1 || b > len(s)-1 || a > b {
				t.Fatalf("Compile(%q): node %T spans %d..%d", s, n, a, b)
			}
			return true
		})
	})
}

// fuzzHost answers parameters() and variables() with assorted values.
type fuzzHost struct{}

func (fuzzHost) CallFunc(_ context.Context, name string, args []any) (any, bool, error) {
	switch name {
	case "parameters", "variables":
		if len(args) != 1 {
			return nil, true, errors.New("one argument")
		}
		k, _ := args[0].(string)
		switch strings.ToLower(k) {
		case "arr", "v":
			return []any{int64(1), "two", map[string]any{"x": true}}, true, nil
		case "obj":
			return map[string]any{"a": int64(1), "b": []any{"c"}}, true, nil
		case "n":
			return int64(7), true, nil
		}
		return "value", true, nil
	}
	return nil, false, nil
}

func (fuzzHost) FuncNames() []string { return []string{"parameters", "variables"} }

func FuzzEval(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 2000 {
			return
		}
		e, err := Compile(s)
		if err != nil {
			return
		}
		start := time.Now()
		v, err := e.Eval(context.Background(), fuzzHost{})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%q took %v", s, d)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error message", s)
			}
			return
		}
		// Whatever evaluates must be a template value that renders.
		_ = MarshalCompact(v)
		_ = Stringify(v)
		if !Equal(v, Clone(v)) && !hasNaN(v) {
			t.Fatalf("%q: value %#v differs from its clone", s, v)
		}
	})
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case []any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}
