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
		h.Del(name)
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

// hasPrefixFold reports whether s starts with the prefix, written in lower
// case with '-' for '_', ignoring the case of s and whether it writes '-'
// or '_'.
func hasPrefixFold(s, lowerPrefix []byte) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i, c := range lowerPrefix {
		b := s[i]
		switch {
		case b >= 'A' && b <= 'Z':
			b += 'a' - 'A'
		case b == '_':
			b = '-'
		}
		if b != c {
			return false
		}
	}
	return true
}

// isFraming reports whether name is a framing header, spelt exactly (case
// aside): fasthttp frames by Content-Length, not by Content_Length.
func isFraming(name []byte) bool {
	for _, f := range framing {
		if bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}

// HandleRequest sets the configured headers on the request to the upstream.
func (s *RequestSet) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	s.apply(ctx, ex, &ctx.Request.Header, true)
	return nil
}

// HandleResponse sets the configured headers on the response to the
// client.
func (s *ResponseSet) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	s.apply(ctx, ex, &ctx.Response.Header, false)
}

type headerSetter interface {
	SetBytesKV(key, value []byte)
	DelBytes(key []byte)
	Del(key string)
}

// apply sets every field. fasthttp's Set replaces only the first copy of a
// name, so every copy is deleted first: a second one, sent by the client
// (or, on a response, the upstream), would otherwise reach the other side
// beside the value set here. On a request the other spellings go too.
// Values are expanded before anything is deleted, so that a value may
// read the header it replaces.
func (s *Set) apply(ctx *fasthttp.RequestCtx, ex *chain.Exchange, h headerSetter, request bool) {
	slot := ex.Slot()
	for i := range s.fields {
		f := &s.fields[i]
		value := f.value
		if value == nil {
			buf := f.tmpl.Append(slot.Buf[:0], ctx, ex)
			sanitize(buf)
			slot.Buf = buf[:0]
			value = buf
		}
		if request {
			for _, o := range f.others {
				h.Del(o)
			}
		}
		if !f.setCookie || request {
			h.DelBytes(f.name)
		}
		h.SetBytesKV(f.name, value)
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
