package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// roundTrip is a keep-alive client doing one GET through the gateway.
type roundTrip struct {
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func newRoundTrip(tb testing.TB, gwURL, path string) *roundTrip {
	addr := gwURL[len("http://"):]
	rt := &roundTrip{
		hc:   &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 5 * time.Second},
		req:  new(fasthttp.Request),
		resp: new(fasthttp.Response),
	}
	rt.req.SetRequestURI("http://" + addr + path)
	rt.req.Header.Set("X-Request-Id", "alloc-test-0001")
	return rt
}

func (rt *roundTrip) do(tb testing.TB) {
	if err := rt.hc.Do(rt.req, rt.resp); err != nil {
		tb.Fatal(err)
	}
	if rt.resp.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", rt.resp.StatusCode(), rt.resp.Body())
	}
}

func startPassthrough(tb testing.TB, limits ...string) *proxytest.Gateway {
	up := proxytest.StartUpstream(tb)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"PRD-42","name":"widget","price":9.99}`)
	}
	up.Record = false
	return proxytest.Start(tb, fmt.Sprintf(preamble+`%s  routes:
    - id: products
      path: ["/api/products/*"]
      methods: [GET]
      upstream: {url: "%s"}
`, strings.Join(limits, ""), up.URL))
}

// TestProxyRoundTripDoesNotAllocate measures every allocation in the
// process — client, gateway and upstream — while requests go through the
// gateway; fasthttp's client and server allocate nothing in steady state,
// so any allocation is the gateway's.
func TestProxyRoundTripDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	gw := startPassthrough(t)
	rt := newRoundTrip(t, gw.URL, "/api/products/42?fields=name")
	for i := 0; i < 200; i++ {
		rt.do(t)
	}
	allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) })
	// Background goroutines (timers, the metrics of the test binary) may
	// allocate now and then: a gateway that allocates per request shows
	// as 1 or more.
	if allocs >= 0.5 {
		t.Fatalf("a proxied request costs %.2f allocations, want 0", allocs)
	}
}

// TestStrippedPathParametersDoNotAllocate: stripping ';' parameters is as
// free as the plain round trip.
func TestStrippedPathParametersDoNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	gw := startPassthrough(t, "  limits: {pathParameters: strip}\n")
	rt := newRoundTrip(t, gw.URL, "/api/products;jsessionid=abc/42?fields=name")
	for i := 0; i < 200; i++ {
		rt.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) }); allocs >= 0.5 {
		t.Fatalf("a proxied request with path parameters costs %.2f allocations, want 0", allocs)
	}
}

// TestLoadBalancedRoundTripDoesNotAllocate: picking one of several
// targets, with retries and a circuit breaker configured, costs nothing
// either.
func TestLoadBalancedRoundTripDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	for _, lb := range []string{"round-robin", "random", "least-request"} {
		t.Run(lb, func(t *testing.T) {
			var targets []string
			for range 3 {
				up := proxytest.StartUpstream(t)
				up.Record = false
				targets = append(targets, fmt.Sprintf("{url: %q, weight: 2}", up.URL+"/base"))
			}
			gw := proxytest.Start(t, lbYAML(`        loadBalancing: `+lb+`
        slowStart: 1s
        retries: {attempts: 3, on: [5xx]}
        circuitBreaker: {maxRequests: 1000, maxRetries: 10}
`, targets...))
			rt := newRoundTrip(t, gw.URL, "/api/products/42?fields=name")
			for i := 0; i < 500; i++ {
				rt.do(t)
			}
			if allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) }); allocs >= 0.5 {
				t.Fatalf("a load-balanced request costs %.2f allocations, want 0", allocs)
			}
		})
	}
}

// TestSparseRequestsDoNotAllocate: requests further apart than a
// connection's rest after an answer (settleTime) find the settler idle
// each time; waking it costs nothing either.
func TestSparseRequestsDoNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	gw := startPassthrough(t)
	rt := newRoundTrip(t, gw.URL, "/api/products/42")
	for i := 0; i < 20; i++ {
		rt.do(t)
	}
	allocs := proxytest.SteadyAllocs(100, func() {
		rt.do(t)
		time.Sleep(5 * time.Millisecond) // the request rate under test: slower than the settler's rest
	})
	if allocs >= 0.5 {
		t.Fatalf("a request after a pause costs %.2f allocations, want 0", allocs)
	}
}

// TestRegexRuleRoundTripDoesNotAllocate: a route with a Flex rule that
// needs a regular expression and capture groups to rewrite the path, and a
// policy limited by rules with expressions, cost no allocation either.
func TestRegexRuleRoundTripDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.RequestURI()) != "/v2/42/orders?fields=name" || string(ctx.Request.Header.Peek("X-Rule")) != "matched" {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"42"}`)
	}
	up.Record = false
	cfg, dir := loadConfig(t, fmt.Sprintf(preamble+`  routes:
    - id: users
      path: ["/svc/*"]
      upstream: {url: "%s/v2"}
      policies:
        - request-headers-set: {headers: {X-Rule: matched}}
`, up.URL))
	r := &cfg.Routes[0]
	r.StripPrefix = "/svc"
	r.Rules = []config.MatchRule{
		{Path: "/health"},
		{Path: "/users/([0-9]+)(/.*)?", Host: `127\.0\.0\.[0-9]+`, Methods: "GET|POST",
			Headers: []config.HeaderMatch{{Name: "x-request-id", Value: "alloc-test-[0-9]+", Regex: true}}},
	}
	r.Policies[0].When = []config.MatchRule{{Path: "/users/[0-9]+/.*", Methods: "GET"}}
	gw := proxytest.StartConfig(t, cfg, dir)
	rt := newRoundTrip(t, gw.URL, "/svc/users/42/orders?fields=name")
	for i := 0; i < 200; i++ {
		rt.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) }); allocs >= 0.5 {
		t.Fatalf("a request through a regular-expression rule costs %.2f allocations, want 0", allocs)
	}
}

// TestPostRoundTripAllocatesOnlyInFasthttp: a request with a body, small
// or large, costs the gateway no allocation either. fasthttp's server
// allocates two for any request with a body (io.CopyN's LimitReader, where
// it discards what a handler left unread of the body: v1.78 and v1.79), so
// that is the bound.
func TestPostRoundTripAllocatesOnlyInFasthttp(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"ok":true}`) }
	up.Record = false
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: orders
      path: ["/api/*"]
      upstream: {url: "%s"}
`, up.URL))
	for _, n := range []int{11, 3000, 100 << 10} {
		rt := newRoundTrip(t, gw.URL, "/api/orders")
		rt.req.Header.SetMethod(fasthttp.MethodPost)
		rt.req.Header.SetContentType("application/json")
		rt.req.SetBodyString(`"` + strings.Repeat("a", n-2) + `"`)
		for i := 0; i < 200; i++ {
			rt.do(t)
		}
		if allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) }); allocs >= 2.5 {
			t.Errorf("a POST of %d bytes costs %.2f allocations, want fasthttp's 2 at most", n, allocs)
		}
	}
}
