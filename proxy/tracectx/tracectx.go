// Package tracectx continues or starts W3C trace context (`traceparent`)
// and request ids for the proxy. It works on byte slices only: no
// fasthttp, no allocation once the destination has room.
//
// Every function here is safe for concurrent use.
package tracectx

import (
	"math/rand/v2"
)

const (
	// TraceparentLen is the length of a version-00 traceparent.
	TraceparentLen = 55
	// MaxRequestIDLen is the longest X-Request-Id kept from a client.
	MaxRequestIDLen = 200
	// GeneratedRequestIDLen is the length of a generated request id.
	GeneratedRequestIDLen = 32
)

const hexDigits = "0123456789abcdef"

// AppendTraceparent appends the traceparent to send upstream. A valid
// incoming traceparent is continued: same trace id and flags, a new span
// (parent) id for the gateway's hop. When incoming is empty or malformed a
// new trace is started, flagged sampled (01) so that upstream tracers that
// follow their parent's decision record it.
//
// Valid means what W3C Trace Context level 1 says: version two lowercase hex
// digits other than ff; for version 00 exactly 55 bytes; for a later version
// at least 55 bytes, and a '-' after them if longer; a trace id of 32 and a
// parent id of 16 lowercase hex digits, neither all zeros; two hex digits of
// flags. What is sent is always version 00.
func AppendTraceparent(dst, incoming []byte) []byte {
	dst = append(dst, "00-"...)
	if validTraceparent(incoming) {
		dst = append(dst, incoming[3:35]...)
		dst = append(dst, '-')
		dst = appendSpanID(dst)
		dst = append(dst, '-')
		return append(dst, incoming[53:55]...)
	}
	dst = appendTraceID(dst)
	dst = append(dst, '-')
	dst = appendSpanID(dst)
	return append(dst, "-01"...)
}

// TraceID returns the trace id of a valid traceparent (a subslice of tp),
// or nil. Useful for logs.
func TraceID(tp []byte) []byte {
	if !validTraceparent(tp) {
		return nil
	}
	return tp[3:35]
}

func validTraceparent(b []byte) bool {
	if len(b) < TraceparentLen {
		return false
	}
	if !isLowerHex(b[0:2]) || b[0] == 'f' && b[1] == 'f' {
		return false
	}
	if b[0] == '0' && b[1] == '0' {
		if len(b) != TraceparentLen {
			return false
		}
	} else if len(b) > TraceparentLen && b[TraceparentLen] != '-' {
		return false
	}
	if b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return false
	}
	trace, parent, flags := b[3:35], b[36:52], b[53:55]
	return isLowerHex(trace) && !allZero(trace) &&
		isLowerHex(parent) && !allZero(parent) && isLowerHex(flags)
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// appendTraceID appends 32 random hex digits, never all zero.
func appendTraceID(dst []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	if hi == 0 && lo == 0 {
		lo = 1
	}
	return appendHex64(appendHex64(dst, hi), lo)
}

// appendSpanID appends 16 random hex digits, never all zero.
func appendSpanID(dst []byte) []byte {
	v := rand.Uint64()
	if v == 0 {
		v = 1
	}
	return appendHex64(dst, v)
}

func appendHex64(dst []byte, v uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}

// AppendRequestID appends the request id to use for this request: the
// incoming X-Request-Id when it is 1 to 200 bytes of visible ASCII other
// than `"` and `\` (so it is safe as it is in headers, logs and JSON error
// bodies), or else a new id of 32 random hex digits.
//
// The random source is math/rand/v2's, seeded from the operating system
// once per process: ids are unique across replicas and restarts without
// the cost of crypto/rand, and nothing relies on them being unguessable.
func AppendRequestID(dst, incoming []byte) []byte {
	if ValidRequestID(incoming) {
		return append(dst, incoming...)
	}
	return appendTraceID(dst)
}

// ValidRequestID reports whether id is kept as it is by AppendRequestID.
func ValidRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
