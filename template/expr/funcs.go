package expr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type builtin struct {
	name     string // display spelling
	min, max int    // argument count bounds; max < 0 = no limit
	fn       func(args []any) (any, error)
}

func (b *builtin) checkArity(n int) error {
	switch {
	case b.max < 0 && n < b.min:
		return fmt.Errorf("takes at least %d argument%s, got %d", b.min, plural(b.min), n)
	case b.max >= 0 && (n < b.min || n > b.max):
		if b.min == b.max {
			return fmt.Errorf("takes %d argument%s, got %d", b.min, plural(b.min), n)
		}
		return fmt.Errorf("takes %d to %d arguments, got %d", b.min, b.max, n)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

var builtins = map[string]*builtin{}

func init() {
	for _, b := range []*builtin{
		{"concat", 1, -1, fnConcat},
		{"toLower", 1, 1, strFn(strings.ToLower)},
		{"toUpper", 1, 1, strFn(strings.ToUpper)},
		{"trim", 1, 1, strFn(func(s string) string { return strings.TrimFunc(s, unicode.IsSpace) })},
		{"substring", 2, 3, fnSubstring},
		{"length", 1, 1, fnLength},
		{"base64", 1, 1, strFn(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })},
		{"base64ToString", 1, 1, fnBase64ToString},
		{"base64ToJson", 1, 1, fnBase64ToJSON},
		{"dataUri", 1, 1, fnDataURI},
		{"dataUriToString", 1, 1, fnDataURIToString},
		{"string", 1, 1, func(a []any) (any, error) { return Stringify(a[0]), nil }},
		{"int", 1, 1, fnInt},
		{"bool", 1, 1, fnBool},
		{"float", 1, 1, fnFloat},
		{"json", 1, 1, fnJSON},
		{"true", 0, 0, func([]any) (any, error) { return true, nil }},
		{"false", 0, 0, func([]any) (any, error) { return false, nil }},
		{"null", 0, 0, func([]any) (any, error) { return nil, nil }},
		{"equals", 2, 2, func(a []any) (any, error) { return Equal(a[0], a[1]), nil }},
		{"not", 1, 1, fnNot},
		{"and", 2, -1, fnAndOr(true)},
		{"or", 2, -1, fnAndOr(false)},
		{"greater", 2, 2, cmpFn(func(c int) bool { return c > 0 })},
		{"greaterOrEquals", 2, 2, cmpFn(func(c int) bool { return c >= 0 })},
		{"less", 2, 2, cmpFn(func(c int) bool { return c < 0 })},
		{"lessOrEquals", 2, 2, cmpFn(func(c int) bool { return c <= 0 })},
		{"add", 2, 2, arith(func(a, b int64) (int64, error) { return a + b, nil })},
		{"sub", 2, 2, arith(func(a, b int64) (int64, error) { return a - b, nil })},
		{"mul", 2, 2, arith(func(a, b int64) (int64, error) { return a * b, nil })},
		{"div", 2, 2, arith(func(a, b int64) (int64, error) {
			if b == 0 {
				return 0, errors.New("division by zero")
			}
			if a == math.MinInt64 && b == -1 {
				return 0, errors.New("integer overflow")
			}
			return a / b, nil
		})},
		{"mod", 2, 2, arith(func(a, b int64) (int64, error) {
			if b == 0 {
				return 0, errors.New("division by zero")
			}
			if b == -1 {
				return 0, nil
			}
			return a % b, nil
		})},
		{"replace", 3, 3, fnReplace},
		{"split", 2, 2, fnSplit},
		{"join", 2, 2, fnJoin},
		{"contains", 2, 2, fnContains},
		{"empty", 1, 1, fnEmpty},
		{"first", 1, 1, fnFirstLast(true)},
		{"last", 1, 1, fnFirstLast(false)},
		{"take", 2, 2, fnTakeSkip(true)},
		{"skip", 2, 2, fnTakeSkip(false)},
		{"union", 1, -1, fnUnion},
		{"intersection", 2, -1, fnIntersection},
		{"createArray", 0, -1, func(a []any) (any, error) { return append([]any{}, a...), nil }},
		{"createObject", 0, -1, fnCreateObject},
		{"array", 1, 1, fnArray},
		{"items", 1, 1, fnItems},
		{"coalesce", 1, -1, fnCoalesce},
		{"format", 1, -1, fnFormat},
		{"padLeft", 2, 3, fnPadLeft},
		{"startsWith", 2, 2, strPair(func(a, b string) any { return strings.HasPrefix(strings.ToLower(a), strings.ToLower(b)) })},
		{"endsWith", 2, 2, strPair(func(a, b string) any { return strings.HasSuffix(strings.ToLower(a), strings.ToLower(b)) })},
		{"indexOf", 2, 2, fnIndexOf(false)},
		{"lastIndexOf", 2, 2, fnIndexOf(true)},
		{"min", 1, -1, fnMinMax(true)},
		{"max", 1, -1, fnMinMax(false)},
		{"range", 2, 2, fnRange},
		{"uri", 2, 2, fnURI},
		{"uriComponent", 1, 1, strFn(uriEscape)},
		{"uriComponentToString", 1, 1, fnURIUnescape},
		{"uniqueString", 1, -1, fnUniqueString},
		{"guid", 1, -1, fnGUID},
	} {
		builtins[strings.ToLower(b.name)] = b
	}
}

// BuiltinNames lists the built-in functions' names, sorted.
func BuiltinNames() []string {
	out := make([]string, 0, len(builtins))
	for _, b := range builtins {
		out = append(out, b.name)
	}
	sort.Strings(out)
	return out
}

// argument helpers ---------------------------------------------------------

func str(a []any, i int) (string, error) {
	s, ok := a[i].(string)
	if !ok {
		return "", fmt.Errorf("argument %d must be a string, got %s", i+1, describe(a[i]))
	}
	return s, nil
}

func integer(a []any, i int) (int64, error) {
	n, ok := toInt(a[i])
	if !ok {
		return 0, fmt.Errorf("argument %d must be an integer, got %s", i+1, describe(a[i]))
	}
	return n, nil
}

func strFn(f func(string) string) func([]any) (any, error) {
	return func(a []any) (any, error) {
		s, err := str(a, 0)
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func strPair(f func(a, b string) any) func([]any) (any, error) {
	return func(a []any) (any, error) {
		x, err := str(a, 0)
		if err != nil {
			return nil, err
		}
		y, err := str(a, 1)
		if err != nil {
			return nil, err
		}
		return f(x, y), nil
	}
}

// functions ---------------------------------------------------------------

func fnConcat(a []any) (any, error) {
	if _, ok := a[0].([]any); ok {
		var out []any
		for i, v := range a {
			switch x := v.(type) {
			case []any:
				out = append(out, x...)
			case nil:
			default:
				return nil, fmt.Errorf("argument %d must be an array like the first one, got %s", i+1, describe(v))
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	var b strings.Builder
	for i, v := range a {
		switch v.(type) {
		case []any, map[string]any:
			return nil, fmt.Errorf("argument %d is an %s: concat joins either strings or arrays", i+1, TypeName(v))
		}
		b.WriteString(Stringify(v))
		if b.Len() > maxSize {
			return nil, fmt.Errorf("the result is larger than the limit of %d bytes", maxSize)
		}
	}
	return b.String(), nil
}

func fnSubstring(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	r := []rune(s)
	start, err := integer(a, 1)
	if err != nil {
		return nil, err
	}
	if start < 0 || start > int64(len(r)) {
		return nil, fmt.Errorf("start index %d is outside the string of length %d", start, len(r))
	}
	n := int64(len(r)) - start
	if len(a) == 3 {
		if n, err = integer(a, 2); err != nil {
			return nil, err
		}
		if n < 0 || start+n > int64(len(r)) {
			return nil, fmt.Errorf("start index %d and length %d reach beyond the string of length %d", start, n, len(r))
		}
	}
	return string(r[start : start+n]), nil
}

func fnLength(a []any) (any, error) {
	switch x := a[0].(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case []any:
		return int64(len(x)), nil
	case map[string]any:
		return int64(len(x)), nil
	}
	return nil, fmt.Errorf("needs a string, array or object, got %s", describe(a[0]))
}

func fnBase64ToString(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not valid base64: %w", err)
	}
	return string(b), nil
}

func fnBase64ToJSON(a []any) (any, error) {
	s, err := fnBase64ToString(a)
	if err != nil {
		return nil, err
	}
	return fnJSON([]any{s})
}

const dataURIPrefix = "data:text/plain;charset=utf8;base64,"

func fnDataURI(a []any) (any, error) {
	return dataURIPrefix + base64.StdEncoding.EncodeToString([]byte(Stringify(a[0]))), nil
}

func fnDataURIToString(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	i := strings.Index(s, ",")
	if !strings.HasPrefix(s, "data:") || i < 0 {
		return nil, errors.New("not a data URI (data:[type];base64,...)")
	}
	if !strings.HasSuffix(s[:i], ";base64") {
		u, err := url.PathUnescape(s[i+1:])
		if err != nil {
			return nil, fmt.Errorf("not a valid data URI: %w", err)
		}
		return u, nil
	}
	b, err := base64.StdEncoding.DecodeString(s[i+1:])
	if err != nil {
		return nil, fmt.Errorf("data URI is not valid base64: %w", err)
	}
	return string(b), nil
}

func fnInt(a []any) (any, error) {
	switch x := a[0].(type) {
	case int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.Abs(x) >= 1<<63 {
			return nil, fmt.Errorf("%v does not fit in an integer", x)
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot convert '%s' to an integer", shorten(x, 60))
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot convert %s to an integer", describe(a[0]))
}

func fnBool(a []any) (any, error) {
	switch x := a[0].(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("cannot convert '%s' to a bool (use 'true' or 'false')", shorten(x, 60))
	}
	return nil, fmt.Errorf("cannot convert %s to a bool", describe(a[0]))
}

func fnFloat(a []any) (any, error) {
	switch x := a[0].(type) {
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, fmt.Errorf("cannot convert '%s' to a float", shorten(x, 60))
		}
		return f, nil
	}
	return nil, fmt.Errorf("cannot convert %s to a float", describe(a[0]))
}

func fnJSON(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	v, err := ParseJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	return v, nil
}

func fnNot(a []any) (any, error) {
	b, ok := a[0].(bool)
	if !ok {
		return nil, fmt.Errorf("needs a bool, got %s", describe(a[0]))
	}
	return !b, nil
}

func fnAndOr(and bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		res := and
		for i, v := range a {
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("argument %d must be a bool, got %s", i+1, describe(v))
			}
			if and {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res, nil
	}
}

func cmpFn(ok func(int) bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		if x, isStr := a[0].(string); isStr {
			y, isStr := a[1].(string)
			if !isStr {
				return nil, fmt.Errorf("cannot compare a string with %s", describe(a[1]))
			}
			return ok(strings.Compare(x, y)), nil
		}
		x, okx := toFloat(a[0])
		y, oky := toFloat(a[1])
		if !okx || !oky {
			return nil, fmt.Errorf("compares two numbers or two strings, got %s and %s", describe(a[0]), describe(a[1]))
		}
		c := 0
		if x < y {
			c = -1
		} else if x > y {
			c = 1
		}
		return ok(c), nil
	}
}

func arith(f func(a, b int64) (int64, error)) func([]any) (any, error) {
	return func(a []any) (any, error) {
		x, err := integer(a, 0)
		if err != nil {
			return nil, err
		}
		y, err := integer(a, 1)
		if err != nil {
			return nil, err
		}
		return f(x, y)
	}
}

func fnReplace(a []any) (any, error) {
	for i := range a {
		if _, err := str(a, i); err != nil {
			return nil, err
		}
	}
	s, old, repl := a[0].(string), a[1].(string), a[2].(string)
	if old == "" {
		return nil, errors.New("the string to replace must not be empty")
	}
	if grow := len(repl) - len(old); grow > 0 && len(s)+strings.Count(s, old)*grow > maxSize {
		return nil, fmt.Errorf("the result would be larger than the limit of %d bytes", maxSize)
	}
	return strings.ReplaceAll(s, old, repl), nil
}

func fnSplit(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	var seps []string
	switch d := a[1].(type) {
	case string:
		seps = []string{d}
	case []any:
		for _, e := range d {
			es, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("delimiters must be strings, got %s", describe(e))
			}
			seps = append(seps, es)
		}
	default:
		return nil, fmt.Errorf("argument 2 must be a string or an array of strings, got %s", describe(a[1]))
	}
	parts := []string{s}
	for _, sep := range seps {
		if sep == "" {
			continue
		}
		var next []string
		for _, p := range parts {
			next = append(next, strings.Split(p, sep)...)
			if len(next) > maxArray {
				return nil, fmt.Errorf("the result has more than %d elements", maxArray)
			}
		}
		parts = next
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func fnJoin(a []any) (any, error) {
	arr, ok := a[0].([]any)
	if !ok {
		return nil, fmt.Errorf("argument 1 must be an array, got %s", describe(a[0]))
	}
	sep, err := str(a, 1)
	if err != nil {
		return nil, err
	}
	parts := make([]string, len(arr))
	total := 0
	for i, e := range arr {
		parts[i] = Stringify(e)
		if total += len(parts[i]) + len(sep); total > maxSize {
			return nil, fmt.Errorf("the result is larger than the limit of %d bytes", maxSize)
		}
	}
	return strings.Join(parts, sep), nil
}

func fnContains(a []any) (any, error) {
	switch c := a[0].(type) {
	case string:
		return strings.Contains(c, Stringify(a[1])), nil
	case []any:
		for _, e := range c {
			if Equal(e, a[1]) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		k, ok := a[1].(string)
		if !ok {
			return nil, fmt.Errorf("an object's keys are strings, got %s", describe(a[1]))
		}
		_, found := Lookup(c, k)
		return found, nil
	}
	return nil, fmt.Errorf("needs a string, array or object, got %s", describe(a[0]))
}

func fnEmpty(a []any) (any, error) {
	switch x := a[0].(type) {
	case nil:
		return true, nil
	case string:
		return x == "", nil
	case []any:
		return len(x) == 0, nil
	case map[string]any:
		return len(x) == 0, nil
	}
	return nil, fmt.Errorf("needs a string, array, object or null, got %s", describe(a[0]))
}

func fnFirstLast(first bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		switch x := a[0].(type) {
		case string:
			r := []rune(x)
			if len(r) == 0 {
				return "", nil
			}
			if first {
				return string(r[0]), nil
			}
			return string(r[len(r)-1]), nil
		case []any:
			if len(x) == 0 {
				return nil, nil
			}
			if first {
				return x[0], nil
			}
			return x[len(x)-1], nil
		}
		return nil, fmt.Errorf("needs a string or an array, got %s", describe(a[0]))
	}
}

func fnTakeSkip(take bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		n, err := integer(a, 1)
		if err != nil {
			return nil, err
		}
		cut := func(l int) (int, int) {
			k := int(max(0, min(n, int64(l))))
			if take {
				return 0, k
			}
			return k, l
		}
		switch x := a[0].(type) {
		case string:
			r := []rune(x)
			i, j := cut(len(r))
			return string(r[i:j]), nil
		case []any:
			i, j := cut(len(x))
			return append([]any{}, x[i:j]...), nil
		}
		return nil, fmt.Errorf("needs a string or an array, got %s", describe(a[0]))
	}
}

func fnUnion(a []any) (any, error) {
	switch a[0].(type) {
	case []any:
		out := []any{}
		seen := map[string]bool{}
		for i, v := range a {
			arr, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("argument %d must be an array like the first one, got %s", i+1, describe(v))
			}
			for _, e := range arr {
				if k := valueKey(e); !seen[k] {
					seen[k] = true
					out = append(out, e)
				}
			}
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		for i, v := range a {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("argument %d must be an object like the first one, got %s", i+1, describe(v))
			}
			for k, e := range m {
				for ok := range out {
					if strings.EqualFold(ok, k) {
						delete(out, ok)
					}
				}
				out[k] = e
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("needs arrays or objects, got %s", describe(a[0]))
}

func fnIntersection(a []any) (any, error) {
	for i, v := range a[1:] {
		if t := TypeName(a[0]); TypeName(v) != t {
			return nil, fmt.Errorf("argument %d must be an %s like the first one, got %s", i+2, t, describe(v))
		}
	}
	switch first := a[0].(type) {
	case []any:
		sets := make([]map[string]bool, len(a)-1)
		for i, v := range a[1:] {
			sets[i] = map[string]bool{}
			for _, x := range v.([]any) {
				sets[i][valueKey(x)] = true
			}
		}
		out := []any{}
		seen := map[string]bool{}
	elems:
		for _, e := range first {
			k := valueKey(e)
			if seen[k] {
				continue
			}
			for _, set := range sets {
				if !set[k] {
					continue elems
				}
			}
			seen[k] = true
			out = append(out, e)
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
	keys:
		for k, e := range first {
			for i, v := range a[1:] {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("argument %d must be an object like the first one, got %s", i+2, describe(v))
				}
				x, found := Lookup(m, k)
				if !found || !Equal(x, e) {
					continue keys
				}
			}
			out[k] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("needs arrays or objects, got %s", describe(a[0]))
}

// valueKey is a canonical text of v: equal values (by Equal) have equal keys.
func valueKey(v any) string {
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		v = int64(f)
	}
	return TypeName(v) + ":" + MarshalCompact(v)
}

func fnCreateObject(a []any) (any, error) {
	if len(a)%2 != 0 {
		return nil, fmt.Errorf("takes key and value pairs, got an odd number of arguments (%d)", len(a))
	}
	out := make(map[string]any, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, err := str(a, i)
		if err != nil {
			return nil, err
		}
		out[k] = a[i+1]
	}
	return out, nil
}

func fnArray(a []any) (any, error) {
	if arr, ok := a[0].([]any); ok {
		return arr, nil
	}
	return []any{a[0]}, nil
}

func fnItems(a []any) (any, error) {
	m, ok := a[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("needs an object, got %s", describe(a[0]))
	}
	out := make([]any, 0, len(m))
	for _, k := range Keys(m) {
		out = append(out, map[string]any{"key": k, "value": m[k]})
	}
	return out, nil
}

func fnCoalesce(a []any) (any, error) {
	for _, v := range a {
		if v != nil {
			return v, nil
		}
	}
	return nil, nil
}

func fnPadLeft(a []any) (any, error) {
	var s string
	switch x := a[0].(type) {
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		return nil, fmt.Errorf("argument 1 must be a string or an integer, got %s", describe(a[0]))
	}
	n, err := integer(a, 1)
	if err != nil {
		return nil, err
	}
	if n > 16*1024 {
		return nil, fmt.Errorf("total length %d is larger than the limit 16384", n)
	}
	pad := " "
	if len(a) == 3 {
		if pad, err = str(a, 2); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(pad) != 1 {
			return nil, fmt.Errorf("the padding must be one character, got '%s'", shorten(pad, 20))
		}
	}
	l := int64(utf8.RuneCountInString(s))
	if l >= n {
		return s, nil
	}
	return strings.Repeat(pad, int(n-l)) + s, nil
}

func fnIndexOf(last bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		if arr, ok := a[0].([]any); ok {
			idx := int64(-1)
			for i, e := range arr {
				if Equal(e, a[1]) {
					idx = int64(i)
					if !last {
						break
					}
				}
			}
			return idx, nil
		}
		s, err := str(a, 0)
		if err != nil {
			return nil, err
		}
		sub, err := str(a, 1)
		if err != nil {
			return nil, err
		}
		ls, lsub := strings.ToLower(s), strings.ToLower(sub)
		var i int
		if last {
			i = strings.LastIndex(ls, lsub)
		} else {
			i = strings.Index(ls, lsub)
		}
		if i < 0 {
			return int64(-1), nil
		}
		return int64(utf8.RuneCountInString(ls[:i])), nil
	}
}

func fnMinMax(isMin bool) func([]any) (any, error) {
	return func(a []any) (any, error) {
		vals := a
		if len(a) == 1 {
			arr, ok := a[0].([]any)
			if !ok {
				return nil, fmt.Errorf("takes integers or one array of integers, got %s", describe(a[0]))
			}
			if len(arr) == 0 {
				return nil, errors.New("the array is empty")
			}
			vals = arr
		}
		var best int64
		for i, v := range vals {
			n, ok := toInt(v)
			if !ok {
				return nil, fmt.Errorf("value %d is not an integer: %s", i+1, describe(v))
			}
			if i == 0 || (isMin && n < best) || (!isMin && n > best) {
				best = n
			}
		}
		return best, nil
	}
}

func fnRange(a []any) (any, error) {
	start, err := integer(a, 0)
	if err != nil {
		return nil, err
	}
	count, err := integer(a, 1)
	if err != nil {
		return nil, err
	}
	if count < 0 || count > 10000 {
		return nil, fmt.Errorf("count %d must be between 0 and 10000", count)
	}
	if start > math.MaxInt32-count || start < math.MinInt32 {
		return nil, fmt.Errorf("start %d plus count %d leaves the 32-bit integer range", start, count)
	}
	out := make([]any, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out, nil
}

func fnURI(a []any) (any, error) {
	base, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	rel, err := str(a, 1)
	if err != nil {
		return nil, err
	}
	bu, err := url.Parse(base)
	if err != nil || !bu.IsAbs() {
		return nil, fmt.Errorf("'%s' is not an absolute URI", shorten(base, 80))
	}
	ru, err := url.Parse(rel)
	if err != nil {
		return nil, fmt.Errorf("'%s' is not a valid relative URI", shorten(rel, 80))
	}
	return bu.ResolveReference(ru).String(), nil
}

// uriEscape encodes like .NET's Uri.EscapeDataString: all but the RFC 3986
// unreserved characters.
func uriEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func fnURIUnescape(a []any) (any, error) {
	s, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid encoded URI component: %w", err)
	}
	return u, nil
}

func allStrings(a []any) ([]string, error) {
	out := make([]string, len(a))
	for i := range a {
		s, err := str(a, i)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func fnUniqueString(a []any) (any, error) {
	s, err := allStrings(a)
	if err != nil {
		return nil, err
	}
	return UniqueString(s...), nil
}

func fnGUID(a []any) (any, error) {
	s, err := allStrings(a)
	if err != nil {
		return nil, err
	}
	return GUID(s...), nil
}
