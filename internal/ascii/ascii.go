// Package ascii compares protocol tokens (header names, media types,
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
