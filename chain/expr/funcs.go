package expr

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"unicode"
	"unicode/utf8"
)

// The functions of the Flex subset, on the run's scratch space. Each takes
// its arguments already evaluated and writes its result after them.

// mapCase is lower or upper: Unicode case mapping, bytes that are not UTF-8
// kept as they are.
func (r *run) mapCase(s []byte, upper bool) []byte {
	start := len(r.buf)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case upper && 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case !upper && 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			r.buf = append(r.buf, c)
			i++
			continue
		}
		rn, size := utf8.DecodeRune(s[i:])
		if rn == utf8.RuneError && size == 1 {
			r.buf = append(r.buf, c)
			i++
			continue
		}
		if upper {
			rn = unicode.ToUpper(rn)
		} else {
			rn = unicode.ToLower(rn)
		}
		r.buf = utf8.AppendRune(r.buf, rn)
		i += size
	}
	return r.from(start)
}

// trim removes what Java's String.trim removes, as DataWeave's trim does:
// control characters and spaces at both ends.
func trim(s []byte) []byte {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// split is splitBy with a text separator: the parts between the
// separators, as Java's String.split makes them (DataWeave's splitBy):
// empty parts at the end are dropped, and a text without the separator is
// one part. An empty separator splits into characters. More than maxList
// parts are null.
func (r *run) split(s, sep []byte) val {
	start := len(r.vals)
	switch {
	case len(sep) == 0:
		if utf8.RuneCount(s) > maxList {
			return null
		}
		for len(s) > 0 {
			_, size := utf8.DecodeRune(s)
			r.vals = append(r.vals, val{k: kStr, s: s[:size:size]})
			s = s[size:]
		}
	case !bytes.Contains(s, sep):
		r.vals = append(r.vals, val{k: kStr, s: s})
	default:
		for {
			if len(r.vals)-start == maxList {
				r.vals = r.vals[:start]
				return null
			}
			i := bytes.Index(s, sep)
			if i < 0 {
				r.vals = append(r.vals, val{k: kStr, s: s})
				break
			}
			r.vals = append(r.vals, val{k: kStr, s: s[:i:i]})
			s = s[i+len(sep):]
		}
		for len(r.vals) > start && len(r.vals[len(r.vals)-1].s) == 0 {
			r.vals = r.vals[:len(r.vals)-1]
		}
	}
	return val{k: kArr, list: r.vals[start:len(r.vals):len(r.vals)]}
}

// substring is dw::core::Strings::substringAfter, -AfterLast, -Before and
// -BeforeLast, with the results DataWeave documents: a separator that is
// not found gives "", and an empty separator gives the whole text (After),
// null (AfterLast), "" (Before) or the text without its last character
// (BeforeLast).
func substring(o op, s, sep []byte) val {
	empty := val{k: kStr, s: s[:0:0]}
	switch o {
	case opSubAfter:
		if i := bytes.Index(s, sep); i >= 0 {
			return val{k: kStr, s: s[i+len(sep):]}
		}
	case opSubAfterLast:
		if len(sep) == 0 {
			return null
		}
		if i := bytes.LastIndex(s, sep); i >= 0 {
			return val{k: kStr, s: s[i+len(sep):]}
		}
	case opSubBefore:
		if i := bytes.Index(s, sep); i >= 0 {
			return val{k: kStr, s: s[:i:i]}
		}
	case opSubBeforeLast:
		if len(sep) == 0 {
			_, size := utf8.DecodeLastRune(s)
			return val{k: kStr, s: s[: len(s)-size : len(s)-size]}
		}
		if i := bytes.LastIndex(s, sep); i >= 0 {
			return val{k: kStr, s: s[:i:i]}
		}
	}
	return empty
}

// appendUUID appends a random (version 4) UUID. The source is math/rand/v2's,
// seeded by the operating system: unique, but not a secret.
func appendUUID(dst []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12
	lo = lo&^(0x3<<62) | 0x2<<62
	for i, shift := 0, 60; shift >= 0; i, shift = i+1, shift-4 {
		if i == 8 || i == 12 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[(hi>>uint(shift))&0xf])
	}
	for i, shift := 0, 60; shift >= 0; i, shift = i+1, shift-4 {
		if i == 0 || i == 4 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[(lo>>uint(shift))&0xf])
	}
	return dst
}

// fromBase64 decodes standard base64, with or without padding; anything
// else is null.
func (r *run) fromBase64(s []byte) val {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		start := len(r.buf)
		r.buf = slices.Grow(r.buf, enc.DecodedLen(len(s)))
		n, err := enc.Decode(r.buf[start:start+enc.DecodedLen(len(s))], s)
		if err == nil {
			r.buf = r.buf[:start+n]
			return val{k: kStr, s: r.from(start)}
		}
	}
	return null
}
