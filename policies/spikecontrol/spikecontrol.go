package spikecontrol

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

var (
	headerLimit     = []byte("X-Ratelimit-Limit")
	headerRemaining = []byte("X-Ratelimit-Remaining")
	headerReset     = []byte("X-Ratelimit-Reset")
)

// Slot layout: what the request phase hands to the response phase.
const (
	slotRemaining = iota
	slotReset
)

// HandleRequest admits the request into the window, or holds it in the
// queue and tries again after the delay, up to delayAttempts times, or
// refuses it with 429.
//
// A request waiting in the queue holds its connection and the gateway's
// worker goroutine that serves it (fasthttp serves a request on one
// goroutine from start to end; there is no way to park it and free the
// worker). So the queue is bounded: at most queueLimit requests wait at
// once, each at most delay × delayAttempts; the policy starts no goroutine
// of its own, and a request over the queue is refused at once, without
// allocating. Everything it keeps is the window's timestamps.
func (s *Spike) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	d := s.w.admit(s.clock())
	if !d.admitted && s.p.queue > 0 && s.p.attempts > 0 {
		d = s.wait()
	}
	if s.p.expose {
		slot := ex.Slot()
		slot.N[slotRemaining], slot.N[slotReset] = int64(d.remaining), millis(d.reset)
		slot.Set = true
	}
	if !d.admitted {
		return s.reject
	}
	return nil
}

// wait holds a refused request in the queue, if it has room, trying it
// again after each delay.
func (s *Spike) wait() decision {
	n := s.queued.Add(1)
	defer s.queued.Add(-1)
	if n > int64(s.p.queue) {
		return decision{}
	}
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	var d decision
	for range s.p.attempts {
		s.sleep(s.p.delay)
		if d = s.w.admit(s.clock()); d.admitted {
			s.series.delayed.Inc()
			break
		}
	}
	return d
}

// HandleResponse adds the X-Ratelimit-* headers, with exposeHeaders, to
// whatever the route answers, the 429 included.
func (s *Spike) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	slot := ex.Slot()
	if !slot.Set {
		return
	}
	h := &ctx.Response.Header
	buf := strconv.AppendInt(slot.Buf[:0], int64(s.p.limit), 10)
	h.SetBytesKV(headerLimit, buf)
	buf = strconv.AppendInt(buf[:0], slot.N[slotRemaining], 10)
	h.SetBytesKV(headerRemaining, buf)
	buf = strconv.AppendInt(buf[:0], slot.N[slotReset], 10)
	h.SetBytesKV(headerReset, buf)
	slot.Buf = buf[:0]
}

// millis rounds ns up to whole milliseconds.
func millis(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns + 999_999) / 1_000_000
}

var (
	_ chain.RequestHandler  = (*Spike)(nil)
	_ chain.ResponseHandler = (*Spike)(nil)
)
