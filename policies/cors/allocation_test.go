package cors_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// serve runs ctx through c as the gateway does: request steps, then the
// response steps unless a policy answered itself.
func serve(c *chain.Chain, ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ctx.Response.Reset()
	ctx.Response.Header.Set("Vary", "Accept-Encoding")
	ex.Prepare(c)
	rej := c.RunRequest(ctx, ex)
	if rej == nil || !rej.Answer {
		c.RunResponse(ctx, ex)
	}
	ex.Reset()
	return rej
}

// TestDoesNotAllocate: an allowed cross-origin request (by name and by
// pattern), a disallowed one, an allowed preflight and a refused one cost
// no allocation.
func TestDoesNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, appPolicy)
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
		check   func(*fasthttp.RequestCtx, *chain.Rejection) bool
	}{
		{"allowed", "GET", []string{"Origin", "HTTPS://app.example.com:443"}, func(ctx *fasthttp.RequestCtx, r *chain.Rejection) bool {
			return r == nil && string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) == "https://app.example.com"
		}},
		{"pattern", "GET", []string{"Origin", "https://eu.tenants.example.com"}, func(ctx *fasthttp.RequestCtx, r *chain.Rejection) bool {
			return r == nil && string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) == "https://eu.tenants.example.com"
		}},
		{"denied", "GET", []string{"Origin", "https://evil-example.com"}, func(ctx *fasthttp.RequestCtx, r *chain.Rejection) bool {
			return r == nil && ctx.Response.Header.Peek("Access-Control-Allow-Origin") == nil
		}},
		{"preflight", "OPTIONS", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "content-type,x-token"}, func(ctx *fasthttp.RequestCtx, r *chain.Rejection) bool {
			return r != nil && r.Answer && ctx.Response.StatusCode() == 204
		}},
		{"refused preflight", "OPTIONS", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "content-type,x-other"}, func(ctx *fasthttp.RequestCtx, r *chain.Rejection) bool {
			return r != nil && r.Reason == "cors_header_not_allowed"
		}},
	} {
		ctx := chaintest.Ctx("http://gw/api/x", tc.headers...)
		ctx.Request.Header.SetMethod(tc.method)
		ex := chain.AcquireExchange()
		if r := serve(c, ctx, ex); !tc.check(ctx, r) {
			t.Fatalf("%s: %v\n%s", tc.name, r, ctx.Response.Header.String())
		}
		if n := testing.AllocsPerRun(1000, func() { serve(c, ctx, ex) }); n != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.name, n)
		}
		chain.ReleaseExchange(ex)
	}
}
