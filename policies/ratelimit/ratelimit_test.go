package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// seedLimit is step 1 of secured-gateway-config.yaml.
const seedLimit = `        - rate-limiting:
            limit: 100
            period: 60
            identifier: $request.remoteAddress
`

func header(ctx *fasthttp.RequestCtx, name string) string {
	return string(ctx.Response.Header.Peek(name))
}

func TestSeedLimit429WithHeaders(t *testing.T) {
	c := chaintest.MustChain(t, seedLimit)
	clk := newFakeClock()
	limiter(t, c, 0, clk)
	for i := 1; i <= 100; i++ {
		ctx := chaintest.Ctx("http://gw/api/products/1")
		if rej := chaintest.Run(c, ctx); rej != nil {
			t.Fatalf("request %d of 100 rejected: %v", i, rej)
		}
		if i == 1 || i == 100 {
			want := map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": strconv.Itoa(100 - i), "X-RateLimit-Reset": "1"}
			if i == 100 {
				want["X-RateLimit-Reset"] = "60"
			}
			for k, v := range want {
				if got := header(ctx, k); got != v {
					t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
				}
			}
		}
	}
	ctx := chaintest.Ctx("http://gw/api/products/1")
	rej := chaintest.Run(c, ctx)
	if rej == nil || rej.Status != 429 || rej.Reason != "rate_limited" || rej.Policy != "rate-limiting" {
		t.Fatalf("101st request: rejection %+v, want 429 rate_limited by rate-limiting", rej)
	}
	for k, v := range map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"} {
		if got := header(ctx, k); got != v {
			t.Errorf("429: %s = %q, want %q", k, got, v)
		}
	}
	// Another client has its own budget.
	other := chaintest.Ctx("http://gw/api/products/1")
	other.Init(&other.Request, &fakeAddr{"10.0.0.8"}, nil)
	ex := chain.AcquireExchange()
	ex.Prepare(c)
	ex.RemoteAddr = append(ex.RemoteAddr, "192.0.2.1"...)
	if rej := c.RunRequest(other, ex); rej != nil {
		t.Fatalf("a different client (ex.RemoteAddr from the proxy) was limited: %v", rej)
	}
	chain.ReleaseExchange(ex)
}

type fakeAddr struct{ s string }

func (a *fakeAddr) Network() string { return "tcp" }
func (a *fakeAddr) String() string  { return a.s }

func TestLimitsPerIdentifierExpression(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting:
            limit: 2
            period: 1
            identifier: "$request.header.X-Api-Key"
            exposeHeaders: false
`)
	limiter(t, c, 0, newFakeClock())
	f := func(key string, wantPass bool) {
		t.Helper()
		ctx := chaintest.Ctx("http://gw/api/x", "X-Api-Key", key)
		rej := chaintest.Run(c, ctx)
		if (rej == nil) != wantPass {
			t.Fatalf("key %q: rejection %v, want pass=%v", key, rej, wantPass)
		}
		if got := header(ctx, "X-RateLimit-Limit"); got != "" {
			t.Fatalf("exposeHeaders: false, yet X-RateLimit-Limit = %q", got)
		}
		if !wantPass && header(ctx, "Retry-After") != "1" {
			t.Fatalf("429 without Retry-After: 1 (got %q)", header(ctx, "Retry-After"))
		}
	}
	f("a", true)
	f("a", true)
	f("b", true)
	f("a", false)
	f("b", true)
	f("b", false)
}

// TestDuplicateIdentifierRefused: the identifier reads the first copy of
// a header or query parameter; an upstream that authenticates by another
// copy (the last, or X_Api_Key read as X-Api-Key) would let a client spend
// a fresh budget, named by a throw-away first copy, on every request.
func TestDuplicateIdentifierRefused(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting:
            limit: 1
            period: 60
            identifier: "$request.header.X-Api-Key/$request.query.tenant"
`)
	l := limiter(t, c, 0, newFakeClock())
	f := func(uri, want string, headers ...string) {
		t.Helper()
		rej := chaintest.Run(c, chaintest.Ctx(uri, headers...))
		if rej == nil || rej.Status != 400 || rej.Reason != "duplicate_credentials" || rej.Policy != "rate-limiting" {
			t.Fatalf("%s %q: got %v, want 400 duplicate_credentials", uri, headers, rej)
		}
		if !strings.Contains(rej.Message, want) {
			t.Errorf("%s %q: message %q does not contain %q", uri, headers, rej.Message, want)
		}
	}
	f("http://gw/api/x?tenant=t", "the X-Api-Key header more than once", "X-Api-Key", "fresh-1", "X-Api-Key", "real")
	f("http://gw/api/x?tenant=t", "the X-Api-Key header more than once", "X-Api-Key", "fresh-2", "X_Api_Key", "real")
	f("http://gw/api/x?tenant=fresh&tenant=t", "the tenant query parameter more than once", "X-Api-Key", "real")
	// The same name in the other place: an upstream that reads the
	// key from the query, or the tenant from a header, reads another.
	f("http://gw/api/x?tenant=t&x-api-key=real", "carries X-Api-Key as a query parameter, and rate-limiting reads it from the X-Api-Key header", "X-Api-Key", "fresh-3")
	f("http://gw/api/x?tenant=t&X_API_KEY=real", "carries X-Api-Key as a query parameter", "X-Api-Key", "fresh-4")
	f("http://gw/api/x?tenant=fresh-5", "carries a header named tenant, and rate-limiting reads tenant from the query", "X-Api-Key", "real", "Tenant", "t")
	if n := l.store.(*MemStore).Len(); n != 0 {
		t.Errorf("refused requests took from %d budgets", n)
	}
	// In a form body, which Rails params and PHP's $_REQUEST merge with
	// the query: refused after the limiter counted the copy it read.
	form := func(uri, body, want string, headers ...string) {
		t.Helper()
		ctx := chaintest.Ctx(uri, headers...)
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetContentType("application/x-www-form-urlencoded; charset=UTF-8")
		ctx.Request.SetBodyString(body)
		rej := chaintest.Run(c, ctx)
		if rej == nil || rej.Status != 400 || rej.Reason != "duplicate_credentials" || !strings.Contains(rej.Message, want) {
			t.Errorf("%s %q: got %v, want 400 duplicate_credentials %q", uri, body, rej, want)
		}
	}
	form("http://gw/api/x?tenant=t", "x_api_key=real", "carries X-Api-Key in the form body, and rate-limiting reads it from the X-Api-Key header", "X-Api-Key", "form-1")
	form("http://gw/api/x?tenant=t", "a=1&TENANT=other", "carries tenant in the form body, and rate-limiting reads it from the query", "X-Api-Key", "form-2")
	// One copy of each passes, once.
	ctx := chaintest.Ctx("http://gw/api/x?tenant=t&other=1&other=2", "X-Api-Key", "real", "X-Other", "1", "X-Other", "2")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatalf("one copy of each: %v", rej)
	}
	if rej := chaintest.Run(c, chaintest.Ctx("http://gw/api/x?tenant=t", "X-Api-Key", "real")); rej == nil || rej.Reason != "rate_limited" {
		t.Errorf("second request: got %v, want rate_limited", rej)
	}
}

func TestReloadKeepsBudgets(t *testing.T) {
	twoRoutes := func(otherLimit string) string {
		return chaintest.Gateway(seedLimit) + `    - id: other
      path: ["/other/*"]
      upstream:
        url: "http://127.0.0.1:1"
      policies:
        - rate-limiting:
            limit: ` + otherLimit + `
            period: 60
`
	}
	reload := func(old *chain.Set, text string) *chain.Set {
		t.Helper()
		set, _, err := chaintest.CompileWith(t, text, chaintest.Options{Old: old})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	clk := newFakeClock()
	old := reload(nil, twoRoutes("5"))
	limiter(t, old.Chains[0], 0, clk)
	for i := 0; i < 100; i++ {
		chaintest.Run(old.Chains[0], chaintest.Ctx("http://gw/api/x"))
	}
	// The other route changes; route r's budget must survive the reload.
	next := reload(old, twoRoutes("6"))
	if rej := chaintest.Run(next.Chains[0], chaintest.Ctx("http://gw/api/x")); rej == nil || rej.Status != 429 {
		t.Fatalf("after reloading an unrelated change the spent budget was reset: rejection %v", rej)
	}
	// A changed limit is a new policy with a new budget.
	third := reload(next, strings.Replace(twoRoutes("6"), "limit: 100", "limit: 101", 1))
	if rej := chaintest.Run(third.Chains[0], chaintest.Ctx("http://gw/api/x")); rej != nil {
		t.Fatalf("a changed limit kept the old budget: %v", rej)
	}
}

// TestReloadWithSentinelStorageKeepsBudgets: a gateway whose shared
// storage is a Sentinel set (or a cluster, or TLS: settings held by
// pointer) keeps a route's spent budget across a reload that changes
// something else, as one with a plain address does. Equal settings parsed
// anew must name the same storage.
func TestReloadWithSentinelStorageKeepsBudgets(t *testing.T) {
	doc := func(other string) string {
		return chaintest.Gateway(seedLimit) + `    - id: other-` + other + `
      path: ["/other/*"]
      upstream:
        url: "http://127.0.0.1:1"
  sharedStorage:
    redis:
      sentinel: {addresses: ["127.0.0.1:1"], masterName: main}
      tls: {skipValidation: true}
`
	}
	old, _, err := chaintest.CompileWith(t, doc("a"), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	limiter(t, old.Chains[0], 0, newFakeClock())
	for i := 0; i < 100; i++ {
		chaintest.Run(old.Chains[0], chaintest.Ctx("http://gw/api/x"))
	}
	next, _, err := chaintest.CompileWith(t, doc("b"), chaintest.Options{Old: old})
	if err != nil {
		t.Fatal(err)
	}
	if rej := chaintest.Run(next.Chains[0], chaintest.Ctx("http://gw/api/x")); rej == nil || rej.Status != 429 {
		t.Fatalf("a reload with the same sentinel storage reset the spent budget: rejection %v", rej)
	}
}

func TestBucketGauge(t *testing.T) {
	c := chaintest.MustChain(t, seedLimit)
	limiter(t, c, 0, newFakeClock())
	before := buckets("r")
	chaintest.Run(c, chaintest.Ctx("http://gw/api/x"))
	if got := buckets("r"); got != before+1 {
		t.Fatalf("flexgate_ratelimit_buckets{route=\"r\"} = %d after one client, want %d", got, before+1)
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(params, wantPos, wantMsg string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, chaintest.Gateway("        - rate-limiting:\n"+params))
		if err == nil {
			t.Fatalf("no error for:\n%s", params)
		}
		if !strings.Contains(err.Error(), path+":"+wantPos+":") || !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("error %q\nwant position %s and %q", err, wantPos, wantMsg)
		}
	}
	// rate-limiting: is on line 12; its parameters start on line 13.
	f("            limit: 0\n            period: 60\n", "13:20", "limit must be a whole number from 1 to 31622400000000, not 0")
	f("            limit: -5\n            period: 60\n", "13:20", "limit must be a whole number from 1 to 31622400000000, not -5")
	f("            limit: 1e30\n            period: 60\n", "13:20", `limit must be a whole number from 1 to 31622400000000, not "1e30"`)
	f("            limit: 99999999999999999999\n            period: 60\n", "13:20", "limit must be a whole number from 1 to 31622400000000, not 99999999999999999999")
	f("            limit: 1.5\n            period: 60\n", "13:20", `limit must be a whole number from 1 to 31622400000000, not "1.5"`)
	f("            limit: 10\n            period: 0\n", "14:21", "period must be a number from 0.001 to 31622400, not 0")
	f("            limit: 10\n            period: .nan\n", "14:21", `period must be a number from 0.001 to 31622400, not ".nan"`)
	f("            limit: 10\n", "13:13", "period must be a number of seconds of at least 0.001")
	f("            period: 10\n", "13:13", "limit must be a whole number of requests above 0")
	f("            limit: ten\n            period: 60\n", "13:20", `limit must be a whole number from 1 to 31622400000000, not "ten"`)
	f("            limit: 10\n            period: soon\n", "14:21", `period must be a number from 0.001 to 31622400, not "soon"`)
	f("            limit: 10\n            period: 40000000\n", "14:21", "period must be a number from 0.001 to 31622400, not 40000000")
	f("            limit: 10000000\n            period: 1\n", "13:20", "more than a million a second")
	f("            limit: 10\n            period: 60\n            limits: [{limit: 1, period: 1}]\n", "15:21", "not both")
	f("            identifier: $request.remoteAddress\n", "13:13", "a limit is required")
	f("            limits:\n              - {limit: 1, period: 1}\n              - {limit: 0, period: 60}\n", "15:25", "limit must be a whole number from 1 to 31622400000000, not 0")
	f("            limits:\n              - {limit: 1, peroid: 1}\n", "14:28", "unknown parameter \"peroid\"; known parameters: limit, period")
	f("            limit: 10\n            period: 60\n            identifier: $request.ip\n", "15:25", "unknown expression $request.ip")
	f("            limit: 10\n            period: 60\n            identifier: everyone\n", "15:25", "every client would share one budget")
	f("            limit: 10\n            period: 60\n            identifier: $request.header.A-B-C-D-E-F-G-H\n", "15:25", "more than 6 '-' and '_'")
	f("            limit: 10\n            period: 60\n            maxKeys: 10\n", "15:22", "maxKeys is 10")
	f("            limit: 10\n            period: 60\n            maxKeys: -1\n", "15:22",
		fmt.Sprintf("maxKeys must be a whole number from 0 to 2147483647 (0: the default, %d; else at least %d), not -1", DefaultMaxKeys, minMaxKeys))
	f("            limit: 10\n            period: 60\n            exposeHeaders: maybe\n", "15:28", `exposeHeaders must be true or false, not "maybe"`)
	f("            limit: 10\n            period: 60\n            burst: 5\n", "15:13",
		"unknown parameter \"burst\"; known parameters: clusterizable, exposeHeaders, identifier, limit, limits, maxKeys, onStoreError, period, storeTimeout")
	_, _, err := chaintest.Compile(t, chaintest.Gateway("        - rate-limiting\n"))
	if err == nil || !strings.Contains(err.Error(), "12:11") || !strings.Contains(err.Error(), "a limit is required") {
		t.Fatalf("rate-limiting without parameters: %v", err)
	}
}

func TestSecondsRoundUp(t *testing.T) {
	for ns, want := range map[int64]int64{0: 0, -1: 0, 1: 1, int64(time.Second): 1, int64(time.Second) + 1: 2} {
		if got := seconds(ns); got != want {
			t.Errorf("seconds(%d) = %d, want %d", ns, got, want)
		}
	}
}

// TestSeriesLabel: an id with a tab or a line separator in it labels this
// series as it labels the gateway's own (flexgate_requests_total): as
// written, not as Go's \t or \u2028, which Prometheus reads back as other
// text.
func TestSeriesLabel(t *testing.T) {
	want := "flexgate_ratelimit_buckets{route=\"a\tb\\\"c\u2028\"}"
	if got := bucketsName("a\tb\"c\u2028"); got != want {
		t.Errorf("bucketsName = %q, want %q", got, want)
	}
}

// TestIdentifierReadInEveryName: a request that sends the identifier's
// header or query parameter only under another name an upstream reads as it
// (X_Api_Key for X-Api-Key; API_KEY, api.key for api_key) passes the
// duplicate check with its one copy, and is counted under the value sent,
// not under the empty identifier that every such client would share while
// the upstream reads each one's key.
func TestIdentifierReadInEveryName(t *testing.T) {
	for _, policy := range []string{`        - rate-limiting:
            limit: 1
            period: 60
            identifier: "$request.header.X-Api-Key/$request.query.api_key"
`, `        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 60000}]
            keySelector: "#[attributes.headers['x-api-key'] ++ '/' ++ attributes.queryParams.api_key]"
`} {
		c := chaintest.MustChain(t, policy)
		if strings.Contains(policy, "flex") {
			flexLimiter(t, c, 0, newFakeClock())
		} else {
			limiter(t, c, 0, newFakeClock())
		}
		f := func(uri string, wantPass bool, headers ...string) {
			t.Helper()
			rej := chaintest.Run(c, chaintest.Ctx(uri, headers...))
			switch {
			case wantPass && rej != nil:
				t.Errorf("%s %s %q: refused: %v", policy, uri, headers, rej)
			case !wantPass && (rej == nil || rej.Status != 429):
				t.Errorf("%s %s %q: got %v, want 429: the budget of the same client", policy, uri, headers, rej)
			}
		}
		f("http://gw/api/x?api_key=a", true, "X-Api-Key", "h")
		f("http://gw/api/x?API_KEY=a", false, "X_Api_Key", "h")
		f("http://gw/api/x?api.key=a", false, "x-api-key", "h")
		// Other clients, each with a budget of its own.
		f("http://gw/api/x?API_KEY=b", true, "X_Api_Key", "h")
		f("http://gw/api/x?Api.Key=c", true, "X_API_KEY", "h")
		f("http://gw/api/x?api_key=a", true, "X_Api_Key", "i")
	}
}

// TestIdentifierAlternatives: an identifier read in turn from a header or
// a query parameter refuses a request that sends both: the limit would
// count the header, and an upstream that authenticates by the query would
// let a client pick a fresh budget for every request.
func TestIdentifierAlternatives(t *testing.T) {
	c := chaintest.MustChain(t, `        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 5, timePeriodInMilliseconds: 60000}]
            keySelector: "#[attributes.headers['x-api-key'] default attributes.queryParams.api_key]"
`)
	flexLimiter(t, c, 0, newFakeClock())
	for _, tc := range []struct {
		uri     string
		headers []string
		reason  string // "": passes
	}{
		{"http://gw/api/x?api_key=a", nil, ""},
		{"http://gw/api/x", []string{"X-Api-Key", "a"}, ""},
		{"http://gw/api/x?api_key=victim", []string{"X-Api-Key", "fresh-1"}, "duplicate_credentials"},
		{"http://gw/api/x?API_KEY=victim", []string{"X_Api_Key", "fresh-2"}, "duplicate_credentials"},
	} {
		rej := chaintest.Run(c, chaintest.Ctx(tc.uri, tc.headers...))
		switch {
		case tc.reason == "" && rej != nil:
			t.Errorf("%s %q: refused: %v", tc.uri, tc.headers, rej)
		case tc.reason != "" && (rej == nil || rej.Reason != tc.reason):
			t.Errorf("%s %q: %v, want %s", tc.uri, tc.headers, rej, tc.reason)
		}
	}
}
