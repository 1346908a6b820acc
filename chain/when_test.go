package chain_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/all"
)

// whenChain compiles policies (as under `policies:`) for a route with the
// base path /api, giving policy i the rules when[i] (nil: every request),
// as a Flex PolicyBinding's rules do.
func whenChain(t *testing.T, policies string, when ...[]config.MatchRule) (*chain.Chain, error) {
	t.Helper()
	cfg, _ := chaintest.Load(t, chaintest.Gateway(policies))
	r := &cfg.Routes[0]
	r.StripPrefix = "/api"
	for i, w := range when {
		r.Policies[i].When = w
	}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Retire(nil) })
	return set.Chains[0], nil
}

// TestWhen: a policy limited by rules runs, request and response steps
// alike, only on the requests that match one of them; its rules read the
// path after the route's prefix; the others run on every request.
func TestWhen(t *testing.T) {
	c, err := whenChain(t, `        - rate-limiting: {limit: 1, period: 60}
        - request-headers-set:
            headers: {X-Orders: "yes"}
        - response-headers-set:
            headers: {X-Always: "yes"}
`,
		[]config.MatchRule{{Methods: "POST"}, {Path: "/admin/.*"}},
		[]config.MatchRule{{Path: "/orders(/.*)", Headers: []config.HeaderMatch{{Name: "x-test", Value: "true", Regex: true}}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rejected          bool
		rateLimit, orders string
	}
	run := func(method, uri string, headers ...string) result {
		ctx := chaintest.Ctx(uri, headers...)
		ctx.Request.Header.SetMethod(method)
		rej := chaintest.Run(c, ctx)
		if got := string(ctx.Response.Header.Peek("X-Always")); got != "yes" {
			t.Errorf("%s %s: a policy without rules did not run", method, uri)
		}
		return result{rej != nil, string(ctx.Response.Header.Peek("X-RateLimit-Limit")), string(ctx.Request.Header.Peek("X-Orders"))}
	}
	for i, c := range []struct {
		method, uri string
		headers     []string
		want        result
	}{
		// GETs outside /api/admin/ are not counted and get no
		// X-RateLimit headers: neither step of rate-limiting runs.
		{"GET", "http://gw/api/x", nil, result{}},
		{"GET", "http://gw/api/x", nil, result{}},
		{"POST", "http://gw/api/x", nil, result{false, "1", ""}},
		{"POST", "http://gw/api/x", nil, result{true, "1", ""}},
		{"GET", "http://gw/api/admin/x", nil, result{true, "1", ""}},
		// The rules read the path without the route's prefix /api.
		{"GET", "http://gw/api/api/admin/x", nil, result{}},
		{"GET", "http://gw/api/orders/1", []string{"x-test", "true"}, result{false, "", "yes"}},
		{"GET", "http://gw/api/orders/1", []string{"x-test", "false"}, result{}},
		{"GET", "http://gw/api/orders/1", nil, result{}},
		// Conditions see the normalised path, as routing does.
		{"GET", "http://gw/api/x/../orders/1", []string{"x-test", "true"}, result{false, "", "yes"}},
	} {
		if got := run(c.method, c.uri, c.headers...); got != c.want {
			t.Errorf("%d: %s %s %q: %+v, want %+v", i, c.method, c.uri, c.headers, got, c.want)
		}
	}
}

// TestWhenConditionsAreShared: policies with the same rules share one
// condition, evaluated once per request.
func TestWhenConditionsAreShared(t *testing.T) {
	admin := []config.MatchRule{{Path: "/admin/.*"}}
	c, err := whenChain(t, `        - request-headers-set: {headers: {X-A: "1"}}
        - request-headers-set: {headers: {X-B: "1"}}
        - request-headers-set: {headers: {X-C: "1"}}
        - request-headers-set: {headers: {X-D: "1"}}
`, admin, nil, []config.MatchRule{{Path: "/admin/.*"}}, []config.MatchRule{{Path: "/other/.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Conds) != 2 {
		t.Errorf("%d conditions, want 2", len(c.Conds))
	}
	for i, want := range []int{1, 0, 1, 2} {
		if got := c.Request[i].Cond; got != want {
			t.Errorf("step %d has condition %d, want %d", i, got, want)
		}
	}
}

func TestWhenErrors(t *testing.T) {
	_, err := whenChain(t, `        - request-headers-set: {headers: {X-A: "1"}}
`, []config.MatchRule{{Path: "/a(", Pos: config.Pos{File: "b.yaml", Line: 7, Col: 9}}})
	if err == nil || !strings.Contains(err.Error(), "b.yaml:7:9: request-headers-set: rule: path: \"/a(\" is not a valid regular expression") {
		t.Errorf("error: %v", err)
	}
}

// TestWhenDoesNotAllocate: selecting the policies by their rules, regular
// expressions among them, allocates nothing.
func TestWhenDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes pools drop their items")
	}
	c, err := whenChain(t, `        - request-headers-set: {headers: {X-A: "1"}}
        - response-headers-set: {headers: {X-B: "1"}}
`, []config.MatchRule{{Path: "/v1/users/[0-9]+(/.*)?", Methods: "GET|POST"}},
		[]config.MatchRule{{Host: `.*\.example\.com`, Headers: []config.HeaderMatch{{Name: "x-tier", Value: "gold|silver", Regex: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := chaintest.Ctx("http://api.example.com/api/v1/users/42/orders", "x-tier", "gold")
	req := chaintest.Request(ctx, "")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	run := func() {
		ex.Reset()
		ex.Prepare(c)
		c.Select(ex, req)
		c.RunRequest(ctx, ex)
		c.RunResponse(ctx, ex)
	}
	run()
	if string(ctx.Request.Header.Peek("X-A")) != "1" || string(ctx.Response.Header.Peek("X-B")) != "1" {
		t.Fatal("the policies did not run")
	}
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("a request through conditional policies allocates %v times", a)
	}
}

// TestWhenWithoutSelect: a caller that never selects runs every policy, so
// that a forgotten Select cannot skip an authentication policy.
func TestWhenWithoutSelect(t *testing.T) {
	c, err := whenChain(t, `        - request-headers-set: {headers: {X-A: "1"}}
`, []config.MatchRule{{Path: "/never"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := chaintest.Ctx("http://gw/api/x")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	c.RunRequest(ctx, ex)
	if string(ctx.Request.Header.Peek("X-A")) != "1" {
		t.Error("the policy did not run")
	}
}
