package flex_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestFlexUpstreamTimeouts: the upstreams of Flex resources wait as Flex
// Gateway's do (15 s for a response, 60 s for an idle connection), or as
// its environment says; a Configuration's timeouts and idle-timeout-flex
// win over both; a Gateway's upstreams keep flexgate's defaults.
func TestFlexUpstreamTimeouts(t *testing.T) {
	gw := gatewayDoc + "  listeners: [{name: web, port: 8080}]\n"
	timeouts := func(t *testing.T, u config.Upstream, response, idle time.Duration) {
		t.Helper()
		if u.ResponseTimeout != response || u.IdleTimeout != idle {
			t.Errorf("%s: response timeout %s, idle timeout %s; want %s, %s", u.Name, u.ResponseTimeout, u.IdleTimeout, response, idle)
		}
	}
	t.Run("defaults", func(t *testing.T) {
		cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081"), "g.yaml", gw)
		timeouts(t, route(t, cfg, "default/a/up").Upstream, 15*time.Second, 60*time.Second)
		timeouts(t, route(t, cfg, "legacy").Upstream, config.DefaultResponseTimeout, config.DefaultIdleTimeout)
		if len(cfg.Warnings) > 0 {
			t.Errorf("warnings: %v", cfg.Warnings)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(flex.EnvResponseTimeout, "7")
		t.Setenv(flex.EnvConnectionIdleTimeout, " 90 ")
		cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081")+"---\n"+api("b", "http://0.0.0.0:8082"),
			"b.yaml", doc("PolicyBinding", "idle")+"  targetRef: {kind: Service, name: b-up}\n  policyRef: {name: idle-timeout-flex}\n  config: {timeout: 120}\n",
			"g.yaml", gw)
		timeouts(t, route(t, cfg, "default/a/up").Upstream, 7*time.Second, 90*time.Second)
		timeouts(t, route(t, cfg, "default/b/up").Upstream, 7*time.Second, 120*time.Second)
		timeouts(t, route(t, cfg, "legacy").Upstream, config.DefaultResponseTimeout, config.DefaultIdleTimeout)
		cfg = load(t, "a.yaml", api("a", "http://0.0.0.0:8081"),
			"c.yaml", doc("Configuration", "t")+"  timeouts: {upstreamResponseSeconds: 5, upstreamConnectionIdleSeconds: 30}\n")
		timeouts(t, route(t, cfg, "default/a/up").Upstream, 5*time.Second, 30*time.Second)
	})
	t.Run("not applied", func(t *testing.T) {
		t.Setenv(flex.EnvStreamIdleTimeout, "60")
		t.Setenv(flex.EnvDrainTime, "40")
		cfg := load(t, "a.yaml", api("a", "http://0.0.0.0:8081"))
		got := warnings(cfg)
		if len(got) != 2 ||
			!strings.HasPrefix(got[0], "warning: environment variable FLEX_STREAM_IDLE_TIMEOUT_SECONDS=60 is not applied: ") ||
			!strings.HasPrefix(got[1], "warning: environment variable FLEX_SERVICE_ENVOY_DRAIN_TIME=40 is not applied: ") ||
			!strings.Contains(got[1], "--shutdown-timeout=40s") {
			t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
		}
	})
	for _, c := range []struct{ name, value, want string }{
		{flex.EnvResponseTimeout, "15s", `environment variable FLEX_UPSTREAM_RESPONSE_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 86400, not "15s"; unset it for Flex Gateway's default, 15`},
		{flex.EnvResponseTimeout, "0", "FLEX_UPSTREAM_RESPONSE_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 86400, not \"0\""},
		{flex.EnvConnectionIdleTimeout, "3601", "FLEX_UPSTREAM_CONNECTION_IDLE_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 3600, not \"3601\"; unset it for Flex Gateway's default, 60"},
		{flex.EnvStreamIdleTimeout, "", "FLEX_STREAM_IDLE_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 86400, not \"\""},
		{flex.EnvDrainTime, "25s", "FLEX_SERVICE_ENVOY_DRAIN_TIME must be a whole number of seconds from 0 to 86400, not \"25s\"; unset it for Flex Gateway's default, 25"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Setenv(c.name, c.value)
			got := loadErrors(t, "a.yaml", api("a", "http://0.0.0.0:8081"))
			if len(got) != 1 || !strings.HasPrefix(got[0], "environment variable "+c.name) || !strings.Contains(got[0], c.want) {
				t.Errorf("errors:\n%s\nwant: %s", strings.Join(got, "\n"), c.want)
			}
		})
	}
}

// TestServeFlexResponseTimeout: an upstream that has not answered when
// FLEX_UPSTREAM_RESPONSE_TIMEOUT_SECONDS runs out is answered 504 by the
// gateway, which does not wait for flexgate's own default of 30 s.
func TestServeFlexResponseTimeout(t *testing.T) {
	t.Setenv(flex.EnvResponseTimeout, "1")
	up := proxytest.StartUpstream(t)
	release := make(chan struct{})
	// Cleanups run last first: the upstream answers before it stops.
	t.Cleanup(func() { close(release) })
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.SetBodyString("late")
	}
	base, gw := serveFlex(t, "api.yaml", doc("ApiInstance", "slow")+"  address: http://127.0.0.1:8081\n  services: {up: {address: "+up.URL+"}}\n")
	if _, _, body := get(t, gw.AdminURL+"/config"); !strings.Contains(body, `"responseTimeout": "1s"`) || !strings.Contains(body, `"idleTimeout": "1m0s"`) {
		t.Errorf("/config does not show the environment's response timeout and Flex's idle timeout:\n%s", body)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(base + "/x")
	// Far longer than the timeout set, shorter than flexgate's default.
	if err := proxytest.Client().DoTimeout(req, resp, 20*time.Second); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if resp.StatusCode() != fasthttp.StatusGatewayTimeout || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_timeout" {
		t.Errorf("answer %d %q: %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
}
