package proxy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// getConfig fetches the admin /config of gw.
func getConfig(t *testing.T, gw *proxytest.Gateway) string {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("/config: %d %s", resp.StatusCode(), resp.Body())
	}
	return string(resp.Body())
}

// TestConfigEndpointRedactsHeaderCredentials: the headers a policy sets are
// shown, except the values that carry credentials, recognised by the
// header's name or by the value; a value that only refers to $env shows as
// written.
func TestConfigEndpointRedactsHeaderCredentials(t *testing.T) {
	t.Setenv("FG_ADMIN_TEST_TOKEN", "env-token-value")
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - request-headers-set:
            headers:
              X-Upstream-Auth: "Basic dXNlcjpzM2NyZXQ="
              X-Other-Auth: "bearer literal-bearer-value"
              X_Client_Key: literal-key-value
              X-Env-Value: "Bearer $env.FG_ADMIN_TEST_TOKEN"
              X-Callback: "https://cb:url-pass-value@hooks.example/x"
              X-Version: v1
              X-Auth: literal-auth-value
              X-Api-Sig: literal-sig-value
              X-Session: literal-session-value
              X-Author: Jane Doe
        - response-headers-set:
            headers:
              Set-Cookie: "sid=literal-cookie-value"
              X-Service-Password: literal-password-value
`, up.URL))
	body := getConfig(t, gw)
	for _, secret := range []string{"dXNlcjpzM2NyZXQ", "literal-", "url-pass-value", "env-token-value"} {
		if strings.Contains(body, secret) {
			t.Errorf("/config shows %q", secret)
		}
	}
	for _, want := range []string{`"X-Upstream-Auth": "[redacted]"`, `"X-Other-Auth": "[redacted]"`, `"X_Client_Key": "[redacted]"`,
		`"Set-Cookie": "[redacted]"`, `"X-Service-Password": "[redacted]"`,
		`"X-Env-Value": "Bearer $env.FG_ADMIN_TEST_TOKEN"`,
		`"X-Callback": "https://cb:xxxxx@hooks.example/x"`, `"X-Version": "v1"`,
		`"X-Auth": "[redacted]"`, `"X-Api-Sig": "[redacted]"`, `"X-Session": "[redacted]"`, `"X-Author": "Jane Doe"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/config lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/config:\n%s", body)
	}
}

// TestConfigEndpointKeysAreCamelCase: every key of /config is camelCase,
// as dashboards and scripts read them; the keys inside a policy's params
// are the user's own and are left out.
func TestConfigEndpointKeysAreCamelCase(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  listeners:
    - {name: main, port: 1}
  trustedProxies: [10.0.0.0/8]
  clients: [{id: app, secret: s}]
  routes:
    - id: r
      path: ["/*"]
      methods: [GET]
      upstream:
        targets: [{url: "%s", weight: 2}, {url: "http://127.0.0.1:1"}]
        host: h
        slowStart: 5s
        healthCheck: {path: /healthz}
        circuitBreaker: {maxRequests: 10}
        retries: {perTryTimeout: 1s}
      policies:
        - client-id-enforcement
        - response-headers-set: {headers: {X-Version: v1}}
`, up.URL))
	var doc any
	body := getConfig(t, gw)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "" || !unicode.IsLower(rune(k[0])) || strings.ContainsAny(k, "_- ") {
					t.Errorf("key %s.%s is not camelCase", path, k)
				}
				if k != "params" {
					walk(c, path+"."+k)
				}
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(doc, "")
	if !strings.Contains(body, `"summary": "`) || !strings.Contains(body, `"path": "`) {
		t.Errorf("/config has no sources with path and summary:\n%s", body)
	}
	for _, want := range []string{`"minConcurrency": 3`, `"share": 66.7`, `"state": "healthy"`, `"activeRequests": 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/config lacks %s:\n%s", want, body)
		}
	}
}

// TestPprofOnlyWhenAsked: the admin port listens on every interface for
// the probes, so Go's profiler is served there only with Options.Pprof
// (flexgate run --pprof).
func TestPprofOnlyWhenAsked(t *testing.T) {
	up := proxytest.StartUpstream(t)
	get := func(gw *proxytest.Gateway, path string) (int, string) {
		t.Helper()
		resp := proxytest.Do(t, "GET", gw.AdminURL+path, nil, nil)
		defer fasthttp.ReleaseResponse(resp)
		return resp.StatusCode(), string(resp.Body())
	}

	off := proxytest.Start(t, routeYAML("r", up.URL))
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
		if code, body := get(off, path); code != 404 || !strings.Contains(body, "with flexgate run --pprof") {
			t.Errorf("without --pprof, %s = %d %.80q; want 404 saying how to turn it on", path, code, body)
		}
	}
	if _, body := get(off, "/nope"); strings.Contains(body, "/config and /debug/pprof/") {
		t.Errorf("without --pprof, the 404 lists the profiler as served: %q", body)
	}

	on := proxytest.Start(t, routeYAML("r", up.URL), func(o *proxy.Options) { o.Pprof = true })
	if code, body := get(on, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("with --pprof, /debug/pprof/goroutine?debug=1 = %d %.80q", code, body)
	}
	if code, body := get(on, "/nope"); code != 404 || !strings.Contains(body, "/config and /debug/pprof/") {
		t.Errorf("with --pprof, the 404 = %d %q; want it to list /debug/pprof/", code, body)
	}
}

// TestMetricsReportTheBuildVersion: /metrics names the build that serves, as
// flexgate_build_info{version} 1.
func TestMetricsReportTheBuildVersion(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+"  routes:\n    - {id: r, path: /*, upstream: {url: %q}}\n", up.URL),
		func(o *proxy.Options) { o.Version = "1.4.0-rc.1" })
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if want := `flexgate_build_info{version="1.4.0-rc.1"} 1`; !strings.Contains(string(resp.Body()), want+"\n") {
		t.Errorf("/metrics lacks %s", want)
	}
}
