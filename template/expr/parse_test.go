package expr

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCompileLiterals(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"[", "["},
		{"[no end", "[no end"},
		{"ends]", "ends]"},
		{"[[escaped]", "[escaped]"},
		{"[[", "["},
	}
	for _, tt := range tests {
		e, err := Compile(tt.in)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.in, err)
		}
		if e.Root != nil || e.Literal != tt.want {
			t.Errorf("Compile(%q) = root %v literal %q, want literal %q", tt.in, e.Root, e.Literal, tt.want)
		}
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"['a']", "a"},
		{"['it''s']", "it's"},
		{"['']", ""},
		{"[42]", int64(42)},
		{"[-7]", int64(-7)},
		{"[ concat ( 'a' , 'b' ) ]", "ab"},
		{"[CONCAT('a','b')]", "ab"},
		{"[createArray(1, 2, 3)[1]]", int64(2)},
		{"[createObject('a', createObject('b', 5)).a.b]", int64(5)},
		{"[createObject('Key', 1).key]", int64(1)},
		{"[createObject('a', createArray(7, 8)).a[1]]", int64(8)},
		{"[createObject('x-y', 3)['x-y']]", int64(3)},
		{"[json('{\"a\":[1,{\"b\":true}]}').a[1].b]", true},
		{"[true()]", true},
		{"[null()]", nil},
		{"['a]b']", "a]b"},
		{"[concat('[', ']')]", "[]"},
	}
	for _, tt := range tests {
		got, err := EvalString(context.Background(), tt.in, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !Equal(got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		pos     int
		message string
	}{
		{"[concat('a' 'b')]", 13, "expected ',' or ')'"},
		{"[concat('a'", 0, ""}, // no closing bracket: a literal, not an error
		{"[concat('a')", 0, ""},
		{"[concat('a']", 12, "expected ',' or ')'"},
		{"[concat('a)]", 9, "not closed"},
		{"[]", 2, "empty expression"},
		{"[concat]", 8, "expected '(' after function name 'concat'"},
		{"[concat(,)]", 9, "expected a function call"},
		{"[1.5]", 2, "only integer literals"},
		{"[99999999999999999999]", 2, "out of range"},
		{"[a(1) b]", 7, "unexpected name 'b'"},
		{"[x(1).]", 7, "expected a property name"},
		{"[x(1)[1]", 8, "expected ']'"},
		{"[x(#)]", 4, "unexpected character"},
		{"[-]", 2, "'-' must be followed by digits"},
	}
	for _, tt := range tests {
		e, err := Compile(tt.in)
		if tt.pos == 0 {
			if err != nil || e.Root != nil {
				t.Errorf("Compile(%q) should be a literal, got %v", tt.in, err)
			}
			continue
		}
		var xe *Error
		if !errors.As(err, &xe) || !xe.Syntax {
			t.Errorf("Compile(%q) = %v, want a syntax error", tt.in, err)
			continue
		}
		if xe.Pos != tt.pos || !strings.Contains(err.Error(), tt.message) {
			t.Errorf("Compile(%q) = %q (pos %d), want pos %d and %q", tt.in, err, xe.Pos, tt.pos, tt.message)
		}
		if !strings.Contains(err.Error(), "at position") {
			t.Errorf("syntax error %q does not say the position", err)
		}
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	s := "[" + strings.Repeat("a(", 300) + strings.Repeat(")", 300) + "]"
	if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("got %v, want a nesting error", err)
	}
}

func TestEvalErrorsNameTheCall(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[toLowr('A')]", "toLowr('A'): unknown function 'toLowr' (did you mean 'toLower'?)"},
		{"[concat('a', substring('abc', 5))]", "substring('abc', 5): start index 5 is outside the string of length 3"},
		{"[substring('abc')]", "substring('abc'): takes 2 to 3 arguments, got 1"},
		{"[toLower(1)]", "toLower(1): argument 1 must be a string, got int 1"},
		{"[createArray(1)[3]]", "createArray(1)[3]: index 3 is out of range"},
		{"[createObject('name', 1).nmae]", "the object has no property 'nmae' (did you mean 'name'?)"},
		{"[if(1, 2, 3)]", "the condition must be a bool"},
		{"[if(true(), 2)]", "takes 3 arguments"},
	}
	for _, tt := range tests {
		_, err := EvalString(context.Background(), tt.in, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.in, err, tt.want)
		}
		var xe *Error
		if errors.As(err, &xe) && xe.Pos == 0 {
			t.Errorf("%s: error has no position", tt.in)
		}
	}
}

func TestIfIsLazy(t *testing.T) {
	// The branch not taken would fail; if() must not evaluate it.
	v, err := EvalString(context.Background(), "[if(equals(1, 1), 'yes', substring('a', 9))]", nil)
	if err != nil || v != "yes" {
		t.Fatalf("got %v, %v", v, err)
	}
	v, err = EvalString(context.Background(), "[if(false(), createArray()[5], 'no')]", nil)
	if err != nil || v != "no" {
		t.Fatalf("got %v, %v", v, err)
	}
}

type fakeHost map[string]any

func (h fakeHost) CallFunc(_ context.Context, name string, args []any) (any, bool, error) {
	v, ok := h[name]
	if !ok {
		return nil, false, nil
	}
	if err, isErr := v.(error); isErr {
		return nil, true, err
	}
	return v, true, nil
}

func (h fakeHost) FuncNames() []string { return []string{"parameters"} }

func TestHostFunctions(t *testing.T) {
	h := fakeHost{"parameters": "fromhost", "broken": errors.New("boom")}
	v, err := EvalString(context.Background(), "[toUpper(parameters('x'))]", h)
	if err != nil || v != "FROMHOST" {
		t.Fatalf("got %v, %v", v, err)
	}
	_, err = EvalString(context.Background(), "[concat('a', broken())]", h)
	if err == nil || err.Error() != "broken(): boom" {
		t.Fatalf("got %v, want broken(): boom", err)
	}
	_, err = EvalString(context.Background(), "[parameter('x')]", h)
	if err == nil || !strings.Contains(err.Error(), "did you mean 'parameters'") {
		t.Fatalf("got %v, want a suggestion of the host's function", err)
	}
}

func TestWalk(t *testing.T) {
	e, err := Compile("[concat(reference('a').x, listKeys(variables('b'), '1')[0])]")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	Walk(e.Root, func(n Node) bool {
		if c, ok := n.(*Call); ok {
			calls = append(calls, c.Name+"="+e.Text(c))
		}
		return true
	})
	want := "concat=" + e.Src[1:len(e.Src)-1] + "|reference=reference('a')|listKeys=listKeys(variables('b'), '1')|variables=variables('b')"
	if got := strings.Join(calls, "|"); got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
}
