package chain

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/userfile"
)

// ValueError is implemented by errors about one place inside a
// parameter's value, such as an unknown name in an expression: src is the
// value as decoded and offset the byte offset of the place in it. Errorf,
// given such an error among its arguments, places the error at that
// place's line and column rather than at the start of the value.
type ValueError interface {
	error
	ValueOffset() (src string, offset int)
}

// valueOffset finds a ValueError about node's value among args.
func valueOffset(node *yaml.Node, args []any) (int, bool) {
	if node == nil || node.Kind != yaml.ScalarNode {
		return 0, false
	}
	for _, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		var ve ValueError
		if errors.As(err, &ve) {
			if src, off := ve.ValueOffset(); src == node.Value && off >= 0 && off <= len(src) {
				return off, true
			}
		}
	}
	return 0, false
}

// ValuePos returns the line and column (in characters, from 1, as yaml
// counts them) in the config file of the byte at offset off of node's
// value. It reads the value as written in file, so that the column is
// exact whatever the quoting: escapes in a double-quoted value, ” in a
// single-quoted one, values folded over several lines, block scalars. When
// the file cannot be read or no longer holds the value there, it counts
// from the node's position as if the value were written on one line with
// the usual escapes. Safe for concurrent use.
func ValuePos(file string, node *yaml.Node, off int) (line, col int) {
	if file != "" {
		if src, err := userfile.Read(file); err == nil {
			if l, c, ok := scalarPos(src, node, off); ok {
				return l, c
			}
		}
	}
	return approxPos(node, off)
}

// approxPos places off on the node's line, counting the usual escapes of
// its quoting; a block scalar or a value with a line break before off
// keeps the node's own position.
func approxPos(node *yaml.Node, off int) (line, col int) {
	v := node.Value[:off]
	if strings.IndexByte(v, '\n') >= 0 || node.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
		node.Anchor != "" || node.Style&yaml.TaggedStyle != 0 {
		return node.Line, node.Column
	}
	col = node.Column + utf8.RuneCountInString(v)
	switch {
	case node.Style&yaml.DoubleQuotedStyle != 0:
		col++
		for _, r := range v {
			if r == '"' || r == '\\' || r < ' ' {
				col++
			}
		}
	case node.Style&yaml.SingleQuotedStyle != 0:
		col += 1 + strings.Count(v, "'")
	}
	return node.Line, col
}

// scan walks a scalar as written in a YAML file, decoding it, and stops at
// the source of the byte at offset off of the decoded value. It checks what
// it decodes against the value yaml read, so that a file changed since it
// was loaded is noticed (bad) rather than misread.
type scan struct {
	src       []byte
	i         int // byte index in src
	line, col int // of src[i]
	want      string
	d         int // bytes of want decoded so far
	off       int
	found     bool
	fl, fc    int
	bad       bool
}

// scalarPos finds the source of byte off of node's value in src.
func scalarPos(src []byte, node *yaml.Node, off int) (line, col int, ok bool) {
	if node == nil || node.Kind != yaml.ScalarNode || off < 0 || off > len(node.Value) {
		return 0, 0, false
	}
	i, ok := indexOf(src, node.Line, node.Column)
	if !ok {
		return 0, 0, false
	}
	s := &scan{src: src, i: i, line: node.Line, col: node.Column, want: node.Value, off: off}
	s.skipProperties()
	switch {
	case node.Style&yaml.DoubleQuotedStyle != 0:
		s.quoted('"')
	case node.Style&yaml.SingleQuotedStyle != 0:
		s.quoted('\'')
	case node.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		s.block(node.Style&yaml.FoldedStyle != 0)
	default:
		s.plain()
	}
	return s.fl, s.fc, s.found && !s.bad
}

// indexOf returns the byte index of line and column (in characters).
func indexOf(src []byte, line, col int) (int, bool) {
	i := 0
	for l := 1; l < line; l++ {
		j := bytes.IndexByte(src[i:], '\n')
		if j < 0 {
			return 0, false
		}
		i += j + 1
	}
	for c := 1; c < col; c++ {
		if i >= len(src) || src[i] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(src[i:])
		i += size
	}
	return i, i <= len(src)
}

func (s *scan) more() bool { return !s.found && !s.bad && s.i < len(s.src) }

func (s *scan) adv() {
	r, size := utf8.DecodeRune(s.src[s.i:])
	s.i += size
	if r == '\n' {
		s.line, s.col = s.line+1, 1
	} else {
		s.col++
	}
}

// emit records that text was decoded from the source at line, col.
func (s *scan) emit(text string, line, col int) {
	for k := 0; k < len(text) && !s.found && !s.bad; k++ {
		switch {
		case s.d == s.off:
			s.found, s.fl, s.fc = true, line, col
		case s.d >= len(s.want) || s.want[s.d] != text[k]:
			s.bad = true
		default:
			s.d++
		}
	}
}

// end records the end of the scalar, where an offset just past the value
// lies.
func (s *scan) end() {
	if !s.found && !s.bad && s.d == s.off {
		s.found, s.fl, s.fc = true, s.line, s.col
	}
}

// skipProperties steps over an anchor (&name) and a tag (!!str) before the
// value.
func (s *scan) skipProperties() {
	for s.i < len(s.src) && (s.src[s.i] == '&' || s.src[s.i] == '!') {
		for s.i < len(s.src) && !isBlank(s.src[s.i]) {
			s.adv()
		}
		for s.i < len(s.src) && isBlank(s.src[s.i]) {
			s.adv()
		}
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// char emits the character at s.i as it is.
func (s *scan) char() {
	l, c := s.line, s.col
	_, size := utf8.DecodeRune(s.src[s.i:])
	text := string(s.src[s.i : s.i+size])
	s.adv()
	s.emit(text, l, c)
}

// fold handles white space in a flow scalar: spaces and tabs are text
// unless a line break follows them; then the white space and the line
// breaks fold into one space, or into n-1 line feeds for n breaks.
func (s *scan) fold() {
	j := s.i
	for j < len(s.src) && (s.src[j] == ' ' || s.src[j] == '\t') {
		j++
	}
	if j == len(s.src) || s.src[j] != '\n' && s.src[j] != '\r' {
		for s.i < j && !s.found && !s.bad {
			s.char()
		}
		return
	}
	l, c := s.line, s.col
	breaks := 0
	for s.i < len(s.src) && isBlank(s.src[s.i]) {
		if s.src[s.i] == '\n' {
			breaks++
		}
		s.adv()
	}
	if breaks == 1 {
		s.emit(" ", l, c)
	} else {
		s.emit(strings.Repeat("\n", breaks-1), l, c)
	}
}

// quoted scans a single- or double-quoted scalar.
func (s *scan) quoted(q byte) {
	if s.i >= len(s.src) || s.src[s.i] != q {
		s.bad = true
		return
	}
	s.adv()
	for s.more() {
		ch := s.src[s.i]
		switch {
		case ch == q && q == '\'' && s.i+1 < len(s.src) && s.src[s.i+1] == '\'':
			l, c := s.line, s.col
			s.adv()
			s.adv()
			s.emit("'", l, c)
		case ch == q:
			s.end()
			return
		case ch == '\\' && q == '"':
			s.escape()
		case isBlank(ch):
			s.fold()
		default:
			s.char()
		}
	}
	s.end()
}

var escapes = map[byte]string{'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v",
	'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '/': "/", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029"}

// escape scans one escape of a double-quoted scalar.
func (s *scan) escape() {
	l, c := s.line, s.col
	s.adv()
	if s.i >= len(s.src) {
		s.bad = true
		return
	}
	e := s.src[s.i]
	if e == '\n' || e == '\r' {
		// An escaped line break joins the lines, without the next
		// line's leading white space.
		if e == '\r' {
			s.adv()
		}
		if s.i < len(s.src) && s.src[s.i] == '\n' {
			s.adv()
		}
		for s.i < len(s.src) && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
			s.adv()
		}
		return
	}
	s.adv()
	if text, ok := escapes[e]; ok {
		s.emit(text, l, c)
		return
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
	if digits == 0 || s.i+digits > len(s.src) {
		s.bad = true
		return
	}
	var r rune
	for k := 0; k < digits; k++ {
		h := s.src[s.i]
		switch {
		case h >= '0' && h <= '9':
			r = r<<4 | rune(h-'0')
		case h >= 'a' && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case h >= 'A' && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			s.bad = true
			return
		}
		s.adv()
	}
	s.emit(string(r), l, c)
}

// plain scans a plain scalar, as far as the offset.
func (s *scan) plain() {
	for s.more() {
		if isBlank(s.src[s.i]) {
			s.fold()
		} else {
			s.char()
		}
	}
	s.end()
}

// block scans a literal (|) or folded (>) block scalar.
func (s *scan) block(folded bool) {
	if s.i >= len(s.src) || s.src[s.i] != '|' && s.src[s.i] != '>' {
		s.bad = true
		return
	}
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.adv()
	}
	if s.i < len(s.src) {
		s.adv()
	}
	indent, blanks := -1, 0
	first, prevMore := true, false
	var endL, endC int
	for s.more() {
		sp := 0
		for s.i+sp < len(s.src) && s.src[s.i+sp] == ' ' {
			sp++
		}
		if j := s.i + sp; j == len(s.src) || s.src[j] == '\n' || s.src[j] == '\r' {
			blanks++
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.adv()
			}
			if s.i < len(s.src) {
				s.adv()
			}
			continue
		}
		if indent < 0 {
			indent = sp
		}
		if sp < indent {
			break
		}
		more := sp > indent || s.src[s.i+indent] == '\t'
		switch {
		case first:
			s.emit(strings.Repeat("\n", blanks), s.line, s.col)
		case folded && !more && !prevMore && blanks == 0:
			s.emit(" ", endL, endC)
		case folded && !more && !prevMore:
			s.emit(strings.Repeat("\n", blanks), endL, endC)
		default:
			s.emit(strings.Repeat("\n", blanks+1), endL, endC)
		}
		first, prevMore, blanks = false, more, 0
		for k := 0; k < indent; k++ {
			s.adv()
		}
		for s.more() && s.src[s.i] != '\n' && s.src[s.i] != '\r' {
			s.char()
		}
		endL, endC = s.line, s.col
		for s.i < len(s.src) && (s.src[s.i] == '\r' || s.src[s.i] == '\n') {
			nl := s.src[s.i] == '\n'
			s.adv()
			if nl {
				break
			}
		}
	}
	// What is left before the offset can only be the final line breaks
	// that chomping keeps.
	if !s.found && !s.bad && s.d <= s.off && strings.Trim(s.want[s.d:s.off], "\n") == "" {
		s.found, s.fl, s.fc = true, endL, endC
	}
}
