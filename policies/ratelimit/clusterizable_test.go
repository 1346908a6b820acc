package ratelimit

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
)

// sharedGateway is chaintest.Gateway(policies) with spec.sharedStorage
// pointing at the Redis at addr.
func sharedGateway(addr, policies string) string {
	return chaintest.Gateway(policies) + "  sharedStorage:\n    redis: {address: \"" + addr + "\"}\n"
}

// sharedChain compiles policies against the Redis at addr.
func sharedChain(t testing.TB, addr, policies string) *chain.Chain {
	t.Helper()
	set, _, err := chaintest.Compile(t, sharedGateway(addr, policies))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set.Chains[0]
}

// TestClusterizableSeedLimit is TestSeedLimit429WithHeaders with the
// buckets in Redis: the same statuses and the same X-RateLimit-* and
// Retry-After headers.
func TestClusterizableSeedLimit(t *testing.T) {
	srv := redistest.Start(t)
	// A generous storeTimeout: this test is about answers, not outages.
	c := sharedChain(t, srv.Addr, seedLimit+"            clusterizable: true\n            storeTimeout: 1s\n")
	if _, ok := c.Policies[0].Policy.(*Limiter).store.(*RedisStore); !ok {
		t.Fatalf("store is %T, want *RedisStore", c.Policies[0].Policy.(*Limiter).store)
	}
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
	for n := range 2 { // from Redis, then from memory
		ctx := chaintest.Ctx("http://gw/api/products/1")
		rej := chaintest.Run(c, ctx)
		if rej == nil || rej.Status != 429 || rej.Reason != "rate_limited" {
			t.Fatalf("request %d over the limit: %+v, want 429 rate_limited", n+1, rej)
		}
		for k, v := range map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"} {
			if got := header(ctx, k); got != v {
				t.Errorf("429 number %d: %s = %q, want %q", n+1, k, got, v)
			}
		}
	}
}

// TestClusterizableAllocations: a client refused from memory costs no
// allocation and no Redis call; a request that asks Redis costs at most
// redisAllocs.
func TestClusterizableAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	// The key of the client (1), the call's batch (1), context.WithTimeout's
	// deadline (5) and the context's Done channel, on which the pipelined
	// call waits (1).
	const redisAllocs = 8
	srv := redistest.Start(t)
	serve := func(c *chain.Chain) func() {
		ctx := chaintest.Ctx("http://gw/api/x", "X-Api-Key", "key-1")
		ex := chain.AcquireExchange()
		t.Cleanup(func() { chain.ReleaseExchange(ex) })
		return func() {
			ex.Prepare(c)
			c.RunRequest(ctx, ex)
			c.RunResponse(ctx, ex)
			ex.Reset()
		}
	}

	refused := sharedChain(t, srv.Addr, "        - rate-limiting: {limit: 1, period: 60, clusterizable: true, storeTimeout: 1s, identifier: $request.header.X-Api-Key}\n")
	store := refused.Policies[0].Policy.(*Limiter).store.(*RedisStore)
	run := serve(refused)
	run() // allowed
	run() // refused by Redis, remembered
	calls := store.conn.calls.Load()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("a client refused from memory: %v allocations per request, want 0", n)
	}
	if n := store.conn.calls.Load() - calls; n != 0 {
		t.Errorf("a client refused from memory: %d Redis calls", n)
	}

	allowed := sharedChain(t, srv.Addr, "        - rate-limiting: {limit: 1000000, period: 1, clusterizable: true, storeTimeout: 1s}\n")
	run = serve(allowed)
	// The client opens its pipelined connections (four) as calls come.
	for range 200 {
		run()
	}
	if n := testing.AllocsPerRun(1000, run); n > redisAllocs {
		t.Errorf("a request decided in Redis: %v allocations, want at most %d", n, redisAllocs)
	} else {
		t.Logf("a request decided in Redis: %v allocations", n)
	}

	// A lease of 75,000 tokens, for 18 s: the first request takes it, the
	// next thousand spend it.
	t.Setenv(MaxReplicasEnv, "1")
	leased := sharedChain(t, srv.Addr, "        - rate-limiting: {limit: 3000000000, period: 3600, clusterizable: true, storeTimeout: 1s}\n")
	store = leased.Policies[0].Policy.(*Limiter).store.(*RedisStore)
	run = serve(leased)
	run()
	calls = store.conn.calls.Load()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("a request spending a lease: %v allocations per request, want 0", n)
	}
	if n := store.conn.calls.Load() - calls; n != 0 {
		t.Errorf("requests spending a lease of %d: %d Redis calls", store.lease, n)
	}
}

// TestClusterizableFallbacks: with Redis gone, deny answers 503
// rate_limit_store_unavailable, allow passes the request without
// X-RateLimit-* headers, and local counts limit ÷ FLEXGATE_MAX_REPLICAS.
func TestClusterizableFallbacks(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv(MaxReplicasEnv, "4")
	policy := func(mode string) string {
		return "        - rate-limiting: {limit: 8, period: 60, clusterizable: true, onStoreError: " + mode + ", storeTimeout: 200ms}\n"
	}
	deny := sharedChain(t, srv.Addr, policy("deny"))
	allow := sharedChain(t, srv.Addr, policy("allow"))
	local := sharedChain(t, srv.Addr, policy("local"))
	if rej := chaintest.Run(deny, chaintest.Ctx("http://gw/api/x")); rej != nil {
		t.Fatalf("Redis up: %v", rej)
	}
	srv.Kill()

	ctx := chaintest.Ctx("http://gw/api/x")
	start := time.Now()
	rej := chaintest.Run(deny, ctx)
	if took := time.Since(start); took > 200*time.Millisecond+scheduling {
		t.Errorf("deny took %s with Redis down", took)
	}
	if rej == nil || rej.Status != 503 || rej.Reason != "rate_limit_store_unavailable" || header(ctx, "Retry-After") != "1" ||
		header(ctx, "X-RateLimit-Limit") != "" {
		t.Errorf("deny, Redis down: %+v, Retry-After %q, X-RateLimit-Limit %q", rej, header(ctx, "Retry-After"), header(ctx, "X-RateLimit-Limit"))
	}

	for i := range 20 {
		ctx := chaintest.Ctx("http://gw/api/x")
		if rej := chaintest.Run(allow, ctx); rej != nil || header(ctx, "X-RateLimit-Limit") != "" {
			t.Fatalf("allow, Redis down, request %d: %v, X-RateLimit-Limit %q", i, rej, header(ctx, "X-RateLimit-Limit"))
		}
	}

	// 8 ÷ 4 replicas: 2 per replica.
	for i := 1; i <= 3; i++ {
		ctx := chaintest.Ctx("http://gw/api/x")
		rej := chaintest.Run(local, ctx)
		if pass := rej == nil; pass != (i <= 2) {
			t.Fatalf("local, Redis down, request %d: %v", i, rej)
		}
		if got := header(ctx, "X-RateLimit-Limit"); got != "2" {
			t.Errorf("local, request %d: X-RateLimit-Limit %q, want 2 (8 ÷ 4 replicas)", i, got)
		}
	}
}

func TestClusterizableConfig(t *testing.T) {
	srv := redistest.Start(t)
	f := func(params, wantPos, wantMsg string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, sharedGateway(srv.Addr, "        - rate-limiting:\n"+params))
		if err == nil {
			t.Fatalf("no error for:\n%s", params)
		}
		if !strings.Contains(err.Error(), path+":"+wantPos+":") || !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("error %q\nwant position %s and %q", err, wantPos, wantMsg)
		}
	}
	base := "            limit: 10\n            period: 60\n"
	f(base+"            onStoreError: allow\n", "15:27", "applies only to a clusterizable limit")
	f(base+"            clusterizable: false\n            storeTimeout: 5ms\n", "16:27", "applies only to a clusterizable limit")
	f(base+"            clusterizable: true\n            onStoreError: open\n", "16:27", `onStoreError "open" is not supported; use deny`)
	f(base+"            clusterizable: true\n            storeTimeout: 10\n", "16:27", `storeTimeout must be a duration with a unit like 500ms, 2s or 1m, not "10"`)
	f(base+"            clusterizable: true\n            storeTimeout:\n", "16:26", "storeTimeout must be a duration with a unit like 500ms, 2s or 1m, not empty")
	const storeRange = " is out of range: use 1ms to 1s (a request waits this long at most for the shared storage)"
	f(base+"            clusterizable: true\n            storeTimeout: 5s\n", "16:27", `storeTimeout "5s"`+storeRange)
	f(base+"            clusterizable: true\n            storeTimeout: -5ms\n", "16:27", `storeTimeout "-5ms"`+storeRange)
	f(base+"            clusterizable: true\n            storeTimeout: 0s\n", "16:27", `storeTimeout "0s"`+storeRange)
	// Longer than Go holds, but written as a duration: out of range.
	f(base+"            clusterizable: true\n            storeTimeout: 99999999999h\n", "16:27", `storeTimeout "99999999999h"`+storeRange)
	f(base+"            clusterizable: yes please\n", "15:28", `clusterizable must be true or false, not "yes please"`)
	// YAML 1.1's yes, on and y are words here, as in the rest of the
	// config.
	f(base+"            clusterizable: yes\n", "15:28", `clusterizable must be true or false, not "yes"`)
	f(base+"            clusterizable: on\n", "15:28", `clusterizable must be true or false, not "on"`)

	t.Setenv(MaxReplicasEnv, "")
	f(base+"            clusterizable: true\n            onStoreError: local\n", "16:27", "onStoreError: local needs FLEXGATE_MAX_REPLICAS")
	t.Setenv(MaxReplicasEnv, "ten")
	f(base+"            clusterizable: true\n            onStoreError: local\n", "16:27", `FLEXGATE_MAX_REPLICAS to be a whole number of replicas of at least 1, not "ten"`)
	t.Setenv(MaxReplicasEnv, "20")
	f(base+"            clusterizable: true\n            onStoreError: local\n", "16:27", "less than one request of the limit of 10 per 60 s")
}

// TestPerReplicaWarnings: a clusterizable limit without shared storage,
// and a limit that does not say while shared storage is configured, are
// warned of at their place: each replica counts on its own.
func TestPerReplicaWarnings(t *testing.T) {
	warnings := func(text string) []string {
		t.Helper()
		cfg, path := chaintest.Load(t, text)
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range cfg.Warnings {
			out = append(out, strings.TrimPrefix(w.String(), path+":"))
		}
		// Compiled again (a reload), the config warns once.
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil || len(cfg.Warnings) != len(out) {
			t.Errorf("compiled twice: %d warnings, want %d", len(cfg.Warnings), len(out))
		}
		return out
	}
	got := warnings(chaintest.Gateway("        - rate-limiting: {limit: 10, period: 60, clusterizable: true}\n"))
	if len(got) != 1 || !strings.HasPrefix(got[0], "12:65: warning: rate-limiting: clusterizable: true, but spec.sharedStorage is not configured, so this limit is per replica") {
		t.Errorf("clusterizable without shared storage: %q", got)
	}
	got = warnings(sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 10, period: 60}\n"))
	if len(got) != 1 || !strings.HasPrefix(got[0], "12:11: warning: rate-limiting: this limit is per replica") || !strings.Contains(got[0], "add clusterizable: true") {
		t.Errorf("shared storage, limit without clusterizable: %q", got)
	}
	got = warnings(sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 300000, period: 1, clusterizable: true}\n"))
	if len(got) != 1 || !strings.Contains(got[0], "the limit of 300000 per 1 s is enforced as 333333 (a token every 3 µs)") {
		t.Errorf("a limit Redis's microseconds cannot hold: %q", got)
	}
	for _, quiet := range []string{
		sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 250000, period: 1, clusterizable: true}\n"),
		sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 7, period: 1, clusterizable: true}\n"),
		chaintest.Gateway("        - rate-limiting: {limit: 10, period: 60}\n"),
		sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 10, period: 60, clusterizable: false}\n"),
		sharedGateway("127.0.0.1:1", "        - rate-limiting: {limit: 10, period: 60, clusterizable: true}\n"),
	} {
		if got := warnings(quiet); len(got) != 0 {
			t.Errorf("unexpected warnings %q for\n%s", got, quiet)
		}
	}
}

// TestDecimalPeriodsAtAMillionASecond: a limit of a million a second with a
// period written in decimals (2.11 s is a hair under 2.11e9 ns in float64)
// is a whole µs per token, not 0 (which divided by zero at load), for
// every period in ms up to 100 s; and a gateway with one loads.
func TestDecimalPeriodsAtAMillionASecond(t *testing.T) {
	for ms := int64(1); ms <= 100_000; ms++ {
		w := Window{Limit: ms * 1000, Period: float64(ms) / 1000}
		r, err := rule(w, nil)
		if err != nil {
			t.Fatalf("limit %d per %g s: %v", w.Limit, w.Period, err)
		}
		if redisInterval(r) != 1 || redisLimit(r) != w.Limit {
			t.Fatalf("limit %d per %g s: period %d ns, interval %d µs, enforced as %d", w.Limit, w.Period, r.Period, redisInterval(r), redisLimit(r))
		}
	}
	pol := "        - rate-limiting:\n            limit: 2110000\n            period: 2.11\n            clusterizable: true\n"
	if _, _, err := chaintest.Compile(t, sharedGateway("127.0.0.1:1", pol)); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRemovingAnEarlierLimitBuildsTheNextAnew: a clusterizable
// limit's budget in Redis is named by its place among the route's rate
// limits; when an earlier one is removed, the later one is built anew
// under its new place (as a replica starting on the new config names it),
// not carried over under the old name. Unchanged, it is carried over.
func TestReloadRemovingAnEarlierLimitBuildsTheNextAnew(t *testing.T) {
	a := "        - rate-limiting:\n            limit: 1000\n            period: 60\n            clusterizable: true\n"
	b := "        - rate-limiting:\n            limit: 2\n            period: 60\n            clusterizable: true\n"
	first, _, err := chaintest.CompileWith(t, sharedGateway("127.0.0.1:1", a+b), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	same, _, err := chaintest.CompileWith(t, sharedGateway("127.0.0.1:1", a+b), chaintest.Options{Old: first})
	if err != nil || same.Chains[0].Policies[1].Policy != first.Chains[0].Policies[1].Policy {
		t.Fatalf("an unchanged route: %v, or its second limit was not carried over", err)
	}
	limB := same.Chains[0].Policies[1].Policy
	next, _, err := chaintest.CompileWith(t, sharedGateway("127.0.0.1:1", b), chaintest.Options{Old: same})
	if err != nil {
		t.Fatal(err)
	}
	if next.Chains[0].Policies[0].Policy == limB {
		t.Error("the limit that became the route's first was carried over under its old place")
	}
}

// TestClusterizableFlexAndOwnLimitsCountApart: a rate-limiting and a
// rate-limiting-flex on one route, of the same limit and identifier, are
// two budgets in Redis, each spent once by a request, not one spent twice.
func TestClusterizableFlexAndOwnLimitsCountApart(t *testing.T) {
	srv := redistest.Start(t)
	c := sharedChain(t, srv.Addr, `        - rate-limiting: {limit: 2, period: 60, clusterizable: true, identifier: $request.header.X-Key}
        - rate-limiting-flex:
            rateLimits: [{maximumRequests: 2, timePeriodInMilliseconds: 60000}]
            keySelector: "#[attributes.headers['x-key']]"
`)
	for i := 1; i <= 3; i++ {
		rej := chaintest.Run(c, chaintest.Ctx("http://gw/api/x", "X-Key", "k"))
		if pass := rej == nil; pass != (i <= 2) {
			t.Fatalf("request %d of a limit of 2: %v", i, rej)
		}
	}
}

// TestClusterizableFlexAllocations: a rate-limiting-flex client refused
// from memory until its window ends, or spending a lease of its window,
// costs no allocation and no Redis call.
func TestClusterizableFlexAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	srv := redistest.Start(t)
	t.Setenv(MaxReplicasEnv, "1")
	for _, c := range []struct {
		name, limit string
		wantLease   bool
	}{
		{"refused from memory", "{maximumRequests: 1, timePeriodInMilliseconds: 60000}", false},
		// 3,000,000,000 an hour on 1 replica: leases of 15,000,000.
		{"spending a lease", "{maximumRequests: 3000000000, timePeriodInMilliseconds: 3600000}", true},
	} {
		ch := sharedChain(t, srv.Addr, "        - rate-limiting-flex:\n            rateLimits: ["+c.limit+"]\n            exposeHeaders: true\n")
		store := ch.Policies[0].Policy.(*FlexLimiter).store.(*RedisStore)
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		var rej *chain.Rejection
		run := func() {
			ex.Prepare(ch)
			rej = ch.RunRequest(ctx, ex)
			ch.RunResponse(ctx, ex)
			ex.Reset()
		}
		// Until Redis has decided (a loaded machine can make a call miss
		// the default storeTimeout of 10ms, answered 503).
		for deadline := time.Now().Add(10 * time.Second); ; {
			run()
			if rej == nil || rej.Status == 429 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Redis did not decide in 10 s: %v", c.name, rej)
			}
		}
		run()
		if refused := rej != nil && rej.Status == 429; refused == c.wantLease || (rej != nil && !refused) {
			t.Fatalf("%s: %v", c.name, rej)
		}
		if store.lease > 0 != c.wantLease {
			t.Fatalf("%s: lease %d", c.name, store.lease)
		}
		calls := store.conn.calls.Load()
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Errorf("%s: %v allocations per request, want 0", c.name, n)
		}
		if n := store.conn.calls.Load() - calls; n != 0 {
			t.Errorf("%s: %d Redis calls", c.name, n)
		}
		chain.ReleaseExchange(ex)
	}
}
