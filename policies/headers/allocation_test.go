package headers

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

const seedSteps = `        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization"]
        - request-headers-set:
            headers:
              X-API-Version: "v1"
              X-Gateway-Time: $datetime
              X-Caller: "$request.remoteAddress/$request.header.User-Agent"
        - response-headers-set:
            headers:
              Strict-Transport-Security: "max-age=31536000; includeSubDomains"
              X-Content-Type-Options: "nosniff"
`

// serve runs one request through c the way the gateway does, restoring the
// headers the chain removes so that every run does the same work.
func serve(c *chain.Chain, ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	ctx.Request.Header.Set("X-Internal-Foo", "secret")
	ctx.Request.Header.Set("Authorization", "Bearer abc")
	ex.Prepare(c)
	c.RunRequest(ctx, ex)
	c.RunResponse(ctx, ex)
	ex.Reset()
}

func TestHeaderPoliciesDoNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, seedSteps)
	ctx := chaintest.Ctx("http://gw/api/products/1?x=1", "User-Agent", "test", "Accept", "*/*")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	serve(c, ctx, ex)
	if n := testing.AllocsPerRun(1000, func() { serve(c, ctx, ex) }); n != 0 {
		t.Fatalf("allocations per request = %v, want 0", n)
	}
	if ctx.Request.Header.Peek("X-Internal-Foo") != nil || string(ctx.Request.Header.Peek("X-Caller")) != "10.0.0.7/test" {
		t.Fatalf("chain did not do its work:\n%s", ctx.Request.Header.String())
	}
}
