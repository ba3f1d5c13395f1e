package template

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

// ErrNotDeployed is what a Reference or ListKeys callback returns (wrapped)
// when the resource does not exist yet. WhatIf keeps the expressions that
// need such a resource unevaluated instead of failing.
var ErrNotDeployed = errors.New("resource is not deployed yet")

// Error is what every function of this package returns for a problem in a
// template, its parameters or its evaluation. Its message starts with the
// JSON path of the place (resources[4].sku.capacity), then the failing
// expression and the cause. Values of secure parameters are replaced by ***.
type Error struct {
	// Path is the JSON path of the outermost place, e.g. "resources[4].sku.capacity".
	Path string
	// Expr is the failing (sub-)expression, e.g. "parameters('instanceCnt')".
	Expr string
	// Pos is the 1-based position of a syntax error within the string at Path (0 otherwise).
	Pos int
	// Msg is the whole message.
	Msg   string
	cause error
}

func (e *Error) Error() string { return e.Msg }

// Is lets errors.Is see the sentinel errors (ErrNotDeployed, context errors)
// under the message without exposing unredacted text.
func (e *Error) Is(target error) bool { return errors.Is(e.cause, target) }

// pathError places err at a JSON path.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

func atPath(path string, err error) error {
	if err == nil {
		return nil
	}
	return &pathError{path: path, err: err}
}

// redactor replaces secret values in text.
type redactor struct {
	secrets []string // longest first
}

func (r *redactor) add(v any) {
	switch x := v.(type) {
	case string:
		if x != "" {
			r.secrets = append(r.secrets, x)
		}
	case map[string]any:
		if len(x) > 0 {
			r.secrets = append(r.secrets, expr.MarshalCompact(x))
		}
		for _, e := range x {
			r.add(e)
		}
	case []any:
		for _, e := range x {
			r.add(e)
		}
	case nil, bool:
	default:
		r.secrets = append(r.secrets, expr.Stringify(x))
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// text replaces the secrets in s. A secret shorter than 4 characters is
// replaced only where it stands alone (not inside a word), so that a short
// password does not garble every message.
func (r *redactor) text(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
			continue
		}
		re := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(sec) + `([^A-Za-z0-9]|$)`)
		for {
			n := re.ReplaceAllString(s, "${1}***${2}")
			if n == s {
				break
			}
			s = n
		}
	}
	return s
}

// public turns an internal error into *Error values (one per joined error),
// redacting secrets.
func (r *redactor) public(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, r.public(e))
		}
		return errors.Join(out...)
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	pe := &Error{Msg: r.text(err.Error()), cause: err}
	var p *pathError
	if errors.As(err, &p) {
		pe.Path = p.path
	}
	var xe *expr.Error
	if errors.As(err, &xe) {
		if xe.Syntax {
			pe.Expr, pe.Pos = r.text(xe.Src), xe.Pos
		} else {
			pe.Expr = r.text(xe.Call)
		}
	}
	return pe
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '$' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// joinPath appends an object key to a JSON path.
func joinPath(path, key string) string {
	if !isIdent(key) {
		return fmt.Sprintf("%s['%s']", path, strings.ReplaceAll(key, "'", "''"))
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// didYouMean formats a suggestion suffix.
func didYouMean(name string, candidates []string) string {
	if s := expr.Suggest(name, candidates); s != "" {
		return fmt.Sprintf(" (did you mean '%s'?)", s)
	}
	return ""
}
