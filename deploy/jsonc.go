package deploy

import (
	"bytes"
	"fmt"
)

// strictJSON rewrites a deployment request written in the lenient JSON that
// ARM's deserializer accepts into standard JSON. az sends exactly that: it
// splices the template file, as written, into the body under an unquoted key
// (`{"properties": {...}, template:{...}}`), so the template's comments,
// trailing commas and multi-line strings reach the API unchanged. Accepted
// beyond JSON: // and /* */ comments, unquoted property names, single-quoted
// strings, a trailing comma before } or ], and control characters inside
// strings. Anything else is left for the JSON decoder to report.
func strictJSON(in []byte) ([]byte, error) {
	out := make([]byte, 0, len(in)+16)
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '"' || c == '\'':
			n, err := copyString(&out, in, i)
			if err != nil {
				return nil, err
			}
			i = n
		case c == '/' && i+1 < len(in) && (in[i+1] == '/' || in[i+1] == '*'):
			n, err := skipComment(in, i)
			if err != nil {
				return nil, err
			}
			out = append(out, ' ')
			i = n
		case c == ',':
			// A trailing comma: only whitespace and comments before } or ].
			j, err := skipSpace(in, i+1)
			if err != nil {
				return nil, err
			}
			if j < len(in) && (in[j] == '}' || in[j] == ']') {
				i++
				continue
			}
			out = append(out, c)
			i++
		case isNameStart(c):
			j := i
			for j < len(in) && isNamePart(in[j]) {
				j++
			}
			k, err := skipSpace(in, j)
			if err != nil {
				return nil, err
			}
			if k < len(in) && in[k] == ':' {
				out = append(out, '"')
				out = append(out, in[i:j]...)
				out = append(out, '"')
			} else {
				out = append(out, in[i:j]...) // true, false, null, or an error the decoder reports
			}
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// copyString appends the string starting at in[i] (quoted with " or ') as a
// double-quoted JSON string and returns the index after it.
func copyString(out *[]byte, in []byte, i int) (int, error) {
	q := in[i]
	*out = append(*out, '"')
	for j := i + 1; j < len(in); j++ {
		c := in[j]
		switch {
		case c == q:
			*out = append(*out, '"')
			return j + 1, nil
		case c == '\\':
			if j+1 >= len(in) {
				return 0, fmt.Errorf("the string at offset %d ends in a backslash", i)
			}
			if in[j+1] == '\'' {
				*out = append(*out, '\'') // \' is JSON only inside '...'
			} else {
				*out = append(*out, c, in[j+1])
			}
			j++
		case c == '"': // inside '...'
			*out = append(*out, '\\', '"')
		case c == '\n':
			*out = append(*out, '\\', 'n')
		case c == '\r':
			*out = append(*out, '\\', 'r')
		case c == '\t':
			*out = append(*out, '\\', 't')
		case c < 0x20:
			*out = fmt.Appendf(*out, `\u%04x`, c)
		default:
			*out = append(*out, c)
		}
	}
	return 0, fmt.Errorf("the string at offset %d is not closed", i)
}

// skipComment returns the index after the comment starting at in[i].
func skipComment(in []byte, i int) (int, error) {
	if in[i+1] == '/' {
		if n := bytes.IndexByte(in[i:], '\n'); n >= 0 {
			return i + n, nil
		}
		return len(in), nil
	}
	if n := bytes.Index(in[i+2:], []byte("*/")); n >= 0 {
		return i + 2 + n + 2, nil
	}
	return 0, fmt.Errorf("the comment at offset %d is not closed", i)
}

// skipSpace returns the index of the next byte that is neither white space
// nor part of a comment.
func skipSpace(in []byte, i int) (int, error) {
	for i < len(in) {
		switch c := in[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(in) && (in[i+1] == '/' || in[i+1] == '*'):
			n, err := skipComment(in, i)
			if err != nil {
				return 0, err
			}
			i = n
		default:
			return i, nil
		}
	}
	return i, nil
}

func isNameStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNamePart(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }
