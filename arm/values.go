package arm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Bool is a JSON boolean that also accepts "true"/"false" strings, as ARM does.
type Bool bool

// UnmarshalJSON accepts true, false, "true", "false" (any case) and null.
func (b *Bool) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	s := string(data)
	if len(data) > 0 && data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseBool(strings.TrimSpace(strings.ToLower(s)))
	if err != nil {
		return fmt.Errorf("expected a boolean, got %s", data)
	}
	*b = Bool(v)
	return nil
}

// Int is a JSON integer that also accepts numeric strings ("15"), as ARM does.
type Int int64

// UnmarshalJSON accepts 15, 15.0, "15" and null.
func (n *Int) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	s := string(data)
	if len(data) > 0 && data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = Int(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return fmt.Errorf("expected an integer, got %s", data)
	}
	*n = Int(int64(f))
	return nil
}

// BoolPtr and IntPtr make optional values in literals.
func BoolPtr(v bool) *Bool { b := Bool(v); return &b }

// IntPtr returns a pointer to an Int.
func IntPtr(v int64) *Int { n := Int(v); return &n }

// BoolOr returns *b, or def when b is nil.
func BoolOr(b *Bool, def bool) bool {
	if b == nil {
		return def
	}
	return bool(*b)
}

// IntOr returns *n, or def when n is nil.
func IntOr(n *Int, def int64) int64 {
	if n == nil {
		return def
	}
	return int64(*n)
}
