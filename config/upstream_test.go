package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// upstreamDoc is a Gateway with one route whose upstream mapping is body,
// indented under `upstream:` (the body's first line is line 10).
func upstreamDoc(body string) string {
	return head + "  routes:\n    - id: r\n      path: /*\n      upstream:\n" + body
}

func TestUpstreamTargetsAndPolicies(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", upstreamDoc(`        targets:
          - {url: "http://orders-v1:8080/v1", weight: 75}
          - url: https://orders-v2
        loadBalancing: round-robin
        slowStart: 30s
        idleTimeout: 90s
        discovery: dns
        dnsRefresh: 2s
        healthCheck: {path: /healthz, interval: 5s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 4, expectStatus: [200, "204-299"]}
        outlierDetection: {consecutiveFailures: 3, baseEjectionTime: 10s, maxEjectionTime: 1m, maxEjectionPercent: 50}
        circuitBreaker: {maxConnections: 100, maxPendingRequests: 10, maxRequests: 200, maxRetries: 3}
        retries:
          attempts: 3
          on: [connect-failure, 5xx]
          perTryTimeout: 2s
          backoff: {base: 10ms, max: 100ms}
          budget: {percent: 10, minConcurrency: 5}
`))
	u := cfg.Routes[0].Upstream
	want := newUpstream(u.Pos)
	want.Targets = []Target{
		{Scheme: "http", Host: "orders-v1:8080", BasePath: "/v1", Weight: 75, Pos: u.Targets[0].Pos},
		{Scheme: "https", Host: "orders-v2:443", Weight: 1, Pos: u.Targets[1].Pos},
	}
	want.LoadBalancing, want.SlowStart, want.Discovery, want.DNSRefresh = RoundRobin, 30*time.Second, DiscoveryDNS, 2*time.Second
	want.IdleTimeout = 90 * time.Second
	want.HealthCheck = &HealthCheck{Path: "/healthz", Interval: 5 * time.Second, Timeout: time.Second, HealthyThreshold: 1,
		UnhealthyThreshold: 4, ExpectStatus: []StatusRange{{200, 200}, {204, 299}}, Pos: u.HealthCheck.Pos}
	want.Outlier = Outlier{ConsecutiveFailures: 3, BaseEjectionTime: 10 * time.Second, MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}
	want.CircuitBreaker = CircuitBreaker{MaxConnections: 100, MaxPendingRequests: 10, MaxRequests: 200, MaxRetries: 3}
	want.Retries = &Retries{Attempts: 3, On: []RetryOn{RetryConnectFailure, Retry5xx}, PerTryTimeout: 2 * time.Second,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, BudgetPercent: 10, BudgetMinConcurrency: 5,
		Pos: u.Retries.Pos}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("upstream = %+v\nwant       %+v", u, want)
	}
	if got := u.URL(); got != "http://orders-v1:8080/v1, https://orders-v2:443" {
		t.Errorf("URL() = %q", got)
	}

	// The defaults of what is left out.
	cfg = mustLoad(t, "b.yaml", upstreamDoc("        url: http://svc\n        discovery: dns\n        retries: {}\n        healthCheck: {path: /h}\n"))
	u = cfg.Routes[0].Upstream
	if u.DNSRefresh != DefaultDNSRefresh || u.LoadBalancing != LeastRequest || u.Targets[0].Weight != 1 || u.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults: %+v", u)
	}
	if r := u.Retries; r.Attempts != 2 || !reflect.DeepEqual(r.On, []RetryOn{RetryGatewayError}) || r.BudgetPercent != 20 ||
		r.BudgetMinConcurrency != 3 || r.BackoffBase != 25*time.Millisecond || r.BackoffMax != 250*time.Millisecond {
		t.Errorf("retries defaults: %+v", r)
	}
	if hc := u.HealthCheck; hc.Interval != 10*time.Second || hc.Timeout != 2*time.Second || hc.HealthyThreshold != 2 ||
		hc.UnhealthyThreshold != 3 || !reflect.DeepEqual(hc.ExpectStatus, []StatusRange{{200, 399}}) {
		t.Errorf("healthCheck defaults: %+v", hc)
	}
}

func TestUpstreamErrors(t *testing.T) {
	for _, tc := range []struct {
		body  string
		pos   string
		words []string
	}{
		{"        url: http://a\n        port: 80\n", "a.yaml:11:9", []string{`unknown field "port"`, "targets", "loadBalancing"}},
		{"        url: http://a\n        targets: [{url: http://b}]\n", "a.yaml:11:18", []string{"both url and targets"}},
		{"        targets: []\n", "a.yaml:10:18", []string{"targets must be a list"}},
		{"        targets: [{weight: 2}]\n", "a.yaml:10:19", []string{"target has no url"}},
		{"        targets: [{url: http://a, weight: 0}]\n", "a.yaml:10:43", []string{"upstream target weight must be a whole number from 1 to 1000, not 0"}},
		{"        targets: [{url: http://a}, {url: \"http://a:80\"}]\n", "a.yaml:10:42", []string{"listed twice", "a.yaml:10:19"}},
		{"        targets: [{url: ftp://a}]\n", "a.yaml:10:25", []string{"must start with http://"}},
		{"        url: http://a\n        discovery: consul\n", "a.yaml:11:20", []string{`discovery "consul"`, "dns"}},
		{"        url: http://a\n        dnsRefresh: 5s\n", "a.yaml:11:21", []string{"only with `discovery: dns`"}},
		{"        url: http://a\n        discovery: dns\n        dnsRefresh: 100ms\n", "a.yaml:12:21", []string{"at least 1s"}},
		{"        url: http://a\n        loadBalancing: fastest\n", "a.yaml:11:24", []string{`"fastest"`, "least-request", "round-robin", "random"}},
		{"        url: http://a\n        slowStart: 0s\n", "a.yaml:11:20", []string{"slowStart must be positive"}},
		{"        url: http://a\n        healthCheck: {interval: 5s}\n", "a.yaml:11:22", []string{"healthCheck has no path"}},
		{"        url: http://a\n        healthCheck: {path: healthz}\n", "a.yaml:11:29", []string{"must start with /"}},
		{"        url: http://a\n        healthCheck: {path: /h, interval: 1s, timeout: 2s}\n", "a.yaml:11:56", []string{"longer than its interval"}},
		{"        url: http://a\n        healthCheck: {path: /h, expectStatus: [\"300-200\"]}\n", "a.yaml:11:48", []string{`expectStatus "300-200"`}},
		{"        url: http://a\n        healthCheck: {path: /h, unhealthyThreshold: 0}\n", "a.yaml:11:53", []string{"healthCheck unhealthyThreshold must be a whole number from 1 to 100, not 0"}},
		{"        url: http://a\n        outlierDetection: {consecutiveFailures: -1}\n", "a.yaml:11:49", []string{"consecutiveFailures must be a whole number from 0 to 1000 (0 turns ejection off), not -1"}},
		{"        url: http://a\n        outlierDetection: {baseEjectionTime: 10m}\n", "a.yaml:11:27", []string{"maxEjectionTime 5m0s is shorter than baseEjectionTime 10m0s"}},
		{"        url: http://a\n        outlierDetection: {maxEjectionPercent: 101}\n", "a.yaml:11:48", []string{"maxEjectionPercent must be a whole number from 1 to 100, not 101"}},
		{"        url: http://a\n        circuitBreaker: {maxRequests: 0}\n", "a.yaml:11:39", []string{"circuitBreaker maxRequests must be a whole number from 1 to 2147483647, not 0"}},
		{"        url: http://a\n        circuitBreaker: {thresholds: {}}\n", "a.yaml:11:26", []string{`unknown field "thresholds"`, "maxPendingRequests"}},
		{"        url: http://a\n        retries: {attempts: 1}\n", "a.yaml:11:29", []string{"retries attempts must be a whole number from 2 to 10 (it counts the first try too), not 1"}},
		{"        url: http://a\n        retries: {on: [timeout]}\n", "a.yaml:11:24", []string{`retries on "timeout" is unknown`, "gateway-error"}},
		{"        url: http://a\n        retries: {on: []}\n", "a.yaml:11:23", []string{"retries on is empty"}},
		{"        url: http://a\n        responseTimeout: 1s\n        retries: {perTryTimeout: 2s}\n", "a.yaml:12:34", []string{"perTryTimeout 2s is longer than responseTimeout 1s"}},
		{"        url: http://a\n        retries: {backoff: {base: 1s, max: 10ms}}\n", "a.yaml:11:28", []string{"backoff max 10ms is shorter than its base 1s"}},
		{"        url: http://a\n        retries: {budget: {percent: 0}}\n", "a.yaml:11:37", []string{"retries budget percent must be a whole number from 1 to 100, not 0"}},
		{"        targets: [{url: http://a}]\n        caFile: ca.pem\n", "a.yaml:11:17", []string{"caFile applies only to https targets"}},
		{"        url: http://a\n        idleTimeout: 2h\n", "a.yaml:11:22", []string{"idleTimeout 2h0m0s is longer than 1h0m0s"}},
		{"        url: http://a\n        idleTimeout: 0s\n", "a.yaml:11:22", []string{"idleTimeout must be positive"}},
	} {
		t.Run(strings.TrimSpace(tc.body), func(t *testing.T) {
			expectOne(t, loadErrors(t, "a.yaml", upstreamDoc(tc.body)), tc.pos, tc.words...)
		})
	}
}
