package chain_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// answering is a request step that answers the request itself.
func answering(_ *fasthttp.RequestCtx, _ *chain.Exchange) *chain.Rejection { return chain.Answered }

// TestAnsweredStopsWithoutRejecting: a step that answers stops the
// request steps after it, and is no rejection.
func TestAnsweredStopsWithoutRejecting(t *testing.T) {
	ran := false
	c := &chain.Chain{Request: []chain.RequestStep{{Fn: answering}, {Fn: func(*fasthttp.RequestCtx, *chain.Exchange) *chain.Rejection {
		ran = true
		return nil
	}, Index: 1}}, Policies: make([]chain.Instance, 2)}
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	if rej := c.RunRequest(new(fasthttp.RequestCtx), ex); rej != chain.Answered || ex.Rejected != nil || ran {
		t.Errorf("RunRequest = %v, Rejected = %v, the next step ran: %v", rej, ex.Rejected, ran)
	}
}

type tapRecord struct{ closed, complete bool }

func (r *tapRecord) TapWrite([]byte)        {}
func (r *tapRecord) TapClose(complete bool) { r.closed, r.complete = true, complete }

// TestResetClosesAnUnusedTap: a tap no stream took is closed, incomplete,
// when the exchange is reset, so that whatever waits on it is released.
func TestResetClosesAnUnusedTap(t *testing.T) {
	ex := chain.AcquireExchange()
	tap := &tapRecord{}
	ex.BodyStreams, ex.BodyTap = true, tap
	chain.ReleaseExchange(ex)
	if !tap.closed || tap.complete {
		t.Errorf("tap closed %v, complete %v; want closed, incomplete", tap.closed, tap.complete)
	}
}
