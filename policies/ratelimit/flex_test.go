package ratelimit

import (
	"fmt"
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
	// The window that the first request started ends 6000 ms later.
	if limit != "3" || remaining != "0" || reset != "6000" {
		t.Errorf("headers: limit %q remaining %q reset %q, want 3, 0, 6000 (ms)", limit, remaining, reset)
	}
	if rej, _, _, _ := send("b"); rej != nil {
		t.Errorf("another key shares the budget: %v", rej)
	}
	clk.advance(2 * time.Second)
	if rej, _, _, _ := send("a"); rej == nil {
		t.Error("after 2 s a request passed: the window of 6 s admits 3")
	}
	clk.advance(4 * time.Second)
	if rej, _, _, _ := send("a"); rej != nil {
		t.Errorf("when the window ended: %v", rej)
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

// flexSend sends a request of key through c and returns its rejection and
// the headers a client reads: X-Ratelimit-Limit, -Remaining, -Reset and
// Retry-After, as "limit/remaining/reset/retry".
func flexSend(c *chain.Chain, key string) (*chain.Rejection, string) {
	ctx := chaintest.Ctx("http://gw/api/x", "X-Key", key)
	rej := chaintest.Run(c, ctx)
	h := &ctx.Response.Header
	return rej, fmt.Sprintf("%s/%s/%s/%s", h.Peek("X-Ratelimit-Limit"), h.Peek("X-Ratelimit-Remaining"), h.Peek("X-Ratelimit-Reset"), h.Peek("Retry-After"))
}

// TestFlexFixedWindows is the review's scenario: with 3 requests per 6 s,
// a client sending one request every 0.3 s gets exactly 3 through in the
// window its first request started, none until that window ends, and 3
// in the window the first request after it starts, as Flex Gateway
// counts; the headers tell the window: what is left of it, the ms until
// it ends, and on a 429 the seconds (rounded up) until it ends. The
// Gateway kind's rate-limiting, a token bucket, lets the 4th through 2 s
// after the first.
func TestFlexFixedWindows(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 3, timePeriodInMilliseconds: 6000}]
            keySelector: "#[attributes.headers['x-key']]"
            exposeHeaders: true
`)
	clk := newFakeClock()
	flexLimiter(t, c, 0, clk)
	var passed []int
	for i := 0; i*300 <= 7200; i++ {
		at := i * 300
		// The first window is [0, 6000) ms, the next starts at 6000.
		start := 0
		if at >= 6000 {
			start = 6000
		}
		rej, got := flexSend(c, "a")
		if rej == nil {
			passed = append(passed, at)
		}
		n := len(passed)
		if start == 6000 {
			n -= 3
		}
		want := fmt.Sprintf("3/%d/%d/", max(3-n, 0), start+6000-at)
		if rej != nil {
			want = fmt.Sprintf("3/0/%d/%d", start+6000-at, (start+6000-at+999)/1000)
		}
		if got != want {
			t.Errorf("request at %d ms (refused: %v): limit/remaining/reset/Retry-After %s, want %s", at, rej != nil, got, want)
		}
		clk.advance(300 * time.Millisecond)
	}
	if got := fmt.Sprint(passed); got != "[0 300 600 6000 6300 6600]" {
		t.Errorf("requests passed at %s ms, want [0 300 600 6000 6300 6600]", got)
	}

	// The Gateway kind keeps its token bucket: one back every 2 s.
	c = chaintest.MustChain(t, "        - rate-limiting: {limit: 3, period: 6, identifier: $request.header.X-Key}\n")
	clk = newFakeClock()
	limiter(t, c, 0, clk)
	passed = passed[:0]
	for i := 0; i*300 <= 2400; i++ {
		if rej, _ := flexSend(c, "a"); rej == nil {
			passed = append(passed, i*300)
		}
		clk.advance(300 * time.Millisecond)
	}
	if got := fmt.Sprint(passed); got != "[0 300 600 2100]" {
		t.Errorf("rate-limiting passed requests at %s ms, want [0 300 600 2100] (a token every 2 s)", got)
	}
}

// TestFlexFixedWindowsEveryLimit: with several rateLimits a request passes
// only if every limit's window has quota, a request one refuses uses none
// of the others', and the headers describe the limit with the fewest
// requests left, or the one that refused (of several, the one whose window
// ends last).
func TestFlexFixedWindowsEveryLimit(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits:
              - {maximumRequests: 2, timePeriodInMilliseconds: 1000}
              - {maximumRequests: 3, timePeriodInMilliseconds: 10000}
            keySelector: "#[attributes.headers['x-key']]"
            exposeHeaders: true
`)
	clk := newFakeClock()
	flexLimiter(t, c, 0, clk)
	at := time.Duration(0)
	f := func(when time.Duration, wantPass bool, want string) {
		t.Helper()
		clk.advance(when - at)
		at = when
		rej, got := flexSend(c, "a")
		if (rej == nil) != wantPass || got != want {
			t.Errorf("at %s: passed %v, limit/remaining/reset/Retry-After %s; want passed %v, %s", when, rej == nil, got, wantPass, want)
		}
	}
	f(0, true, "2/1/1000/")
	f(100*time.Millisecond, true, "2/0/900/")
	// Refused by the second's window; the 10 s window has 1 left, and
	// the refused requests take nothing of it.
	for ms := 200; ms < 1000; ms += 100 {
		f(time.Duration(ms)*time.Millisecond, false, fmt.Sprintf("2/0/%d/1", 1000-ms))
	}
	// A second window starts; the 10 s window's last request.
	f(time.Second, true, "3/0/9000/")
	// Refused by the 10 s window, although the second's has quota; past
	// the second's end too.
	f(1100*time.Millisecond, false, "3/0/8900/9")
	f(2500*time.Millisecond, false, "3/0/7500/8")
	// Past the 10 s window: both start again.
	f(10*time.Second, true, "2/1/1000/")
	f(11*time.Second, true, "2/1/1000/")
	// Both used up: the window that ends last refuses.
	f(11100*time.Millisecond, true, "2/0/900/")
	f(11200*time.Millisecond, false, "3/0/8800/9")
	f(12*time.Second, false, "3/0/8000/8")
}

// TestFlexReloadKeepsWindows: a reload that leaves a rate-limiting-flex as
// it was keeps its windows, where they started: a spent window stays spent
// until its end, not until a window started by the reload ends.
func TestFlexReloadKeepsWindows(t *testing.T) {
	twoRoutes := func(otherLimit string) string {
		return chaintest.Gateway(`        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 2, timePeriodInMilliseconds: 60000}]
            keySelector: "#[attributes.headers['x-key']]"
            exposeHeaders: true
`) + `    - id: other
      path: ["/other/*"]
      upstream:
        url: "http://127.0.0.1:1"
      policies:
        - rate-limiting-flex:
            rateLimits: [{maximumRequests: ` + otherLimit + `, timePeriodInMilliseconds: 60000}]
`
	}
	clk := newFakeClock()
	old, _, err := chaintest.CompileWith(t, twoRoutes("5"), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flexLimiter(t, old.Chains[0], 0, clk)
	for range 2 {
		if rej, _ := flexSend(old.Chains[0], "a"); rej != nil {
			t.Fatal(rej)
		}
	}
	clk.advance(40 * time.Second)
	next, _, err := chaintest.CompileWith(t, twoRoutes("6"), chaintest.Options{Old: old})
	if err != nil {
		t.Fatal(err)
	}
	if rej, got := flexSend(next.Chains[0], "a"); rej == nil || got != "2/0/20000/20" {
		t.Fatalf("after reloading another route's change: %v, limit/remaining/reset/Retry-After %s; want 429, 2/0/20000/20 (the window kept)", rej, got)
	}
	clk.advance(20 * time.Second)
	if rej, got := flexSend(next.Chains[0], "a"); rej != nil || got != "2/1/60000/" {
		t.Errorf("when the window ended: %v, %s; want a new window, 2/1/60000/", rej, got)
	}
}
