package ratelimit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
)

// flexAPIs is Flex resources sharing the Redis at addr: an ApiInstance
// for each of apis, "name svc…" (base path /name, a service svc with one
// route for each svc), and a Selector binding that puts on every
// instance one rate-limiting-flex of 2 requests a minute, clusterizable,
// without keySelector: one budget for all the API's requests.
func flexAPIs(addr string, apis ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Configuration
metadata: {name: storage}
spec:
  sharedStorage:
    redis: {address: %q}
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata: {name: budget}
spec:
  targetRef: {kind: Selector, selector: {kind: ApiInstance}}
  policyRef: {name: rate-limiting-flex}
  config:
    rateLimits: [{maximumRequests: 2, timePeriodInMilliseconds: 60000}]
    clusterizable: true
`, addr)
	for _, api := range apis {
		words := strings.Fields(api)
		fmt.Fprintf(&b, `---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata: {name: %s}
spec:
  address: http://127.0.0.1:8081/%[1]s
  services:
`, words[0])
		for _, svc := range words[1:] {
			fmt.Fprintf(&b, "    %s:\n      address: http://127.0.0.1:1\n      routes:\n        - rules: [{path: \"/%[1]s(/.*)?\"}]\n", svc)
		}
	}
	return b.String()
}

// routeChain returns the chain of the route id of set.
func routeChain(t testing.TB, set *chain.Set, id string) *chain.Chain {
	t.Helper()
	var ids []string
	for _, c := range set.Chains {
		if c.RouteID == id {
			return c
		}
		ids = append(ids, c.RouteID)
	}
	t.Fatalf("no route %q among %q", id, ids)
	return nil
}

// redisPrefix is the key prefix in Redis of the rate-limiting-flex of c.
func redisPrefix(t testing.TB, c *chain.Chain) string {
	t.Helper()
	for _, inst := range c.Policies {
		if f, ok := inst.Policy.(*FlexLimiter); ok {
			s, ok := f.store.(*RedisStore)
			if !ok {
				t.Fatalf("route %s: the limit's store is %T, want *RedisStore", c.RouteID, f.store)
			}
			return s.prefix
		}
	}
	t.Fatalf("route %s has no rate-limiting-flex", c.RouteID)
	return ""
}

// TestFlexAPIBudgetOutlivesItsRoutes: a rate limit bound to an
// ApiInstance is one budget for the API, named in Redis by the API and the
// policy, not by whichever of its routes comes first. Adding, removing or
// reordering services keeps the budget: a replica started on the new
// config finds it spent, and a replica that reloaded counts in the same
// keys as that replica.
func TestFlexAPIBudgetOutlivesItsRoutes(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name          string
		before, after string
		route         string // a route of both configs
	}{
		{"first service removed", "orders legacy current", "orders current", "default/orders/current/1"},
		{"service added in front", "orders current", "orders beta current", "default/orders/current/1"},
		{"services reordered", "orders current legacy", "orders legacy current", "default/orders/current/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.MustDo("FLUSHALL")
			old, _, err := chaintest.CompileWith(t, flexAPIs(srv.Addr, tc.before), chaintest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The API's routes spend one budget.
			for i := range 2 {
				c := old.Chains[i%len(old.Chains)]
				if rej := chaintest.Run(c, chaintest.Ctx("http://gw/orders/x")); rej != nil {
					t.Fatalf("request %d, on %s: %v", i+1, c.RouteID, rej)
				}
			}
			if rej := chaintest.Run(routeChain(t, old, tc.route), chaintest.Ctx("http://gw/orders/x")); rej == nil || rej.Status != 429 {
				t.Fatalf("a third request in the minute: %+v, want 429", rej)
			}

			// A replica started on the new config.
			fresh, _, err := chaintest.CompileWith(t, flexAPIs(srv.Addr, tc.after), chaintest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rej := chaintest.Run(routeChain(t, fresh, tc.route), chaintest.Ctx("http://gw/orders/x")); rej == nil || rej.Status != 429 {
				t.Errorf("a replica started on the new config has a fresh budget: %+v, want 429", rej)
			}
			// The replica that reloaded counts where it does.
			reloaded, _, err := chaintest.CompileWith(t, flexAPIs(srv.Addr, tc.after), chaintest.Options{Old: old})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := redisPrefix(t, routeChain(t, reloaded, tc.route)), redisPrefix(t, routeChain(t, fresh, tc.route)); got != want {
				t.Errorf("after the reload the budget is in %q, a replica started on the new config counts in %q", got, want)
			}
		})
	}
}

// TestFlexAPIsHaveBudgetsOfTheirOwn: one binding that selects two
// ApiInstances gives each its own budget, in keys of its own, whatever
// their routes are called; within an API, every route spends the one.
func TestFlexAPIsHaveBudgetsOfTheirOwn(t *testing.T) {
	srv := redistest.Start(t)
	set, _, err := chaintest.CompileWith(t, flexAPIs(srv.Addr, "orders a b", "billing a b"), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	send := func(route string) *chain.Rejection {
		return chaintest.Run(routeChain(t, set, route), chaintest.Ctx("http://gw/x"))
	}
	for _, r := range []string{"default/orders/a/1", "default/orders/b/1"} {
		if rej := send(r); rej != nil {
			t.Fatalf("%s: %v", r, rej)
		}
	}
	if rej := send("default/orders/a/1"); rej == nil || rej.Status != 429 {
		t.Errorf("a third request to the API orders: %+v, want 429: its routes have a budget each", rej)
	}
	if rej := send("default/billing/a/1"); rej != nil {
		t.Errorf("the API billing spent the budget of orders: %v", rej)
	}
	if a, b := redisPrefix(t, routeChain(t, set, "default/orders/a/1")), redisPrefix(t, routeChain(t, set, "default/billing/a/1")); a == b {
		t.Errorf("two APIs count in the same keys %q", a)
	}
}

// TestFlexAPIMetricsNamedByTheAPI: the series of a limit bound to an
// ApiInstance carry the API in their route label, whichever of its
// services comes first: adding or reordering services does not move them
// to another label.
func TestFlexAPIMetricsNamedByTheAPI(t *testing.T) {
	srv := redistest.Start(t)
	for _, apis := range []string{"orders a b", "orders b a"} {
		set := metrics.NewSet()
		compiled, _, err := chaintest.CompileWith(t, flexAPIs(srv.Addr, apis), chaintest.Options{Metrics: set})
		if err != nil {
			t.Fatal(err)
		}
		if len(compiled.Chains) == 0 {
			t.Fatalf("%s: no routes", apis)
		}
		// The series are made as the limit is provisioned.
		var ours []string
		for _, name := range set.ListMetricNames() {
			// The store's own series (Redis's health) are the gateway's,
			// without a route.
			if strings.HasPrefix(name, "flexgate_ratelimit_") && strings.Contains(name, "route=") {
				ours = append(ours, name)
			}
		}
		if len(ours) == 0 {
			t.Fatalf("%s: no flexgate_ratelimit_ series of a route", apis)
		}
		for _, name := range ours {
			if !strings.Contains(name, `route="default/orders"`) {
				t.Errorf("%s: series %s, want the label route=\"default/orders\" (the API)", apis, name)
			}
		}
	}
}
