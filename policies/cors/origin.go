package cors

// An origin, as a browser serializes it in the Origin header (RFC 6454
// section 6.2, the Fetch standard's "serialization of an origin"), is
// scheme "://" host [":" port], nothing else: no user, path, query or
// fragment. Two origins are the same when their scheme, host and port
// are (RFC 6454 section 5): scheme and host compare without regard to
// case, and a port that is the scheme's default is the same as none.
// Browsers send scheme and host in lower case and leave the default
// port out; canonical writes any origin so, which makes sameness a
// comparison of bytes. An opaque origin is serialized as "null" and is
// never the same as any origin, not even another "null".

// maxOrigin bounds the origins looked at: a DNS name is at most 253
// bytes, and scheme and port add little. A longer Origin matches nothing.
const maxOrigin = 512

// origin locates the parts of a canonical origin in its bytes.
type origin struct {
	// schemeEnd is the length of the scheme; host starts 3 bytes later.
	schemeEnd int
	// hostEnd is where the host ends: the end, or the ':' of the port.
	hostEnd int
}

func (o origin) scheme(b []byte) []byte { return b[:o.schemeEnd] }
func (o origin) host(b []byte) []byte   { return b[o.schemeEnd+3 : o.hostEnd] }
func (o origin) port(b []byte) []byte   { return b[o.hostEnd:] } // ":8443" or ""

// canonical appends the canonical form of the serialized origin s to dst:
// scheme and host in lower case, the port written without leading zeros
// and left out when it is the scheme's default. ok is false when s is not
// the serialization of a tuple origin (and for "null"). It does not
// allocate when dst has room for len(s) more bytes, and is safe for
// concurrent use.
func canonical(dst, s []byte) (out []byte, o origin, ok bool) {
	if len(s) > maxOrigin {
		return dst, o, false
	}
	base := len(dst)
	// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			goto schemeDone
		}
		dst = append(dst, c)
	}
schemeDone:
	if i == 0 || len(s)-i < 4 || s[i] != ':' || s[i+1] != '/' || s[i+2] != '/' {
		return dst[:base], o, false
	}
	o.schemeEnd = i
	dst = append(dst, "://"...)
	i += 3
	if s[i] == '[' {
		// An IPv6 literal: hex digits, ':' and '.' (an embedded IPv4).
		j := i + 1
		for ; j < len(s) && s[j] != ']'; j++ {
			c := s[j]
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', c == ':', c == '.':
			case 'A' <= c && c <= 'F':
			default:
				return dst[:base], o, false
			}
		}
		if j == len(s) || j == i+1 {
			return dst[:base], o, false
		}
		for _, c := range s[i : j+1] {
			if 'A' <= c && c <= 'F' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		i = j + 1
	} else {
		// A registered name or IPv4 address: letters, digits, '-', '_'
		// and '.', in labels that are not empty.
		start := i
		for ; i < len(s) && s[i] != ':'; i++ {
			c := s[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case c == '.':
				if i == start || s[i-1] == '.' {
					return dst[:base], o, false
				}
			default:
				return dst[:base], o, false
			}
			dst = append(dst, c)
		}
		if i == start || s[i-1] == '.' {
			return dst[:base], o, false
		}
	}
	o.hostEnd = len(dst) - base
	if i == len(s) {
		return dst, o, true
	}
	if s[i] != ':' {
		return dst[:base], o, false
	}
	// port = 1*5DIGIT, at most 65535
	i++
	if i == len(s) || len(s)-i > 5 {
		return dst[:base], o, false
	}
	port := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return dst[:base], o, false
		}
		port = port*10 + int(c-'0')
	}
	if port > 65535 {
		return dst[:base], o, false
	}
	if port != defaultPort(dst[base:base+o.schemeEnd]) {
		dst = append(dst, ':')
		dst = appendInt(dst, port)
	}
	return dst, o, true
}

// defaultPort is the port a scheme implies, or -1.
func defaultPort(scheme []byte) int {
	switch string(scheme) {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return -1
}

func appendInt(dst []byte, n int) []byte {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
