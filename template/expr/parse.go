package expr

import (
	"fmt"
	"strconv"
	"strings"
)

// Node is one element of a parsed expression. Start and End are byte offsets
// into the whole template string (the leading '[' is offset 0).
type Node interface {
	Span() (start, end int)
}

// StringLit is a quoted string (two quotes inside stand for one).
type StringLit struct {
	Value      string
	Start, End int
}

// IntLit is an integer literal, possibly negative.
type IntLit struct {
	Value      int64
	Start, End int
}

// Call is a function call: name(args...). Name keeps the template's spelling.
type Call struct {
	Name       string
	Args       []Node
	Start, End int
}

// Index is X[Index].
type Index struct {
	X, Index   Node
	Start, End int
}

// Property is X.Name.
type Property struct {
	X          Node
	Name       string
	Start, End int
}

func (n *StringLit) Span() (int, int) { return n.Start, n.End }
func (n *IntLit) Span() (int, int)    { return n.Start, n.End }
func (n *Call) Span() (int, int)      { return n.Start, n.End }
func (n *Index) Span() (int, int)     { return n.Start, n.End }
func (n *Property) Span() (int, int)  { return n.Start, n.End }

// Expr is a compiled template string: either a literal (Root == nil) or an
// expression.
type Expr struct {
	// Src is the template string as written.
	Src string
	// Literal is the value of a literal string (with a leading "[[" turned into "[").
	Literal string
	// Root is the expression tree; nil for a literal.
	Root Node
}

// IsExpression reports whether s is evaluated as an expression: it starts
// with '[' (but not "[["), and ends with ']'.
func IsExpression(s string) bool {
	return len(s) >= 2 && s[0] == '[' && s[1] != '[' && s[len(s)-1] == ']'
}

// Compile parses s. A string that is not an expression compiles to a literal.
// Errors are *Error values carrying the position.
func Compile(s string) (*Expr, error) {
	if !IsExpression(s) {
		lit := s
		if strings.HasPrefix(s, "[[") {
			lit = s[1:]
		}
		return &Expr{Src: s, Literal: lit}, nil
	}
	p := &parser{src: s, pos: 1, end: len(s) - 1}
	root, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Expr{Src: s, Root: root}, nil
}

// Text returns the source text of n within e.
func (e *Expr) Text(n Node) string {
	s, t := n.Span()
	if s < 0 || t > len(e.Src) || s > t {
		return ""
	}
	return e.Src[s:t]
}

type tokKind int

const (
	tEOF tokKind = iota
	tString
	tInt
	tIdent
	tLParen
	tRParen
	tLBracket
	tRBracket
	tComma
	tDot
)

func (k tokKind) String() string {
	switch k {
	case tEOF:
		return "end of expression"
	case tString:
		return "string"
	case tInt:
		return "integer"
	case tIdent:
		return "name"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tLBracket:
		return "'['"
	case tRBracket:
		return "']'"
	case tComma:
		return "','"
	case tDot:
		return "'.'"
	}
	return "?"
}

type token struct {
	kind       tokKind
	text       string // identifier or decoded string
	num        int64
	start, end int
}

type parser struct {
	src      string
	pos, end int
	tok      token
	depth    int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

func (p *parser) errorf(at int, format string, args ...any) error {
	return &Error{Src: p.src, Pos: at + 1, Syntax: true, Err: fmt.Errorf(format, args...)}
}

func (p *parser) describe(t token) string {
	switch t.kind {
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	case tInt:
		return fmt.Sprintf("integer %d", t.num)
	case tIdent:
		return fmt.Sprintf("name '%s'", t.text)
	}
	return t.kind.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

func (p *parser) next() error {
	for p.pos < p.end && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= p.end {
		p.tok = token{kind: tEOF, start: p.end, end: p.end}
		return nil
	}
	c := p.src[p.pos]
	if k := punct(c); k != tEOF {
		p.pos++
		p.tok = token{kind: k, start: start, end: p.pos}
		return nil
	}
	switch {
	case c == '\'':
		var b strings.Builder
		p.pos++
		for {
			if p.pos >= p.end {
				return p.errorf(start, "string starting here is not closed with a quote")
			}
			if p.src[p.pos] == '\'' {
				if p.pos+1 < p.end && p.src[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				break
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		}
		p.tok = token{kind: tString, text: b.String(), start: start, end: p.pos}
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		p.pos++
		for p.pos < p.end && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		text := p.src[start:p.pos]
		if text == "-" {
			return p.errorf(start, "'-' must be followed by digits")
		}
		if p.pos < p.end && (p.src[p.pos] == '.' && p.pos+1 < p.end && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9') {
			return p.errorf(start, "number %s...: only integer literals are supported (use json('1.5') for a float)", text)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return p.errorf(start, "integer %s is out of range", text)
		}
		p.tok = token{kind: tInt, num: n, start: start, end: p.pos}
		return nil
	case isIdentStart(c):
		p.pos++
		for p.pos < p.end && isIdentPart(p.src[p.pos]) {
			p.pos++
		}
		p.tok = token{kind: tIdent, text: p.src[start:p.pos], start: start, end: p.pos}
		return nil
	}
	return p.errorf(start, "unexpected character %q", c)
}

func punct(c byte) tokKind {
	switch c {
	case '(':
		return tLParen
	case ')':
		return tRParen
	case '[':
		return tLBracket
	case ']':
		return tRBracket
	case ',':
		return tComma
	case '.':
		return tDot
	}
	return tEOF
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	if p.tok.kind != k {
		return token{}, p.errorf(p.tok.start, "expected %s but found %s", what, p.describe(p.tok))
	}
	t := p.tok
	return t, p.next()
}

func (p *parser) parse() (Node, error) {
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.errorf(p.tok.start, "empty expression")
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf(p.tok.start, "unexpected %s after the end of the expression", p.describe(p.tok))
	}
	return n, nil
}

func (p *parser) expr() (Node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errorf(p.tok.start, "expression nested deeper than %d levels", maxDepth)
	}
	n, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		start, _ := n.Span()
		switch p.tok.kind {
		case tDot:
			if err := p.next(); err != nil {
				return nil, err
			}
			id, err := p.expect(tIdent, "a property name after '.'")
			if err != nil {
				return nil, err
			}
			n = &Property{X: n, Name: id.text, Start: start, End: id.end}
		case tLBracket:
			if err := p.next(); err != nil {
				return nil, err
			}
			ix, err := p.expr()
			if err != nil {
				return nil, err
			}
			rb, err := p.expect(tRBracket, "']'")
			if err != nil {
				return nil, err
			}
			n = &Index{X: n, Index: ix, Start: start, End: rb.end}
		default:
			return n, nil
		}
	}
}

func (p *parser) primary() (Node, error) {
	t := p.tok
	switch t.kind {
	case tString:
		return &StringLit{Value: t.text, Start: t.start, End: t.end}, p.next()
	case tInt:
		return &IntLit{Value: t.num, Start: t.start, End: t.end}, p.next()
	case tIdent:
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind != tLParen {
			return nil, p.errorf(p.tok.start, "expected '(' after function name '%s' but found %s", t.text, p.describe(p.tok))
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		call := &Call{Name: t.text, Start: t.start}
		if p.tok.kind == tRParen {
			call.End = p.tok.end
			return call, p.next()
		}
		for {
			a, err := p.expr()
			if err != nil {
				return nil, err
			}
			call.Args = append(call.Args, a)
			switch p.tok.kind {
			case tComma:
				if err := p.next(); err != nil {
					return nil, err
				}
			case tRParen:
				call.End = p.tok.end
				return call, p.next()
			default:
				return nil, p.errorf(p.tok.start, "expected ',' or ')' in the arguments of %s() but found %s", t.text, p.describe(p.tok))
			}
		}
	}
	return nil, p.errorf(t.start, "expected a function call, string or integer but found %s", p.describe(t))
}

// Walk calls fn for n and, while fn returns true, for its children depth-first.
func Walk(n Node, fn func(Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	switch n := n.(type) {
	case *Call:
		for _, a := range n.Args {
			Walk(a, fn)
		}
	case *Index:
		Walk(n.X, fn)
		Walk(n.Index, fn)
	case *Property:
		Walk(n.X, fn)
	}
}
