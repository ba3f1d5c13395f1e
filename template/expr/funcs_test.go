package expr

import (
	"context"
	"strings"
	"testing"
)

func TestFunctions(t *testing.T) {
	obj := "createObject('a', 1, 'b', createArray(1, 2))"
	tests := []struct {
		in   string
		want string // compact JSON of the result
	}{
		// strings
		{"[concat('a', 'b', 'c')]", `"abc"`},
		{"[concat('n', 1, true())]", `"n1True"`},
		{"[concat(createArray(1), createArray(2, 3))]", `[1,2,3]`},
		{"[concat(createArray())]", `[]`},
		{"[toLower('AbC')]", `"abc"`},
		{"[toUpper('AbC')]", `"ABC"`},
		{"[trim('  x y \t')]", `"x y"`},
		{"[substring('hello', 1, 3)]", `"ell"`},
		{"[substring('hello', 2)]", `"llo"`},
		{"[substring('hello', 5, 0)]", `""`},
		{"[length('héllo')]", `5`},
		{"[length(createArray(1, 2))]", `2`},
		{"[length(" + obj + ")]", `2`},
		{"[base64('hello')]", `"aGVsbG8="`},
		{"[base64ToString('aGVsbG8=')]", `"hello"`},
		{"[base64ToJson('eyJhIjoxfQ==')]", `{"a":1}`},
		{"[dataUri('hi')]", `"data:text/plain;charset=utf8;base64,aGk="`},
		{"[dataUriToString('data:text/plain;charset=utf8;base64,aGk=')]", `"hi"`},
		{"[replace('a-b-c', '-', '+')]", `"a+b+c"`},
		{"[split('a,b;c', ',')]", `["a","b;c"]`},
		{"[split('a,b;c', createArray(',', ';'))]", `["a","b","c"]`},
		{"[join(createArray('a', 1), '-')]", `"a-1"`},
		{"[startsWith('Hello', 'he')]", `true`},
		{"[endsWith('Hello', 'LO')]", `true`},
		{"[endsWith('Hello', 'x')]", `false`},
		{"[indexOf('abcABC', 'B')]", `1`},
		{"[lastIndexOf('abcABC', 'b')]", `4`},
		{"[indexOf('abc', 'z')]", `-1`},
		{"[indexOf(createArray('a', 'b'), 'b')]", `1`},
		{"[padLeft('7', 3, '0')]", `"007"`},
		{"[padLeft(42, 5)]", `"   42"`},
		{"[padLeft('long', 2)]", `"long"`},
		{"[uri('http://a.com/x/', 'y')]", `"http://a.com/x/y"`},
		{"[uri('http://a.com/x', 'y')]", `"http://a.com/y"`},
		{"[uriComponent('a b/c?d=é')]", `"a%20b%2Fc%3Fd%3D%C3%A9"`},
		{"[uriComponentToString('a%20b%2Fc')]", `"a b/c"`},
		{"[string(true())]", `"True"`},
		{"[string(12)]", `"12"`},
		{"[string(" + obj + ")]", `"{\"a\":1,\"b\":[1,2]}"`},
		{"[string(null())]", `""`},
		{"[format('{0}-{1:D3}', 'vm', 7)]", `"vm-007"`},
		{"[format('{0:X}/{0:x4}', 255)]", `"FF/00ff"`},
		{"[format('{0:N0}', 1234567)]", `"1,234,567"`},
		{"[format('{0:F1}', 3)]", `"3.0"`},
		{"[format('{0:000}', 5)]", `"005"`},
		{"[format('{0:D3}', -5)]", `"-005"`},
		{"[format('{0:D}', -9223372036854775807)]", `"-9223372036854775807"`},
		{"[format('{{{0}}}|{0,4}|{0,-3}|', 1)]", `"{1}|   1|1  |"`},
		{"[format('{0} is {1}', 'x', true())]", `"x is True"`},
		{"[uniqueString('aaa')]", `"zavj67f3en4hc"`},
		{"[guid('a', 'b', 'c')]", `"a98fa280-e03f-5afa-8d8e-92d0a9c201e8"`},
		// conversions
		{"[int('42')]", `42`},
		{"[int(' -3 ')]", `-3`},
		{"[int(7)]", `7`},
		{"[bool('True')]", `true`},
		{"[bool(0)]", `false`},
		{"[float('1.5')]", `1.5`},
		{"[json('[1,\"a\",null]')]", `[1,"a",null]`},
		{"[json('null')]", `null`},
		{"[array(1)]", `[1]`},
		{"[array(createArray(1))]", `[1]`},
		// logic and comparison
		{"[equals(1, 1)]", `true`},
		{"[equals('a', 'A')]", `false`},
		{"[equals(createArray(1, 'a'), createArray(1, 'a'))]", `true`},
		{"[equals(" + obj + ", " + obj + ")]", `true`},
		{"[not(false())]", `true`},
		{"[and(true(), true(), false())]", `false`},
		{"[or(false(), true())]", `true`},
		{"[greater(2, 1)]", `true`},
		{"[greater('b', 'a')]", `true`},
		{"[greaterOrEquals(1, 1)]", `true`},
		{"[less(1, 2)]", `true`},
		{"[lessOrEquals(3, 2)]", `false`},
		{"[if(equals(1, 2), 'a', 'b')]", `"b"`},
		{"[coalesce(null(), null(), 'x')]", `"x"`},
		{"[coalesce(null())]", `null`},
		// numbers
		{"[add(1, 2)]", `3`},
		{"[sub(1, 5)]", `-4`},
		{"[mul(6, 7)]", `42`},
		{"[div(7, 2)]", `3`},
		{"[div(-7, 2)]", `-3`},
		{"[mod(7, 3)]", `1`},
		{"[min(3, 1, 2)]", `1`},
		{"[max(createArray(3, 9, 2))]", `9`},
		{"[range(5, 3)]", `[5,6,7]`},
		{"[range(0, 0)]", `[]`},
		// collections
		{"[contains('abc', 'b')]", `true`},
		{"[contains('abc', 'B')]", `false`},
		{"[contains(createArray(1, 2), 2)]", `true`},
		{"[contains(" + obj + ", 'A')]", `true`},
		{"[empty('')]", `true`},
		{"[empty(createArray())]", `true`},
		{"[empty(createObject())]", `true`},
		{"[empty(null())]", `true`},
		{"[empty('x')]", `false`},
		{"[first(createArray(4, 5))]", `4`},
		{"[first('xyz')]", `"x"`},
		{"[last(createArray(4, 5))]", `5`},
		{"[last('xyz')]", `"z"`},
		{"[first(createArray())]", `null`},
		{"[take(createArray(1, 2, 3), 2)]", `[1,2]`},
		{"[take('abc', 10)]", `"abc"`},
		{"[take('abc', -1)]", `""`},
		{"[skip(createArray(1, 2, 3), 2)]", `[3]`},
		{"[skip('abc', 1)]", `"bc"`},
		{"[union(createArray(1, 2), createArray(2, 3))]", `[1,2,3]`},
		{"[union(createObject('a', 1, 'b', 2), createObject('B', 3))]", `{"B":3,"a":1}`},
		{"[intersection(createArray(1, 2, 3), createArray(3, 2))]", `[2,3]`},
		{"[intersection(createObject('a', 1, 'b', 2), createObject('a', 1, 'b', 3))]", `{"a":1}`},
		{"[createArray()]", `[]`},
		{"[createObject()]", `{}`},
		{"[items(createObject('b', 2, 'a', 1))]", `[{"key":"a","value":1},{"key":"b","value":2}]`},
	}
	for _, tt := range tests {
		got, err := EvalString(context.Background(), tt.in, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if s := MarshalCompact(got); s != tt.want {
			t.Errorf("%s = %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestFunctionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[concat(createObject())]", "concat joins either strings or arrays"},
		{"[concat(createArray(), 'a')]", "must be an array like the first one"},
		{"[substring('abc', 1, 5)]", "reach beyond the string"},
		{"[substring('abc', -1)]", "outside the string"},
		{"[length(1)]", "needs a string, array or object"},
		{"[base64ToString('!!')]", "not valid base64"},
		{"[int('x1')]", "cannot convert 'x1' to an integer"},
		{"[bool('yes')]", "cannot convert 'yes' to a bool"},
		{"[float('x')]", "cannot convert 'x' to a float"},
		{"[json('{')]", "not valid JSON"},
		{"[not(1)]", "needs a bool"},
		{"[and(true(), 'x')]", "argument 2 must be a bool"},
		{"[or(true())]", "takes at least 2 arguments"},
		{"[greater(1, 'a')]", "compares two numbers or two strings"},
		{"[greater('a', 1)]", "cannot compare a string"},
		{"[add(1, 'a')]", "argument 2 must be an integer"},
		{"[div(1, 0)]", "division by zero"},
		{"[mod(1, 0)]", "division by zero"},
		{"[replace('a', '', 'b')]", "must not be empty"},
		{"[split('a', 1)]", "argument 2 must be a string or an array"},
		{"[contains(1, 1)]", "needs a string, array or object"},
		{"[empty(1)]", "needs a string, array, object or null"},
		{"[first(1)]", "needs a string or an array"},
		{"[take(1, 1)]", "needs a string or an array"},
		{"[union(1)]", "needs arrays or objects"},
		{"[union(createArray(), createObject())]", "must be an array like the first one"},
		{"[intersection(createObject(), createArray())]", "must be an object like the first one"},
		{"[createObject('a')]", "odd number of arguments"},
		{"[createObject(1, 2)]", "argument 1 must be a string"},
		{"[format('{0}')]", "has no argument"},
		{"[format('{x}', 1)]", "bad format item"},
		{"[format('{0', 1)]", "not closed"},
		{"[format('}', 1)]", "unexpected '}'"},
		{"[format('{0:Q}', 1)]", "unsupported format specifier"},
		{"[format('{0:D}', json('1.5'))]", "format 'D' needs an integer"},
		{"[padLeft('a', 3, 'xy')]", "must be one character"},
		{"[padLeft('a', 100000)]", "larger than the limit"},
		{"[min(createArray())]", "the array is empty"},
		{"[max('a', 1)]", "is not an integer"},
		{"[range(1, -1)]", "between 0 and 10000"},
		{"[range(2147483647, 2)]", "32-bit"},
		{"[uri('relative', 'x')]", "is not an absolute URI"},
		{"[uniqueString(1)]", "argument 1 must be a string"},
		{"[guid()]", "takes at least 1 argument"},
		{"[true(1)]", "takes 0 arguments, got 1"},
		{"[dataUriToString('x')]", "not a data URI"},
		{"[items(1)]", "needs an object"},
		{"[join(1, ',')]", "must be an array"},
	}
	for _, tt := range tests {
		_, err := EvalString(context.Background(), tt.in, nil)
		if err == nil {
			if tt.want != "" {
				t.Errorf("%s: no error, want %q", tt.in, tt.want)
			}
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.in, err, tt.want)
		}
		// The error names the failing call, so the function is named.
		name := strings.ToLower(tt.in[1:strings.Index(tt.in, "(")])
		if !strings.HasPrefix(strings.ToLower(err.Error()), name+"(") {
			t.Errorf("%s: error %q does not start with the function", tt.in, err)
		}
	}
}

func TestEveryBuiltinIsTested(t *testing.T) {
	// Keep the tables above complete: each built-in appears in a test.
	src := testSources(t)
	for _, name := range BuiltinNames() {
		if !strings.Contains(src, name+"(") {
			t.Errorf("built-in %s has no test", name)
		}
	}
}

// TestLimits: inputs that would take huge memory or quadratic time are
// refused or stay fast (found by fuzzing FuzzEval).
func TestLimits(t *testing.T) {
	big := "padLeft('x', 16000)"
	tests := []struct{ in, want string }{
		{"[replace(concat(" + big + ", " + big + "), ' ', " + big + ")]", "larger than the limit"},
		{"[string(createArray(" + strings.Repeat(big+", ", 300) + "'x'))]", "larger than the limit"},
		{"[concat(" + strings.Repeat("string(range(0, 10000)), ", 100) + "'x')]", "larger than the limit"},
		{"[split(concat(" + strings.Repeat(big+", ", 7) + "'x'), createArray(' ', 'x'))]", "more than 100000 elements"},
		{"[length(union(range(0, 10000), range(5000, 10000)))]", ""},
		{"[length(intersection(range(0, 10000), range(5000, 10000), range(0, 10000)))]", ""},
	}
	for _, tt := range tests {
		v, err := EvalString(context.Background(), tt.in, nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%.60s…: %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.60s…: got %v, %v; want %q", tt.in, TypeName(v), err, tt.want)
		}
	}
	v, _ := EvalString(context.Background(), "[length(union(range(0, 10000), range(5000, 10000)))]", nil)
	if v != int64(15000) {
		t.Errorf("union length = %v", v)
	}
}
