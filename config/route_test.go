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
