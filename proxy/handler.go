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
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/internal/match"
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
	headerXFPort      = "X-Forwarded-Port"
	headerXRealIP     = "X-Real-Ip"
	headerForwarded   = "Forwarded"
)

// state is the per-request scratch of the gateway: the policies' Exchange,
// what the request's head decided, and the buffers the request path writes
// into. Pooled; one request at a time.
type state struct {
	ex      chain.Exchange
	p       *plan
	r       *route // the route forwarding the request; nil once the gateway has answered
	m       *routeMetrics
	routeID string
	start   time.Time
	peer    netip.Addr
	query   []byte
	path    []byte
	host    []byte
	// req is what the router and the chain's conditions read of the
	// request; routed is where the router put the route and the path it
	// forwards.
	req    match.Request
	routed router.Match
	uri    []byte
	q      []byte // the query, copied for the tries to build the URI from
	xff    []byte
	fwd    []byte
	trace  []byte
	body   limitedBody
	trip   trip
	// trailers is a chunked body's stream without its trailer section.
	trailers trailerDrop
	// largeHead: the request's head was over keepAliveHeadBytes.
	largeHead bool
	// preflight: a CORS preflight routed as the request it announces.
	preflight bool
	// upgrade: the request asks to switch to WebSocket; once routed, only
	// if its route proxies WebSocket. wsAccept is then the
	// Sec-WebSocket-Accept the upstream must answer with.
	upgrade  bool
	wsAccept [wsAcceptLen]byte
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
	// rejected is a policy's verdict on the body, returned by a reader
	// a policy put in front of the client's stream (chain.BodyRejection).
	rejected *chain.Rejection

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
		// A policy's refusal or the client's failure at this point is
		// the body's end as much as EOF is: passing it on keeps a body
		// cut there from reaching the upstream as a complete request.
		var one [1]byte
		for tries := 0; ; tries++ {
			n, err := b.r.Read(one[:])
			switch {
			case n > 0:
				b.exceeded = true
				return 0, errBodyLimit
			case err == io.EOF:
				return 0, io.EOF
			case err != nil:
				b.noteErr(err)
				return 0, err
			case tries == 100:
				b.noteErr(io.ErrNoProgress)
				return 0, io.ErrNoProgress
			}
		}
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
	b.r, b.left, b.limited, b.exceeded, b.clientErr, b.eof, b.rejected = nil, 0, false, false, false, false, nil
	b.client, b.clientTimeout, b.up, b.upTimeout = nil, 0, nil, 0
	b.abandoned.Store(false)
}

func (b *limitedBody) noteErr(err error) {
	if err == nil || err == io.EOF {
		return
	}
	if br, ok := err.(chain.BodyRejection); ok {
		b.rejected = br.Rejection()
		return
	}
	b.clientErr = true
}

// clientFault reports whether sending the body failed for the client's
// doing (it stopped sending, or sent what a policy refuses), not the
// upstream's.
func (b *limitedBody) clientFault() bool { return b.clientErr || b.rejected != nil }

var statePool = sync.Pool{New: func() any { return new(state) }}

func acquireState() *state { return statePool.Get().(*state) }

func releaseState(st *state) {
	st.ex.Reset()
	st.p, st.r, st.m, st.routeID, st.query, st.largeHead, st.upgrade, st.preflight = nil, nil, nil, "", nil, false, false, false
	st.path, st.uri, st.xff, st.fwd, st.trace = st.path[:0], st.uri[:0], st.xff[:0], st.fwd[:0], st.trace[:0]
	st.q = st.q[:0]
	st.host, st.req = st.host[:0], match.Request{}
	st.routed.Reset()
	st.body.reset()
	st.trailers.reset()
	st.trip = trip{}
	statePool.Put(st)
}

// pendingKey stores, on a request whose client waits for 100 Continue, the
// state that expect decided on its head, for serve to carry on with once
// the body has come.
type pendingKey struct{}

// Close ends a request that was let through to send its body but never
// reached serve: fasthttp drops a request whose body cannot be read, and
// closes what is stored on it.
func (st *state) Close() error {
	p := st.p
	releaseState(st)
	p.inflight.Add(-1)
	return nil
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
	st, _ := ctx.UserValue(pendingKey{}).(*state)
	if st != nil {
		ctx.RemoveUserValue(pendingKey{})
	} else {
		st = g.begin(ctx, l)
	}
	if st.r != nil {
		g.serveRoute(ctx, st, l)
	}
	// The answer may come before the body was read to its end: a policy
	// refused it, it went over the limit, or the upstream answered early.
	// (Forwarding consumes the client's body stream; a body never forwarded
	// still is one, unless it is declared empty: fasthttp gives a
	// Content-Length: 0 request a stream with nothing to read.)
	unread := st.body.r != nil && !st.body.eof && !st.body.clientErr ||
		st.body.r == nil && ctx.Request.IsBodyStream() && ctx.Request.Header.ContentLength() != 0
	if unread && !ctx.Hijacked() && !ctx.Response.ConnectionClose() {
		lingerClose(ctx)
	}
	g.finish(ctx, st)
}

// expect decides a request whose client waits for "100 Continue" before
// it sends the body. fasthttp sends the 100 when it returns 100, and reads
// the body and calls serve; any other status answers with the response
// begin rendered and closes the connection, without calling serve.
func (g *Gateway) expect(ctx *fasthttp.RequestCtx, l *listener) int {
	st := g.begin(ctx, l)
	if st.r == nil {
		status := ctx.Response.StatusCode()
		g.finish(ctx, st)
		return status
	}
	ctx.SetUserValue(pendingKey{}, st)
	return fasthttp.StatusContinue
}

// begin decides what the request's head can: framing, route, method,
// declared body size, and the chain's steps that need no body. On success
// st.r is the route; otherwise the answer is in ctx.Response.
func (g *Gateway) begin(ctx *fasthttp.RequestCtx, l *listener) *state {
	st := acquireState()
	st.start = time.Now()
	st.p = g.enter()
	p, ex, h := st.p, &st.ex, &ctx.Request.Header
	st.m = p.noRoute

	// Measured before any header is removed.
	st.largeHead = len(h.RequestURI())+len(h.RawHeaders()) > keepAliveHeadBytes
	st.peer = peerAddr(ctx)
	ex.RemoteIP = p.trusted.clientAddr(ctx, st.peer)
	ex.RemoteAddr = ex.RemoteIP.AppendTo(ex.RemoteAddr[:0])
	ex.RequestID = tracectx.AppendRequestID(ex.RequestID[:0], h.Peek(headerRequestID))
	// Read before any header is deleted: fasthttp's deletes reorder lines.
	st.trace = tracectx.AppendTraceparent(st.trace[:0], h.Peek(headerTraceparent))

	if proto := h.Protocol(); proto[5] != '1' {
		// fasthttp reads any HTTP/d.d; HTTP/2.0 over HTTP/1 framing, or
		// HTTP/0.9, is not a protocol the gateway or its upstreams speak.
		g.fail(ctx, st.m, errHTTPVersion, "", ex)
		ctx.SetConnectionClose()
		return st
	}
	valid, underscore := headerValid(h.RawHeaders(), h.ContentLength() == -1)
	if !valid {
		g.fail(ctx, st.m, errBadRequest, "", ex)
		ctx.SetConnectionClose()
		return st
	}
	if underscore {
		removeUnderscoreAliases(h)
	}
	st.upgrade = isWebSocketUpgrade(h)
	// Hop-by-hop headers, and those the client names in Connection, go
	// before any policy runs, so that a client cannot remove what a policy
	// sets. Deleting Connection forgets its "close", which fasthttp reads
	// after an Expect decision: it is put back.
	closeConn := h.ConnectionClose()
	removeRequestHopHeaders(h)
	if closeConn {
		h.SetConnectionClose()
	}
	rawPath, query, authority := splitRequestURI(h.RequestURI())
	if authority != nil {
		// An absolute-form target names the host: the Host header is
		// ignored and replaced with it (RFC 9112 §3.2.2, §7.2), so that
		// the route chosen for that host and the upstream see one host.
		h.SetHostBytes(authority)
	}
	if !validHost(h.Host()) {
		g.fail(ctx, st.m, errBadHost, "", ex)
		return st
	}
	// A ';' starts path parameters, which servlet containers drop before
	// they resolve the path: routed with them, "/api/admin;x/secret" would
	// be served as /api/admin/secret without /api/admin/*'s policies. They
	// are refused, or stripped before anything else reads the path; an
	// encoded one is always refused, as some upstreams decode it first.
	if router.HasEncodedNUL(rawPath) {
		g.fail(ctx, st.m, errPathNUL, "", ex)
		return st
	}
	params, encoded := router.HasParams(rawPath)
	if encoded || params && !p.stripParams {
		g.fail(ctx, st.m, errPathParameters, "", ex)
		return st
	}
	if params {
		st.path = router.NormalizeStripParams(st.path[:0], rawPath)
	} else {
		st.path = router.Normalize(st.path[:0], rawPath)
	}
	if rej := ambiguousHeader(p.ruleHeaders, h); rej != nil {
		g.fail(ctx, st.m, rej, "", ex)
		return st
	}
	st.host = match.AppendHost(st.host[:0], h.Host())
	st.req = match.Request{Listener: l.name, Method: ctx.Method(), Path: st.path, Host: st.host, Header: h}
	res := router.Found
	if !p.preflight || !p.preflightRoute(h, st) {
		res = p.router.Route(&st.req, &st.routed)
	}
	switch res {
	case router.Found:
		if !bytes.Equal(st.path, rawPath) {
			// Policies read the path that was routed, not the client's.
			query = setRoutedURI(ctx, st, query)
		}
		g.admit(ctx, p.routes[st.routed.Index], st, query)
	case router.MethodNotAllowed:
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, st.routed.Allow)
		g.fail(ctx, st.m, errMethodNotAllowed, "", ex)
	default:
		g.fail(ctx, st.m, errNoRoute, "", ex)
	}
	return st
}

// admit decides whether route r takes the request on its head alone.
func (g *Gateway) admit(ctx *fasthttp.RequestCtx, r *route, st *state, query []byte) {
	ex := &st.ex
	st.m, st.routeID = r.m, r.id
	ex.RouteID = r.id
	ex.Prepare(r.chain)
	r.chain.Select(ex, &st.req)
	if rej := ambiguousHeader(r.whenHeaders, &ctx.Request.Header); rej != nil {
		g.fail(ctx, r.m, rej, r.id, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if !st.preflight && !r.forwards(ctx.Method()) {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, r.allow)
		g.fail(ctx, r.m, errMethodNotAllowed, r.id, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if cl := ctx.Request.Header.ContentLength(); r.maxBodySize > 0 && int64(cl) > r.maxBodySize {
		// The unread body is dropped in a lingering close (see serve).
		g.fail(ctx, r.m, errBodyTooLarge, r.id, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if st.upgrade {
		// A route without websocket forwards the request as a plain one:
		// its Upgrade header went with the hop-by-hop headers.
		st.upgrade = r.ws != nil
		if st.upgrade {
			if rej := checkHandshake(ctx, &st.wsAccept); rej != nil {
				r.ws.m.upgrades[upgradeBadHandshake].Inc()
				g.fail(ctx, r.m, rej, r.id, ex)
				r.chain.RunResponse(ctx, ex)
				return
			}
		}
	}
	if rej := r.chain.RunRequestHead(ctx, ex); rej != nil {
		if st.upgrade {
			r.ws.m.upgrades[upgradeRejected].Inc()
		}
		g.reject(ctx, r, ex, rej)
		return
	}
	if st.preflight {
		// The route was chosen for the method the preflight names, not
		// for OPTIONS; its CORS policy answers every preflight, so one
		// that got past it is never forwarded.
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, r.allow)
		g.fail(ctx, r.m, errMethodNotAllowed, r.id, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	st.r, st.query = r, query
}

// finish counts and logs the request and gives its state back.
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, st *state) {
	if g.draining.Load() || st.largeHead {
		// Draining: clients reconnect elsewhere while Kubernetes stops
		// routing here. A large head: see keepAliveHeadBytes.
		ctx.SetConnectionClose()
	}
	// A response without Content-Type goes out without one: a response
	// read again after a failed attempt has lost the server's setting.
	ctx.Response.Header.SetNoDefaultContentType(true)
	status := ctx.Response.StatusCode()
	st.m.countStatus(status)
	st.m.duration.UpdateDuration(st.start)
	if g.access != nil {
		g.access.log(ctx, &st.ex, st.path, st.routeID, status, st.start)
	}
	p := st.p
	releaseState(st)
	p.inflight.Add(-1)
}

// preflightRoute routes a CORS preflight: an OPTIONS request with Origin
// and Access-Control-Request-Method asks whether the request it announces,
// that method on this path, may be sent; the route that would serve that
// request answers, when its chain answers preflights, and the conditions
// of its policies see the announced method. It reports whether it routed
// the request so; otherwise the preflight is routed as any OPTIONS request.
func (p *plan) preflightRoute(h *fasthttp.RequestHeader, st *state) bool {
	if !h.IsOptions() {
		return false
	}
	m := h.Peek(fasthttp.HeaderAccessControlRequestMethod)
	if len(m) == 0 || len(h.Peek(fasthttp.HeaderOrigin)) == 0 {
		return false
	}
	st.req.Method = m
	if p.router.Route(&st.req, &st.routed) == router.Found {
		if r := p.routes[st.routed.Index]; r.chain.Preflight && r.forwards(m) {
			st.preflight = true
			return true
		}
	}
	st.req.Method = h.Method()
	st.routed.Reset()
	return false
}

// reject answers with a policy's rejection, or sends the answer a policy
// gave itself: chain.Answered (a cache hit), with the response steps, or
// a rejection marked Answer (a CORS preflight's), as it is.
func (g *Gateway) reject(ctx *fasthttp.RequestCtx, r *route, ex *chain.Exchange, rej *chain.Rejection) {
	if rej == chain.Answered {
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if rej.Answer {
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
		return
	}
	renderError(ctx, rej, r.id, ex)
	ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	r.m.rejection(rej)
	r.chain.RunResponse(ctx, ex)
}

// serveRoute runs the rest of the chain on a request its route has
// admitted, forwards it and runs the response steps.
func (g *Gateway) serveRoute(ctx *fasthttp.RequestCtx, st *state, l *listener) {
	r, ex := st.r, &st.ex
	if ctx.Request.IsBodyStream() && ctx.Request.Header.ContentLength() == -1 {
		// Before any policy reads the body: see trailerDrop.
		st.trailers.r, st.trailers.h = ctx.RequestBodyStream(), &ctx.Request.Header
		ctx.Request.SetBodyStream(&st.trailers, -1)
	}
	rej := r.chain.RunRequestTail(ctx, ex)
	if st.trailers.refused {
		// A policy read the body to its end, and the trailer section is
		// refused: whatever the policy made of the failed read, the answer
		// is the gateway's. The request is never forwarded, so its trailer
		// fields, still in the header, go nowhere.
		g.refuseTrailers(ctx, r, ex)
		r.chain.RunResponse(ctx, ex)
		return
	}
	if rej != nil {
		if st.upgrade {
			r.ws.m.upgrades[upgradeRejected].Inc()
		}
		g.reject(ctx, r, ex, rej)
		return
	}
	st.trip = trip{http10: !ctx.Request.Header.IsHTTP11(), clientWriteTimeout: l.srv.WriteTimeout, route: r,
		responseTimeout: ex.ResponseTimeout, streamIdleTimeout: ex.StreamIdleTimeout,
		upgrade: st.upgrade, wsAccept: st.wsAccept}
	g.rewrite(ctx, r, st, l)
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
	if st.trailers.refused || st.body.exceeded || st.body.rejected != nil || st.body.clientErr {
		// The upstream may have answered before the body failed (see
		// earlyAnswerGrace): the gateway's error below replaces that
		// answer whole, none of its headers or body going to the client.
		r.up.discard(ctx, &st.trip)
	}
	switch {
	case st.trailers.refused:
		// The upstream has the body without its last chunk: no request.
		g.refuseTrailers(ctx, r, ex)
	case st.body.exceeded:
		// The rest of the body is read and dropped after the answer (see
		// lingerClose), so that the client reads it instead of a reset.
		g.fail(ctx, r.m, errBodyTooLarge, r.id, ex)
	case st.body.rejected != nil:
		// A policy refused the body as it streamed to the upstream; the
		// upstream has only the part before what was refused, and no
		// end of the request. The rest is read and dropped after the
		// answer (see lingerClose).
		rej := st.body.rejected
		ex.Rejected = rej
		renderError(ctx, rej, r.id, ex)
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
		r.m.rejection(rej)
	case st.body.clientErr:
		g.fail(ctx, r.m, errClientBody, r.id, ex)
		ctx.SetConnectionClose()
	case uerr != nil:
		r.m.upstreamError(uerr.kind)
		if uerr.kind != failOverloaded {
			// A circuit breaker's answers come in floods, by design: the
			// metrics count them.
			g.log.Warn("upstream request failed", "route", r.id, "reason", uerr.kind.String(),
				"error", uerr.err.Error(), "requestId", string(ex.RequestID))
		}
		g.fail(ctx, r.m, failures[uerr.kind].gw, r.id, ex)
	default:
		answered = true
		r.m.upstreamTime.UpdateDuration(upStart)
		ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	}
	if st.upgrade {
		switch {
		case st.trip.tunnel != nil:
		case answered:
			r.ws.m.upgrades[upgradeUpstreamRefused].Inc()
		default:
			r.ws.m.upgrades[upgradeFailed].Inc()
		}
	}
	ex.BodyStreams = answered && st.trip.stream != nil
	r.chain.RunResponse(ctx, ex)
	if tap := ex.BodyTap; tap != nil {
		// A response step wants the streamed body's bytes (a cache).
		ex.BodyTap = nil
		if s := st.trip.stream; ex.BodyStreams && s != nil {
			s.tap = tap
		} else {
			tap.TapClose(false)
		}
	}
	if tun := st.trip.tunnel; tun != nil {
		st.trip.tunnel = nil
		if answered {
			g.switchProtocols(ctx, r, tun, l)
		} else {
			tun.abort()
		}
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
		// fasthttp leaves hijacked connections to their handler (see
		// Server.KeepHijackedConns in newListener).
		defer c.Close()
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

// refuseTrailers answers a request whose trailer section has more than
// maxTrailerFields fields. The body was read to its end, so the connection
// closes without a lingering close.
func (g *Gateway) refuseTrailers(ctx *fasthttp.RequestCtx, r *route, ex *chain.Exchange) {
	g.fail(ctx, r.m, errTrailerFieldsRejection, r.id, ex)
	ctx.SetConnectionClose()
}

// fail answers with one of the gateway's own errors.
func (g *Gateway) fail(ctx *fasthttp.RequestCtx, m *routeMetrics, e *chain.Rejection, routeID string, ex *chain.Exchange) {
	renderError(ctx, e, routeID, ex)
	ctx.Response.Header.SetBytesV(headerRequestID, ex.RequestID)
	m.gatewayError(e.Reason)
}

// rewrite turns the client's request into the upstream's, in place:
// forwarding headers in, Host; the path goes under the base path of each
// target tried (see upstream.prepare). The hop-by-hop headers went before
// the chain ran.
func (g *Gateway) rewrite(ctx *fasthttp.RequestCtx, r *route, st *state, l *listener) {
	h := &ctx.Request.Header
	h.ResetConnectionClose()
	h.SetProtocol("HTTP/1.1")
	// Without this fasthttp sends a body without Content-Type as
	// application/octet-stream.
	h.SetNoDefaultContentType(true)

	st.setForwardingHeaders(h, l)
	switch {
	case len(r.hostHeader) > 0:
		h.SetHostBytes(r.hostHeader)
	case len(h.Host()) == 0:
		// An HTTP/1.0 client may send no Host; the upstream needs one:
		// the target's, set for each try.
		st.trip.setHost = true
	}
	replaceHeader(h, headerRequestID, st.ex.RequestID)
	replaceHeader(h, headerTraceparent, st.trace)
	if st.upgrade {
		// Hop-by-hop: removed with the others before the policies ran.
		h.Set(fasthttp.HeaderConnection, "Upgrade")
		h.Set(fasthttp.HeaderUpgrade, "websocket")
	}

	// The request-target is built for each try, from the path the router
	// forwards under the base path of the target it goes to. The query is
	// copied: it lies in the URI that each try replaces.
	st.trip.routed, st.trip.uri = &st.routed, &st.uri
	if st.query != nil {
		st.q = append(st.q[:0], st.query...)
		st.trip.query = st.q
		if st.trip.query == nil {
			st.trip.query = []byte{}
		}
	}
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
	_, query, _ = splitRequestURI(ctx.Request.Header.RequestURI())
	return query
}

// splitRequestURI returns the raw path, the raw query (nil when there is
// none) and, for a request-target in absolute form, the authority (else
// nil) of a request-target in origin form or absolute form.
func splitRequestURI(uri []byte) (path, query, authority []byte) {
	if len(uri) > 0 && uri[0] != '/' {
		// absolute-form: scheme://authority/path
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			end := bytes.IndexAny(rest, "/?#")
			if end < 0 {
				end = len(rest)
			}
			// The authority ends at the first '/', '?' or '#': in
			// "http://a?x=1/b" the path is empty and the query x=1/b.
			authority, uri = rest[:end], rest[end:]
			if k := bytes.LastIndexByte(authority, '@'); k >= 0 {
				// userinfo@host: not part of the host.
				authority = authority[k+1:]
			}
		}
	}
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:], authority
	}
	return uri, nil, authority
}

// validHost reports whether host, a Host header or an absolute-form
// target's authority, is one RFC 9110 §7.2 allows: empty, or uri-host
// [":" port], where uri-host is an IP literal in brackets or a reg-name
// of RFC 3986's unreserved, sub-delims and %-encoded bytes. A server must
// refuse any other with 400 (RFC 9112 §3.2): "x@internal.example.com" or
// "a/b" would miss a route for their host and reach an upstream that
// reads a host out of them. An empty label ("a..b"), which no name has,
// is refused too, as nginx does. It does not allocate.
func validHost(host []byte) bool {
	i := 0
	if len(host) > 0 && host[0] == '[' {
		end := bytes.IndexByte(host, ']')
		if end < 2 {
			return false
		}
		for _, c := range host[1:end] {
			if c != ':' && c != '.' && !ascii.IsHex(c) {
				return false
			}
		}
		i = end + 1
	} else {
		for ; i < len(host) && host[i] != ':'; i++ {
			c := host[i]
			switch {
			case c == '.' && i > 0 && host[i-1] == '.':
				return false
			case c == '%':
				if i+2 >= len(host) || !ascii.IsHex(host[i+1]) || !ascii.IsHex(host[i+2]) {
					return false
				}
			case !hostByte[c]:
				return false
			}
		}
	}
	if i == len(host) {
		return true
	}
	if host[i] != ':' {
		return false
	}
	for _, c := range host[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// hostByte are the bytes of a reg-name but '%': RFC 3986's unreserved and
// sub-delims.
var hostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=" {
		t[c] = true
	}
	return t
}()

// headerValid checks, in one pass over the raw header block, for what
// fasthttp accepts but an upstream may read differently, the stuff of
// request smuggling: a line ended by a bare LF; a folded line (obs-fold,
// which RFC 9112 lets a server refuse); a field name that is not a token,
// such as "X Foo" (fasthttp takes the space as part of the name); a
// chunked body that also has a Content-Length; and a Transfer-Encoding
// other than chunked. fasthttp reads "identity", which RFC 9112 no longer
// has, as no coding at all: framed by a Content-Length beside it, or empty
// without one, so that the body is read as the next request; RFC 9112
// §6.3 calls for a 400, as nginx (501) and HAProxy answer. fasthttp itself
// refuses any other coding, a second Transfer-Encoding line, a space
// before the colon, an empty name, and control characters in values.
// underscore reports a name with '_' in it.
func headerValid(raw []byte, chunked bool) (valid, underscore bool) {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return true, underscore
		}
		if i == 0 || raw[i-1] != '\r' {
			return false, underscore
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		if len(line) == 0 {
			// The empty line that ends the block.
			return true, underscore
		}
		n := 0
		for n < len(line) && ascii.IsTokenByte(line[n]) {
			n++
		}
		if n == 0 || n == len(line) || line[n] != ':' {
			return false, underscore
		}
		underscore = underscore || bytes.IndexByte(line[:n], '_') >= 0
		const cl, te = "content-length", "transfer-encoding"
		if chunked && n == len(cl) && asciiEqualFold(line[:n], cl) ||
			!chunked && n == len(te) && asciiEqualFold(line[:n], te) {
			return false, underscore
		}
	}
	return true, underscore
}
