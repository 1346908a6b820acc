package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// flexLimiter returns the i-th policy of c as the Limiter of a
// rate-limiting-flex, running on clk.
func flexLimiter(t testing.TB, c *chain.Chain, i int, clk *fakeClock) *Limiter {
	t.Helper()
	f, ok := c.Policies[i].Policy.(*FlexLimiter)
	if !ok {
		t.Fatalf("policy %d is %T, not *FlexLimiter", i, c.Policies[i].Policy)
	}
	f.clock = clk.now
	if ms, ok := f.store.(*MemStore); ok {
		ms.clock = clk.now
	}
	return &f.Limiter
}

// TestFlexRateLimiting: rate-limiting-flex takes Flex Gateway's parameters
// and answers as Flex Gateway documents: a 429 whose body's error is "Too
// Many Requests", and with exposeHeaders X-Ratelimit-* with the reset in
// milliseconds; without a keySelector every request shares one budget.
func TestFlexRateLimiting(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits:
              - maximumRequests: 3
                timePeriodInMilliseconds: 6000
            keySelector: "#[attributes.headers['x-key']]"
            exposeHeaders: true
            clusterizable: false
`)
	clk := newFakeClock()
	flexLimiter(t, c, 0, clk)
	send := func(key string) (*chain.Rejection, string, string, string) {
		ctx := chaintest.Ctx("http://gw/api/x", "X-Key", key)
		rej := chaintest.Run(c, ctx)
		h := &ctx.Response.Header
		return rej, string(h.Peek("X-Ratelimit-Limit")), string(h.Peek("X-Ratelimit-Remaining")), string(h.Peek("X-Ratelimit-Reset"))
	}
	for i := 0; i < 3; i++ {
		if rej, _, _, _ := send("a"); rej != nil {
			t.Fatalf("request %d refused: %v", i+1, rej)
		}
	}
	rej, limit, remaining, reset := send("a")
	if rej == nil || rej.Status != 429 || rej.Message != FlexTooManyRequests || rej.Reason != "rate_limited" {
		t.Fatalf("4th request: %+v", rej)
	}
	// The budget refills one request every 2 s: the bucket is full again
	// 6000 ms after the three requests.
	if limit != "3" || remaining != "0" || reset != "6000" {
		t.Errorf("headers: limit %q remaining %q reset %q, want 3, 0, 6000 (ms)", limit, remaining, reset)
	}
	if rej, _, _, _ := send("b"); rej != nil {
		t.Errorf("another key shares the budget: %v", rej)
	}
	clk.advance(2 * time.Second)
	if rej, _, _, _ := send("a"); rej != nil {
		t.Errorf("after 2 s: %v", rej)
	}

	// Flex's defaults: no headers, one budget for every request.
	c = chaintest.MustChain(t, "        - rate-limiting-flex:\n            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 60000}]\n")
	flexLimiter(t, c, 0, newFakeClock())
	if rej, limit, _, _ := send("a"); rej != nil || limit != "" {
		t.Fatalf("first request: %v, X-Ratelimit-Limit %q (exposeHeaders defaults to false)", rej, limit)
	}
	if rej, _, _, _ := send("b"); rej == nil {
		t.Error("without keySelector, a request with another key has a budget of its own")
	}
}

// TestFlexRateLimitingKnobsPerItem: keySelector, exposeHeaders and
// clusterizable may be written in a rateLimits item (REFERENCE §10.1); two
// places that disagree are an error at the second.
func TestFlexRateLimitingKnobsPerItem(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits:
              - maximumRequests: 1
                timePeriodInMilliseconds: 1000
                keySelector: "#[attributes.headers['x-key']]"
                exposeHeaders: true
              - maximumRequests: 10
                timePeriodInMilliseconds: 60000
                keySelector: "#[attributes.headers['x-key']]"
`)
	l := flexLimiter(t, c, 0, newFakeClock())
	if !l.expose || len(l.rules) != 2 || l.key.String() != "#[attributes.headers['x-key']]" {
		t.Fatalf("limiter: expose %v, %d rules, key %q", l.expose, len(l.rules), l.key.String())
	}
	f := func(params, wantPos, want string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, chaintest.Gateway("        - rate-limiting-flex:\n"+params))
		if err == nil || !strings.Contains(err.Error(), path+":"+wantPos+": rate-limiting-flex: "+want) {
			t.Errorf("error = %v\nwant at %s: %s", err, wantPos, want)
		}
	}
	f(`            exposeHeaders: true
            rateLimits:
              - {maximumRequests: 1, timePeriodInMilliseconds: 1000, exposeHeaders: false}
`, "15:85", "exposeHeaders differs from the exposeHeaders at line 13")
	f("            rateLimits: []\n", "13:25", "rateLimits is required")
	f("            rateLimits: [{maximumRequests: 0, timePeriodInMilliseconds: 1000}]\n", "13:44", "maximumRequests must be a whole number from 1 to 31622400000000, not 0")
	f("            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 1e30}]\n", "13:73", `timePeriodInMilliseconds must be a whole number from 1 to 31622400000, not "1e30"`)
	f("            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 99999999999999999999}]\n", "13:73", "timePeriodInMilliseconds must be a whole number from 1 to 31622400000, not 99999999999999999999")
	f("            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: -1000}]\n", "13:73", "timePeriodInMilliseconds must be a whole number from 1 to 31622400000, not -1000")
	f("            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 1000}]\n            exposeHeaders: off\n", "14:28", `exposeHeaders must be true or false, not "off"`)
	t.Setenv("FLEXGATE_TEST_SPACED", " -3")
	f("            rateLimits: [{maximumRequests: $env.FLEXGATE_TEST_SPACED, timePeriodInMilliseconds: 1000}]\n", "13:44",
		`maximumRequests must be a whole number from 1 to 31622400000000, not " -3"; remove the spaces around the value`)
	f("            rateLimits: [{maximumRequests: 1}]\n", "13:26", "timePeriodInMilliseconds must be above 0")
	f("            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 1000}]\n            limit: 3\n", "14:13", `unknown parameter "limit"`)
}

func TestFlexLimiterDoesNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 100, timePeriodInMilliseconds: 60000}]
            keySelector: "#[attributes.headers['x-api-key']]"
            exposeHeaders: true
`)
	flexLimiter(t, c, 0, newFakeClock())
	ctx := chaintest.Ctx("http://gw/api/x", "X-Api-Key", "key-1")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	serve := func() {
		ex.Prepare(c)
		c.RunRequest(ctx, ex)
		c.RunResponse(ctx, ex)
		ex.Reset()
	}
	serve()
	if n := testing.AllocsPerRun(1000, serve); n != 0 {
		t.Fatalf("allocations per request = %v, want 0", n)
	}
	if got := string(ctx.Response.Header.Peek("X-Ratelimit-Reset")); got == "" {
		t.Fatal("no X-Ratelimit-Reset")
	}
}
