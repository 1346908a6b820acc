package proxy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// vhostSetup sends raw requests to a gateway in front of named upstreams.
type vhostSetup struct {
	t    *testing.T
	addr string
	ups  map[string]*proxytest.Upstream
}

// send sends one raw request and says what the gateway answered, which
// upstream received it ("" when none did) and what that upstream saw.
func (s *vhostSetup) send(raw string) (*fasthttp.Response, string, proxytest.Recorded) {
	s.t.Helper()
	before := map[string]int64{}
	for name, up := range s.ups {
		before[name] = up.Count.Load()
	}
	resp, conn, _ := rawRequest(s.t, s.addr, raw)
	conn.Close()
	for name, up := range s.ups {
		if up.Count.Load() != before[name] {
			return resp, name, up.Last(s.t)
		}
	}
	return resp, "", proxytest.Recorded{}
}

// TestVirtualHosts: kind: Gateway routes with hosts and headers. The most
// specific path still decides first; among the routes of one path, hosts
// and headers pick the route, narrower ones first; a route whose hosts or
// headers do not match is as if absent (never a 405 of its own), and with
// nothing left the answer is the gateway's JSON 404.
func TestVirtualHosts(t *testing.T) {
	ups := map[string]*proxytest.Upstream{}
	for _, name := range []string{"a", "wild", "canary", "default", "admin"} {
		ups[name] = proxytest.StartUpstream(t)
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: a
      path: /api/*
      hosts: [a.example.com]
      upstream: {url: "%s"}
    - id: wild
      path: /api/*
      hosts: ["*.example.com"]
      upstream: {url: "%s"}
    - id: canary
      path: /api/*
      hosts: [other.org]
      headers: {x-canary: true}
      upstream: {url: "%s"}
    - id: default
      path: /api/*
      upstream: {url: "%s"}
    - id: admin
      path: /api/admin/*
      hosts: [a.example.com]
      methods: [GET]
      upstream: {url: "%s"}
    - id: only-b
      path: /b/*
      hosts: [b.example.org]
      upstream: {url: "%s"}
`, ups["a"].URL, ups["wild"].URL, ups["canary"].URL, ups["default"].URL, ups["admin"].URL, ups["default"].URL))
	s := &vhostSetup{t: t, addr: strings.TrimPrefix(gw.URL, "http://"), ups: ups}

	for _, c := range []struct {
		name, raw, upstream, host string
		status                    int
		reason                    string
	}{
		{"exact host", "GET /api/x HTTP/1.1\r\nHost: A.Example.com:8080\r\n\r\n", "a", "A.Example.com:8080", 200, ""},
		{"wildcard host", "GET /api/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "wild", "www.example.com", 200, ""},
		{"host with a trailing dot", "GET /api/x HTTP/1.1\r\nHost: a.example.com.\r\n\r\n", "a", "a.example.com.", 200, ""},
		{"canary for another host", "GET /api/x HTTP/1.1\r\nHost: a.example.com\r\nX-Canary: true\r\n\r\n", "a", "", 200, ""},
		{"canary", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX-Canary: true\r\n\r\n", "canary", "", 200, ""},
		{"canary off", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX-Canary: yes\r\n\r\n", "default", "", 200, ""},
		{"other host", "GET /api/x HTTP/1.1\r\nHost: other.org\r\n\r\n", "default", "", 200, ""},
		{"narrower path", "GET /api/admin/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "admin", "", 200, ""},
		// The narrower path whose host matches decides: 405, not the
		// broader routes.
		{"method", "POST /api/admin/x HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 0\r\n\r\n", "", "", 405, "method_not_allowed"},
		// Its host does not match: the broader routes decide.
		{"host mismatch is no 405", "POST /api/admin/x HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\n\r\n", "wild", "", 200, ""},
		{"no host left", "GET /b/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "", "", 404, "no_route"},
		{"no Host at all", "GET /b/x HTTP/1.0\r\n\r\n", "", "", 404, "no_route"},
		// An absolute-form target names the host: it routes, and the
		// upstream gets it as Host, whatever Host header came with it.
		{"absolute form", "GET http://a.example.com/api/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "a", "a.example.com", 200, ""},
		{"absolute form with a port", "GET http://www.example.com:81/api/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "wild", "www.example.com:81", 200, ""},
		{"absolute form with userinfo", "GET http://a.example.com@b.example.org/b/x HTTP/1.1\r\nHost: b.example.org\r\n\r\n", "default", "b.example.org", 200, ""},
		// The authority of an absolute-form target ends at '?': the path
		// is empty, "/", and "/api/x" belongs to the query.
		{"absolute form with a query and no path", "GET http://a.example.com?x=1/api/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "", "", 404, "no_route"},
		// A Host that is no host[:port] would miss a.example.com's route
		// and reach another's upstream, which may read a host out of it.
		{"host with userinfo", "GET /api/x HTTP/1.1\r\nHost: x@a.example.com\r\n\r\n", "", "", 400, "bad_request"},
		{"host before userinfo", "GET /api/x HTTP/1.1\r\nHost: a.example.com@x\r\n\r\n", "", "", 400, "bad_request"},
		{"host with an empty label", "GET /api/x HTTP/1.1\r\nHost: a.example.com..\r\n\r\n", "", "", 400, "bad_request"},
		{"host with a path", "GET /api/x HTTP/1.1\r\nHost: a.example.com/x\r\n\r\n", "", "", 400, "bad_request"},
		{"host with a bad port", "GET /api/x HTTP/1.1\r\nHost: a.example.com:80x\r\n\r\n", "", "", 400, "bad_request"},
		{"absolute form with a bad host", "GET http://a.example.com..:80/api/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "", "", 400, "bad_request"},
		{"two hosts", "GET /api/x HTTP/1.1\r\nHost: b.example.org\r\nHost: a.example.com\r\n\r\n", "", "", 400, "bad_request"},
		{"IPv6 literal host", "GET /api/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "default", "[::1]:8080", 200, ""},
		{"bad IPv6 literal host", "GET /api/x HTTP/1.1\r\nHost: [::1%eth0]\r\n\r\n", "", "", 400, "bad_request"},
		// HTTP/1.x only: fasthttp reads any HTTP/d.d.
		{"HTTP/2.0 request line", "GET /api/x HTTP/2.0\r\nHost: a.example.com\r\n\r\n", "", "", 505, "http_version_not_supported"},
		{"HTTP/0.9 request line", "GET /api/x HTTP/0.9\r\nHost: a.example.com\r\n\r\n", "", "", 505, "http_version_not_supported"},
		{"HTTP/1.0 request line", "GET /api/x HTTP/1.0\r\nHost: a.example.com\r\n\r\n", "a", "", 200, ""},
		// A header the routes read, in another spelling that CGI-style
		// upstreams read as it, or twice (upstreams read the first, the
		// last or both): refused, not routed by the copy the rule reads.
		{"canary as X_Canary", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX_Canary: true\r\n\r\n", "", "", 400, "ambiguous_header"},
		{"canary beside X_Canary", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX-Canary: yes\r\nX_Canary: true\r\n\r\n", "", "", 400, "ambiguous_header"},
		{"canary twice", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX-Canary: yes\r\nX-Canary: true\r\n\r\n", "", "", 400, "ambiguous_header"},
		{"canary in other case", "GET /api/x HTTP/1.1\r\nHost: other.org\r\nX-CANARY: true\r\n\r\n", "canary", "", 200, ""},
	} {
		resp, up, rec := s.send(c.raw)
		if resp.StatusCode() != c.status || up != c.upstream || string(resp.Header.Peek("X-Flexgate-Error")) != c.reason {
			t.Errorf("%s: %d %q from upstream %q, want %d %q from %q: %s", c.name, resp.StatusCode(),
				resp.Header.Peek("X-Flexgate-Error"), up, c.status, c.reason, c.upstream, resp.Body())
			continue
		}
		if c.host != "" && !strings.EqualFold(rec.Host, c.host) {
			t.Errorf("%s: the upstream saw Host %q, want %q", c.name, rec.Host, c.host)
		}
		if c.status == 404 && !strings.Contains(string(resp.Body()), `"reason":"no_route"`) {
			t.Errorf("%s: body %s", c.name, resp.Body())
		}
		if c.status == 405 && string(resp.Header.Peek("Allow")) != "GET, HEAD" {
			t.Errorf("%s: Allow %q", c.name, resp.Header.Peek("Allow"))
		}
	}
}

// TestPolicyRuleHeaders: a Flex policy whose rules read a header applies
// to the requests that carry it as the rule says; a request carrying it in
// another spelling (which CGI-style upstreams read as the header) or twice
// is refused, not passed without the policy.
func TestPolicyRuleHeaders(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: shop
spec:
  address: http://0.0.0.0:8081/shop
  services:
    backend:
      address: %s
  policies:
    - policyRef: {name: header-injection-flex}
      rules: [{headers: {x-api-version: "2"}}]
      config:
        inboundHeaders: [{key: x-v2-checked, value: "yes"}]
`, up.URL))
	s := &vhostSetup{t: t, addr: strings.TrimPrefix(gw.URL, "http://"), ups: map[string]*proxytest.Upstream{"up": up}}
	for _, c := range []struct {
		name, headers string
		status        int
		checked       string
	}{
		{"version 2", "X-Api-Version: 2\r\n", 200, "yes"},
		{"version 1", "X-Api-Version: 1\r\n", 200, ""},
		{"none", "", 200, ""},
		{"version 2 as X_Api_Version", "X_Api_Version: 2\r\n", 400, ""},
		{"version 1 beside X_Api_Version 2", "X-Api-Version: 1\r\nX_Api_Version: 2\r\n", 400, ""},
		{"version 1 and 2", "X-Api-Version: 1\r\nX-Api-Version: 2\r\n", 400, ""},
	} {
		resp, got, rec := s.send("GET /shop/items HTTP/1.1\r\nHost: gw\r\n" + c.headers + "\r\n")
		if resp.StatusCode() != c.status || rec.Header["X-V2-Checked"] != c.checked {
			t.Errorf("%s: %d, upstream %q saw X-V2-Checked %q; want %d, %q: %s", c.name, resp.StatusCode(), got,
				rec.Header["X-V2-Checked"], c.status, c.checked, resp.Body())
		}
		if c.status == 400 && (string(resp.Header.Peek("X-Flexgate-Error")) != "ambiguous_header" ||
			!strings.Contains(string(resp.Body()), "the request carries the X-Api-Version header more than once, or in another spelling such as X_Api_Version")) {
			t.Errorf("%s: %s %s", c.name, resp.Header.Peek("X-Flexgate-Error"), resp.Body())
		}
	}
}

// flexRoute is a route as the Flex loader makes one of an ApiInstance on
// listener "http" with base path base: its paths cover the base path, the
// base path is stripped, destinationPath is the upstream's base path.
func flexRoute(id, base, dest, upstreamURL string, rules ...config.MatchRule) config.Route {
	r := config.Route{ID: id, Paths: []string{base + "/*"}, StripPrefix: base, Rules: rules,
		Listeners: []string{"http"}}
	if base == "" {
		r.Paths = []string{"/*"}
	}
	host := strings.TrimPrefix(upstreamURL, "http://")
	r.Upstream = config.Upstream{Targets: []config.Target{{Scheme: "http", Host: host, BasePath: dest, Weight: 1}},
		LoadBalancing: config.LeastRequest, ConnectTimeout: config.DefaultConnectTimeout, ResponseTimeout: config.DefaultResponseTimeout, MaxConns: config.DefaultMaxConns}
	return r
}

// startFlex serves routes built in code (what the Flex loader produces)
// behind a Gateway document that has one route of its own, /gw/*.
func startFlex(t testing.TB, routes ...config.Route) *proxytest.Gateway {
	t.Helper()
	up := proxytest.StartUpstream(t)
	cfg, dir := loadConfig(t, fmt.Sprintf(preamble+`  routes:
    - id: gw
      path: /gw/*
      upstream: {url: "%s"}
`, up.URL))
	cfg.Routes = append(cfg.Routes, routes...)
	return proxytest.StartConfig(t, cfg, dir)
}

// TestFlexRulesRewrite: the path-rewriting table of Flex's route policy
// through a running gateway: the upstream receives the documented path.
func TestFlexRulesRewrite(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := startFlex(t,
		flexRoute("prefix", "/one", "", up.URL, config.MatchRule{Path: "/api/.*"}),
		flexRoute("capture", "/two", "/orders", up.URL, config.MatchRule{Path: "/api(/.*)"}),
		flexRoute("base", "/api", "/orders", up.URL, config.MatchRule{Path: "/foo(/.*)"}),
		flexRoute("groups", "/three", "", up.URL, config.MatchRule{Path: "/foo(/.*)/bar(/.*)", Methods: "GET"}),
		flexRoute("regex", "/four", "/v2", up.URL, config.MatchRule{Path: "/users/([0-9]+)(/.*)?", Host: `.*\.example\.com`}),
	)
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, c := range []struct {
		raw, uri string
		status   int
	}{
		{"GET /one/api/foo/bar?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "/api/foo/bar?x=1", 200},
		{"GET /two/api/foo/bar HTTP/1.1\r\nHost: h\r\n\r\n", "/orders/foo/bar", 200},
		{"GET /api/foo/bar HTTP/1.1\r\nHost: h\r\n\r\n", "/orders/bar", 200},
		{"GET /api/api/foo/bar HTTP/1.1\r\nHost: h\r\n\r\n", "", 404},
		{"GET /three/foo/abc/bar/def HTTP/1.1\r\nHost: h\r\n\r\n", "/abc/def", 200},
		{"POST /three/foo/abc/bar/def HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "", 404},
		{"GET /four/users/42/orders?a=b HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "/v2/42/orders?a=b", 200},
		{"GET /four/users/42 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "/v2/42", 200},
		{"GET /four/users/42 HTTP/1.1\r\nHost: api.example.org\r\n\r\n", "", 404},
		// Normalised first, so a capture cannot climb out of /v2.
		{"GET /four/users/42/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "", 404},
		{"GET /four/users/42/a/../b HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "/v2/42/b", 200},
	} {
		before := up.Count.Load()
		r, conn, _ := rawRequest(t, addr, c.raw)
		conn.Close()
		if r.StatusCode() != c.status {
			t.Errorf("%q: %d, want %d: %s", c.raw, r.StatusCode(), c.status, r.Body())
			continue
		}
		if c.status != 200 {
			if up.Count.Load() != before {
				t.Errorf("%q reached the upstream", c.raw)
			}
			continue
		}
		if got := up.Last(t).URI; got != c.uri {
			t.Errorf("%q: the upstream saw %s, want %s", c.raw, got, c.uri)
		}
	}
}

// TestFlexListeners: a route limited to a listener serves only there.
func TestFlexListeners(t *testing.T) {
	up := proxytest.StartUpstream(t)
	other := flexRoute("other", "", "", up.URL)
	other.Listeners = []string{"elsewhere"}
	cfg, dir := loadConfig(t, preamble+`  listeners:
    - {name: http, port: 1}
    - {name: elsewhere, port: 2}
  routes:
    - {id: gw, path: /gw/*, upstream: {url: "http://127.0.0.1:1"}}
`)
	cfg.Routes = append(cfg.Routes, flexRoute("main", "/api", "", up.URL), other)
	gw := proxytest.StartConfig(t, cfg, dir)
	for listener, want := range map[string]map[string]int{
		"http":      {"/api/x": 200, "/x": 404},
		"elsewhere": {"/api/x": 200, "/x": 200},
	} {
		for path, status := range want {
			resp := proxytest.Do(t, "GET", gw.URLs[listener]+path, nil, nil)
			if resp.StatusCode() != status {
				t.Errorf("%s %s: %d, want %d", listener, path, resp.StatusCode(), status)
			}
			fasthttp.ReleaseResponse(resp)
		}
	}
	// A route on a listener the config does not declare is an error.
	bad := flexRoute("bad", "/bad", "", up.URL)
	bad.Listeners = []string{"nowhere"}
	cfg.Routes = append(cfg.Routes, bad)
	if err := gw.GW.Apply(cfg); err == nil || !strings.Contains(err.Error(), `route "bad" serves on listener "nowhere"`) {
		t.Errorf("Apply: %v", err)
	}
	// So is a rule that is not a regular expression.
	cfg.Routes = cfg.Routes[:len(cfg.Routes)-1]
	bad = flexRoute("bad-rule", "/bad", "", up.URL, config.MatchRule{Path: "/a("})
	bad.Pos = config.Pos{File: "api.yaml", Line: 3, Col: 5}
	cfg.Routes = append(cfg.Routes, bad)
	if err := gw.GW.Apply(cfg); err == nil || !strings.Contains(err.Error(), `api.yaml:3:5: route "bad-rule": rule 1: path: "/a(" is not a valid regular expression`) {
		t.Errorf("Apply: %v", err)
	}
}

// loadConfig loads yamlText from a file in a new directory, as Start does.
func loadConfig(t testing.TB, yamlText string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// TestAbsoluteFormNamesTheHost: a request-target in absolute form names
// the host, and the Host header that came with it is replaced (RFC 9112
// §3.2.2, §7.2): what the policies, the forwarding headers and the
// upstream see is the host the request was routed for, not a second one
// the client slipped in.
func TestAbsoluteFormNamesTheHost(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: /api/*
      upstream: {url: "%s"}
`, up.URL))
	resp, conn, _ := rawRequest(t, strings.TrimPrefix(gw.URL, "http://"),
		"GET http://public.example.com/api/x?y=1 HTTP/1.1\r\nHost: admin.example.com\r\n\r\n")
	conn.Close()
	if resp.StatusCode() != 200 {
		t.Fatalf("%d: %s", resp.StatusCode(), resp.Body())
	}
	rec := up.Last(t)
	if rec.Host != "public.example.com" || rec.URI != "/api/x?y=1" {
		t.Errorf("the upstream saw Host %q and %s", rec.Host, rec.URI)
	}
	if got := rec.Header["X-Forwarded-Host"]; got != "public.example.com" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
}
