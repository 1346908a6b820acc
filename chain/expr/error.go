package expr

import (
	"strings"
	"unicode/utf8"
)

// Error is a mistake in an expression, at a place in the value as written.
// Its message ends with the value and a caret under that place; Msg alone
// has no caret. It is immutable and safe for concurrent use.
type Error struct {
	// Src is the whole value as written (decoded from YAML).
	Src string
	// Offset is the byte offset in Src where the mistake is.
	Offset int
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error returns the message, then the value with a caret under the place.
func (e *Error) Error() string { return e.Msg + "\n" + Caret(e.Src, e.Offset) }

// ValueOffset reports the value and the byte offset in it, so that
// chain.Errorf can place the error at the exact line and column of the
// config (chain.ValueError).
func (e *Error) ValueOffset() (string, int) { return e.Src, e.Offset }

// caretWidth bounds how much of a long value the caret display shows.
const caretWidth = 72

// Caret renders the line of src that holds byte offset off, indented by
// four spaces, and under it a caret at off. A long line is cut to a window
// around off; tabs are kept so that the caret lines up. Safe for concurrent
// use.
func Caret(src string, off int) string {
	off = max(0, min(off, len(src)))
	start := strings.LastIndexByte(src[:off], '\n') + 1
	end := len(src)
	if i := strings.IndexByte(src[off:], '\n'); i >= 0 {
		end = off + i
	}
	line, col := src[start:end], off-start
	prefix, suffix := "", ""
	if utf8.RuneCountInString(line) > caretWidth {
		from := col
		for n := 0; from > 0 && n < caretWidth/2; n++ {
			_, size := utf8.DecodeLastRuneInString(line[:from])
			from -= size
		}
		to := col
		for n := 0; to < len(line) && n < caretWidth/2; n++ {
			_, size := utf8.DecodeRuneInString(line[to:])
			to += size
		}
		if from > 0 {
			prefix = "…"
		}
		if to < len(line) {
			suffix = "…"
		}
		line, col = line[from:to], col-from
	}
	var b strings.Builder
	b.WriteString("    ")
	b.WriteString(prefix)
	for _, r := range line {
		if r < ' ' && r != '\t' || r == 0x7f {
			r = ' '
		}
		b.WriteRune(r)
	}
	b.WriteString(suffix)
	b.WriteString("\n    ")
	if prefix != "" {
		b.WriteByte(' ')
	}
	for _, r := range line[:col] {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('^')
	return b.String()
}
