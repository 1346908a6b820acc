package ratelimit

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func TestLimiterDoesNotAllocate(t *testing.T) {
	// req is the request's URI and headers; none: the usual one.
	f := func(name, policies string, remoteAddr bool, req ...string) {
		t.Helper()
		c := chaintest.MustChain(t, policies)
		limiter(t, c, 0, newFakeClock())
		if req == nil {
			req = []string{"http://gw/api/x?tenant=t1", "X-Api-Key", "key-1"}
		}
		ctx := chaintest.Ctx(req[0], req[1:]...)
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		serve := func() {
			ex.Prepare(c)
			if remoteAddr {
				ex.RemoteAddr = append(ex.RemoteAddr, "192.0.2.1"...)
			}
			c.RunRequest(ctx, ex)
			c.RunResponse(ctx, ex)
			ex.Reset()
		}
		serve() // the first request creates the client's bucket
		// Every run after the limit is a 429, which sets Retry-After too.
		if n := testing.AllocsPerRun(1000, serve); n != 0 {
			t.Fatalf("%s: allocations per request = %v, want 0", name, n)
		}
		if got := string(ctx.Response.Header.Peek("X-RateLimit-Remaining")); got != "0" {
			t.Fatalf("%s: X-RateLimit-Remaining = %q after the budget was spent", name, got)
		}
	}
	f("remote address from proxy", "        - rate-limiting:\n            limit: 100\n            period: 60\n", true)
	f("TCP peer", "        - rate-limiting:\n            limit: 100\n            period: 60\n", false)
	f("header identifier, two limits", `        - rate-limiting:
            limits: [{limit: 100, period: 60}, {limit: 1000, period: 3600}]
            identifier: "key-$request.header.X-Api-Key"
`, false)
	f("query identifier", `        - rate-limiting:
            limit: 100
            period: 60
            identifier: "$request.query.tenant"
`, false)
	f("identifier under other names", `        - rate-limiting:
            limit: 100
            period: 60
            identifier: "$request.header.X-Api-Key/$request.query.tenant"
`, false, "http://gw/api/x?a=1&Tenant=t1", "X_Api_Key", "key-1")
}
