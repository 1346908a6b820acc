package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"
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
	trip  trip
}

// limitedBody passes a request body through to the upstream, noting a
// client that stops sending mid-body (so the upstream is not blamed for
// it) and, when limited, capping a body of unknown length (chunked).
//
// The deadlines of both connections move with every read, so that a
// slow but steady upload is not cut off by a timeout meant for a stalled
// one.
type limitedBody struct {
	r         io.Reader
	left      int64
	limited   bool
	exceeded  bool
	clientErr bool
	eof       bool

	client        net.Conn
	clientTimeout time.Duration
	up            net.Conn // set by the round trip
	upTimeout     time.Duration
	// abandoned is set when the upstream answered before the body was
	// sent: the writer sending it stops at its next step.
	abandoned atomic.Bool
}

var errBodyLimit = errors.New("request body exceeds the route's maxRequestBodySize")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.client != nil && b.clientTimeout > 0 {
		_ = b.client.SetReadDeadline(time.Now().Add(b.clientTimeout))
	}
	if b.abandoned.Load() {
		return 0, errAbandoned
	}
	n, err := b.read(p)
	if err == io.EOF {
		b.eof = true
	}
	if n > 0 && b.up != nil {
		_ = b.up.SetWriteDeadline(time.Now().Add(b.upTimeout))
		// abandon may have run meanwhile: its deadline must win.
		if b.abandoned.Load() {
			_ = b.up.SetWriteDeadline(aLongTimeAgo)
		}
	}
	return n, err
}

var errAbandoned = errors.New("the upstream answered before the request body was sent")

// abandon stops the sending of the body: called while a writer may be
// blocked sending it.
func (b *limitedBody) abandon() {
	b.abandoned.Store(true)
	if b.up != nil {
		_ = b.up.SetWriteDeadline(aLongTimeAgo)
	}
}

func (b *limitedBody) read(p []byte) (int, error) {
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

// reset readies the body for another request; it holds an atomic, so it is
// cleared field by field rather than copied over.
func (b *limitedBody) reset() {
	b.r, b.left, b.limited, b.exceeded, b.clientErr, b.eof = nil, 0, false, false, false, false
	b.client, b.clientTimeout, b.up, b.upTimeout = nil, 0, nil, 0
	b.abandoned.Store(false)
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
	st.body.reset()
	st.trip = trip{}
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
	// A ';' starts path parameters, which servlet containers drop before
	// they resolve the path: routed with them, "/api/admin;x/secret" would
	// be served as /api/admin/secret without /api/admin/*'s policies. They
	// are refused, or stripped before anything else reads the path; an
	// encoded one is always refused, as some upstreams decode it first.
	params, encoded := router.HasParams(rawPath)
	refused := encoded || params && !p.stripParams
	if params && !refused {
		st.path = router.NormalizeStripParams(st.path[:0], rawPath)
	} else {
		st.path = router.Normalize(st.path[:0], rawPath)
	}
	idx, res, allow := -1, router.NotFound, []byte(nil)
	if !refused {
		idx, res, allow = p.router.Match(ctx.Method(), st.path)
	}

	m := p.noRoute
	routeID := ""
	switch {
	case refused:
		g.fail(ctx, m, errPathParameters, "", ex)
	case res == router.Found:
		r := p.routes[idx]
		m, routeID = r.m, r.id
		if !bytes.Equal(st.path, rawPath) {
			query = setRoutedURI(ctx, st, query)
		}
		g.serveRoute(ctx, r, st, peer, query, l)
	case res == router.MethodNotAllowed:
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, allow)
		g.fail(ctx, m, errMethodNotAllowed, "", ex)
	default:
		g.fail(ctx, m, errNoRoute, "", ex)
	}
	if g.draining.Load() {
		// Clients reconnect elsewhere while Kubernetes stops routing here.
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
	st.trip = trip{http10: !ctx.Request.Header.IsHTTP11(), clientWriteTimeout: l.srv.WriteTimeout, route: r}
	g.rewrite(ctx, r, st, peer, query, l)
	if cl := ctx.Request.Header.ContentLength(); cl != 0 && cl != -2 && ctx.Request.IsBodyStream() {
		b := &st.body
		b.r, b.left, b.limited = ctx.RequestBodyStream(), r.maxBodySize, cl == -1 && r.maxBodySize > 0
		b.client, b.clientTimeout = ctx.Conn(), l.srv.ReadTimeout
		ctx.Request.SetBodyStream(&st.body, cl)
		st.trip.body = &st.body
	}
	upStart := time.Now()
	uerr := r.up.forward(ctx, &st.trip)
	answered := false
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
		r.m.upstreamError(uerr.kind)
		g.log.Warn("upstream request failed", "route", r.id, "reason", uerr.kind.String(),
			"error", uerr.err.Error(), "requestId", string(ex.RequestID))
		g.fail(ctx, r.m, failures[uerr.kind].gw, r.id, ex)
	default:
		answered = true
		r.m.upstreamTime.UpdateDuration(upStart)
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	}
	r.chain.RunResponse(ctx, ex)
	if st.body.r != nil && !st.body.eof && !st.body.clientErr {
		// The upstream answered before the whole body was sent, or the
		// body went over the limit.
		lingerClose(ctx)
	}
	if s := st.trip.stream; s != nil && st.trip.http10 && !ctx.Response.IsBodyStream() {
		// An answer of unknown length to an HTTP/1.0 client: it is sent
		// on the bare connection, after this handler returns.
		if answered {
			streamHTTP10(ctx, s)
		} else {
			_ = s.Close()
		}
	}
}

// lingerClose ends a connection whose request body was not read to its
// end, once the answer is out. Closing a socket with unread data makes the
// kernel send a reset, which may destroy the answer before the client has
// read it: the rest of the body is read and dropped first, for a bounded
// time, as nginx's lingering close does.
//
// fasthttp hijacks a connection only when it would keep it open, so the
// answer, which says Connection: close, is written here rather than by
// fasthttp. A streamed answer (an upstream's long early answer) cannot be,
// and its connection just closes.
func lingerClose(ctx *fasthttp.RequestCtx) {
	if ctx.Response.IsBodyStream() {
		ctx.SetConnectionClose()
		return
	}
	ctx.Response.Header.SetConnectionClose()
	if ctx.IsHead() {
		ctx.Response.SkipBody = true
	}
	answer := bytebufferpool.Get()
	if _, err := ctx.Response.WriteTo(answer); err != nil {
		bytebufferpool.Put(answer)
		ctx.SetConnectionClose()
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		_ = c.SetWriteDeadline(time.Now().Add(lingerTimeout))
		_, err := c.Write(answer.B)
		bytebufferpool.Put(answer)
		if err == nil {
			linger(c)
		}
	})
}

// Bounds of a lingering close: the whole of it, and each wait for more.
const (
	lingerTime    = 10 * time.Second
	lingerTimeout = 2 * time.Second
)

func linger(c net.Conn) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	end := time.Now().Add(lingerTime)
	for {
		now := time.Now()
		if now.After(end) {
			return
		}
		next := now.Add(lingerTimeout)
		if next.After(end) {
			next = end
		}
		_ = c.SetReadDeadline(next)
		if _, err := c.Read(*bp); err != nil {
			return
		}
	}
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

// setRoutedURI makes the routed path, with the query, the request's URI, so
// that policies read the path that was routed ($request.path of
// "/a;x/../b" is "/b"), not the one the client sent. It returns the query,
// which now lies in the new URI.
func setRoutedURI(ctx *fasthttp.RequestCtx, st *state, query []byte) []byte {
	st.uri = append(st.uri[:0], st.path...)
	if query != nil {
		st.uri = append(append(st.uri, '?'), query...)
	}
	ctx.Request.SetRequestURIBytes(st.uri)
	_, query = splitRequestURI(ctx.Request.Header.RequestURI())
	return query
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
