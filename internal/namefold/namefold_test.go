package namefold

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestLetterIsUnicodes derives the letters from Go's Unicode tables: every
// non-ASCII code point whose simple upper, lower or title case mapping (or
// the lower case of its upper case, as Java's equalsIgnoreCase compares),
// or whose simple case folding orbit, reaches an ASCII letter must be read
// as that letter, and no other code point may be.
func TestLetterIsUnicodes(t *testing.T) {
	asciiLetter := func(r rune) bool { return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' }
	found := 0
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		var want rune
		for _, m := range []rune{unicode.ToUpper(r), unicode.ToLower(r), unicode.ToTitle(r), unicode.ToLower(unicode.ToUpper(r))} {
			if asciiLetter(m) {
				want = unicode.ToLower(m)
			}
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if asciiLetter(f) {
				want = unicode.ToLower(f)
			}
		}
		if !utf8.ValidRune(r) {
			continue
		}
		b := utf8.AppendRune(nil, r)
		c, n := Letter(b)
		if want == 0 {
			if n != 0 {
				t.Errorf("Letter(%U %q) = %q, %d; want none", r, r, c, n)
			}
			continue
		}
		found++
		if rune(c) != want || n != len(b) || !Lead(b[0]) {
			t.Errorf("Letter(%U %q) = %q, %d (Lead %v); want %q, %d", r, r, c, n, Lead(b[0]), want, len(b))
		}
		if c, n := Letter(string(b) + "x"); rune(c) != want || n != len(b) {
			t.Errorf("Letter(%U %q followed by x) = %q, %d", r, r, c, n)
		}
	}
	if found != 4 {
		t.Errorf("Unicode has %d such code points, the package doc names 4: update it", found)
	}
}

func TestLetterTruncated(t *testing.T) {
	for _, s := range []string{"", "\xc4", "\xc5", "\xe2", "\xe2\x84", "\xc4\x80", "\xe2\x84\xab", "a"} {
		if c, n := Letter(s); n != 0 {
			t.Errorf("Letter(%q) = %q, %d; want none", s, c, n)
		}
	}
	if !Has("l\u0131mit") || !Has([]byte("\u017fize")) || Has("limit") || Has("größe") {
		t.Error("Has is wrong")
	}
}
