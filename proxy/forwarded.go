package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/ascii"
)

// setForwardingHeaders tells the upstream where the request came from.
//
// X-Forwarded-For and Forwarded (RFC 7239) are lists each proxy appends
// to: every line the client sent is kept, in order, and joined into one
// line that ends with this hop — the peer's address, and for Forwarded
// also the scheme and Host the gateway received. X-Real-IP is the client
// address the gateway determined ($request.remoteAddress).
// X-Forwarded-Proto, -Host and -Port describe the client's own connection:
// the gateway sets them from what it received, except that a trusted
// proxy's values are kept, since it, not the gateway, faced the client
// (a load balancer terminating TLS in front of an HTTP listener).
func (st *state) setForwardingHeaders(h *fasthttp.RequestHeader, l *listener) {
	host := h.Host()

	st.xff = appendLines(st.xff[:0], h.PeekAll(headerXFF))
	if len(st.xff) > 0 {
		st.xff = append(st.xff, ", "...)
	}
	st.xff = st.peer.AppendTo(st.xff)
	replaceHeader(h, headerXFF, st.xff)

	st.fwd = appendLines(st.fwd[:0], h.PeekAll(headerForwarded))
	if len(st.fwd) > 0 {
		st.fwd = append(st.fwd, ", "...)
	}
	st.fwd = appendForwardedElement(st.fwd, st.peer, l.scheme, host)
	replaceHeader(h, headerForwarded, st.fwd)

	replaceHeader(h, headerXRealIP, st.ex.RemoteAddr)

	trusted := st.p.trusted.contains(st.peer)
	if !trusted || !oneValue(h, headerXFProto, validProto) {
		if len(h.PeekAll(headerXFProto)) > 1 {
			h.Del(headerXFProto)
		}
		h.Set(headerXFProto, l.scheme)
	}
	if !trusted || !oneValue(h, headerXFHost, validForwardedHost) {
		replaceHeader(h, headerXFHost, host)
	}
	if !trusted || !oneValue(h, headerXFPort, validPort) {
		replaceHeader(h, headerXFPort, l.port)
	}
}

// appendLines appends the lines of a list header as one comma-separated
// list (RFC 9110 §5.3), skipping empty lines.
func appendLines(dst []byte, lines [][]byte) []byte {
	for _, v := range lines {
		if len(v) == 0 {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
	}
	return dst
}

// replaceHeader sets the one line of a header, removing every other; an
// empty value removes the header. A header of one line is set in place:
// fasthttp deletes by moving the last header into the gap, which can
// reorder the lines of another header.
func replaceHeader(h *fasthttp.RequestHeader, name string, v []byte) {
	n := len(h.PeekAll(name))
	if n > 1 || (n == 1 && len(v) == 0) {
		h.Del(name)
	}
	if len(v) > 0 {
		h.SetBytesV(name, v)
	}
}

// oneValue reports whether the header has exactly one line and its value
// is well formed.
func oneValue(h *fasthttp.RequestHeader, name string, valid func([]byte) bool) bool {
	lines := h.PeekAll(name)
	return len(lines) == 1 && valid(lines[0])
}

func validProto(v []byte) bool { return asciiEqualFold(v, "http") || asciiEqualFold(v, "https") }

// validForwardedHost: one host[:port], as validHost reads a Host, not a
// list.
func validForwardedHost(v []byte) bool {
	return len(v) > 0 && bytes.IndexByte(v, ',') < 0 && validHost(v)
}

func validPort(v []byte) bool {
	if len(v) == 0 || len(v) > 5 {
		return false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n <= 65535
}

// appendForwardedElement appends this hop's element of a Forwarded header:
// for=<peer>;proto=<scheme>;host=<host>, with an IPv6 address quoted and
// bracketed and the host quoted unless it is a token (RFC 7239 §4, §6).
func appendForwardedElement(dst []byte, peer netip.Addr, scheme string, host []byte) []byte {
	dst = append(dst, "for="...)
	switch {
	case !peer.IsValid():
		dst = append(dst, "unknown"...)
	case peer.Is6():
		dst = append(dst, `"[`...)
		dst = peer.AppendTo(dst)
		dst = append(dst, `]"`...)
	default:
		dst = peer.AppendTo(dst)
	}
	dst = append(dst, ";proto="...)
	dst = append(dst, scheme...)
	if len(host) > 0 {
		dst = append(dst, ";host="...)
		dst = appendTokenOrQuoted(dst, host)
	}
	return dst
}

// appendTokenOrQuoted appends v as a token when it is one, else as a
// quoted-string.
func appendTokenOrQuoted(dst, v []byte) []byte {
	token := true
	for _, c := range v {
		if !ascii.IsTokenByte(c) {
			token = false
			break
		}
	}
	if token {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
