package expr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fnFormat implements format(): .NET composite formatting with {index},
// {index,alignment} and {index:spec}, "{{" and "}}" for literal braces.
// Numeric specs supported: D[n], X[n]/x[n], N[n], F[n] and zero patterns
// such as 000.
func fnFormat(a []any) (any, error) {
	f, err := str(a, 0)
	if err != nil {
		return nil, err
	}
	args := a[1:]
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch c {
		case '{':
			if i+1 < len(f) && f[i+1] == '{' {
				b.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("format item at offset %d is not closed with '}'", i)
			}
			item := f[i+1 : i+end]
			i += end
			s, err := formatItem(item, args)
			if err != nil {
				return nil, err
			}
			b.WriteString(s)
			if b.Len() > maxSize {
				return nil, fmt.Errorf("the result is larger than the limit of %d bytes", maxSize)
			}
		case '}':
			if i+1 < len(f) && f[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected '}' at offset %d (write '}}' for a literal brace)", i)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func formatItem(item string, args []any) (string, error) {
	spec := ""
	if k := strings.IndexByte(item, ':'); k >= 0 {
		item, spec = item[:k], item[k+1:]
	}
	align := 0
	if k := strings.IndexByte(item, ','); k >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(item[k+1:]))
		if err != nil || n > 1000 || n < -1000 {
			return "", fmt.Errorf("bad alignment in format item {%s}", item)
		}
		align, item = n, item[:k]
	}
	idx, err := strconv.Atoi(strings.TrimSpace(item))
	if err != nil || idx < 0 {
		return "", fmt.Errorf("bad format item {%s}: expected {index[,alignment][:format]}", item)
	}
	if idx >= len(args) {
		return "", fmt.Errorf("format item {%d} has no argument (%d given)", idx, len(args))
	}
	s, err := formatValue(args[idx], spec)
	if err != nil {
		return "", err
	}
	if w := utf8.RuneCountInString(s); align > w {
		s = strings.Repeat(" ", align-w) + s
	} else if -align > w {
		s += strings.Repeat(" ", -align-w)
	}
	return s, nil
}

func formatValue(v any, spec string) (string, error) {
	if spec == "" {
		return Stringify(v), nil
	}
	f, isNum := toFloat(v)
	if !isNum {
		return Stringify(v), nil
	}
	n, isInt := toInt(v)
	kind := spec[0]
	prec := -1
	if len(spec) > 1 {
		p, err := strconv.Atoi(spec[1:])
		if err != nil && strings.Trim(spec, "0#") != "" {
			return "", fmt.Errorf("unsupported format specifier '%s'", spec)
		}
		if err == nil {
			if p > 100 {
				return "", fmt.Errorf("precision %d in '%s' is too large", p, spec)
			}
			prec = p
		}
	}
	switch kind {
	case 'D', 'd':
		if !isInt {
			return "", errors.New("format 'D' needs an integer")
		}
		return zeroPad(n, prec), nil
	case 'X', 'x':
		if !isInt {
			return "", errors.New("format 'X' needs an integer")
		}
		s := strconv.FormatUint(uint64(n), 16)
		if kind == 'X' {
			s = strings.ToUpper(s)
		}
		if prec > len(s) {
			s = strings.Repeat("0", prec-len(s)) + s
		}
		return s, nil
	case 'F', 'f', 'N', 'n':
		if prec < 0 {
			prec = 2
		}
		s := strconv.FormatFloat(f, 'f', prec, 64)
		if kind == 'N' || kind == 'n' {
			s = groupThousands(s)
		}
		return s, nil
	case '0', '#':
		if strings.Trim(spec, "0#") != "" {
			return "", fmt.Errorf("unsupported format specifier '%s'", spec)
		}
		if !isInt {
			n = int64(f)
		}
		return zeroPad(n, strings.Count(spec, "0")), nil
	}
	return "", fmt.Errorf("unsupported format specifier '%s' (supported: D, X, N, F and 0 patterns)", spec)
}

// zeroPad writes n with at least digits digits.
func zeroPad(n int64, digits int) string {
	s := strconv.FormatUint(uint64(n), 10)
	if n < 0 {
		s = strconv.FormatUint(uint64(-(n+1))+1, 10)
	}
	if digits > len(s) {
		s = strings.Repeat("0", digits-len(s)) + s
	}
	if n < 0 {
		s = "-" + s
	}
	return s
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac := s, ""
	if k := strings.IndexByte(s, '.'); k >= 0 {
		intPart, frac = s[:k], s[k:]
	}
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}
