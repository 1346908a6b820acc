package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/examples"
)

// head is the envelope of a Gateway document; spec fields start on line 6.
const head = "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata:\n  name: t\nspec:\n"

// writeFiles writes name/content pairs into a fresh directory and returns
// their paths in order.
func writeFiles(t *testing.T, pairs ...string) (dir string, paths []string) {
	t.Helper()
	dir = t.TempDir()
	for i := 0; i+1 < len(pairs); i += 2 {
		p := filepath.Join(dir, pairs[i])
		if err := os.WriteFile(p, []byte(pairs[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

// loadErrors loads the files and returns the rendered errors with the
// temporary directory cut off, so that they read "a.yaml:7:5: ...".
func loadErrors(t *testing.T, pairs ...string) []string {
	t.Helper()
	dir, paths := writeFiles(t, pairs...)
	_, err := Load(paths)
	return errorLines(t, err, dir)
}

func errorLines(t *testing.T, err error, dir string) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(errs.List) {
		t.Errorf("Error() has %d lines for %d errors", got, len(errs.List))
	}
	var out []string
	for _, e := range errs.List {
		out = append(out, strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
	}
	return out
}

// expectOne asserts exactly one error, at pos, containing every word.
func expectOne(t *testing.T, got []string, pos string, words ...string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("want 1 error at %s, got %d:\n%s", pos, len(got), strings.Join(got, "\n"))
	}
	if !strings.HasPrefix(got[0], pos+": ") {
		t.Errorf("error not at %s:\n%s", pos, got[0])
	}
	for _, w := range words {
		if !strings.Contains(got[0], w) {
			t.Errorf("error lacks %q:\n%s", w, got[0])
		}
	}
}

func mustLoad(t *testing.T, pairs ...string) *Config {
	t.Helper()
	dir, paths := writeFiles(t, pairs...)
	cfg, err := Load(paths)
	if err != nil {
		t.Fatalf("Load: %s", strings.Join(errorLines(t, err, dir), "\n"))
	}
	return cfg
}

func TestLoadSeedGateway(t *testing.T) {
	cfg, err := Load([]string{examples.Path(t, "gateway-config.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "edge-gateway" {
		t.Errorf("Name = %q", cfg.Name)
	}
	if len(cfg.Listeners) != 1 {
		t.Fatalf("listeners = %+v", cfg.Listeners)
	}
	l := cfg.Listeners[0]
	if l.Name != "https-main" || l.Address != ":8443" || l.Protocol != "HTTPS" || l.TLS == nil {
		t.Errorf("listener = %+v", l)
	} else if l.TLS.Mode != "TERMINATE" || l.TLS.MinVersion != "1.2" ||
		len(l.TLS.Certificates) != 1 || l.TLS.Certificates[0].CertFile != "/tls/tls.crt" ||
		l.TLS.Certificates[0].KeyFile != "/tls/tls.key" {
		t.Errorf("tls = %+v", *l.TLS)
	}
	if len(cfg.Routes) != 1 {
		t.Fatalf("routes = %+v", cfg.Routes)
	}
	r := cfg.Routes[0]
	if r.ID != "api-v1" || len(r.Paths) != 1 || r.Paths[0] != "/api/v1/*" || len(r.Methods) != 0 {
		t.Errorf("route = %+v", r)
	}
	u := r.Upstream
	if len(u.Targets) != 1 || u.Targets[0] != (Target{Scheme: "http", Host: "backend-service:8080", Weight: 1, Pos: u.Targets[0].Pos}) ||
		u.LoadBalancing != LeastRequest || u.Discovery != DiscoveryStatic || u.HealthCheck != nil || u.Retries != nil ||
		u.Outlier.ConsecutiveFailures != DefaultConsecutiveFailures || u.CircuitBreaker != (CircuitBreaker{}) ||
		u.ConnectTimeout != DefaultConnectTimeout || u.ResponseTimeout != DefaultResponseTimeout ||
		u.MaxConns != DefaultMaxConns {
		t.Errorf("upstream = %+v", u)
	}
	if cfg.Limits != DefaultLimits {
		t.Errorf("limits = %+v, want defaults", cfg.Limits)
	}
	if len(cfg.Sources) != 1 || !strings.HasSuffix(cfg.Sources[0].Summary,
		`gateway-config.yaml: Gateway "edge-gateway": 1 listener, 1 route, 0 policies`) {
		t.Errorf("sources = %+v", cfg.Sources)
	}
	if len(cfg.Hash) != 64 {
		t.Errorf("hash = %q", cfg.Hash)
	}
}

func TestLoadSeedSecuredGateway(t *testing.T) {
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway-client")
	t.Setenv("INTROSPECTION_CLIENT_SECRET", "s3cret: with colon")
	cfg, err := Load([]string{examples.Path(t, "secured-gateway-config.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if r.ID != "product-catalog" || r.Methods[0] != "GET" || r.Upstream.Targets[0].Host != "product-service:3000" {
		t.Errorf("route = %+v", r)
	}
	want := []string{"rate-limiting", "request-validation", "client-id-enforcement", "token-introspection",
		"request-headers-remove", "request-headers-set", "response-headers-set"}
	if len(r.Policies) != len(want) {
		t.Fatalf("%d policies, want %d", len(r.Policies), len(want))
	}
	for i, p := range r.Policies {
		if p.Name != want[i] {
			t.Errorf("policy %d = %q, want %q", i, p.Name, want[i])
		}
		if (p.Params == nil) != (p.Name == "client-id-enforcement") {
			t.Errorf("policy %s: params = %v", p.Name, p.Params)
		}
	}
	if p := r.Policies[0]; p.Pos.Line != 18 || p.Pos.Col != 11 {
		t.Errorf("rate-limiting at %s, want line 18 col 11", p.Pos)
	}
	var ti struct {
		ClientID     string `yaml:"clientId"`
		ClientSecret string `yaml:"clientSecret"`
		CacheTTL     int    `yaml:"cacheTtl"`
	}
	if err := r.Policies[3].Params.Decode(&ti); err != nil {
		t.Fatal(err)
	}
	// $env in policy parameters is left for the chain, which knows which
	// parameters are expressions.
	if ti.ClientID != "$env.INTROSPECTION_CLIENT_ID" || ti.ClientSecret != "$env.INTROSPECTION_CLIENT_SECRET" || ti.CacheTTL != 60 {
		t.Errorf("token-introspection params = %+v", ti)
	}
	var hs struct {
		Headers map[string]string `yaml:"headers"`
	}
	if err := r.Policies[5].Params.Decode(&hs); err != nil {
		t.Fatal(err)
	}
	if hs.Headers["X-Gateway-Time"] != "$datetime" {
		t.Errorf("$datetime was changed: %q", hs.Headers["X-Gateway-Time"])
	}
	if !strings.HasSuffix(cfg.Sources[0].Summary, `Gateway "secured-product-gateway": 0 listeners, 1 route, 7 policies`) {
		t.Errorf("summary = %q", cfg.Sources[0].Summary)
	}
}

func TestLoadFullRoute(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`
  listeners:
    - name: plain
      port: 8080
      address: 127.0.0.1
      protocol: http
    - name: tls
      port: 8443
      address: "::1"
      tls:
        certificates: [{certFile: certs/tls.crt, keyFile: /abs/tls.key}]
        minVersion: "1.3"
  routes:
    - id: orders
      path: /orders/*
      methods: [get, Post]
      maxRequestBodySize: 512KiB
      upstream:
        url: HTTPS://orders.internal/base/
        connectTimeout: 500ms
        responseTimeout: 1m
        host: orders.example.com
        maxConnections: 64
        caFile: ca.pem
  trustedProxies: [10.0.0.0/8, 192.168.1.7, "fd00::1/8", "::ffff:10.1.2.3"]
  clients:
    - id: app
      secret: plain
    - id: hashed
      secretHash: sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
  limits:
    maxRequestBodySize: 1MB
    readTimeout: 5s
    pathParameters: strip
    maxConnectionsPerClient: 0
`)
	dir := filepath.Dir(cfg.Sources[0].Path)
	if got := cfg.Listeners[0]; got.Address != "127.0.0.1:8080" || got.Protocol != "HTTP" || got.TLS != nil {
		t.Errorf("plain listener = %+v", got)
	}
	tl := cfg.Listeners[1]
	if tl.Address != "[::1]:8443" || tl.Protocol != "HTTPS" || tl.TLS.MinVersion != "1.3" || tl.TLS.Mode != "TERMINATE" {
		t.Errorf("tls listener = %+v", tl)
	}
	if c := tl.TLS.Certificates[0]; c.CertFile != filepath.Join(dir, "certs/tls.crt") || c.KeyFile != "/abs/tls.key" {
		t.Errorf("certificate = %+v", c)
	}
	r := cfg.Routes[0]
	if strings.Join(r.Methods, ",") != "GET,POST" || r.MaxRequestBodySize != 512<<10 {
		t.Errorf("route = %+v", r)
	}
	u := r.Upstream
	want := newUpstream(u.Pos)
	want.Targets = []Target{{Scheme: "https", Host: "orders.internal:443", BasePath: "/base", Weight: 1, Pos: u.Targets[0].Pos}}
	want.HostHeader, want.ConnectTimeout, want.ResponseTimeout = "orders.example.com", 500*time.Millisecond, time.Minute
	want.MaxConns, want.CAFile = 64, filepath.Join(dir, "ca.pem")
	if !reflect.DeepEqual(u, want) {
		t.Errorf("upstream = %+v\nwant %+v", u, want)
	}
	if u.URL() != "https://orders.internal:443/base" {
		t.Errorf("URL() = %q", u.URL())
	}
	var proxies []string
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if got := strings.Join(proxies, " "); got != "10.0.0.0/8 192.168.1.7/32 fd00::/8 10.1.2.3/32" {
		t.Errorf("trustedProxies = %s", got)
	}
	if len(cfg.Clients) != 2 || cfg.Clients[0].Secret != "plain" || len(cfg.Clients[1].SecretHash) != 32 ||
		cfg.Clients[1].Secret != "" {
		t.Errorf("clients = %+v", cfg.Clients)
	}
	lim := DefaultLimits
	lim.MaxRequestBodySize = 1000 * 1000
	lim.ReadTimeout = 5 * time.Second
	lim.PathParameters = PathParametersStrip
	lim.MaxConnsPerClient = 0 // no limit, not the default
	if cfg.Limits != lim {
		t.Errorf("limits = %+v", cfg.Limits)
	}
}

func TestLoadErrors(t *testing.T) {
	route := func(upstream string) string {
		return head + "  routes:\n    - id: r\n      path: /x\n      upstream:\n" + upstream
	}
	cases := []struct {
		name  string
		src   string
		pos   string
		words []string
	}{
		{"unknown spec field", head + "  listners: []\n", "a.yaml:6:3",
			[]string{`unknown field "listners"`, "known fields:", "listeners", "routes", "trustedProxies"}},
		{"unknown top-level field", head + "  routes: []\nstatus: {}\n", "a.yaml:7:1",
			[]string{`unknown field "status"`, "apiVersion, kind, metadata, spec"}},
		{"unknown upstream field", route("        url: http://b\n        timeout: 2s\n"), "a.yaml:11:9",
			[]string{`unknown field "timeout"`, "connectTimeout", "responseTimeout"}},
		{"unknown metadata field", "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata:\n  nme: x\nspec: {}\n",
			"a.yaml:4:3", []string{`unknown field "nme"`, "name"}},
		{"field twice", head + "  routes: []\n  routes: []\n", "a.yaml:7:3", []string{`"routes" given twice`, "line 6"}},
		{"other kind", "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: ApiInstance\nspec: {}\n", "a.yaml:2:7",
			[]string{`unsupported kind "ApiInstance"`, "supported kinds: Gateway"}},
		{"no kind", "apiVersion: gateway.mulesoft.com/v1alpha1\nspec: {}\n", "a.yaml:1:1", []string{"no kind", "kind: Gateway"}},
		{"wrong apiVersion", "apiVersion: v1\nkind: Gateway\nspec: {}\n", "a.yaml:1:13",
			[]string{`unsupported apiVersion "v1"`, "gateway.mulesoft.com/v1alpha1"}},
		{"yaml syntax", head + "  routes: []\n  clients: x: y\n", "a.yaml:7:12", []string{"YAML syntax error", "mapping value"}},
		// yaml.v3 alone would say line 6, where the block starts.
		{"yaml indentation", head + "  routes:\n    - id: a\n      path: [\"/a/*\"]\n     upstream: {url: \"http://b\"}\n", "a.yaml:9:6",
			[]string{"YAML syntax error"}},
		{"yaml unclosed flow sequence", head + "  routes:\n    - id: a\n      path: [\"/a/*\"\n      upstream: {url: \"http://b\"}\n", "a.yaml:9:7",
			[]string{"YAML syntax error", "']'"}},
		{"document not a mapping", "- a\n- b\n", "a.yaml:1:1", []string{"document must be a mapping", "not a list"}},
		// yaml.v3 names no line for a character it does not read.
		{"NUL byte", head + "  routes:\n    - id: r\n      path: /x\x00y\n", "a.yaml:8:15",
			[]string{"the control character U+0000 (NUL) is not allowed in YAML; remove it"}},
		{"escape character after a CRLF line", strings.ReplaceAll(head, "\n", "\r\n") + "  routes: [] # \x1b[0m\r\n", "a.yaml:6:16",
			[]string{"the control character U+001B (ESC) is not allowed in YAML"}},
		{"not UTF-8", head + "  routes: [] # caf\xe9\n", "a.yaml:6:19",
			[]string{"the byte 0xE9 here is not part of a UTF-8 character; save the file as UTF-8"}},

		{"port out of range", head + "  listeners:\n    - name: a\n      port: 70000\n", "a.yaml:8:13",
			[]string{"listener port must be a whole number from 1 to 65535, not 70000"}},
		{"port not a number", head + "  listeners:\n    - name: a\n      port: http\n", "a.yaml:8:13",
			[]string{`listener port must be a whole number from 1 to 65535, not "http"`}},
		{"port beyond any integer", head + "  listeners:\n    - name: a\n      port: 99999999999999999999\n", "a.yaml:8:13",
			[]string{"listener port must be a whole number from 1 to 65535, not 99999999999999999999"}},
		{"port with spaces from a variable", head + "  listeners:\n    - name: a\n      port: $env.FLEXGATE_TEST_SPACED\n", "a.yaml:8:13",
			[]string{`listener port must be a whole number from 1 to 65535, not " -3"; remove the spaces around the value`}},
		{"port in hexadecimal", head + "  listeners:\n    - name: a\n      port: 0x1F90\n", "a.yaml:8:13",
			[]string{`listener port must be a whole number from 1 to 65535, not "0x1F90"`}},
		{"maxConnections in exponent form", route("        url: http://b\n        maxConnections: 1e30\n"), "a.yaml:11:25",
			[]string{`upstream maxConnections must be a whole number from 1 to 2147483647, not "1e30"`}},
		{"limits maxConnections beyond any integer", head + "  limits:\n    maxConnections: 99999999999999999999999\n", "a.yaml:7:21",
			[]string{"limits maxConnections must be a whole number from 0 to 2147483647 (0: the default, 10000), not 99999999999999999999999"}},
		{"no listener name", head + "  listeners:\n    - port: 80\n", "a.yaml:7:7", []string{"listener has no name"}},
		{"bad protocol", head + "  listeners:\n    - name: a\n      port: 80\n      protocol: tcp\n", "a.yaml:9:17",
			[]string{`protocol "tcp"`, "HTTP or HTTPS"}},
		{"https without tls", head + "  listeners:\n    - name: a\n      port: 443\n      protocol: HTTPS\n", "a.yaml:9:17",
			[]string{"HTTPS listener", "no tls", "certFile"}},
		{"http with tls", head + "  listeners:\n    - name: a\n      port: 80\n      protocol: HTTP\n      tls: {certificates: [{certFile: c, keyFile: k}]}\n",
			"a.yaml:10:12", []string{"HTTP listener", "protocol: HTTPS"}},
		{"tls passthrough", head + "  listeners:\n    - name: a\n      port: 443\n      tls:\n        mode: PASSTHROUGH\n        certificates: [{certFile: c, keyFile: k}]\n",
			"a.yaml:10:15", []string{`"PASSTHROUGH"`, "only TERMINATE is supported"}},
		{"tls without certificates", head + "  listeners:\n    - name: a\n      port: 443\n      tls:\n        certificates: []\n",
			"a.yaml:10:23", []string{"at least one certificate"}},
		{"certificate without key", head + "  listeners:\n    - name: a\n      port: 443\n      tls:\n        certificates:\n          - certFile: c\n",
			"a.yaml:11:13", []string{"no keyFile"}},
		{"tls minVersion", head + "  listeners:\n    - name: a\n      port: 443\n      tls:\n        minVersion: \"1.1\"\n        certificates: [{certFile: c, keyFile: k}]\n",
			"a.yaml:10:21", []string{`minVersion "1.1"`, `"1.2" or "1.3"`}},
		{"address with port", head + "  listeners:\n    - name: a\n      port: 80\n      address: 0.0.0.0:80\n", "a.yaml:9:16",
			[]string{"without a port", "port:"}},
		{"duplicate listener name", head + "  listeners:\n    - {name: a, port: 80}\n    - {name: a, port: 81}\n", "a.yaml:8:14",
			[]string{`listener name "a"`, "already used at ", "a.yaml:7:14"}},
		{"duplicate listener port", head + "  listeners:\n    - {name: a, port: 80}\n    - {name: b, port: 80}\n", "a.yaml:8:23",
			[]string{"port 80", "already used", "a.yaml:7:23"}},
		{"wildcard and a named address on one port", head + "  listeners:\n    - {name: a, port: 80, address: 0.0.0.0}\n    - {name: b, port: 80, address: 127.0.0.1}\n", "a.yaml:8:23",
			[]string{"port 80", "already used", "a.yaml:7:23"}},

		{"route without id", head + "  routes:\n    - path: /x\n      upstream: {url: http://b}\n", "a.yaml:7:7", []string{"route has no id"}},
		{"route without path", head + "  routes:\n    - id: r\n      upstream: {url: http://b}\n", "a.yaml:7:7",
			[]string{`route "r" has no path`}},
		{"route with empty path list", head + "  routes:\n    - id: r\n      path: []\n      upstream: {url: http://b}\n", "a.yaml:8:13",
			[]string{"empty path list"}},
		{"route without upstream", head + "  routes:\n    - id: r\n      path: /x\n", "a.yaml:7:7", []string{"no upstream"}},
		{"upstream without url", route("        host: x\n"), "a.yaml:10:9", []string{"upstream has no url"}},
		{"unknown method", head + "  routes:\n    - id: r\n      path: /x\n      methods: [GET, FETCH]\n      upstream: {url: http://b}\n",
			"a.yaml:9:22", []string{`unknown HTTP method "FETCH"`, "GET HEAD"[:3], "TRACE"}},
		{"methods not a list", head + "  routes:\n    - id: r\n      path: /x\n      methods: GET\n      upstream: {url: http://b}\n",
			"a.yaml:9:16", []string{"route methods must be a list"}},
		{"path is a mapping", head + "  routes:\n    - id: r\n      path: {a: b}\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{"route path must be a list of strings, not a mapping"}},
		{"url scheme", route("        url: ftp://b\n"), "a.yaml:10:14", []string{`"ftp://b"`, "http:// or https://"}},
		{"url without scheme", route("        url: backend:8080\n"), "a.yaml:10:14", []string{"http:// or https://"}},
		{"url without host", route("        url: http:///x\n"), "a.yaml:10:14", []string{"no host"}},
		{"url with query", route("        url: http://b/x?a=1\n"), "a.yaml:10:14", []string{"must not have a query"}},
		{"url with fragment", route("        url: http://b/x#f\n"), "a.yaml:10:14", []string{"fragment"}},
		{"url with userinfo", route("        url: http://u:p@b/x\n"), "a.yaml:10:14", []string{"user info"}},
		{"url with bad port", route("        url: http://b:0\n"), "a.yaml:10:14", []string{"invalid port"}},
		{"duration without unit", route("        url: http://b\n        connectTimeout: 30\n"), "a.yaml:11:25",
			[]string{"connectTimeout", "duration with a unit", `"30"`}},
		{"negative duration", route("        url: http://b\n        responseTimeout: -1s\n"), "a.yaml:11:26",
			[]string{"responseTimeout", "positive"}},
		{"duration of a nanosecond", route("        url: http://b\n        connectTimeout: 1ns\n"), "a.yaml:11:25",
			[]string{"connectTimeout", "shorter than a millisecond", "1ms"}},
		{"duration of centuries", route("        url: http://b\n        responseTimeout: 2562047h\n"), "a.yaml:11:26",
			[]string{"responseTimeout", "longer than a week", "168h"}},
		{"duration longer than Go holds", route("        url: http://b\n        responseTimeout: 99999999999999h\n"), "a.yaml:11:26",
			[]string{`upstream responseTimeout "99999999999999h" is longer than a week; use at most 168h`}},
		{"negative duration longer than Go holds", route("        url: http://b\n        responseTimeout: -99999999999999h\n"), "a.yaml:11:26",
			[]string{`upstream responseTimeout must be positive, not "-99999999999999h"`}},
		{"maxConnections zero", route("        url: http://b\n        maxConnections: 0\n"), "a.yaml:11:25",
			[]string{"upstream maxConnections must be a whole number from 1 to 2147483647, not 0"}},
		{"insecureSkipVerify not bool", route("        url: https://b\n        insecureSkipVerify: yes\n"), "a.yaml:11:29",
			[]string{"insecureSkipVerify", "true or false"}},
		{"caFile on http", route("        url: http://b\n        caFile: ca.pem\n"), "a.yaml:11:17",
			[]string{"caFile", "only to https"}},
		{"bad size", head + "  routes:\n    - id: r\n      path: /x\n      maxRequestBodySize: 10 megs\n      upstream: {url: http://b}\n",
			"a.yaml:9:27", []string{"maxRequestBodySize", "10MiB", `"10 megs"`}},
		{"wrong type is reported at the value", head + "  routes:\n    - id: [r]\n      path: /x\n      upstream: {url: http://b}\n",
			"a.yaml:7:11", []string{"route id must be a string, not a list"}},

		{"pattern without slash", head + "  routes:\n    - id: r\n      path: api/*\n      upstream: {url: http://b}\n", "a.yaml:8:13",
			[]string{`"api/*"`, "start with /"}},
		{"pattern with partial star", head + "  routes:\n    - id: r\n      path: [/ok, /a*b]\n      upstream: {url: http://b}\n",
			"a.yaml:8:19", []string{`"/a*b"`, "* must be a whole segment"}},
		{"pattern with a {template}", head + "  routes:\n    - id: r\n      path: [/ok, \"/api/{id}/secret\"]\n      upstream: {url: http://b}\n",
			"a.yaml:8:19", []string{`"/api/{id}/secret"`, `segment "{id}" is a path template`, "(/api/*/secret)", "%7B"}},
		{"pattern with a :template", head + "  routes:\n    - id: r\n      path: /api/:id/secret\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`segment ":id" is a path template`, "(/api/*/secret)"}},
		{"pattern with a {template} in a segment", head + "  routes:\n    - id: r\n      path: /files/{name}.pdf\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`segment "{name}.pdf" is a path template`, "(/files/*)"}},
		{"pattern with empty segment", head + "  routes:\n    - id: r\n      path: /a//b\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`"/a//b"`, "empty segment"}},
		{"pattern with dot dot", head + "  routes:\n    - id: r\n      path: /a/../b\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`"/a/../b"`, `".."`}},
		{"pattern with query", head + "  routes:\n    - id: r\n      path: /a?b=1\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`"/a?b=1"`, "query"}},
		{"duplicate route id", head + "  routes:\n    - id: r\n      path: /a\n      upstream: {url: http://b}\n    - id: r\n      path: /b\n      upstream: {url: http://b}\n",
			"a.yaml:10:11", []string{`route id "r"`, "already used at", "a.yaml:7:11", "unique"}},
		{"ambiguous routes", head + "  routes:\n    - id: r1\n      path: /a/*\n      methods: [GET, POST]\n      upstream: {url: http://b}\n    - id: r2\n      path: [/b, /a/*]\n      upstream: {url: http://b}\n",
			"a.yaml:12:18", []string{`route "r2"`, `"/a/*"`, "GET, POST", "ambiguous", `route "r1"`, "a.yaml:8:13"}},

		{"policy with two keys", route("        url: http://b\n      policies:\n        - rate-limiting:\n          limit: 1\n"), "a.yaml:12:11",
			[]string{"exactly one key", "rate-limiting, limit", "indented"}},
		{"policy params not a mapping", route("        url: http://b\n      policies:\n        - rate-limiting: 5\n"), "a.yaml:12:11",
			[]string{`policy "rate-limiting"`, "parameters must be a mapping", `"5"`}},
		{"policy entry is a list", route("        url: http://b\n      policies:\n        - [a, b]\n"), "a.yaml:12:11",
			[]string{"policy entry must not be a list"}},

		{"trusted proxy", head + "  trustedProxies: [10.0.0.0/8, 10.0.0.300]\n", "a.yaml:6:32",
			[]string{`"10.0.0.300"`, "not an IP address or CIDR"}},
		{"client with both secrets", head + "  clients:\n    - id: c\n      secret: s\n      secretHash: sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n",
			"a.yaml:9:19", []string{"both secret and secretHash"}},
		{"client without secret", head + "  clients:\n    - id: c\n", "a.yaml:7:7", []string{`client "c" has no secret`}},
		{"client bad hash", head + "  clients:\n    - id: c\n      secretHash: md5:abc\n", "a.yaml:8:19",
			[]string{"secretHash", "sha256:", "64 hex digits"}},
		{"duplicate client", head + "  clients:\n    - {id: c, secret: a}\n    - {id: c, secret: b}\n", "a.yaml:8:12",
			[]string{`client id "c"`, "already used at", "a.yaml:7:12"}},
		{"limits bad duration", head + "  limits:\n    idleTimeout: forever\n", "a.yaml:7:18",
			[]string{"idleTimeout", "duration"}},
		{"limits unknown field", head + "  limits:\n    maxBody: 1\n", "a.yaml:7:5",
			[]string{`unknown field "maxBody"`, "maxHeaderSize", "maxRequestBodySize", "pathParameters"}},
		{"limits pathParameters", head + "  limits:\n    pathParameters: allow\n", "a.yaml:7:21",
			[]string{`pathParameters "allow" is not supported`, "use reject", "or strip"}},
		{"path with a parameter", head + "  routes:\n    - id: r\n      path: [/ok, \"/a;jsessionid=1/b\"]\n      upstream: {url: http://b}\n",
			"a.yaml:8:19", []string{`route path "/a;jsessionid=1/b" is invalid`, "must not contain ';' or %3B", "pathParameters: strip"}},
		{"path with an encoded parameter", head + "  routes:\n    - id: r\n      path: /a%3bb\n      upstream: {url: http://b}\n",
			"a.yaml:8:13", []string{`route path "/a%3bb" is invalid`, "must not contain ';' or %3B"}},
		{"limits negative per-client connections", head + "  limits:\n    maxConnectionsPerClient: -1\n", "a.yaml:7:30",
			[]string{"maxConnectionsPerClient must be a whole number from 0 to 2147483647 (0: no per-client limit; the default is 256), not -1"}},

		{"unset env", route("        url: http://b\n        host: $env.FLEXGATE_TEST_UNSET\n"), "a.yaml:11:15",
			[]string{"FLEXGATE_TEST_UNSET", "not set", "set it"}},
		{"unset env inside text", route("        url: http://b\n        host: \"pre-$env.FLEXGATE_TEST_UNSET\"\n"),
			"a.yaml:11:15", []string{"FLEXGATE_TEST_UNSET", "not set"}},
		{"env without name", route("        url: http://b\n        host: a$env.\n"), "a.yaml:11:15",
			[]string{"$env.", "variable name"}},
	}
	os.Unsetenv("FLEXGATE_TEST_UNSET")
	t.Setenv("FLEXGATE_TEST_SPACED", " -3")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectOne(t, loadErrors(t, "a.yaml", c.src), c.pos, c.words...)
		})
	}
}

func TestLoadCollectsAllErrors(t *testing.T) {
	got := loadErrors(t,
		"a.yaml", head+"  listeners:\n    - {name: a, port: 0}\n  routes:\n    - id: r\n      path: x\n      upstream: {url: ftp://b}\n",
		"b.yaml", "kind: Service\n")
	want := []string{"a.yaml:7:23:", "a.yaml:10:13:", "a.yaml:11:23:", "b.yaml:1:1:", "b.yaml:1:7:"}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("error %d = %q, want it at %s", i, got[i], w)
		}
	}
}

func TestLoadMergesFiles(t *testing.T) {
	cfg := mustLoad(t,
		"a.yaml", head+"  listeners: [{name: web, port: 8080}]\n  routes:\n    - {id: a, path: /a, upstream: {url: http://a}}\n---\n"+
			"# only a comment\n---\n"+
			strings.Replace(head, "name: t", "name: second", 1)+"  routes:\n    - {id: b, path: /b, upstream: {url: http://b}, policies: [p1, p2]}\n",
		"b.yaml", head+"  routes:\n    - {id: c, path: /c, methods: [POST], upstream: {url: http://c}}\n  clients: [{id: x, secret: y}]\n")
	var ids []string
	for _, r := range cfg.Routes {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("routes = %v", ids)
	}
	if cfg.Name != "t" || len(cfg.Listeners) != 1 || len(cfg.Clients) != 1 {
		t.Errorf("config = %+v", cfg)
	}
	if len(cfg.Sources) != 2 ||
		!strings.HasSuffix(cfg.Sources[0].Summary, `a.yaml: Gateway "t": 1 listener, 1 route, 0 policies; Gateway "second": 0 listeners, 1 route, 2 policies`) ||
		!strings.HasSuffix(cfg.Sources[1].Summary, `b.yaml: Gateway "t": 0 listeners, 1 route, 0 policies`) {
		t.Errorf("sources = %+v", cfg.Sources)
	}
	if cfg.Routes[1].Pos.Line != 18 || cfg.Routes[2].Pos.File != cfg.Sources[1].Path {
		t.Errorf("route positions: %s, %s", cfg.Routes[1].Pos, cfg.Routes[2].Pos)
	}
}

func TestLoadDuplicatesAcrossFiles(t *testing.T) {
	r := "  routes:\n    - id: shared\n      path: /p\n      upstream: {url: http://b}\n"
	got := loadErrors(t,
		"a.yaml", head+"  listeners: [{name: web, port: 8080}]\n"+r,
		"b.yaml", head+"  listeners: [{name: web, port: 8081}]\n"+strings.Replace(r, "/p", "/q", 1))
	want := []string{
		`b.yaml:6:22: listener name "web" is already used at `,
		`b.yaml:8:11: route id "shared" is already used at `,
	}
	if len(got) != 2 {
		t.Fatalf("got:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
		}
	}
	if !strings.Contains(got[0], "a.yaml:6:22") || !strings.Contains(got[1], "a.yaml:8:11") {
		t.Errorf("errors do not name the first place:\n%s", strings.Join(got, "\n"))
	}
}

func TestLoadLimitsAcrossDocuments(t *testing.T) {
	same := head + "  limits: {readTimeout: 5s}\n"
	routed := same + "  routes: [{id: r, path: /x, upstream: {url: http://b}}]\n"
	cfg := mustLoad(t, "a.yaml", routed, "b.yaml", same)
	if cfg.Limits.ReadTimeout != 5*time.Second || cfg.Limits.IdleTimeout != DefaultLimits.IdleTimeout {
		t.Errorf("limits = %+v", cfg.Limits)
	}
	got := loadErrors(t, "a.yaml", same, "b.yaml", head+"  limits: {readTimeout: 6s}\n")
	expectOne(t, got, "b.yaml:6:3", "limits differ", "a.yaml:6:3")
}

func TestLoadPatterns(t *testing.T) {
	ok := []string{"/", "/*", "/api/v1/*", "/api/*/orders", "/api/", "/a/*/b/*", "/%20x"}
	for _, p := range ok {
		if why := checkPattern(p); why != "" {
			t.Errorf("%q rejected: %s", p, why)
		}
	}
	bad := []string{"", "api", "/a//b", "/a/./b", "/..", "/a*", "/*x/b", "/a?x", "/a#x", "/a b"}
	for _, p := range bad {
		if checkPattern(p) == "" {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestLoadAmbiguityNeedsOverlap(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`  routes:
    - {id: r1, path: /a, methods: [GET], upstream: {url: http://b}}
    - {id: r2, path: /a, methods: [POST], upstream: {url: http://b}}
    - {id: r3, path: /a/, upstream: {url: http://b}}
`)
	if len(cfg.Routes) != 3 {
		t.Errorf("routes = %d", len(cfg.Routes))
	}
	got := loadErrors(t, "a.yaml", head+`  routes:
    - {id: r1, path: /a, methods: [GET], upstream: {url: http://b}}
    - {id: r2, path: /a, upstream: {url: http://b}}
`)
	expectOne(t, got, "a.yaml:8:22", "ambiguous", `"r1"`, "GET")
}

func TestLoadPaths(t *testing.T) {
	_, err := Load([]string{"/nonexistent/flexgate.yaml"})
	expectOne(t, errorLines(t, err, "\x00"), "/nonexistent/flexgate.yaml", "does not exist")

	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "README.md"), []byte("x"), 0o644)
	_, err = Load([]string{empty})
	expectOne(t, errorLines(t, err, "\x00"), empty, "no *.yaml or *.yml files")

	_, err = Load(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "no config files given") {
		t.Errorf("Load(nil) = %v", err)
	}
}

// TestLoadConfigMapDirectory builds the layout kubelet makes for a mounted
// ConfigMap: files live in a timestamped directory, ..data points at it and
// the visible names are symlinks through ..data.
func TestLoadConfigMapDirectory(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_01_04_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"b-routes.yaml":   head + "  routes:\n    - {id: b, path: /b, upstream: {url: http://b}}\n",
		"a-listeners.yml": head + "  listeners: [{name: web, port: 8080}]\n  routes:\n    - {id: a, path: /a, upstream: {url: http://a}}\n",
		"notes.txt":       "not yaml",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")))
	for name := range files {
		must(os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	}
	// Hidden files and directories are not read, even with a YAML name;
	// other subdirectories are, after the files named before them.
	must(os.WriteFile(filepath.Join(dir, ".hidden.yaml"), []byte("kind: Broken\n"), 0o644))
	must(os.Mkdir(filepath.Join(dir, ".git"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".git", "c.yaml"), []byte("kind: Broken\n"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub.yaml", "c.yaml"), []byte(head+"  routes:\n    - {id: c, path: /c, upstream: {url: http://c}}\n"), 0o644))

	cfg, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 3 || cfg.Routes[0].ID != "a" || cfg.Routes[1].ID != "b" || cfg.Routes[2].ID != "c" {
		t.Errorf("routes = %+v", cfg.Routes)
	}
	if len(cfg.Sources) != 3 || cfg.Sources[0].Path != filepath.Join(dir, "a-listeners.yml") {
		t.Errorf("sources = %+v", cfg.Sources)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
	if got, want := WatchDirs([]string{dir}), []string{dir, filepath.Join(dir, "sub.yaml")}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("WatchDirs = %q, want %q", got, want)
	}

	// Naming a file of the directory again does not read it twice.
	again, err := Load([]string{dir, filepath.Join(dir, "b-routes.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash != cfg.Hash {
		t.Errorf("hash changed when a file was named twice")
	}
}

// TestLoadSymlinkLoop: a symlink back to a directory being read is
// followed no further, with a warning; a symlink to a directory outside is
// read like a subdirectory.
func TestLoadSymlinkLoop(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(head+"  routes:\n    - {id: a, path: /a, upstream: {url: http://a}}\n"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(os.Symlink("..", filepath.Join(dir, "sub", "loop")))
	must(os.WriteFile(filepath.Join(outside, "b.yaml"), []byte(head+"  routes:\n    - {id: b, path: /b, upstream: {url: http://b}}\n"), 0o644))
	must(os.Symlink(outside, filepath.Join(dir, "sub", "linked")))
	cfg, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[1].ID != "b" {
		t.Errorf("routes = %+v", cfg.Routes)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Pos.File != filepath.Join(dir, "sub", "loop") ||
		!strings.Contains(cfg.Warnings[0].Message, "a directory already read") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
}

func TestLoadHash(t *testing.T) {
	const routes = "  routes: [{id: r, path: /x, upstream: {url: http://b}}]"
	dir, paths := writeFiles(t, "a.yaml", head+routes+"\n")
	first, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := Load(paths)
	if first.Hash != second.Hash {
		t.Error("hash differs for the same files")
	}
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(head+routes+" # edited\n"), 0o644)
	third, _ := Load(paths)
	if third.Hash == first.Hash {
		t.Error("hash did not change with the content")
	}
}

func TestLoadMethodLists(t *testing.T) {
	route := func(methods string) string {
		return head + "  routes:\n    - id: r\n      path: /x\n      methods: " + methods + "\n      upstream: {url: http://b}\n"
	}
	expectOne(t, loadErrors(t, "a.yaml", route("[]")), "a.yaml:9:16", "methods is empty", "remove methods")
	expectOne(t, loadErrors(t, "a.yaml", route("[GET, get]")), "a.yaml:9:22", "listed twice")
	expectOne(t, loadErrors(t, "a.yaml", route("[GET, CONNECT]")), "a.yaml:9:22", "CONNECT cannot be routed", "remove it")
}

func TestLoadRefusesAnEmptyConfig(t *testing.T) {
	got := loadErrors(t, "a.yaml", "# only a comment\n---\n")
	expectOne(t, got, "a.yaml", "holds no document", "kind: Gateway")
	got = loadErrors(t, "a.yaml", head+"  listeners: [{name: web, port: 8080}]\n")
	if len(got) != 1 || !strings.Contains(got[0], "the config has no routes") {
		t.Errorf("a config without routes: %q", got)
	}
}

func TestLoadErrorsInReadingOrder(t *testing.T) {
	// "no id" is known only after the whole route is read, yet it is
	// listed first because it sits first in the file.
	got := loadErrors(t, "a.yaml", head+"  routes:\n    - path: x\n      upstream: {url: ftp://b}\n")
	want := []string{"a.yaml:7:7: route has no id", "a.yaml:7:13: route path", "a.yaml:8:23: upstream url"}
	if len(got) != len(want) {
		t.Fatalf("got:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
		}
	}
}

// TestLoadSkippedProblemsKeepCrossChecks: a problem the decoder skips over
// (an unknown field, a list entry of the wrong type) leaves the listener,
// route or client usable, so checks against the others still run and one
// run reports those problems too.
func TestLoadSkippedProblemsKeepCrossChecks(t *testing.T) {
	f := func(name, src string, want ...string) {
		t.Helper()
		got := loadErrors(t, "a.yaml", src)
		if len(got) != len(want) {
			t.Fatalf("%s: got %d errors, want %d:\n%s", name, len(got), len(want), strings.Join(got, "\n"))
		}
		for i, w := range want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%s: error %d = %q, want prefix %q", name, i, got[i], w)
			}
		}
	}
	const r1 = "  routes:\n    - {id: r1, path: /a, upstream: {url: http://b}}\n"
	f("unknown route field", head+r1+"    - {id: r2, path: /a, upstream: {url: http://b}, bogus: 1}\n",
		`a.yaml:8:22: route "r2": path "/a" for any method is ambiguous`, `a.yaml:8:53: unknown field "bogus" in route`)
	f("bad withoutPolicies entry", head+r1+"    - {id: r2, path: /a, upstream: {url: http://b}, withoutPolicies: [[x]]}\n",
		`a.yaml:8:22: route "r2": path "/a" for any method is ambiguous`, "a.yaml:8:71: route withoutPolicies entry must be a string")
	f("policies not a list", head+r1+"    - {id: r2, path: /a, upstream: {url: http://b}, policies: x}\n",
		`a.yaml:8:22: route "r2": path "/a" for any method is ambiguous`, "a.yaml:8:63: policies must be a list")
	f("unknown upstream field", head+r1+"    - {id: r2, path: /a, upstream: {url: http://b, bogus: 1}}\n",
		`a.yaml:8:22: route "r2": path "/a" for any method is ambiguous`, `a.yaml:8:52: unknown field "bogus" in upstream`)
	f("unknown client field", head+r1+"  clients:\n    - {id: c, secret: s}\n    - {id: c, secret: t, bogus: 1}\n",
		`a.yaml:10:12: client id "c" is already used`, `a.yaml:10:26: unknown field "bogus" in client`)
	f("unknown tls field", head+r1+"  listeners:\n    - {name: a, port: 443, tls: {certificates: [], bogus: 1}}\n",
		"a.yaml:9:48: tls needs at least one certificate", `a.yaml:9:52: unknown field "bogus" in tls`)
	f("unknown limits field", head+r1+"  limits: {readTimeout: 5s, bogus: 1}\n---\n"+head+"  limits: {readTimeout: 6s}\n",
		`a.yaml:8:29: unknown field "bogus" in limits`, "a.yaml:15:3: limits differ from the limits set at ")
}

// TestDeepNestingIsRefusedCheaply: a file of a few hundred KB nesting
// flow sequences 60,000 deep (which took the error-placing parser
// gigabytes, and a reload of it the serving gateway down) is refused with
// a syntax error, in little memory.
func TestDeepNestingIsRefusedCheaply(t *testing.T) {
	const depth = 60_000
	path := filepath.Join(t.TempDir(), "deep.yaml")
	data := "x: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Load([]string{path})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "deep.yaml") || !strings.Contains(err.Error(), "YAML syntax error") {
		t.Fatalf("got %v, want a YAML syntax error naming the file", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("refusing it allocated %d MiB", alloc>>20)
	}
}
