package ratelimit

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

var (
	headerLimit      = []byte("X-RateLimit-Limit")
	headerRemaining  = []byte("X-RateLimit-Remaining")
	headerReset      = []byte("X-RateLimit-Reset")
	headerRetryAfter = []byte("Retry-After")
	one              = []byte("1")
)

// Slot layout: what the request phase hands to the response phase.
const (
	slotLimit = iota
	slotRemaining
	slotReset
)

// HandleRequest takes a token for the request's client, or rejects it with
// 429 and Retry-After.
func (l *Limiter) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	if r := l.idents.Check(ctx); r != nil {
		return r
	}
	if r := l.alts.Check(ctx); r != nil {
		return r
	}
	slot := ex.Slot()
	var key []byte
	if l.byAddr && len(ex.RemoteAddr) > 0 {
		key = ex.RemoteAddr
	} else {
		slot.Buf = l.key.Append(slot.Buf[:0], ctx, ex)
		key = slot.Buf
	}
	d := l.store.Take(key, l.clock(), l.rules)
	switch {
	case d.Unavailable:
		ctx.Response.Header.SetBytesKV(headerRetryAfter, one)
		return l.unavailable
	case d.Unknown:
		// Passed uncounted (onStoreError: allow): no budget to tell.
		return nil
	}
	if d.Limit == 0 {
		d.Limit = l.rules[d.Rule].Limit
	}
	slot.N[slotLimit] = d.Limit
	slot.N[slotRemaining] = d.Remaining
	if l.resetMillis {
		slot.N[slotReset] = millis(d.Reset)
	} else {
		slot.N[slotReset] = seconds(d.Reset)
	}
	slot.Set = true
	if d.Allowed {
		return nil
	}
	slot.Buf = strconv.AppendInt(slot.Buf[:0], max(seconds(d.RetryAfter), 1), 10)
	ctx.Response.Header.SetBytesKV(headerRetryAfter, slot.Buf)
	if d.Full {
		return l.full
	}
	return l.reject
}

// HandleResponse adds the X-RateLimit-* headers to whatever the route
// answers, the 429 included.
func (l *Limiter) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	slot := ex.Slot()
	if !l.expose || !slot.Set {
		return
	}
	h := &ctx.Response.Header
	buf := slot.Buf[:0]
	for i, name := range [...][]byte{headerLimit, headerRemaining, headerReset} {
		buf = strconv.AppendInt(buf[:0], slot.N[i], 10)
		h.SetBytesKV(name, buf)
	}
	slot.Buf = buf[:0]
}

// seconds rounds ns up to whole seconds: a client told to wait 0 s when
// 300 ms remain would be refused again.
func seconds(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns + int64(time.Second) - 1) / int64(time.Second)
}

// millis rounds ns up to whole milliseconds.
func millis(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

var (
	_ chain.Policy          = (*Limiter)(nil)
	_ chain.RequestHandler  = (*Limiter)(nil)
	_ chain.ResponseHandler = (*Limiter)(nil)
)
