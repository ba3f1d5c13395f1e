package template

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

// Templates often write numbers and booleans as strings ("capacity": "5",
// "overprovision": "true"). Evaluation keeps values as written; these
// helpers coerce them where a consumer needs a typed value.

// Int coerces v to an integer: an integer, an integral float, or a string
// holding one ("15").
func Int(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), nil
		}
		return 0, fmt.Errorf("%v is not a whole number", x)
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("expected an integer, got %s", expr.TypeName(v))
}

// Bool coerces v to a boolean: a bool, or "true"/"false" in any case.
func Bool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, fmt.Errorf("%q is not true or false", x)
	}
	return false, fmt.Errorf("expected a bool, got %s", expr.TypeName(v))
}

// String coerces a scalar to a string the way ARM's string() does (true →
// "True", 5 → "5"); arrays and objects are refused.
func String(v any) (string, error) {
	switch v.(type) {
	case []any, map[string]any:
		return "", fmt.Errorf("expected a string, got %s", expr.TypeName(v))
	}
	return expr.Stringify(v), nil
}

// SameID compares two resource ids as ARM does: case-insensitively, ignoring
// a trailing slash.
func SameID(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}
