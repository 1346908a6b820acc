package flex_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/config/flex"
)

const gatewayDoc = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  routes:
    - id: legacy
      path: /legacy/*
      upstream: {url: "http://legacy:8080"}
`

// TestMixedDirectory: Flex resources and kind: Gateway in one directory,
// across files, map into one config. With ApiInstances, only the listeners
// written open, so a Gateway's routes serve on the Gateway's listeners, and
// a Gateway without any is told so.
func TestMixedDirectory(t *testing.T) {
	files := []string{
		"gateway.yaml", gatewayDoc + "  listeners: [{name: web, port: 8080}]\n",
		"flex/api.yaml", api("a", "http://0.0.0.0:8081"),
		"flex/policies/limit.yml", doc("PolicyBinding", "limit", "  namespace: default\n") +
			"  targetRef: {name: a}\n  policyRef: {name: rate-limiting-flex}\n  config: {rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 1000}]}\n",
	}
	cfg := load(t, files...)
	if len(cfg.Routes) != 2 || len(cfg.Listeners) != 2 {
		t.Fatalf("routes %+v\nlisteners %+v", cfg.Routes, cfg.Listeners)
	}
	if l := route(t, cfg, "legacy").Listeners; strings.Join(l, ",") != "web" {
		t.Errorf("the Gateway route serves on %v, want its Gateway's listener", l)
	}
	if r := route(t, cfg, "default/a/up"); strings.Join(r.Listeners, ",") != "flex-8081" || policyNames(r) != "rate-limiting-flex" {
		t.Errorf("the Flex route: %+v", r)
	}
	// Files in name order, a directory's where its name falls.
	if len(cfg.Sources) != 3 || !strings.HasSuffix(cfg.Sources[1].Path, filepath.Join("flex", "policies", "limit.yml")) ||
		!strings.Contains(cfg.Sources[2].Summary, `Gateway "edge"`) {
		t.Errorf("sources = %+v", cfg.Sources)
	}

	got := loadErrors(t, "gateway.yaml", gatewayDoc, "api.yaml", api("a", "http://0.0.0.0:8081"))
	expectErrors(t, got, []string{"gateway.yaml:6:7", `route "legacy" has no listener`, "add spec.listeners to a Gateway document"})
}

// TestSelectorBindings: a Selector binding applies to every ApiInstance
// that carries all its labels (in any namespace), or to every one when it
// names none; one that selects nothing is warned of.
func TestSelectorBindings(t *testing.T) {
	inst := func(name, ns, labels string) string {
		extra := ""
		if ns != "" {
			extra += "  namespace: " + ns + "\n"
		}
		if labels != "" {
			extra += "  labels: " + labels + "\n"
		}
		return doc("ApiInstance", name, extra) + "  address: http://0.0.0.0:8081/" + name + "\n  services: {up: {address: http://x}}\n"
	}
	sel := func(name, labels string) string {
		s := doc("PolicyBinding", name) + "  targetRef:\n    kind: Selector\n    selector:\n      kind: ApiInstance\n"
		if labels != "" {
			s += "      labels: " + labels + "\n"
		}
		return s + "  policyRef: {name: header-injection-flex}\n  config: {inboundHeaders: [{key: x-" + name + ", value: \"1\"}]}\n"
	}
	cfg := load(t,
		"apis.yaml", inst("a", "", "{tier: free, env: prod}")+"---\n"+inst("b", "shop", "{tier: free}")+"---\n"+inst("c", "", "{tier: paid}"),
		"bindings.yaml", sel("free", "{tier: free}")+"---\n"+sel("freeprod", "{tier: free, env: prod}")+"---\n"+sel("all", "")+"---\n"+sel("none", "{tier: gold}"))
	want := map[string]string{
		"default/a/up": "header-injection-flex,header-injection-flex,header-injection-flex", // free, freeprod, all
		"shop/b/up":    "header-injection-flex,header-injection-flex",                       // free, all
		"default/c/up": "header-injection-flex",                                             // all
	}
	for id, names := range want {
		if got := policyNames(route(t, cfg, id)); got != names {
			t.Errorf("%s: %s, want %s", id, got, names)
		}
	}
	if w := warnings(cfg); len(w) != 1 || !strings.Contains(w[0], "bindings.yaml:45:5: warning: PolicyBinding default/none selects no ApiInstance (ApiInstances with tier=gold)") {
		t.Errorf("warnings = %q", w)
	}
}

// TestOrder: policies run in Flex Gateway's order: Selector (automated)
// bindings first, then by order (default 50, inline policies too), lower
// first, ties as read; the response runs them in reverse. cors-flex runs
// first whatever its order: the chain compiler runs it so.
func TestOrder(t *testing.T) {
	bind := func(name, target, order, policy string) string {
		s := doc("PolicyBinding", name) + "  targetRef: " + target + "\n  policyRef: {name: " + policy + "}\n"
		if order != "" {
			s += "  order: " + order + "\n"
		}
		if policy == "header-removal-flex" {
			s += "  config: {inboundHeaders: [x-" + name + "]}\n"
		}
		return s
	}
	cfg := load(t,
		"api.yaml", doc("ApiInstance", "a", "  labels: {team: x}\n")+"  address: http://0.0.0.0:8081\n  services: {up: {address: http://x}}\n"+
			"  policies:\n    - policyRef: {name: header-removal-flex}\n      config: {inboundHeaders: [x-inline]}\n",
		"b.yaml", bind("late", "{name: a}", "60", "header-removal-flex")+"---\n"+bind("early", "{name: a}", "10", "header-removal-flex")+"---\n"+
			bind("auto", "{kind: Selector, selector: {kind: ApiInstance}}", "90", "header-removal-flex")+"---\n"+
			bind("tie", "{name: a}", "", "header-removal-flex")+"---\n"+bind("cors", "{name: a}", "99", "cors-flex"))
	r := route(t, cfg, "default/a/up")
	var got []string
	for _, p := range r.Policies {
		if p.Name == "cors-flex" {
			got = append(got, "cors")
			continue
		}
		got = append(got, chain.Field(p.Params, "inboundHeaders").Content[0].Value)
	}
	if strings.Join(got, " ") != "x-auto x-early x-inline x-tie x-late cors" {
		t.Errorf("order = %s, want x-auto x-early x-inline x-tie x-late cors", strings.Join(got, " "))
	}
	if !r.ReverseResponse {
		t.Error("the response does not run them in reverse")
	}
	c, err := chain.Compile(cfg, r, chain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, inst := range c.Policies {
		names = append(names, inst.Name)
	}
	if names[0] != "cors-flex" || len(names) != 6 {
		t.Errorf("the chain runs %v; want cors-flex first", names)
	}
}

// TestConfigMapLayout: a Kubernetes ConfigMap volume holds ..data, a
// symlink to a timestamped directory, and a symlink per file through it;
// the files are read once, the ..data machinery never, and references
// across files resolve.
func TestConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2024_05_01_10_00_00.123456789")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(ts, 0o755))
	files := map[string]string{
		"api.yaml":     doc("ApiInstance", "a") + "  address: http://0.0.0.0:8081\n",
		"service.yaml": doc("Service", "s") + "  address: http://backend:8080\n",
		"route.yaml":   doc("PolicyBinding", "r") + "  targetRef: {name: a}\n  policyRef: {name: route}\n  config: {destinationRef: {name: s}}\n",
	}
	for name, text := range files {
		must(os.WriteFile(filepath.Join(ts, name), []byte(text), 0o644))
		must(os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	}
	must(os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	cfg, err := config.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if r := route(t, cfg, "default/a/r"); r.Upstream.URL() != "http://backend:8080" {
		t.Errorf("route = %+v", r)
	}
	if len(cfg.Sources) != 3 || len(cfg.Warnings) != 0 {
		t.Errorf("sources %+v, warnings %v", cfg.Sources, cfg.Warnings)
	}
}

// TestEnv: `$NAME` (Flex's form, the whole value) and `$env.NAME`; in a
// policy's config it stays a reference (`$env.NAME`) that the policy
// expands, elsewhere it is substituted, a number read as a number.
func TestEnv(t *testing.T) {
	t.Setenv("FLEX_TEST_UPSTREAM", "http://backend:9000")
	t.Setenv("FLEX_TEST_DB", "7")
	t.Setenv("FLEX_TEST_VALUE", "from-env")
	cfg := load(t, "a.yaml", doc("ApiInstance", "a")+"  address: http://0.0.0.0:8081\n  services: {up: {address: $FLEX_TEST_UPSTREAM}}\n"+
		"  policies:\n    - policyRef: {name: header-injection-flex}\n      config: {inboundHeaders: [{key: x-a, value: $FLEX_TEST_VALUE}, {key: x-b, value: \"$FLEX_TEST_VALUE\"}, {key: x-c, value: \"a $$FLEX_TEST_VALUE\"}]}\n",
		"c.yaml", doc("Configuration", "redis")+"  sharedStorage:\n    redis: {address: \"r:6379\", user: u, DB: $FLEX_TEST_DB, password: $env.FLEX_TEST_VALUE}\n")
	r := route(t, cfg, "default/a/up")
	if r.Upstream.URL() != "http://backend:9000" {
		t.Errorf("upstream = %s", r.Upstream.URL())
	}
	items := chain.Field(r.Policies[0].Params, "inboundHeaders").Content
	if v := chain.Field(items[0], "value").Value; v != "$env.FLEX_TEST_VALUE" {
		t.Errorf("x-a = %q, want the reference", v)
	}
	if v := chain.Field(items[2], "value").Value; v != "a $$FLEX_TEST_VALUE" {
		t.Errorf("x-c = %q: only a whole value is a variable", v)
	}
	if rd := cfg.SharedStorage.Redis; rd.DB != 7 || rd.Username != "u" || rd.Password != "from-env" {
		t.Errorf("redis = %+v", rd)
	}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Retire(nil)
	ctx := new(fasthttp.RequestCtx)
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(set.Chains[0])
	set.Chains[0].RunRequest(ctx, ex)
	h := &ctx.Request.Header
	if string(h.Peek("X-A")) != "from-env" || string(h.Peek("X-B")) != "from-env" || string(h.Peek("X-C")) != "a $$FLEX_TEST_VALUE" {
		t.Errorf("headers:\n%s", h.String())
	}
}

// TestConfiguration: logLevel and timeouts apply; what flexgate does not
// implement is a warning at its line, never dropped silently; local
// shared storage is flexgate's default.
func TestConfiguration(t *testing.T) {
	cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081"),
		"c.yaml", doc("Configuration", "logging")+`  logging:
    outputs:
      - {name: file, type: file, parameters: {path: /var/log}}
    runtimeLogs:
      logLevel: fatal
      outputs: [file]
    accessLogs:
      outputs: {anypoint: disabled}
---
`+doc("Configuration", "timeouts", "  namespace: ops\n")+`  timeouts:
    upstreamResponseSeconds: 5
    upstreamConnectionIdleSeconds: 30
    streamIdleSeconds: 60
  tracing: {provider: {type: opentelemetry}}
  sharedStorage: {local: {enabled: true}}
`)
	if cfg.LogLevel != "error" {
		t.Errorf("LogLevel = %q, want error (fatal)", cfg.LogLevel)
	}
	if r := route(t, cfg, "default/a/up"); r.Upstream.ResponseTimeout != 5*time.Second || r.Upstream.IdleTimeout != 30*time.Second {
		t.Errorf("response timeout = %s, idle timeout = %s", r.Upstream.ResponseTimeout, r.Upstream.IdleTimeout)
	}
	if cfg.SharedStorage != nil {
		t.Errorf("sharedStorage = %+v", cfg.SharedStorage)
	}
	want := []string{
		"c.yaml:7:5: warning: logging outputs (Fluent Bit) are not supported",
		"c.yaml:11:7: warning: runtimeLogs outputs are not supported",
		"c.yaml:24:5: warning: timeouts streamIdleSeconds is not applied",
		"c.yaml:25:3: warning: Configuration tracing (distributed tracing export; flexgate passes traceparent on but exports no spans) is not supported yet",
	}
	got := warnings(cfg)
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d = %q, want %q", i, got[i], want[i])
		}
	}
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"),
		"c.yaml", doc("Configuration", "t1")+"  timeouts: {upstreamResponseSeconds: 5}\n---\n"+doc("Configuration", "t2")+"  timeouts: {upstreamResponseSeconds: 6}\n"),
		[]string{"c.yaml:13:3", "timeouts differ from the timeouts set at ", "c.yaml:6:3"})
}

// TestIgnoredSettingsAreWarnedOf: a policyRef namespace other than
// default (where Flex Gateway's built-in policies are), and local shared
// storage turned off, change nothing in flexgate: each is a warning at its
// line, not dropped silently.
func TestIgnoredSettingsAreWarnedOf(t *testing.T) {
	cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081", `  policies:
    - policyRef: {name: header-injection-flex, namespace: default}
      config: {inboundHeaders: [{key: x-a, value: a}]}
    - policyRef: {name: header-removal-flex, namespace: e-commerce}
      config: {inboundHeaders: [x-b]}
`), "b.yaml", doc("PolicyBinding", "b")+`  targetRef: {name: a}
  policyRef:
    name: header-injection-flex
    namespace: policies
  config: {outboundHeaders: [{key: x-c, value: c}]}
`, "c.yaml", doc("Configuration", "storage")+"  sharedStorage: {local: {enabled: false}}\n")
	want := []string{
		`a.yaml:13:57: warning: policyRef namespace "e-commerce" is ignored: flexgate's policies have no namespace, so this names ` +
			`flexgate's built-in policy of that name, as namespace default does in Flex Gateway, not a policy of namespace e-commerce; remove namespace, or write default`,
		`b.yaml:9:16: warning: policyRef namespace "policies" is ignored`,
		`c.yaml:6:36: warning: sharedStorage local enabled: false has no effect: without redis, flexgate keeps what its policies share ` +
			`(rate-limit budgets, cache entries) in each replica's memory, and that cannot be turned off; remove local`,
	}
	got := warnings(cfg)
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d = %q\nwant %q", i, got[i], want[i])
		}
	}
	if p := policyNames(route(t, cfg, "default/a/up")); p != "header-injection-flex,header-removal-flex,header-injection-flex" {
		t.Errorf("policies = %s", p)
	}
}

// TestServicePolicies: tls-outbound and circuit-breaker-flex, bound to a
// Service (inline ones are named <instance>-<key>), configure its upstream.
func TestServicePolicies(t *testing.T) {
	cert, key := selfSigned(t)
	t.Setenv("FLEX_TEST_CA", cert)
	t.Setenv("FLEX_TEST_CRT", cert)
	t.Setenv("FLEX_TEST_KEY", key)
	cfg := load(t, "a.yaml", doc("ApiInstance", "a")+"  address: http://0.0.0.0:8081\n  services: {up: {address: \"https://orders:8443/v1\"}}\n",
		"b.yaml", doc("PolicyBinding", "tls")+`  targetRef: {kind: Service, name: a-up}
  policyRef: {name: tls-outbound}
  config:
    trustedCA: $FLEX_TEST_CA
    certificate: {crt: $FLEX_TEST_CRT, key: $FLEX_TEST_KEY}
    minversion: "1.3"
---
`+doc("PolicyBinding", "cb")+`  targetRef: {kind: Service, name: a-up}
  policyRef: {name: circuit-breaker-flex}
  config: {thresholds: {maxConnections: 20, maxRequests: 100}}
`)
	u := route(t, cfg, "default/a/up").Upstream
	if u.CAPEM != cert || u.ClientCert == nil || string(u.ClientCert.CertPEM) != cert || string(u.ClientCert.KeyPEM) != key ||
		u.InsecureSkipVerify || u.URL() != "https://orders:8443/v1" || u.Name != "default/a-up" ||
		u.CircuitBreaker != (config.CircuitBreaker{MaxPendingRequests: 1024, MaxRequests: 100}) || u.MaxConns != 20 || u.TLSMinVersion != "1.3" || u.TLSMaxVersion != "" {
		t.Errorf("upstream = %+v", u)
	}
	if u.IdleTimeout != flex.DefaultIdleTimeoutSeconds*time.Second {
		t.Errorf("without idle-timeout-flex the idle timeout is %s, want Flex Gateway's default", u.IdleTimeout)
	}
	if got := warnings(cfg); len(got) != 0 {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
}

// TestIdleTimeoutFlex: idle-timeout-flex, bound to a Service, sets how
// long its upstream's pooled connections may stay idle (60 s when config
// leaves timeout out, as in Flex Gateway); bound elsewhere, or out of
// range, it is an error.
func TestIdleTimeoutFlex(t *testing.T) {
	bind := func(name, target, config string) string {
		return doc("PolicyBinding", name) + "  targetRef: " + target + "\n  policyRef: {name: idle-timeout-flex}\n" + config
	}
	cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081")+"---\n"+api("b", "http://0.0.0.0:8082"),
		"b.yaml", bind("ia", "{kind: Service, name: a-up}", "  config: {timeout: 120}\n")+"---\n"+bind("ib", "{kind: Service, name: b-up}", ""))
	if u := route(t, cfg, "default/a/up").Upstream; u.IdleTimeout != 120*time.Second {
		t.Errorf("a: idle timeout %s, want 2m", u.IdleTimeout)
	}
	if u := route(t, cfg, "default/b/up").Upstream; u.IdleTimeout != time.Minute {
		t.Errorf("b: idle timeout %s, want Flex's default 60 s", u.IdleTimeout)
	}
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", bind("i", "{name: a}", "")),
		[]string{"b.yaml:7:21", "idle-timeout-flex applies to a Service's connections; set targetRef kind: Service"})
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", bind("i", "{kind: Service, name: a-up}", "  config: {timeout: 0}\n")),
		[]string{"b.yaml:8:21", "idle-timeout-flex timeout must be a whole number from 1 to 3600 (seconds), not 0"})
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "b.yaml", bind("i", "{kind: Service, name: a-up}", "  config: {idle: 5}\n")),
		[]string{"b.yaml:8:12", `unknown field "idle"`})
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081", "  policies:\n    - policyRef: {name: idle-timeout-flex}\n")),
		[]string{"a.yaml:11:25", "idle-timeout-flex applies to a Service's connections: bind it with a PolicyBinding"})
}

// TestTLSListener: the tls policy gives an https port its certificate,
// versions, ALPN (h2, which flexgate does not speak, is left out with a
// warning) and client certificates; instances on one port share it.
func TestTLSListener(t *testing.T) {
	cert, key := selfSigned(t)
	t.Setenv("FLEX_TEST_CRT", cert)
	t.Setenv("FLEX_TEST_KEY", key)
	tls := func(name, target string, more string) string {
		return doc("PolicyBinding", name) + "  targetRef: " + target + "\n  policyRef: {name: tls}\n  config:\n    certificate: {crt: $FLEX_TEST_CRT, key: $FLEX_TEST_KEY}\n" + more
	}
	cfg := load(t, "a.yaml", api("a", "https://0.0.0.0:8443/a")+"---\n"+api("b", "https://0.0.0.0:8443/b"),
		"t.yaml", tls("t", "{name: a}", "    alpn: [h2, http/1.1]\n    minversion: \"1.3\"\n    requireClientCertificate: true\n    trustedCA: $FLEX_TEST_CRT\n"))
	if len(cfg.Listeners) != 1 {
		t.Fatalf("listeners = %+v", cfg.Listeners)
	}
	l := cfg.Listeners[0]
	if l.Name != "flex-8443" || l.Protocol != "HTTPS" || l.TLS.MinVersion != "1.3" || strings.Join(l.TLS.ALPN, ",") != "http/1.1" ||
		!l.TLS.RequireClientCert || string(l.TLS.ClientCAPEM) != cert {
		t.Errorf("listener = %+v", l)
	}
	if w := warnings(cfg); len(w) != 1 || !strings.HasPrefix(w[0], "t.yaml:10:12: warning: tls alpn h2 is not offered") {
		t.Errorf("warnings = %q", w)
	}
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "https://0.0.0.0:8443/a")+"---\n"+api("b", "https://0.0.0.0:8443/b"),
		"t.yaml", tls("ta", "{name: a}", "")+"---\n"+tls("tb", "{name: b}", "    minversion: \"1.3\"\n")),
		[]string{"t.yaml:17:21", "port 8443 already has the tls policy at ", "t.yaml:7:21", "one per port"})
	expectErrors(t, loadErrors(t, "a.yaml", api("a", "https://0.0.0.0:8443/a"),
		"t.yaml", tls("ta", "{name: a}", "    requireClientCertificate: true\n")),
		[]string{"t.yaml:10:31", "requireClientCertificate needs trustedCA"})
}

// TestRoutes: a service's routes become routes in order, with their
// rules and destinationPath; a route without rules before others is
// warned of; v1beta1 is accepted for every kind.
func TestRoutes(t *testing.T) {
	cfg := load(t, "a.yaml", strings.ReplaceAll(doc("ApiInstance", "a"), "v1alpha1", "v1beta1")+`  address: http://0.0.0.0:8081/api/
  services:
    orders:
      address: http://orders:8080/base/
      routes:
        - config: {destinationPath: /}
        - rules: [{path: "/api/orders(/.*)"}]
          config: {destinationPath: /v2/}
    users:
      address: http://users:8080
`)
	want := []struct{ id, upstream, rule string }{
		{"default/a/orders/1", "http://orders:8080/base", ""},
		{"default/a/orders/2", "http://orders:8080/base/v2", "/api/orders(/.*)"},
		{"default/a/users", "http://users:8080", ""},
	}
	if len(cfg.Routes) != len(want) {
		t.Fatalf("routes = %+v", cfg.Routes)
	}
	for i, w := range want {
		r := cfg.Routes[i]
		rule := ""
		if len(r.Rules) > 0 {
			rule = r.Rules[0].Path
		}
		if r.ID != w.id || r.UpstreamURL() != w.upstream || rule != w.rule || r.StripPrefix != "/api" || r.Paths[0] != "/api/*" ||
			r.PolicyScope != "default/a" {
			t.Errorf("route %d = %s %s %q strip %q paths %v; want %+v", i, r.ID, r.UpstreamURL(), rule, r.StripPrefix, r.Paths, w)
		}
	}
	// One upstream for the service's routes: one pool, one breaker.
	if o1, o2 := cfg.Routes[0], cfg.Routes[1]; !reflect.DeepEqual(o1.Upstream, o2.Upstream) || o2.DestinationPath != "/v2" || o1.Upstream.Name != "default/a-orders" {
		t.Errorf("the routes of service orders differ in upstream:\n%+v\n%+v", o1.Upstream, o2.Upstream)
	}
	got := warnings(cfg)
	if len(got) != 2 || !strings.HasPrefix(got[0], `a.yaml:11:11: warning: this route of service "orders" has no rules`) ||
		!strings.HasPrefix(got[1], `a.yaml:12:19: warning: rule path "/api/orders(/.*)" starts with the base path /api of ApiInstance default/a`) {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
}
