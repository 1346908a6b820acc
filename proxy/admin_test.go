package proxy_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

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
