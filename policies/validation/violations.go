package validation

import "unicode/utf8"

// Limits on what a 400 response repeats of the request: the body must stay
// small however large or hostile the input was.
const (
	maxViolations = 20  // violations listed; one more entry says there were more
	maxPathLen    = 128 // bytes of a JSON pointer
	maxArgLen     = 64  // bytes of a name or value quoted in a message
	maxMessageLen = 200 // bytes of a message from the library
)

// violations builds the JSON array of violations that the error renderer
// puts under "violations": [{"path": "/quantity", "message": "..."}].
type violations struct {
	buf     []byte
	count   int
	scratch [32]byte
}

func (v *violations) reset(buf []byte) {
	v.buf = buf[:0]
	v.count = 0
}

// add appends one violation: msg followed by arg, which is quoted when
// quote is set. Both path and arg are cut to their limits.
func (v *violations) add(path []byte, msg string, arg []byte, quote bool) {
	v.count++
	if v.count > maxViolations+1 {
		return
	}
	if v.count > 1 {
		v.buf = append(v.buf, ',')
	} else {
		v.buf = append(v.buf, '[')
	}
	if v.count == maxViolations+1 {
		v.buf = append(v.buf, `{"path":"","message":"more violations not shown"}`...)
		return
	}
	v.buf = append(v.buf, `{"path":"`...)
	v.buf = appendEscaped(v.buf, path, maxPathLen)
	v.buf = append(v.buf, `","message":"`...)
	v.buf = appendEscaped(v.buf, s2b(msg), maxMessageLen)
	if arg != nil {
		if quote {
			v.buf = append(v.buf, `\"`...)
		}
		v.buf = appendEscaped(v.buf, arg, maxArgLen)
		if quote {
			v.buf = append(v.buf, `\"`...)
		}
	}
	v.buf = append(v.buf, `"}`...)
}

// mark is where the violations stand, for undo to go back to.
type mark struct{ n, count int }

func (v *violations) mark() mark { return mark{len(v.buf), v.count} }

// undo drops the violations added since m.
func (v *violations) undo(m mark) { v.buf, v.count = v.buf[:m.n], m.count }

// finish closes the array and returns it.
func (v *violations) finish() []byte {
	if v.count == 0 {
		v.buf = append(v.buf, '[')
	}
	v.buf = append(v.buf, ']')
	return v.buf
}

// appendEscaped appends s as the inside of a JSON string, cut to at most
// limit bytes of input (marked with "..."), with invalid UTF-8 replaced.
func appendEscaped(dst, s []byte, limit int) []byte {
	cut := false
	if len(s) > limit {
		s = s[:limit]
		for len(s) > 0 && !utf8.RuneStart(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
		if len(s) > 0 && s[len(s)-1] >= utf8.RuneSelf {
			s = s[:len(s)-1]
		}
		cut = true
	}
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	if cut {
		dst = append(dst, "..."...)
	}
	return dst
}
