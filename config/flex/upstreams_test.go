package flex_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/config"
)

func service(name, address string) string {
	return doc("Service", name) + "  address: " + address + "\n"
}

// routeWeighted is a route-weighted binding to instance a; routes are its
// config.routes entries, one per line at six spaces.
func routeWeighted(name string, routes ...string) string {
	s := doc("PolicyBinding", name) + "  targetRef: {name: a}\n  policyRef: {name: route-weighted}\n  config:\n    routes:\n"
	for _, r := range routes {
		s += "      - " + r + "\n"
	}
	return s
}

const instanceA = "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: ApiInstance\nmetadata:\n  name: a\nspec:\n  address: http://0.0.0.0:8081\n"

// TestRouteWeightedTargets: the destinations of route-weighted are the
// targets of one upstream, each with its weight and its Service's address
// with destinationPath after the base path, picked at random by weight; a
// destination written twice is one target with both weights. Destinations
// that are all alike are their Service's own upstream.
func TestRouteWeightedTargets(t *testing.T) {
	cfg := load(t, "a.yaml", instanceA,
		"s.yaml", service("one", "http://one:8080/base/")+"---\n"+service("two", "http://two:8080")+"---\n"+service("three", "https://three:8443"),
		"r.yaml", routeWeighted("split",
			"{weight: 50, destinationPath: /v1/, destinationRef: {name: one}}",
			"{weight: 30, destinationRef: {name: two}}",
			"{weight: 20, destinationPath: /x, destinationRef: {name: three}}",
			"{weight: 5, destinationPath: /v1, destinationRef: {name: one}}"))
	r := route(t, cfg, "default/a/split")
	u := r.Upstream
	var got []string
	for _, tg := range u.Targets {
		got = append(got, tg.URL()+" "+itoa(tg.Weight))
	}
	if strings.Join(got, ", ") != "http://one:8080/base/v1 55, http://two:8080 30, https://three:8443/x 20" {
		t.Errorf("targets: %s", strings.Join(got, ", "))
	}
	if u.LoadBalancing != config.Random || u.Name != "default/one, default/two, default/three" || r.DestinationPath != "" {
		t.Errorf("upstream %+v, destinationPath %q", u, r.DestinationPath)
	}
	if len(r.Sources) != 5 {
		t.Errorf("sources: %v", r.Sources)
	}
	if w := warnings(cfg); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}

	// Alike: the Service's upstream, shared with a route to it.
	cfg = load(t, "a.yaml", instanceA, "s.yaml", service("one", "http://one:8080/base"),
		"r.yaml", routeWeighted("split", "{weight: 60, destinationPath: /v1, destinationRef: {name: one}}",
			"{weight: 40, destinationPath: /v1/, destinationRef: {name: one}}")+"---\n"+
			doc("PolicyBinding", "plain")+"  targetRef: {name: a}\n  policyRef: {name: route}\n  config: {destinationRef: {name: one}}\n  order: 60\n")
	split, plain := route(t, cfg, "default/a/split"), route(t, cfg, "default/a/plain")
	if split.DestinationPath != "/v1" || split.UpstreamURL() != "http://one:8080/base/v1" || split.Upstream.Name != "default/one" ||
		!reflect.DeepEqual(split.Upstream, plain.Upstream) || plain.DestinationPath != "" {
		t.Errorf("split %+v\nplain %+v", split, plain)
	}
}

// TestRouteWeightedSettings: one upstream has one TLS setting and one
// circuit breaker. https destinations whose Services verify differently are
// an error (trusting one's CAs for another could accept a certificate it
// must not); breakers that differ are a warning naming the Service whose
// thresholds apply.
func TestRouteWeightedSettings(t *testing.T) {
	cert, _ := selfSigned(t)
	t.Setenv("FLEX_TEST_CA", cert)
	outbound := func(svc, config string) string {
		return doc("PolicyBinding", svc+"-tls") + "  targetRef: {kind: Service, name: " + svc + "}\n  policyRef: {name: tls-outbound}\n  config: " + config + "\n"
	}
	breaker := func(svc, thresholds string) string {
		return doc("PolicyBinding", svc+"-cb") + "  targetRef: {kind: Service, name: " + svc + "}\n  policyRef: {name: circuit-breaker-flex}\n" +
			"  config: {thresholds: " + thresholds + "}\n"
	}
	split := routeWeighted("split", "{weight: 90, destinationRef: {name: one}}", "{weight: 10, destinationRef: {name: two}}")
	services := service("one", "https://one:8443") + "---\n" + service("two", "https://two:8443") + "---\n" + service("plain", "http://plain:8080")

	expectErrors(t, loadErrors(t, "a.yaml", instanceA, "s.yaml", services, "r.yaml", split,
		"t.yaml", outbound("one", "{trustedCA: $FLEX_TEST_CA}")),
		[]string{"r.yaml:7:21", "route-weighted sends to Services default/one (tls-outbound at ", "t.yaml:7:21",
			"and default/two (no tls-outbound: the system's CAs", "bind the same tls-outbound to each https Service"})

	// Alike, or an http destination beside: one TLS setting.
	cfg := load(t, "a.yaml", instanceA, "s.yaml", services,
		"r.yaml", split+"---\n"+routeWeighted("mixed", "{weight: 1, destinationRef: {name: plain}}", "{weight: 1, destinationRef: {name: two}}"),
		"t.yaml", outbound("one", "{trustedCA: $FLEX_TEST_CA}")+"---\n"+outbound("two", "{trustedCA: $FLEX_TEST_CA}"),
		"c.yaml", breaker("two", "{maxRequests: 10}"))
	if u := route(t, cfg, "default/a/split").Upstream; u.CAPEM != cert || u.CircuitBreaker.MaxRequests != 10 {
		t.Errorf("split: %+v", u)
	}
	if u := route(t, cfg, "default/a/mixed").Upstream; u.CAPEM != cert || u.Targets[0].Scheme != "http" {
		t.Errorf("mixed: %+v", u)
	}
	want := []string{
		"r.yaml:7:21: warning: route-weighted applies one circuit breaker to its destinations together: the thresholds of Service default/two " +
			"(circuit-breaker-flex at ",
		"r.yaml:7:21: warning: route-weighted applies one circuit breaker",
	}
	got := warnings(cfg)
	if len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || !strings.Contains(got[0], "c.yaml:7:21) count this route's requests to every one of them; "+
		"Service default/one has other thresholds, or none") || !strings.Contains(got[1], "Service default/plain has other") {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
}

// TestCircuitBreakerThresholds: circuit-breaker-flex's thresholds are the
// upstream's circuit breaker, but for maxConnections, which caps the
// upstream's connections (requests over it wait for one until the response
// timeout, as Envoy's pending requests do, counted by maxPendingRequests);
// maxConnectionPools, which has no counterpart, is warned of.
func TestCircuitBreakerThresholds(t *testing.T) {
	cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("PolicyBinding", "cb")+`  targetRef: {kind: Service, name: a-up}
  policyRef: {name: circuit-breaker-flex}
  config:
    thresholds:
      maxConnections: 600
      maxPendingRequests: 5
      maxRequests: 700
      maxRetries: 3
      maxConnectionPools: 2
`)
	u := route(t, cfg, "default/a/up").Upstream
	want := config.CircuitBreaker{MaxPendingRequests: 5, MaxRequests: 700, MaxRetries: 3}
	if u.CircuitBreaker != want || u.MaxConns != 600 {
		t.Errorf("circuit breaker %+v, maxConns %d", u.CircuitBreaker, u.MaxConns)
	}
	// A request waits for a connection as long as Flex keeps it queued:
	// until the response timeout (15 s unless configured).
	if u.MaxConnWait != 15*time.Second || u.ConnectTimeout != 2*time.Second {
		t.Errorf("a request waits %s for a connection (connect timeout %s); want the response timeout, 15s", u.MaxConnWait, u.ConnectTimeout)
	}
	got := warnings(cfg)
	if len(got) != 1 || !strings.HasPrefix(got[0], "b.yaml:14:7: warning: circuit-breaker-flex thresholds maxConnectionPools is not applied") {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}

	cfg = load(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("PolicyBinding", "cb")+
		"  targetRef: {kind: Service, name: a-up}\n  policyRef: {name: circuit-breaker-flex}\n  config: {thresholds: {maxPendingRequests: 5}}\n")
	if u := route(t, cfg, "default/a/up").Upstream; u.CircuitBreaker != (config.CircuitBreaker{MaxPendingRequests: 5}) || len(cfg.Warnings) != 0 {
		t.Errorf("circuit breaker %+v, warnings %v", u.CircuitBreaker, cfg.Warnings)
	}
	// maxConnections alone: the requests waiting are bounded as Envoy
	// bounds them.
	cfg = load(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("PolicyBinding", "cb")+
		"  targetRef: {kind: Service, name: a-up}\n  policyRef: {name: circuit-breaker-flex}\n  config: {thresholds: {maxConnections: 10}}\n")
	if u := route(t, cfg, "default/a/up").Upstream; u.CircuitBreaker != (config.CircuitBreaker{MaxPendingRequests: 1024}) || u.MaxConns != 10 {
		t.Errorf("maxConnections alone: circuit breaker %+v, maxConns %d; want 1024 pending at most", u.CircuitBreaker, u.MaxConns)
	}
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", doc("PolicyBinding", "cb")+
		"  targetRef: {kind: Service, name: a-up}\n  policyRef: {name: circuit-breaker-flex}\n  config: {thresholds: {maxRequests: 0}}\n"),
		[]string{"b.yaml:8:38", "thresholds maxRequests must be a whole number from 1 to 2147483647, not 0"})
}
