package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestRoutePiecesOutsideGateway builds routes the way a kind that is not
// shaped like Gateway would (here: a Flex-like Service address and rules
// with one path and a method list each), from the same pieces the Gateway
// decoder uses, and gets the same checks, at the places written.
func TestRoutePiecesOutsideGateway(t *testing.T) {
	const src = `address: https://orders.internal:8443/v1/
rules:
  - {path: /orders/*, methods: [get, POST]}
  - {path: /orders/*, methods: [GET]}
  - {path: /a//b, methods: [FETCH, CONNECT, PUT, put]}
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	l := newLoader()
	d := &decoder{file: "svc.yaml", errs: &l.errs}

	up := newUpstream(d.pos(root))
	target := Target{Weight: 1}
	if !d.upstreamURL(valueOf(root, "address"), "Service address", &target) {
		t.Fatalf("address refused: %v", l.errs.err())
	}
	up.Targets = []Target{target}
	if target.Scheme != "https" || target.Host != "orders.internal:8443" || target.BasePath != "/v1" ||
		up.ConnectTimeout != DefaultConnectTimeout || up.MaxConns != DefaultMaxConns {
		t.Errorf("upstream = %+v", up)
	}

	for i, rule := range valueOf(root, "rules").Content {
		r := Route{ID: "orders-" + string(rune('a'+i)), Upstream: up, Pos: d.pos(rule)}
		m := d.mark()
		pathNode := valueOf(rule, "path")
		if d.routePath(pathNode, "rule path", pathNode.Value) {
			r.Paths = append(r.Paths, pathNode.Value)
		}
		for _, mn := range valueOf(rule, "methods").Content {
			if method, ok := d.routeMethod(mn, mn.Value, r.Methods); ok {
				r.Methods = append(r.Methods, method)
			}
		}
		l.claimRouteID(d, rule, r.ID)
		if !d.failed(m) {
			l.addRoute(d, r, []Pos{d.pos(pathNode)})
		}
	}
	want := []string{
		`svc.yaml:4:12: route "orders-b": path "/orders/*" for GET is ambiguous with route "orders-a" at svc.yaml:3:12`,
		`svc.yaml:5:12: rule path "/a//b" is invalid: it has an empty segment (//); remove the extra slash`,
		`svc.yaml:5:29: unknown HTTP method "FETCH"; known methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE`,
		`svc.yaml:5:36: method CONNECT cannot be routed`,
		`svc.yaml:5:50: method PUT is listed twice`,
	}
	err := l.errs.err()
	if err == nil {
		t.Fatal("no errors")
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
	if len(l.cfg.Routes) != 1 || l.cfg.Routes[0].ID != "orders-a" ||
		strings.Join(l.cfg.Routes[0].Methods, ",") != "GET,POST" || l.cfg.Routes[0].Upstream.URL() != "https://orders.internal:8443/v1" {
		t.Errorf("routes = %+v", l.cfg.Routes)
	}
}

// valueOf returns the value of key in mapping n, for the test above.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// TestLoadRefusesPatternsTheRouterCannotMatch: a path segment that is not
// one segment once normalised is refused where it is written, not later by
// the router without a position.
func TestLoadRefusesPatternsTheRouterCannotMatch(t *testing.T) {
	for _, p := range []string{`/a%2Fb/*`, `/c/%2e%2e/d`, `/a\\b`} {
		got := loadErrors(t, "a.yaml", head+"  routes:\n    - id: r\n      path: \""+p+"\"\n      upstream: {url: http://b}\n")
		expectOne(t, got, "a.yaml:8:13", "route path", "is invalid", "is not a plain path segment")
	}
}

// TestLoadAcceptsColonsAndEncodedBraces: a ':' inside a segment (Google's
// custom methods) and braces written as %7B/%7D are literal text, not
// templates, and load.
func TestLoadAcceptsColonsAndEncodedBraces(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`  routes:
    - id: r
      path: ["/v1/orders/*/x:cancel", "/api/%7Bid%7D/secret", "/a/b:"]
      upstream: {url: http://b}
`)
	if got := strings.Join(cfg.Routes[0].Paths, " "); got != "/v1/orders/*/x:cancel /api/%7Bid%7D/secret /a/b:" {
		t.Errorf("paths = %s", got)
	}
}

// TestLoadHostsAndHeaders: a route's hosts and headers load into the
// model, hosts in lower case, header values as written (a YAML true is the
// text "true").
func TestLoadHostsAndHeaders(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`  routes:
    - id: canary
      path: /api/*
      hosts: [API.example.com, "*.example.com"]
      headers: {x-canary: true, X-Tier: "gold"}
      upstream: {url: http://b}
    - id: stable
      path: /api/*
      hosts: www.example.org
      upstream: {url: http://b}
`)
	r := cfg.Routes[0]
	if strings.Join(r.Hosts, ",") != "api.example.com,*.example.com" {
		t.Errorf("hosts = %q", r.Hosts)
	}
	if len(r.Headers) != 2 || r.Headers[0] != (HeaderMatch{Name: "x-canary", Value: "true"}) || r.Headers[1] != (HeaderMatch{Name: "X-Tier", Value: "gold"}) {
		t.Errorf("headers = %+v", r.Headers)
	}
	if strings.Join(cfg.Routes[1].Hosts, ",") != "www.example.org" {
		t.Errorf("a single host: %q", cfg.Routes[1].Hosts)
	}
}

func TestLoadHostAndHeaderErrors(t *testing.T) {
	route := func(fields string) string {
		return head + "  routes:\n    - id: r\n      path: /a/*\n      upstream: {url: http://b}\n" + fields
	}
	for _, c := range []struct {
		fields, pos string
		words       []string
	}{
		{"      hosts: []\n", "a.yaml:10:14", []string{"hosts is empty"}},
		{"      hosts: [api.example.com:8443]\n", "a.yaml:10:15", []string{`host "api.example.com:8443" is invalid`, "port"}},
		{"      hosts: [\"api.*.com\"]\n", "a.yaml:10:15", []string{"*.example.com"}},
		{"      hosts: [a.com, A.com]\n", "a.yaml:10:22", []string{`host "A.com" is listed twice`}},
		{"      hosts: {a: b}\n", "a.yaml:10:14", []string{"route hosts must be a list of strings"}},
		{"      headers: [x-canary]\n", "a.yaml:10:16", []string{"headers must be a mapping"}},
		{"      headers: {}\n", "a.yaml:10:16", []string{"headers must be a mapping"}},
		{"      headers: {x-canary: }\n", "a.yaml:10:27", []string{`header "x-canary" must have a value`}},
		{"      headers: {x-canary: [a]}\n", "a.yaml:10:27", []string{`header "x-canary" must have a value`}},
		{"      headers: {\"x canary\": a}\n", "a.yaml:10:17", []string{`header name "x canary" is invalid`}},
		{"      headers: {x-a: a, X-A: b}\n", "a.yaml:10:25", []string{`header "X-A" is given twice`}},
		{"      headers: {x-a-b-c-d-e-f-g: a}\n", "a.yaml:10:17", []string{`header name "x-a-b-c-d-e-f-g" is invalid`, "more than 6 '-' and '_'"}},
	} {
		got := loadErrors(t, "a.yaml", route(c.fields))
		expectOne(t, got, c.pos, c.words...)
	}
}

// TestLoadAmbiguityWithHostsAndHeaders: routes of one pattern are told
// apart by hosts and headers that cannot both match, or when one narrows
// the other; otherwise they are ambiguous, at the later route.
func TestLoadAmbiguityWithHostsAndHeaders(t *testing.T) {
	ok := func(routes string) {
		t.Helper()
		mustLoad(t, "a.yaml", head+"  routes:\n"+routes)
	}
	ok(`    - {id: a, path: /x/*, hosts: [a.example.com], upstream: {url: http://b}}
    - {id: b, path: /x/*, hosts: [b.example.com], upstream: {url: http://b}}
    - {id: any, path: /x/*, upstream: {url: http://b}}
    - {id: wild, path: /x/*, hosts: ["*.example.com"], upstream: {url: http://b}}
`)
	ok(`    - {id: stable, path: /x/*, upstream: {url: http://b}}
    - {id: canary, path: /x/*, headers: {x-canary: "true"}, upstream: {url: http://b}}
    - {id: canary2, path: /x/*, headers: {x-canary: "2"}, upstream: {url: http://b}}
`)
	got := loadErrors(t, "a.yaml", head+`  routes:
    - {id: a, path: /x/*, hosts: [a.example.com], upstream: {url: http://b}}
    - {id: b, path: /x/*, headers: {x-canary: "true"}, upstream: {url: http://b}}
`)
	expectOne(t, got, "a.yaml:8:21", `route "b": path "/x/*" for any method is ambiguous with route "a" at `, "a.yaml:7:21",
		"hosts and headers of both", "x-canary")
	got = loadErrors(t, "a.yaml", head+`  routes:
    - {id: a, path: /x/*, hosts: [a.example.com], upstream: {url: http://b}}
    - {id: b, path: /x/*, hosts: [A.example.com], methods: [GET], upstream: {url: http://b}}
`)
	expectOne(t, got, "a.yaml:8:21", "ambiguous", `route "a"`, "GET")
}
