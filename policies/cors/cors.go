package cors

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/ascii"
)

// The headers of an answer the policy decides. An upstream's copies are
// removed from every answer of the route, so that only the policy grants
// cross-origin access.
var answerHeaders = []string{
	fasthttp.HeaderAccessControlAllowOrigin,
	fasthttp.HeaderAccessControlAllowCredentials,
	fasthttp.HeaderAccessControlExposeHeaders,
	fasthttp.HeaderAccessControlAllowMethods,
	fasthttp.HeaderAccessControlAllowHeaders,
	fasthttp.HeaderAccessControlMaxAge,
}

var (
	strStar          = []byte("*")
	strTrue          = []byte("true")
	strVary          = []byte(fasthttp.HeaderVary)
	strOrigin        = []byte("Origin")
	strPreflightVary = []byte("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
)

// Slot fields: N[slotGroup] is 1 + the index of the group that allows the
// request's origin (0: not allowed), N[slotEcho] is 1 when the answer
// names the origin rather than "*"; Buf holds the canonical origin; Set
// says the policy ran on the request.
const (
	slotGroup = 0
	slotEcho  = 1
)

// HandleRequest answers a preflight, and notes whether an actual
// request's origin is allowed for the response phase. Safe for
// concurrent use; it does not allocate.
func (e *engine) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	h := &ctx.Request.Header
	slot := ex.Slot()
	slot.Set = true
	rawOrigin := h.Peek(fasthttp.HeaderOrigin)
	if isPreflight(h, rawOrigin) {
		return e.preflight(ctx, slot, rawOrigin)
	}
	if len(rawOrigin) == 0 {
		return nil
	}
	g, echo := e.match(slot, rawOrigin)
	if g == nil || !g.methods[string(ctx.Method())] {
		e.denied.Inc()
		return nil
	}
	e.allowed.Inc()
	slot.N[slotGroup] = int64(g.idx) + 1
	if echo {
		slot.N[slotEcho] = 1
	}
	return nil
}

// isPreflight reports whether a request is a CORS preflight: OPTIONS with
// Origin and Access-Control-Request-Method. The gateway routes preflights
// by the same test (proxy's preflightRoute), and every one it routes here
// must be answered here.
func isPreflight(h *fasthttp.RequestHeader, origin []byte) bool {
	return h.IsOptions() && len(origin) > 0 && len(h.Peek(fasthttp.HeaderAccessControlRequestMethod)) > 0
}

// match finds the group of a request's Origin, writing its canonical form
// into slot.Buf. echo says the answer names the origin rather than "*".
func (e *engine) match(slot *chain.Slot, raw []byte) (g *group, echo bool) {
	c, o, ok := canonical(slot.Buf[:0], raw)
	slot.Buf = c
	if !ok {
		return nil, false
	}
	if g := e.exact[string(c)]; g != nil {
		return g, true
	}
	for i := range e.patterns {
		p := &e.patterns[i]
		host := o.host(c)
		if string(o.scheme(c)) == p.scheme && string(o.port(c)) == p.port &&
			len(host) > len(p.suffix) && string(host[len(host)-len(p.suffix):]) == p.suffix {
			return p.g, true
		}
	}
	if e.anyOrigin != nil {
		// credentials never come with "*" (the config refuses it).
		return e.anyOrigin, false
	}
	return nil, false
}

// preflight answers a preflight: 204 with the CORS headers when the
// origin, method and headers it names are allowed, else a 403 rejection.
func (e *engine) preflight(ctx *fasthttp.RequestCtx, slot *chain.Slot, rawOrigin []byte) *chain.Rejection {
	req, resp := &ctx.Request.Header, &ctx.Response.Header
	resp.SetBytesKV(strVary, strPreflightVary)
	g, echo := e.match(slot, rawOrigin)
	if g == nil {
		return e.refusedOrigin
	}
	if !g.methods[string(req.Peek(fasthttp.HeaderAccessControlRequestMethod))] {
		return e.refusedMethod
	}
	asked := req.Peek(fasthttp.HeaderAccessControlRequestHeaders)
	if !g.allowsHeaders(slot, asked) {
		return e.refusedHdr
	}
	e.preflights.Inc()
	ctx.Response.SetStatusCode(fasthttp.StatusNoContent)
	if echo {
		resp.SetCanonical(strAllowOrigin, slot.Buf)
	} else {
		resp.SetCanonical(strAllowOrigin, strStar)
	}
	if e.credentials {
		resp.SetCanonical(strAllowCredentials, strTrue)
	}
	resp.SetCanonical(strAllowMethods, g.allowMethods)
	switch {
	case g.anyHeader && len(asked) > 0:
		// Checked as a list of tokens by allowsHeaders.
		resp.SetCanonical(strAllowHeaders, asked)
	case len(g.allowHeaders) > 0:
		resp.SetCanonical(strAllowHeaders, g.allowHeaders)
	}
	resp.SetCanonical(strMaxAge, g.maxAge)
	return e.answer
}

var (
	strAllowOrigin      = []byte(fasthttp.HeaderAccessControlAllowOrigin)
	strAllowCredentials = []byte(fasthttp.HeaderAccessControlAllowCredentials)
	strAllowMethods     = []byte(fasthttp.HeaderAccessControlAllowMethods)
	strAllowHeaders     = []byte(fasthttp.HeaderAccessControlAllowHeaders)
	strExposeHeaders    = []byte(fasthttp.HeaderAccessControlExposeHeaders)
	strMaxAge           = []byte(fasthttp.HeaderAccessControlMaxAge)
)

// allowsHeaders reports whether every name of an
// Access-Control-Request-Headers value (a comma-separated list; browsers
// send it in lower case) is allowed, comparing without regard to case. A
// value that is not a list of header names is refused. The lower-case
// copy of each name goes through scratch, after the origin in slot.Buf.
func (g *group) allowsHeaders(slot *chain.Slot, list []byte) bool {
	base := len(slot.Buf)
	ok := g.allowsEach(slot, base, list)
	slot.Buf = slot.Buf[:base]
	return ok
}

func (g *group) allowsEach(slot *chain.Slot, base int, list []byte) bool {
	for len(list) > 0 {
		var name []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			name, list = list[:i], list[i+1:]
		} else {
			name, list = list, nil
		}
		name = bytes.Trim(name, " \t")
		if len(name) == 0 {
			continue
		}
		lower := slot.Buf[:base]
		for _, c := range name {
			if !ascii.IsTokenByte(c) {
				return false
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower = append(lower, c)
		}
		slot.Buf = lower
		if !g.anyHeader && !g.headers[string(lower[base:])] {
			return false
		}
	}
	return true
}

// HandleResponse gives every answer of the route Vary: Origin, removes the
// upstream's CORS headers and, for an allowed cross-origin request, sets
// the policy's. Safe for concurrent use; it does not allocate.
func (e *engine) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	h := &ctx.Response.Header
	for _, name := range answerHeaders {
		h.Del(name)
	}
	addVaryOrigin(h)
	slot := ex.Slot()
	if !slot.Set || slot.N[slotGroup] == 0 {
		return
	}
	g := e.groups[slot.N[slotGroup]-1]
	if slot.N[slotEcho] == 1 {
		h.SetCanonical(strAllowOrigin, slot.Buf)
	} else {
		h.SetCanonical(strAllowOrigin, strStar)
	}
	if e.credentials {
		h.SetCanonical(strAllowCredentials, strTrue)
	}
	if len(g.expose) > 0 {
		h.SetCanonical(strExposeHeaders, g.expose)
	}
}

// addVaryOrigin adds Origin to the answer's Vary, unless it is there or
// Vary is "*".
func addVaryOrigin(h *fasthttp.ResponseHeader) {
	for _, v := range h.PeekAll(fasthttp.HeaderVary) {
		if hasToken(v, "origin") || hasToken(v, "*") {
			return
		}
	}
	h.AddBytesKV(strVary, strOrigin)
}

// hasToken reports whether the comma-separated list v holds token
// (written in lower case), without regard to case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		t = bytes.Trim(t, " \t")
		if ascii.EqualLower(t, token) {
			return true
		}
	}
	return false
}
