package proxy

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

// The failures forward answers without a round trip. Shared, so answering
// them allocates nothing.
var (
	errBreaker      = errors.New("the upstream is at a circuit breaker threshold")
	errNoTargets    = errors.New("the upstream has no target address: its name resolved to none yet")
	overloadedError = &upstreamError{kind: failOverloaded, err: errBreaker}
	noTargetsError  = &upstreamError{kind: failConnect, err: errNoTargets}
)

// forward sends ctx.Request to one of the upstream's targets and reads the
// answer into ctx.Response. A body of known small length is read whole;
// any other streams to the client (see bodyStream).
//
// When a request is sent again:
//   - once, when it cannot have been processed: no connection could be
//     made, or a pooled connection turned out closed by the upstream
//     before the request reached it;
//   - when the upstream has retries, up to retries.attempts tries in all
//     on the failures retries.on names, within the retry budget and the
//     circuit breaker's maxRetries, after a backoff.
//
// Either way only an idempotent request whose body is in memory is sent
// again, and to a target it has not tried when there is one in service. A
// request that may have been processed is sent again only when the
// upstream has retries.
func (u *upstream) forward(ctx *fasthttp.RequestCtx, t *trip) *upstreamError {
	if u.maxRequests > 0 && u.active.Load() >= u.maxRequests {
		u.m.overloaded[limitRequests].Inc()
		return overloadedError
	}
	u.active.Add(1)
	req := &ctx.Request
	replayable := isIdempotent(req) && !req.IsBodyStream()
	s := u.set.Load()
	t.tried = tried{}
	resend := true // the one resend of a request that cannot have been processed
	retrying := false
	var uerr *upstreamError
	for tries := 1; ; {
		tg := u.pick(s, &t.tried)
		if tg == nil {
			uerr = noTargetsError
			break
		}
		t.tried.add(tg)
		u.prepare(ctx, t, tg)
		tg.begin()
		start := time.Now()
		var unprocessed bool
		uerr, unprocessed = tg.pool.roundTrip(ctx, t)
		status := 0
		if uerr == nil {
			status = ctx.Response.StatusCode()
			tg.m.duration.UpdateDuration(start)
		}
		if retrying {
			u.retrying.Add(-1)
			retrying = false
		}
		// A client that stopped sending its body is not the target's
		// failure.
		if t.body == nil || !t.body.clientFault() {
			u.observe(tg, uerr, status)
		}
		if t.stream == nil && t.tunnel == nil {
			tg.finish()
		}
		if t.tunnel != nil {
			// Switched protocols: nothing to try again.
			break
		}
		again, counted := u.again(uerr, unprocessed, status, replayable, &resend, tries)
		if !again {
			break
		}
		u.discard(ctx, t)
		if counted {
			u.backoff(tries)
			tries++
			u.retrying.Add(1)
			retrying = true
		}
	}
	if retrying {
		u.retrying.Add(-1)
	}
	if s := t.stream; s != nil {
		// The request is in flight until its body has streamed.
		s.up = u
	} else if tun := t.tunnel; tun != nil {
		// A WebSocket connection is a request in flight until it closes
		// (as Envoy counts an upgraded stream): least-request spreads them,
		// circuitBreaker.maxRequests bounds them.
		tun.target, tun.upstream = t.target, u
	} else {
		u.active.Add(-1)
	}
	return uerr
}

// prepare readies ctx.Request and t for a try on target tg: the
// request-target under tg's base path and the route's destination path,
// its Host when the client sent none, and the timeouts in force.
func (u *upstream) prepare(ctx *fasthttp.RequestCtx, t *trip, tg *target) {
	if t.uri != nil {
		var dest []byte
		if t.route != nil {
			dest = t.route.dest
		}
		b := t.routed.AppendPathUnder((*t.uri)[:0], tg.basePath, dest)
		if t.query != nil {
			b = append(append(b, '?'), t.query...)
		}
		*t.uri = b
		ctx.Request.SetRequestURIBytes(b)
	}
	if t.setHost {
		ctx.Request.Header.SetHostBytes(tg.pool.host)
	}
	t.target = tg
	rt := u.cfg.ResponseTimeout
	if t.responseTimeout > 0 {
		rt = t.responseTimeout
	}
	t.sendTimeout, t.headTimeout, t.bodyTimeout = rt, rt, rt
	if r := u.cfg.Retries; r != nil && r.PerTryTimeout > 0 && r.PerTryTimeout < rt {
		t.headTimeout = r.PerTryTimeout
	}
	if t.streamIdleTimeout > 0 {
		t.bodyTimeout = t.streamIdleTimeout
	}
}

// again decides whether a try that ended with uerr (or status) is followed
// by another, and whether that one counts as a retry (against attempts, the
// budget and the breaker) or is the free resend of a request the upstream
// cannot have seen.
func (u *upstream) again(uerr *upstreamError, unprocessed bool, status int, replayable bool, resend *bool, tries int) (again, counted bool) {
	if !replayable {
		return false, false
	}
	if uerr != nil && unprocessed && *resend {
		*resend = false
		return true, false
	}
	r := u.cfg.Retries
	if r == nil || tries >= r.Attempts || !retryOn(r.On, uerr, status) {
		return false, false
	}
	if u.maxRetries > 0 && u.retrying.Load() >= u.maxRetries {
		u.m.retriesBreaker.Inc()
		return false, false
	}
	// The budget: retries in flight may be a share of the requests in
	// flight, so that retries cannot multiply the load on a failing
	// upstream; a few are always allowed, or a quiet upstream could never
	// retry.
	if budget := max(int64(r.BudgetMinConcurrency), u.active.Load()*int64(r.BudgetPercent)/100); u.retrying.Load() >= budget {
		u.m.retriesBudget.Inc()
		return false, false
	}
	u.m.retries.Inc()
	return true, true
}

// retryOn reports whether a try that ended with uerr, or with an answer of
// status, is one of the failures on names.
func retryOn(on []config.RetryOn, uerr *upstreamError, status int) bool {
	connect := uerr != nil && (uerr.kind == failConnect || uerr.kind == failTLS)
	reset := uerr != nil && (uerr.kind == failReset || uerr.kind == failTimeout || uerr.kind == failProtocol)
	for _, o := range on {
		switch o {
		case config.RetryConnectFailure:
			if connect {
				return true
			}
		case config.RetryReset:
			if reset {
				return true
			}
		case config.RetryGatewayError:
			if connect || reset || uerr == nil && status >= 502 && status <= 504 {
				return true
			}
		case config.Retry5xx:
			if connect || reset || uerr == nil && status >= 500 {
				return true
			}
		}
	}
	return false
}

// discard drops the answer of a try that is retried. An answer whose body
// streams closes its connection: the rest of it is not read.
func (u *upstream) discard(ctx *fasthttp.RequestCtx, t *trip) {
	if s := t.stream; s != nil {
		t.stream = nil
		if !ctx.Response.IsBodyStream() {
			// An HTTP/1.0 client's stream is not on the response yet.
			_ = s.Close()
		}
	}
	// Closes a body stream on the response.
	ctx.Response.Reset()
}

// backoff waits before retry number n: a random time up to
// base × 2^(n-1), at most max ("full jitter"), so that clients retrying
// together do not come back together.
func (u *upstream) backoff(n int) {
	r := u.cfg.Retries
	d := r.BackoffBase << min(n-1, 20)
	if d > r.BackoffMax || d <= 0 {
		d = r.BackoffMax
	}
	if d > 0 {
		time.Sleep(time.Duration(rand.Int64N(int64(d)) + 1))
	}
}
