package httpcache

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// fakeClock is a store clock that moves only when a test moves it.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) NowNano() int64                      { return c.ns.Load() }
func (c *fakeClock) Tick(time.Duration) <-chan time.Time { return nil }
func (c *fakeClock) advance(d time.Duration)             { c.ns.Add(int64(d)) }
func (c *fakeClock) now() time.Time                      { return time.Unix(0, c.ns.Load()).UTC() }

// cached compiles the policies on a fake clock and returns the chain,
// the first policy's Cache and the clock.
func cached(t testing.TB, policies string) (*chain.Chain, *Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	testClock = clk
	defer func() { testClock = nil }()
	ch := chaintest.MustChain(t, policies)
	var c *Cache
	switch p := ch.Policies[0].Policy.(type) {
	case *Cache:
		c = p
	case *FlexCache:
		c = &p.Cache
	default:
		t.Fatalf("policy is %T", p)
	}
	return ch, c, clk
}

// origin is what the upstream answers in exchange.
type origin struct {
	status  int
	body    string
	headers []string
	// calls counts the requests that reached it.
	calls int
}

// result is what a client got.
type result struct {
	status    int
	body      string
	header    *fasthttp.ResponseHeader
	fromCache bool
	rej       *chain.Rejection
}

// exchange sends a request through the chain as the gateway does: the
// request steps, then, unless a step answered, the origin's answer, then
// the response steps. headers are name, value pairs.
func exchange(ch *chain.Chain, o *origin, method, uri string, headers ...string) result {
	return exchangeOn(ch, "", o, method, uri, headers...)
}

// exchangeOn is exchange on the route named route.
func exchangeOn(ch *chain.Chain, route string, o *origin, method, uri string, headers ...string) result {
	ctx := chaintest.Ctx("http://gw" + uri)
	ctx.Request.Header.SetMethod(method)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Add(headers[i], headers[i+1])
	}
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(ch)
	ex.RouteID = route
	rej := ch.RunRequest(ctx, ex)
	r := result{fromCache: rej == chain.Answered}
	switch {
	case rej == chain.Answered:
	case rej != nil:
		r.rej = rej
	default:
		o.calls++
		ctx.Response.SetStatusCode(o.status)
		for i := 0; i+1 < len(o.headers); i += 2 {
			ctx.Response.Header.Add(o.headers[i], o.headers[i+1])
		}
		ctx.Response.SetBodyString(o.body)
	}
	ch.RunResponse(ctx, ex)
	r.status, r.body = ctx.Response.StatusCode(), string(ctx.Response.Body())
	r.header = new(fasthttp.ResponseHeader)
	ctx.Response.Header.CopyTo(r.header)
	return r
}

func get(ch *chain.Chain, o *origin, uri string, headers ...string) result {
	return exchange(ch, o, "GET", uri, headers...)
}
