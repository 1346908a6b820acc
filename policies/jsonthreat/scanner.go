package jsonthreat

// Limits are the bounds a body is checked against; -1 is no bound.
type Limits struct {
	// Depth bounds how deeply objects and arrays nest: `{"a":[1]}` nests
	// 2 deep, a lone scalar 0.
	Depth int64
	// String bounds the characters (Unicode code points, an escape
	// counting as the one character it stands for) of a string value.
	String int64
	// Array bounds the elements of one array.
	Array int64
	// Object bounds the entries of one object.
	Object int64
	// Name bounds the characters of an object entry's name.
	Name int64
}

// MaxNesting is the deepest nesting the scanner reads, whatever Limits.Depth
// says: Go's encoding/json refuses deeper documents too, and so do the
// parsers most upstreams use. It bounds the scanner's memory.
const MaxNesting = 10000

// Verdict is what a scan found: OK, or the first thing wrong with the body.
type Verdict uint8

// The verdicts, in the order of the rejections built for them.
const (
	OK Verdict = iota
	// Invalid: not JSON, or not UTF-8.
	Invalid
	// TooDeep: nesting past Limits.Depth.
	TooDeep
	// TooNested: nesting past MaxNesting with Limits.Depth unlimited.
	TooNested
	StringTooLong
	ArrayTooLong
	ObjectTooLong
	NameTooLong
	numVerdicts
)

type state uint8

const (
	stTop       state = iota // before the document's value
	stValue                  // a value must come (after ':' or an array's ',')
	stArrFirst               // after '[': a value or ']'
	stObjFirst               // after '{': a name or '}'
	stName                   // after an object's ',': a name
	stColon                  // after a name
	stAfter                  // after a value in a container: ',' or the close
	stEnd                    // after the document's value: only white space
	stStr                    // inside a string
	stEsc                    // after '\' in a string
	stHex                    // in the four hex digits of \u
	stUTF8                   // in the continuation bytes of a character
	stMinus                  // after a number's '-'
	stZero                   // after a number's leading 0
	stInt                    // in a number's integer digits
	stDot                    // after a number's '.'
	stFrac                   // in a number's fraction digits
	stExp                    // after a number's 'e'
	stExpSign                // after the exponent's sign
	stExpDigits              // in the exponent's digits
	stLit                    // in true, false or null
)

// Scanner checks a JSON document fed to it in pieces, in one pass, without
// building anything: it keeps one bit per open container (object or array)
// and, only when an array or object limit is set, one count per open
// container. Nesting is bounded by Limits.Depth, or MaxNesting when that is
// unlimited, so a document of any size or depth costs the scanner the same
// fixed memory and no stack. A Scanner is used by one goroutine at a time.
type Scanner struct {
	lim Limits
	// counting: an array or object limit is set, so the counts of the
	// open containers outside the innermost are kept.
	counting bool
	maxDepth int

	st      state
	verdict Verdict
	depth   int
	// objects has bit i set when the container open at depth i+1 is an
	// object.
	objects [MaxNesting/64 + 1]uint64
	// cur counts the entries or elements of the innermost container;
	// counts[i] those of the container open at depth i+1 while a deeper
	// one is open.
	cur    int64
	counts []uint32

	inName   bool
	strLen   int64
	strMax   int64
	utf8Left uint8
	utf8Lo   byte
	utf8Hi   byte
	hexLeft  uint8
	hexVal   uint16
	// highSurrogate: the last character of the string was a \u escape
	// of a high surrogate, which a low one joins into one character.
	highSurrogate bool
	lit           string
}

// Reset readies s for a new document checked against lim.
func (s *Scanner) Reset(lim Limits) {
	s.lim = lim
	s.counting = lim.Array >= 0 || lim.Object >= 0
	s.maxDepth = MaxNesting
	if lim.Depth >= 0 && lim.Depth < MaxNesting {
		s.maxDepth = int(lim.Depth)
	}
	if s.counting && cap(s.counts) < s.maxDepth {
		s.counts = make([]uint32, s.maxDepth)
	}
	s.st, s.verdict, s.depth, s.cur = stTop, OK, 0, 0
	s.inName, s.strLen, s.strMax = false, 0, -1
	s.utf8Left, s.hexLeft, s.highSurrogate, s.lit = 0, 0, false, ""
}

// Feed scans the next piece of the document. It returns OK while all it
// has seen may still be a document within the limits, and the first
// problem otherwise; after a problem it reads no more.
func (s *Scanner) Feed(b []byte) Verdict {
	if s.verdict != OK {
		return s.verdict
	}
	for i := 0; i < len(b); {
		c := b[i]
		switch s.st {
		case stStr:
			// The common case, a run of plain ASCII, in a tight loop.
			j := i
			for j < len(b) && b[j] >= 0x20 && b[j] < 0x80 && b[j] != '"' && b[j] != '\\' {
				j++
			}
			if j > i {
				if s.chars(int64(j - i)) {
					return s.verdict
				}
				s.highSurrogate = false
				i = j
				continue
			}
			switch {
			case c == '"':
				s.highSurrogate = false
				if s.inName {
					s.st = stColon
				} else {
					s.valueDone()
				}
			case c == '\\':
				s.st = stEsc
			case c < 0x20:
				return s.fail(Invalid)
			default:
				if !s.utf8Lead(c) {
					return s.fail(Invalid)
				}
				s.highSurrogate = false
				if s.chars(1) {
					return s.verdict
				}
				s.st = stUTF8
			}
		case stUTF8:
			if c < s.utf8Lo || c > s.utf8Hi {
				return s.fail(Invalid)
			}
			s.utf8Lo, s.utf8Hi = 0x80, 0xBF
			if s.utf8Left--; s.utf8Left == 0 {
				s.st = stStr
			}
		case stEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.highSurrogate = false
				if s.chars(1) {
					return s.verdict
				}
				s.st = stStr
			case 'u':
				s.hexLeft, s.hexVal, s.st = 4, 0, stHex
			default:
				return s.fail(Invalid)
			}
		case stHex:
			d, ok := hexDigit(c)
			if !ok {
				return s.fail(Invalid)
			}
			s.hexVal = s.hexVal<<4 | uint16(d)
			if s.hexLeft--; s.hexLeft > 0 {
				break
			}
			s.st = stStr
			if s.highSurrogate && s.hexVal >= 0xDC00 && s.hexVal <= 0xDFFF {
				// The second half of a pair: one character with the first.
				s.highSurrogate = false
				break
			}
			s.highSurrogate = s.hexVal >= 0xD800 && s.hexVal <= 0xDBFF
			if s.chars(1) {
				return s.verdict
			}
		case stTop, stValue, stArrFirst:
			if isSpace(c) {
				break
			}
			if c == ']' && s.st == stArrFirst {
				s.close()
				break
			}
			if s.st != stTop && !s.inObject() {
				s.cur++
				if s.lim.Array >= 0 && s.cur > s.lim.Array {
					return s.fail(ArrayTooLong)
				}
			}
			if s.beginValue(c) {
				return s.verdict
			}
		case stObjFirst, stName:
			if isSpace(c) {
				break
			}
			switch {
			case c == '}' && s.st == stObjFirst:
				s.close()
			case c == '"':
				s.cur++
				if s.lim.Object >= 0 && s.cur > s.lim.Object {
					return s.fail(ObjectTooLong)
				}
				s.beginString(true)
			default:
				return s.fail(Invalid)
			}
		case stColon:
			switch {
			case isSpace(c):
			case c == ':':
				s.st = stValue
			default:
				return s.fail(Invalid)
			}
		case stAfter:
			switch {
			case isSpace(c):
			case c == ',':
				if s.inObject() {
					s.st = stName
				} else {
					s.st = stValue
				}
			case c == ']' && !s.inObject(), c == '}' && s.inObject():
				s.close()
			default:
				return s.fail(Invalid)
			}
		case stEnd:
			if !isSpace(c) {
				return s.fail(Invalid)
			}
		case stMinus:
			switch {
			case c == '0':
				s.st = stZero
			case c >= '1' && c <= '9':
				s.st = stInt
			default:
				return s.fail(Invalid)
			}
		case stZero, stInt, stFrac, stExpDigits:
			switch {
			case c >= '0' && c <= '9' && s.st != stZero:
			case c == '.' && (s.st == stZero || s.st == stInt):
				s.st = stDot
			case (c == 'e' || c == 'E') && s.st != stExpDigits:
				s.st = stExp
			default:
				// The byte after a number is read again where the
				// number ends.
				s.valueDone()
				continue
			}
		case stDot:
			if c < '0' || c > '9' {
				return s.fail(Invalid)
			}
			s.st = stFrac
		case stExp:
			switch {
			case c == '+' || c == '-':
				s.st = stExpSign
			case c >= '0' && c <= '9':
				s.st = stExpDigits
			default:
				return s.fail(Invalid)
			}
		case stExpSign:
			if c < '0' || c > '9' {
				return s.fail(Invalid)
			}
			s.st = stExpDigits
		case stLit:
			if c != s.lit[0] {
				return s.fail(Invalid)
			}
			if s.lit = s.lit[1:]; s.lit == "" {
				s.valueDone()
			}
		}
		i++
	}
	return OK
}

// Finish reports the verdict on the document once all of it was fed.
func (s *Scanner) Finish() Verdict {
	if s.verdict != OK {
		return s.verdict
	}
	switch s.st {
	case stEnd:
		return OK
	case stZero, stInt, stFrac, stExpDigits:
		if s.depth == 0 {
			return OK
		}
	}
	return s.fail(Invalid)
}

func (s *Scanner) fail(v Verdict) Verdict {
	s.verdict = v
	return v
}

// chars counts n characters of the current string and reports whether
// that broke its limit.
func (s *Scanner) chars(n int64) bool {
	s.strLen += n
	if s.strMax >= 0 && s.strLen > s.strMax {
		if s.inName {
			s.fail(NameTooLong)
		} else {
			s.fail(StringTooLong)
		}
		return true
	}
	return false
}

// beginValue starts the value whose first byte is c; it reports whether
// that broke a limit or the syntax.
func (s *Scanner) beginValue(c byte) bool {
	switch {
	case c == '{' || c == '[':
		return s.open(c == '{')
	case c == '"':
		s.beginString(false)
	case c == '-':
		s.st = stMinus
	case c == '0':
		s.st = stZero
	case c >= '1' && c <= '9':
		s.st = stInt
	case c == 't':
		s.st, s.lit = stLit, "rue"
	case c == 'f':
		s.st, s.lit = stLit, "alse"
	case c == 'n':
		s.st, s.lit = stLit, "ull"
	default:
		s.fail(Invalid)
		return true
	}
	return false
}

func (s *Scanner) beginString(name bool) {
	s.st, s.inName, s.strLen, s.highSurrogate = stStr, name, 0, false
	if name {
		s.strMax = s.lim.Name
	} else {
		s.strMax = s.lim.String
	}
}

// open enters a new container, refusing one past the depth bound.
func (s *Scanner) open(object bool) bool {
	if s.depth >= s.maxDepth {
		if s.lim.Depth >= 0 {
			s.fail(TooDeep)
		} else {
			s.fail(TooNested)
		}
		return true
	}
	if s.counting && s.depth > 0 {
		s.counts[s.depth-1] = uint32(s.cur)
	}
	w, bit := s.depth/64, uint64(1)<<(s.depth%64)
	if object {
		s.objects[w] |= bit
		s.st = stObjFirst
	} else {
		s.objects[w] &^= bit
		s.st = stArrFirst
	}
	s.depth++
	s.cur = 0
	return false
}

// close leaves the innermost container; the caller has checked that its
// kind matches the closing byte.
func (s *Scanner) close() {
	s.depth--
	if s.counting && s.depth > 0 {
		s.cur = int64(s.counts[s.depth-1])
	}
	s.valueDone()
}

// inObject reports whether the innermost open container is an object.
func (s *Scanner) inObject() bool {
	d := s.depth - 1
	return d >= 0 && s.objects[d/64]&(1<<(d%64)) != 0
}

func (s *Scanner) valueDone() {
	if s.depth == 0 {
		s.st = stEnd
	} else {
		s.st = stAfter
	}
}

// utf8Lead sets up the continuation bytes that the lead byte c of a
// multi-byte UTF-8 character needs (RFC 3629 §4: no overlong forms, no
// surrogates, nothing above U+10FFFF); false when c cannot lead one.
func (s *Scanner) utf8Lead(c byte) bool {
	s.utf8Lo, s.utf8Hi = 0x80, 0xBF
	switch {
	case c >= 0xC2 && c <= 0xDF:
		s.utf8Left = 1
	case c == 0xE0:
		s.utf8Left, s.utf8Lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		s.utf8Left = 2
	case c == 0xED:
		s.utf8Left, s.utf8Hi = 2, 0x9F
	case c == 0xF0:
		s.utf8Left, s.utf8Lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		s.utf8Left = 3
	case c == 0xF4:
		s.utf8Left, s.utf8Hi = 3, 0x8F
	default:
		return false
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
