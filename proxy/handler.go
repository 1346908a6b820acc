package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/proxy/router"
	"github.com/flexgate/flexgate/proxy/tracectx"
)

// Header names the gateway reads or writes on every request.
const (
	headerRequestID   = "X-Request-Id"
	headerTraceparent = "Traceparent"
	headerXFF         = "X-Forwarded-For"
	headerXFProto     = "X-Forwarded-Proto"
	headerXFHost      = "X-Forwarded-Host"
)

// state is the per-request scratch of the gateway: the policies' Exchange
// and the buffers the request path writes into. Pooled; one request at a
// time.
type state struct {
	ex    chain.Exchange
	path  []byte
	uri   []byte
	xff   []byte
	trace []byte
	body  limitedBody
}

// limitedBody passes a request body through to the upstream, noting a
// client that stops sending mid-body (so the upstream is not blamed for
// it) and, when limited, capping a body of unknown length (chunked).
type limitedBody struct {
	r         io.Reader
	left      int64
	limited   bool
	exceeded  bool
	clientErr bool
}

var errBodyLimit = errors.New("request body exceeds the route's maxRequestBodySize")

func (b *limitedBody) Read(p []byte) (int, error) {
	if !b.limited {
		n, err := b.r.Read(p)
		b.noteErr(err)
		return n, err
	}
	if b.left <= 0 {
		// One byte more tells a body that ends exactly at the limit from
		// one that goes on.
		var one [1]byte
		if n, _ := b.r.Read(one[:]); n > 0 {
			b.exceeded = true
			return 0, errBodyLimit
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	b.noteErr(err)
	return n, err
}

func (b *limitedBody) noteErr(err error) {
	if err != nil && err != io.EOF {
		b.clientErr = true
	}
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func acquireState() *state { return statePool.Get().(*state) }

func releaseState(st *state) {
	st.ex.Reset()
	st.path, st.uri, st.xff, st.trace = st.path[:0], st.uri[:0], st.xff[:0], st.trace[:0]
	st.body = limitedBody{}
	statePool.Put(st)
}

// enter returns the plan in force with the request counted on it. The
// count is taken before the plan is checked again, so that a plan being
// retired either sees this request or is not the one it runs on.
func (g *Gateway) enter() *plan {
	for {
		p := g.plan.Load()
		p.inflight.Add(1)
		if g.plan.Load() == p {
			return p
		}
		p.inflight.Add(-1)
	}
}

// serve is the request path: match, run the chain, forward, run the
// response steps, count. It allocates nothing on the common path.
func (g *Gateway) serve(ctx *fasthttp.RequestCtx, l *listener) {
	start := time.Now()
	p := g.enter()
	st := acquireState()
	ex := &st.ex

	// Measured before the rewrite changes the head.
	largeHead := len(ctx.Request.Header.RequestURI())+len(ctx.Request.Header.RawHeaders()) > keepAliveHeadBytes
	peer := peerAddr(ctx)
	ex.RemoteIP = p.trusted.clientAddr(ctx, peer)
	ex.RemoteAddr = ex.RemoteIP.AppendTo(ex.RemoteAddr[:0])
	ex.RequestID = tracectx.AppendRequestID(ex.RequestID[:0], ctx.Request.Header.Peek(headerRequestID))

	if !framingValid(ctx.Request.Header.RawHeaders(), ctx.Request.Header.ContentLength() == -1) {
		g.fail(ctx, p.noRoute, errBadRequest, "", ex)
		ctx.SetConnectionClose()
		p.noRoute.countStatus(fasthttp.StatusBadRequest)
		releaseState(st)
		p.inflight.Add(-1)
		return
	}
	rawPath, query := splitRequestURI(ctx.Request.Header.RequestURI())
	st.path = router.Normalize(st.path[:0], rawPath)
	idx, res, allow := p.router.Match(ctx.Method(), st.path)

	m := p.noRoute
	routeID := ""
	switch res {
	case router.Found:
		r := p.routes[idx]
		m, routeID = r.m, r.id
		g.serveRoute(ctx, r, st, peer, query, l)
	case router.MethodNotAllowed:
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, allow)
		g.fail(ctx, m, errMethodNotAllowed, "", ex)
	default:
		g.fail(ctx, m, errNoRoute, "", ex)
	}
	if g.draining.Load() || largeHead {
		// Draining: clients reconnect elsewhere while Kubernetes stops
		// routing here. A large head: see keepAliveHeadBytes.
		ctx.SetConnectionClose()
	}
	status := ctx.Response.StatusCode()
	m.countStatus(status)
	m.duration.UpdateDuration(start)
	if g.access != nil {
		g.access.log(ctx, ex, st.path, routeID, status, start)
	}
	releaseState(st)
	p.inflight.Add(-1)
}

func (g *Gateway) serveRoute(ctx *fasthttp.RequestCtx, r *route, st *state, peer netip.Addr, query []byte, l *listener) {
	ex := &st.ex
	ex.RouteID = r.id
	ex.Prepare(r.chain)
	if cl := ctx.Request.Header.ContentLength(); r.maxBodySize > 0 && int64(cl) > r.maxBodySize {
		// fasthttp drains or closes the unread body as its length warrants.
		g.fail(ctx, r.m, errBodyTooLarge, r.id, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if rej := r.chain.RunRequest(ctx, ex); rej != nil {
		renderError(ctx, rej.Status, rej.Reason, rej.Message, r.id, rej.Policy, ex, rej.DetailKey)
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
		r.m.rejection(rej)
		r.chain.RunResponse(ctx, ex)
		return
	}
	http10 := !ctx.Request.Header.IsHTTP11()
	g.rewrite(ctx, r, st, peer, query, l)
	if cl := ctx.Request.Header.ContentLength(); cl != 0 && cl != -2 && ctx.Request.IsBodyStream() {
		st.body = limitedBody{r: ctx.RequestBodyStream(), left: r.maxBodySize, limited: cl == -1 && r.maxBodySize > 0}
		ctx.Request.SetBodyStream(&st.body, cl)
	}
	upStart := time.Now()
	uerr := r.up.forward(ctx, http10, l.srv.WriteTimeout)
	switch {
	case st.body.exceeded:
		// No Connection: close here: fasthttp drains a moderate rest of
		// the body so the client reads this answer instead of a reset,
		// and closes the connection itself when the rest is too long.
		g.fail(ctx, r.m, errBodyTooLarge, r.id, ex)
	case st.body.clientErr:
		g.fail(ctx, r.m, errClientBody, r.id, ex)
		ctx.SetConnectionClose()
	case uerr != nil:
		r.m.upstreamError(uerr.metric)
		g.log.Warn("upstream request failed", "route", r.id, "reason", uerr.metric,
			"error", uerr.err.Error(), "requestId", string(ex.RequestID))
		g.fail(ctx, r.m, uerr.gw, r.id, ex)
	default:
		r.m.upstreamTime.UpdateDuration(upStart)
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	}
	r.chain.RunResponse(ctx, ex)
}

// fail answers with one of the gateway's own errors.
func (g *Gateway) fail(ctx *fasthttp.RequestCtx, m *routeMetrics, e *gatewayError, routeID string, ex *chain.Exchange) {
	renderError(ctx, e.status, e.reason, e.message, routeID, "", ex, "")
	ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	m.gatewayError(e.reason)
}

// rewrite turns the client's request into the upstream's, in place: hop
// headers out, forwarding headers in, path normalised under the upstream's
// base path.
func (g *Gateway) rewrite(ctx *fasthttp.RequestCtx, r *route, st *state, peer netip.Addr, query []byte, l *listener) {
	h := &ctx.Request.Header
	removeRequestHopHeaders(h)
	h.ResetConnectionClose()
	h.SetProtocol("HTTP/1.1")

	st.xff = st.xff[:0]
	if prior := h.Peek(headerXFF); len(prior) > 0 {
		st.xff = append(append(st.xff, prior...), ", "...)
	}
	st.xff = peer.AppendTo(st.xff)
	h.SetBytesV(headerXFF, st.xff)
	h.Set(headerXFProto, l.scheme)
	h.SetBytesV(headerXFHost, h.Host())
	switch {
	case len(r.hostHeader) > 0:
		h.SetHostBytes(r.hostHeader)
	case len(h.Host()) == 0:
		// An HTTP/1.0 client may send no Host; the upstream needs one.
		h.SetHostBytes(r.up.host)
	}
	h.SetBytesV(headerRequestID, st.ex.RequestID)
	st.trace = tracectx.AppendTraceparent(st.trace[:0], h.Peek(headerTraceparent))
	h.SetBytesV(headerTraceparent, st.trace)

	st.uri = append(st.uri[:0], r.basePath...)
	st.uri = append(st.uri, st.path...)
	if query != nil {
		st.uri = append(append(st.uri, '?'), query...)
	}
	ctx.Request.SetRequestURIBytes(st.uri)
}

// splitRequestURI returns the raw path and the raw query (nil when there is
// none) of a request-target in origin form or absolute form.
func splitRequestURI(uri []byte) (path, query []byte) {
	if len(uri) > 0 && uri[0] != '/' {
		// absolute-form: scheme://authority/path
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = nil
			}
		}
	}
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, nil
}

// framingValid checks the raw header block for what a lenient parser
// accepts but an upstream may read differently, the stuff of request
// smuggling: a line ended by a bare LF, and a chunked body that also has a
// Content-Length.
func framingValid(raw []byte, chunked bool) bool {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return true
		}
		if i == 0 || raw[i-1] != '\r' {
			return false
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		const cl = "content-length"
		if chunked && len(line) > len(cl) && line[len(cl)] == ':' && asciiEqualFold(line[:len(cl)], cl) {
			return false
		}
	}
	return true
}
