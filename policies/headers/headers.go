package headers

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// HandleRequest removes the configured headers.
func (r *Remove) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	h := &ctx.Request.Header
	for _, name := range r.exact {
		h.DelBytes(name)
	}
	if len(r.prefixes) == 0 {
		return nil
	}
	// Deleting while iterating is undefined in fasthttp, so the matching
	// names are gathered first, NUL-separated, in the policy's scratch.
	slot := ex.Slot()
	buf := slot.Buf[:0]
	for k := range h.All() {
		if r.matches(k) {
			buf = append(buf, k...)
			buf = append(buf, 0)
		}
	}
	for rest := buf; len(rest) > 0; {
		i := bytes.IndexByte(rest, 0)
		h.DelBytes(rest[:i])
		rest = rest[i+1:]
	}
	slot.Buf = buf[:0]
	return nil
}

func (r *Remove) matches(name []byte) bool {
	for _, p := range r.prefixes {
		if hasPrefixFold(name, p) && !isFraming(name) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case prefix,
// ignoring the case of s.
func hasPrefixFold(s, lowerPrefix []byte) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i, c := range lowerPrefix {
		b := s[i]
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c {
			return false
		}
	}
	return true
}

func isFraming(name []byte) bool {
	for _, f := range framing {
		if len(f) == len(name) && hasPrefixFold(name, lowerFraming[f]) {
			return true
		}
	}
	return false
}

var lowerFraming = func() map[string][]byte {
	m := map[string][]byte{}
	for _, f := range framing {
		m[f] = bytes.ToLower([]byte(f))
	}
	return m
}()

// HandleRequest sets the configured headers on the request to the upstream.
func (s *RequestSet) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	s.apply(ctx, ex, &ctx.Request.Header)
	return nil
}

// HandleResponse sets the configured headers on the response to the
// client.
func (s *ResponseSet) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	s.apply(ctx, ex, &ctx.Response.Header)
}

type headerSetter interface{ SetBytesKV(key, value []byte) }

func (s *Set) apply(ctx *fasthttp.RequestCtx, ex *chain.Exchange, h headerSetter) {
	slot := ex.Slot()
	for i := range s.fields {
		f := &s.fields[i]
		if f.value != nil {
			h.SetBytesKV(f.name, f.value)
			continue
		}
		buf := f.tmpl.Append(slot.Buf[:0], ctx, ex)
		sanitize(buf)
		h.SetBytesKV(f.name, buf)
		slot.Buf = buf[:0]
	}
}

// sanitize replaces control characters with spaces: an expression expands
// what the client sent (a decoded query value may hold %0d%0a), and that
// must never end a header line or smuggle a NUL upstream.
func sanitize(b []byte) {
	for i, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			b[i] = ' '
		}
	}
}

var (
	_ chain.Policy          = (*Remove)(nil)
	_ chain.RequestHandler  = (*Remove)(nil)
	_ chain.Policy          = (*RequestSet)(nil)
	_ chain.RequestHandler  = (*RequestSet)(nil)
	_ chain.Policy          = (*ResponseSet)(nil)
	_ chain.ResponseHandler = (*ResponseSet)(nil)
)
