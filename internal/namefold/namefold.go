// Package namefold reads the few non-ASCII letters that upstreams comparing
// parameter and member names without regard to case take for ASCII ones,
// without allocating. They are the code points whose simple Unicode case
// mappings (upper, lower, title case, or the simple case folding orbit)
// reach an ASCII letter:
//
//   - U+0130 İ (lower case i) and U+0131 ı (upper case I) are i to Java's
//     String.equalsIgnoreCase (it compares Character.toUpperCase and
//     toLowerCase of each char), and İ to Jackson under a Turkish locale;
//   - U+017F ſ (upper case S) is s, and U+212A K (the Kelvin sign, lower
//     case k) is k, to those and to Go's strings.EqualFold and
//     bytes.EqualFold: encoding/json binds {"ſize":1} to a field Size,
//     Echo's Bind and gorilla/schema (Fiber's QueryParser) bind ?ſize=1 to
//     it.
//
// .NET's OrdinalIgnoreCase (ASP.NET Core's query, form, cookie and route
// names, System.Text.Json's PropertyNameCaseInsensitive, Json.NET) folds
// none of them: its ordinal casing maps ı and ſ to themselves, in ICU, NLS
// and invariant globalization modes alike, and the Kelvin sign is upper
// case already. PHP does not fold case at all. Reading all four as the
// ASCII letter is the union: a check that refuses a name an upstream reads
// as a declared one refuses these too.
package namefold

// Letter returns the ASCII letter, in lower case, that the UTF-8 encoded
// code point at the start of s stands for in a name compared without
// regard to case (see the package doc), and the code point's length in
// bytes; n is 0 when s starts with none of them. Safe for concurrent use.
func Letter[T ~string | ~[]byte](s T) (c byte, n int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[0] {
	case 0xC4: // U+0130 İ, U+0131 ı
		if s[1] == 0xB0 || s[1] == 0xB1 {
			return 'i', 2
		}
	case 0xC5: // U+017F ſ
		if s[1] == 0xBF {
			return 's', 2
		}
	case 0xE2: // U+212A K
		if len(s) > 2 && s[1] == 0x84 && s[2] == 0xAA {
			return 'k', 3
		}
	}
	return 0, 0
}

// Lead reports whether c is the first byte of one of the code points
// Letter reads: a loop over a name's bytes tests it before it calls
// Letter, so that ASCII names pay one comparison a byte.
func Lead(c byte) bool { return c >= 0xC4 && (c <= 0xC5 || c == 0xE2) }

// Has reports whether s holds a byte that Lead accepts: whether Letter may
// read a letter anywhere in s.
func Has[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if Lead(s[i]) {
			return true
		}
	}
	return false
}
