package router

import "bytes"

// Byte classes for a raw request path.
const (
	// classKeep: unreserved, sub-delims, ':' and '@' (RFC 3986 pchar),
	// copied as they are.
	classKeep = iota
	// classSep: '/' and '\'. Backslash is a separator because upstreams
	// on Windows, and several frameworks elsewhere, split on it: were it
	// kept, "/api/v1/..\admin" would be routed under /api/v1/* and served
	// by the upstream as /api/admin.
	classSep
	// classPct: '%', the start of a percent-encoding.
	classPct
	// classParam: ';', which starts a segment's path parameters
	// ("/a;jsessionid=1/b"); kept or stripped, see NormalizeStripParams.
	classParam
	// classEscape: everything a path may not carry raw (controls, space,
	// '"', '#', '<', '>', '?', '[', ']', '^', '`', '{', '|', '}', DEL and
	// bytes >= 0x80). Percent-encoding them keeps the forwarded request line
	// valid and stops a raw '?' or '#' from cutting the path short upstream.
	classEscape
)

var pathClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = classEscape
	}
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@") {
		t[c] = classKeep
	}
	t['/'] = classSep
	t['\\'] = classSep
	t['%'] = classPct
	t[';'] = classParam
	return t
}()

// unreserved reports whether c may be decoded from %XX without changing
// what the path means (RFC 3986 section 2.3).
var unreserved = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") {
		t[c] = true
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// unhex returns the value of hex digit c, or 16 if c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}

// Normalize appends the normal form of the request path to dst and returns
// the extended slice. It does not allocate when dst has room for the result,
// which is at most 3*len(path)+1 bytes. dst and path must not overlap.
// Normalize is safe for concurrent use.
//
// path is the raw path as it came on the request line, without the query:
// what fasthttp's URI.PathOriginal returns. Any byte string is accepted; the
// result is always a valid absolute path made only of '/', RFC 3986 pchar
// and upper-case %XX escapes, and Normalize(Normalize(p)) == Normalize(p).
// The proxy both matches routes on it and forwards it upstream, so what the
// upstream resolves is exactly what was routed.
//
// In one left-to-right pass, so an escape is decoded at most once ("%252e"
// stays "%252e"):
//   - %XX of an unreserved character (letters, digits, '-', '.', '_', '~')
//     is decoded; "%2e" and "%2E" become '.'.
//   - %2F, %5C and a raw '\' are path separators, like '/'.
//   - every other %XX is kept, with its hex digits in upper case: "%20",
//     "%3F", "%23" and "%25" still mean what the client sent.
//   - a '%' not followed by two hex digits becomes "%25"; bytes a path may
//     not carry raw (space, '?', '#', controls, non-ASCII, ...) become %XX.
//   - empty segments are dropped ("//" becomes "/"), "." segments are
//     dropped and ".." removes the segment before it, never going above the
//     root. A segment that is "." or ".." followed by ';' parameters counts
//     as "." or "..": Tomcat and Jetty resolve "/a/..;x/b" to "/b".
//   - a path that does not start with a separator gets a leading '/'; a
//     trailing '/' is kept, and "." or ".." as the last segment leaves one
//     ("/a/b/.." becomes "/a/", as RFC 3986 section 5.2.4 says).
//
// So "/api/v1/../admin", "/api/v1/%2e%2e/admin" and "/api/v1/..%2fadmin" all
// become "/api/admin", and "//api///v1/./x" becomes "/api/v1/x".
//
// A ';' is kept as it is; see HasParams and NormalizeStripParams.
func Normalize(dst, path []byte) []byte {
	return normalize(dst, path, false)
}

// NormalizeStripParams is Normalize after the path parameters are removed
// from every segment: a raw ';' and all that follows it up to the next '/'
// or '\'. It reads a path as Java servlet containers and Spring do, before
// dot segments are resolved, so "/a;x/b" becomes "/a/b", "/a/;/b" becomes
// "/a/b" and "/a/b/..;/c" becomes "/a/c". An encoded ";" (%3B) is not a
// delimiter and stays. The result has no raw ';'; the conditions on dst and
// path are those of Normalize, and so is its safety for concurrent use.
func NormalizeStripParams(dst, path []byte) []byte {
	return normalize(dst, path, true)
}

// HasParams reports whether a raw request path has a ';', which starts path
// parameters, and whether it has one encoded as %3B, which some upstreams
// decode before they split the parameters off. It does not allocate and is
// safe for concurrent use.
func HasParams(path []byte) (raw, encoded bool) {
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case ';':
			raw = true
		case '%':
			if i+2 < len(path) && path[i+1] == '3' && path[i+2]|0x20 == 'b' {
				encoded = true
			}
		}
	}
	return raw, encoded
}

// HasEncodedNUL reports whether a raw request path has %00, which
// Normalize keeps: an upstream that decodes the path into a C string ends
// it there, and would serve "/api/admin%00/x", routed under /api/*, as
// /api/admin. nginx refuses such a path. It does not allocate and is safe
// for concurrent use.
func HasEncodedNUL(path []byte) bool {
	return bytes.Contains(path, encodedNUL)
}

var encodedNUL = []byte("%00")

func normalize(dst, path []byte, strip bool) []byte {
	base := len(dst)
	dst = append(dst, '/')
	seg := len(dst) // start of the segment being written; dst[seg-1] == '/'
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch pathClass[c] {
		case classKeep:
			// Copy the whole run: most paths are nothing but runs.
			j := i + 1
			for j < len(path) && pathClass[path[j]] == classKeep {
				j++
			}
			dst = append(dst, path[i:j]...)
			i = j - 1
		case classParam:
			if !strip {
				dst = append(dst, ';')
				continue
			}
			for i+1 < len(path) && pathClass[path[i+1]] != classSep {
				i++
			}
		case classSep:
			dst = endSegment(dst, base, seg, true)
			seg = len(dst)
		case classPct:
			if i+2 >= len(path) {
				dst = append(dst, "%25"...)
				continue
			}
			hi, lo := unhex(path[i+1]), unhex(path[i+2])
			if hi > 15 || lo > 15 {
				dst = append(dst, "%25"...)
				continue
			}
			i += 2
			v := hi<<4 | lo
			switch {
			case v == '/' || v == '\\':
				dst = endSegment(dst, base, seg, true)
				seg = len(dst)
			case unreserved[v]:
				dst = append(dst, v)
			default:
				dst = append(dst, '%', upperHex[hi], upperHex[lo])
			}
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return endSegment(dst, base, seg, false)
}

// endSegment closes the segment dst[seg:], which follows a '/', and
// resolves it if it is a dot segment. With sep, a separator follows and the
// result ends in '/' so that the next segment can be written straight after.
func endSegment(dst []byte, base, seg int, sep bool) []byte {
	s := dst[seg:]
	switch {
	case len(s) == 0:
		// An empty segment: "//" collapses, a trailing '/' stays.
		return dst
	case s[0] == '.' && (len(s) == 1 || s[1] == ';'):
		return dst[:seg]
	case len(s) >= 2 && s[0] == '.' && s[1] == '.' && (len(s) == 2 || s[2] == ';'):
		if seg-1 == base {
			// ".." at the root stays at the root.
			return dst[:seg]
		}
		j := seg - 2
		for dst[j] != '/' {
			j--
		}
		return dst[:j+1]
	case sep:
		return append(dst, '/')
	}
	return dst
}
