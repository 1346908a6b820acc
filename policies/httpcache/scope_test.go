package httpcache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
)

// flexCached is Flex resources: for each of apis, "name route…", an
// ApiInstance (base path /name) with a route binding of each route, in
// that order, to the Service backend; and a Selector binding that puts
// one distributed http-caching-flex on every instance, in the Redis at
// addr.
func flexCached(addr string, apis ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Configuration
metadata: {name: storage}
spec:
  sharedStorage:
    redis: {address: %q}
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: Service
metadata: {name: backend}
spec: {address: "http://127.0.0.1:1"}
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata: {name: cache}
spec:
  targetRef: {kind: Selector, selector: {kind: ApiInstance}}
  policyRef: {name: http-caching-flex}
  config: {httpCachingKey: "#[attributes.requestUri]", distributed: true}
`, addr)
	for _, api := range apis {
		words := strings.Fields(api)
		fmt.Fprintf(&b, `---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata: {name: %s}
spec: {address: "http://127.0.0.1:8081/%[1]s"}
`, words[0])
		for i, r := range words[1:] {
			fmt.Fprintf(&b, `---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata: {name: %s}
spec:
  targetRef: {name: %[2]s}
  policyRef: {name: route}
  config: {destinationRef: {name: backend}, destinationPath: /%[1]s}
  rules: [{path: "/%[1]s(/.*)?"}]
  order: %[3]d
`, r, words[0], i+1)
		}
	}
	return b.String()
}

// namespace is the Redis namespace of the http-caching-flex of the route
// id of set.
func namespace(t testing.TB, set *chain.Set, id string) string {
	t.Helper()
	for _, c := range set.Chains {
		if c.RouteID != id {
			continue
		}
		for _, inst := range c.Policies {
			if f, ok := inst.Policy.(*FlexCache); ok {
				if !f.p.distributed || f.p.namespace == "" {
					t.Fatalf("route %s: the cache is not distributed", id)
				}
				return f.p.namespace
			}
		}
		t.Fatalf("route %s has no http-caching-flex", id)
	}
	t.Fatalf("no route %q", id)
	return ""
}

// TestFlexAPICacheOutlivesItsRoutes: a distributed cache bound to an
// ApiInstance keeps its entries in Redis under a namespace of the API
// and the upstream, not of whichever of the API's routes comes first.
// Adding, removing or reordering routes keeps it, and a replica that
// reloaded uses the namespace of a replica started on the new config, so
// that they share entries and invalidations.
func TestFlexAPICacheOutlivesItsRoutes(t *testing.T) {
	addr := redistest.Start(t).Addr
	for _, tc := range []struct {
		name          string
		before, after string
		route         string // a route of both configs
	}{
		{"first route removed", "orders legacy current", "orders current", "default/orders/current"},
		{"route added in front", "orders current", "orders beta current", "default/orders/current"},
		{"routes reordered", "orders current legacy", "orders legacy current", "default/orders/current"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, _, err := chaintest.CompileWith(t, flexCached(addr, tc.before), chaintest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			was := namespace(t, old, tc.route)
			fresh, _, err := chaintest.CompileWith(t, flexCached(addr, tc.after), chaintest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := namespace(t, fresh, tc.route); got != was {
				t.Errorf("a replica started on the new config caches in %q, the old config in %q", got, was)
			}
			reloaded, _, err := chaintest.CompileWith(t, flexCached(addr, tc.after), chaintest.Options{Old: old})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := namespace(t, reloaded, tc.route), namespace(t, fresh, tc.route); got != want {
				t.Errorf("after the reload the cache is in %q, a replica started on the new config caches in %q", got, want)
			}
		})
	}
}

// TestFlexAPIsCacheApart: one binding that selects two ApiInstances
// sending to the same Service gives each its own namespace; the routes of
// one API share one.
func TestFlexAPIsCacheApart(t *testing.T) {
	set, _, err := chaintest.CompileWith(t, flexCached(redistest.Start(t).Addr, "orders a b", "billing c d"), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := namespace(t, set, "default/orders/a"), namespace(t, set, "default/orders/b")
	if a != b {
		t.Errorf("the routes of one API cache in %q and %q", a, b)
	}
	if c := namespace(t, set, "default/billing/c"); c == a {
		t.Errorf("two APIs cache in the same namespace %q", a)
	}
}
