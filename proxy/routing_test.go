package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// adminYAML has a broad route without policies and a narrower one that
// requires a client id; limits are added to the spec as given.
func adminYAML(up, limits string) string {
	return fmt.Sprintf(preamble+`  clients:
    - {id: ops, secret: s3cret}
%s  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: "%s"}
    - id: admin
      path: ["/api/admin/*"]
      methods: [GET]
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement
`, limits, up, up)
}

// Paths that a Java servlet container (Tomcat, Jetty) or Spring serves as
// /api/admin/secret once it has dropped the ';' path parameters.
var pathParameterAttacks = []string{
	"/api/admin;x/secret",
	"/api/admin;jsessionid=abc/secret",
	"/api/;/admin/secret",
	"/api/public/..;/admin/secret",
}

func get(t *testing.T, addr, path, headers string) *fasthttp.Response {
	t.Helper()
	resp, conn, _ := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+headers+"\r\n")
	conn.Close()
	return resp
}

// TestPathParametersAreRefused: by default a ';' in the path, raw or
// encoded, is a 400 before routing, so no route is chosen on a path the
// upstream reads differently.
func TestPathParametersAreRefused(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, adminYAML(up.URL, ""))
	addr := strings.TrimPrefix(gw.URL, "http://")
	attacks := append(pathParameterAttacks, "/api/admin%3Bx/secret", "/api/admin%3bx/secret", "/api/x;y")
	for _, path := range attacks {
		resp := get(t, addr, path, "")
		if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "path_parameters" {
			t.Errorf("GET %s = %d %q %s, want 400 path_parameters", path, resp.StatusCode(),
				resp.Header.Peek("X-Flexgate-Error"), resp.Body())
		}
		if body := string(resp.Body()); !strings.Contains(body, `"reason":"path_parameters"`) || !strings.Contains(body, `"status":400`) {
			t.Errorf("GET %s: body %s", path, body)
		}
	}
	if n := up.Count.Load(); n != 0 {
		t.Errorf("the upstream received %d requests, want 0", n)
	}
	// A ';' in the query is not a path parameter.
	if resp := get(t, addr, "/api/x?a=1;b=2", ""); resp.StatusCode() != 200 || up.Last(t).URI != "/api/x?a=1;b=2" {
		t.Errorf("a ';' in the query: %d, upstream saw %q", resp.StatusCode(), up.Last(t).URI)
	}
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if want := fmt.Sprintf(`flexgate_errors_total{route="",reason="path_parameters"} %d`, len(attacks)); !strings.Contains(string(resp.Body()), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestPathParametersStripped: with `pathParameters: strip` the gateway
// resolves the path as a servlet container does, so the specific route and
// its policy apply, and the upstream is sent the path that was routed.
func TestPathParametersStripped(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, adminYAML(up.URL, "  limits: {pathParameters: strip}\n"))
	addr := strings.TrimPrefix(gw.URL, "http://")
	creds := "client_id: ops\r\nclient_secret: s3cret\r\n"
	for _, path := range pathParameterAttacks {
		resp := get(t, addr, path, "")
		if resp.StatusCode() != 401 || !strings.Contains(string(resp.Body()), `"route":"admin"`) {
			t.Errorf("GET %s without credentials = %d %s, want 401 from route admin", path, resp.StatusCode(), resp.Body())
		}
		if n := up.Count.Load(); n != 0 {
			t.Fatalf("GET %s without credentials reached the upstream", path)
		}
	}
	for _, path := range pathParameterAttacks {
		resp := get(t, addr, path+"?q=1", creds)
		if resp.StatusCode() != 200 {
			t.Errorf("GET %s with credentials = %d %s", path, resp.StatusCode(), resp.Body())
			continue
		}
		if got := up.Last(t).URI; got != "/api/admin/secret?q=1" {
			t.Errorf("GET %s: the upstream saw %q, want /api/admin/secret?q=1", path, got)
		}
	}
	// An encoded ';' is data to some upstreams and a delimiter to others:
	// it is refused in strip mode too.
	if resp := get(t, addr, "/api/admin%3Bx/secret", creds); resp.StatusCode() != 400 ||
		string(resp.Header.Peek("X-Flexgate-Error")) != "path_parameters" {
		t.Errorf("GET /api/admin%%3Bx/secret = %d %s, want 400 path_parameters", resp.StatusCode(), resp.Body())
	}
}

// TestEncodedNULIsRefused: an upstream that decodes the path into a C
// string ends it at a NUL, and would serve /api/admin%00/secret, routed
// under /api/*, as /api/admin without the admin route's policy. nginx
// refuses such a path too.
func TestEncodedNULIsRefused(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, adminYAML(up.URL, ""))
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, path := range []string{"/api/admin%00/secret", "/api/admin%00", "/api/%00/../admin/secret"} {
		resp := get(t, addr, path, "")
		if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "bad_request" {
			t.Errorf("GET %s = %d %s, want 400 bad_request", path, resp.StatusCode(), resp.Body())
		}
	}
	if n := up.Count.Load(); n != 0 {
		t.Errorf("the upstream received %d requests, want 0", n)
	}
	// Elsewhere in the query, a NUL is the upstream's data.
	if resp := get(t, addr, "/api/x?a=%00", ""); resp.StatusCode() != 200 {
		t.Errorf("GET /api/x?a=%%00 = %d, want 200", resp.StatusCode())
	}
}

// TestMethodDoesNotFallThrough: the most specific pattern decides; a method
// it does not allow is a 405, never a trip to a broader route without its
// policies.
func TestMethodDoesNotFallThrough(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, adminYAML(up.URL, ""))
	for _, method := range []string{"DELETE", "POST", "PUT"} {
		resp := proxytest.Do(t, method, gw.URL+"/api/admin/users/1", nil, nil)
		if resp.StatusCode() != 405 || string(resp.Header.Peek("Allow")) != "GET, HEAD" ||
			string(resp.Header.Peek("X-Flexgate-Error")) != "method_not_allowed" {
			t.Errorf("%s /api/admin/users/1 = %d, Allow %q, error %q; want 405, Allow GET, HEAD", method,
				resp.StatusCode(), resp.Header.Peek("Allow"), resp.Header.Peek("X-Flexgate-Error"))
		}
		fasthttp.ReleaseResponse(resp)
	}
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests, want 0", n)
	}
	resp := proxytest.Do(t, "GET", gw.URL+"/api/admin/users/1", nil, nil)
	if resp.StatusCode() != 401 {
		t.Errorf("GET without credentials = %d, want 401", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	resp = proxytest.Do(t, "DELETE", gw.URL+"/api/orders/1", nil, nil)
	if resp.StatusCode() != 200 || up.Last(t).URI != "/api/orders/1" {
		t.Errorf("DELETE /api/orders/1 = %d, want 200 from route api", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
}

// TestPoliciesReadTheRoutedPath: $request.path is the path that was routed
// and is forwarded, not the one the client sent, so that a policy keyed on
// it (a rate-limit identifier, say) cannot be dodged by spelling the path
// another way.
func TestPoliciesReadTheRoutedPath(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  limits: {pathParameters: strip}
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s/base"}
      policies:
        - request-headers-set: {headers: {X-Path: $request.path, X-Q: $request.query.q}}
`, up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, path := range []string{"/api/admin;x/secret", "/api/public/..;/admin/secret", "/api/;/admin//./secret", "/api/admin/secret"} {
		get(t, addr, path+"?q=a;b", "")
		got := up.Last(t)
		if got.Header["X-Path"] != "/api/admin/secret" || got.Header["X-Q"] != "a;b" || got.URI != "/base/api/admin/secret?q=a;b" {
			t.Errorf("GET %s: $request.path %q, $request.query.q %q, upstream URI %q; want /api/admin/secret, a;b, /base/api/admin/secret?q=a;b",
				path, got.Header["X-Path"], got.Header["X-Q"], got.URI)
		}
	}
}
