// Package ascii recognises and compares protocol tokens (header names, media types,
// directives) without regard to ASCII case, without allocating. Unlike
// bytes.EqualFold it folds ASCII letters only: in HTTP no other byte has a
// case, and a non-ASCII byte that Unicode folds to an ASCII letter (the
// Kelvin sign to k) must not match one.
package ascii

// EqualLower reports whether b is lower, which is written in lower case,
// without regard to the case of b's ASCII letters.
func EqualLower(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// tokenBytes marks the bytes of an RFC 9110 token (tchar): the only bytes
// of a header field name or a method.
var tokenBytes = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTokenByte reports whether c may be in an RFC 9110 token.
func IsTokenByte(c byte) bool { return tokenBytes[c] }

// IsToken reports whether s is an RFC 9110 token (a header field name, a
// method): not empty, and tchar bytes only.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenBytes[s[i]] {
			return false
		}
	}
	return s != ""
}

// IsHex reports whether c is a hexadecimal digit, in either case.
func IsHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}
