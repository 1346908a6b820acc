package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShadowWarnings: a route that takes requests away from a broader one
// and runs fewer of its policies is warned of, once per pair, at the
// narrower route; the warning names both, says what is missing and how to
// acknowledge it.
func TestShadowWarnings(t *testing.T) {
	f := func(routes string, want ...string) {
		t.Helper()
		cfg := mustLoad(t, "a.yaml", head+"  clients: [{id: c, secret: s}]\n  routes:\n"+routes)
		var got []string
		for _, w := range cfg.Warnings {
			got = append(got, strings.ReplaceAll(w.String(), filepath.Dir(cfg.Sources[0].Path)+string(filepath.Separator), ""))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	broad := `    - id: api
      path: /api/*
      upstream: {url: http://a}
      policies: [client-id-enforcement, {rate-limiting: {limit: 1, period: 1}}]
`
	f(broad+`    - id: admin
      path: [/api/admin/*, /api/admin2/*]
      upstream: {url: http://a}
`, `a.yaml:12:7: warning: route "admin" (path "/api/admin/*") takes requests that route "api" at a.yaml:8:7 (path "/api/*") `+
		`would serve, without its policies client-id-enforcement, rate-limiting; add them to route "admin", `+
		"or, if that is intended, add `withoutPolicies: [client-id-enforcement, rate-limiting]` to route \"admin\"")
	// Running the policies (with other parameters) is enough.
	f(broad + `    - id: admin
      path: /api/admin/*
      upstream: {url: http://a}
      policies: [{rate-limiting: {limit: 5, period: 1}}, request-headers-remove, client-id-enforcement]
`)
	// Acknowledged policies are not warned of; the others still are.
	f(broad+`    - id: admin
      path: /api/admin/*
      withoutPolicies: [rate-limiting]
      upstream: {url: http://a}
`, `a.yaml:12:7: warning: route "admin" (path "/api/admin/*") takes requests that route "api" at a.yaml:8:7 (path "/api/*") `+
		`would serve, without its policy client-id-enforcement; add it to route "admin", `+
		"or, if that is intended, add `withoutPolicies: [client-id-enforcement]` to route \"admin\"")
	f(broad + `    - id: admin
      path: /api/admin/*
      withoutPolicies: [rate-limiting, client-id-enforcement]
      upstream: {url: http://a}
`)
	// No method in common: the narrower route takes nothing away.
	f(strings.Replace(broad, "path: /api/*", "path: /api/*\n      methods: [GET]", 1) + `    - id: admin
      path: /api/admin/*
      methods: [DELETE]
      upstream: {url: http://a}
`)
	// Overlap without containment, or the broader route with fewer
	// policies: nothing to warn of.
	f(broad + `    - id: other
      path: /*/admin
      upstream: {url: http://a}
    - id: all
      path: /*
      upstream: {url: http://a}
`)
}

// TestShadowWarningsWithHostsAndHeaders: hosts and headers that cannot
// both match keep two routes apart; a route that narrows another of the
// same path by a header (a canary) takes its requests, and is warned of
// when it runs fewer policies.
func TestShadowWarningsWithHostsAndHeaders(t *testing.T) {
	warnings := func(routes string) []string {
		t.Helper()
		cfg := mustLoad(t, "a.yaml", head+"  clients: [{id: c, secret: s}]\n  routes:\n"+routes)
		var got []string
		for _, w := range cfg.Warnings {
			got = append(got, w.Message)
		}
		return got
	}
	broad := `    - id: api
      path: /api/*
      hosts: [api.example.com]
      upstream: {url: http://a}
      policies: [client-id-enforcement]
`
	if got := warnings(broad + `    - id: admin
      path: /api/admin/*
      hosts: [admin.example.com]
      upstream: {url: http://a}
`); len(got) != 0 {
		t.Errorf("routes for different hosts: %q", got)
	}
	for _, narrow := range []string{"", "      hosts: [\"*.example.com\"]\n"} {
		got := warnings(broad + "    - id: admin\n      path: /api/admin/*\n" + narrow + "      upstream: {url: http://a}\n")
		if len(got) != 1 || !strings.Contains(got[0], `route "admin" (path "/api/admin/*") takes requests that route "api"`) {
			t.Errorf("hosts %q: %q", narrow, got)
		}
	}
	got := warnings(`    - id: stable
      path: /api/*
      upstream: {url: http://a}
      policies: [client-id-enforcement]
    - id: canary
      path: /api/*
      headers: {x-canary: "true"}
      upstream: {url: http://b}
`)
	if len(got) != 1 || !strings.HasPrefix(got[0], `route "canary" (path "/api/*") takes requests that route "stable"`) ||
		!strings.Contains(got[0], "without its policy client-id-enforcement") {
		t.Errorf("canary: %q", got)
	}
}

func TestWithoutPoliciesContradiction(t *testing.T) {
	got := loadErrors(t, "a.yaml", head+`  clients: [{id: c, secret: s}]
  routes:
    - id: r
      path: /x
      upstream: {url: http://a}
      policies: [client-id-enforcement]
      withoutPolicies: [client-id-enforcement]
`)
	expectOne(t, got, "a.yaml:12:25", `route "r" runs policy "client-id-enforcement" and also lists it in withoutPolicies`)
}

// BenchmarkLoadManyRoutes measures Load of a config with 10,000 routes that
// all shadow a catch-all with a policy: the shadowing check must not make
// it slow.
func BenchmarkLoadManyRoutes(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(head + "  clients: [{id: c, secret: s}]\n  routes:\n")
	sb.WriteString("    - {id: all, path: /*, upstream: {url: http://a}, policies: [client-id-enforcement]}\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "    - {id: r%d, path: /svc%d/v1/*, upstream: {url: http://a}}\n", i, i)
	}
	paths := []string{filepath.Join(b.TempDir(), "a.yaml")}
	if err := os.WriteFile(paths[0], []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load(paths)
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Warnings) != 10000 {
			b.Fatalf("%d warnings, want 10000", len(cfg.Warnings))
		}
	}
}

// TestShadowWarningsNeedACommonListener: routes served on different
// listeners (the ports of two Flex ApiInstances) never take each other's
// requests, so a narrower pattern on one port is not warned of.
func TestShadowWarningsNeedACommonListener(t *testing.T) {
	broad := Route{ID: "broad", Paths: []string{"/*"}, Listeners: []string{"a"},
		Policies: []PolicySpec{{Name: "rate-limiting"}}, Pos: Pos{File: "a.yaml", Line: 1}}
	narrow := Route{ID: "narrow", Paths: []string{"/x/*"}, Listeners: []string{"b"}, Pos: Pos{File: "a.yaml", Line: 2}}
	if ws := shadowWarnings([]Route{broad, narrow}); len(ws) != 0 {
		t.Errorf("routes on different listeners: %v", ws)
	}
	narrow.Listeners = []string{"b", "a"}
	if ws := shadowWarnings([]Route{broad, narrow}); len(ws) != 1 {
		t.Errorf("routes sharing listener a: %v", ws)
	}
	narrow.Listeners = nil
	if ws := shadowWarnings([]Route{broad, narrow}); len(ws) != 1 {
		t.Errorf("a route on every listener: %v", ws)
	}
}
