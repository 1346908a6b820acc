package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// preamble opens a Gateway document; tests append their spec fields.
const preamble = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
`

// routeYAML is a Gateway with one route, id, sending everything to upstream.
func routeYAML(id, upstream string) string {
	return fmt.Sprintf(preamble+`  routes:
    - id: %s
      path: ["/*"]
      upstream: {url: "%s"}
`, id, upstream)
}

// load sends requests from several connections until stop closes and
// reports how many failed.
func load(t *testing.T, url string, stop <-chan struct{}) (failed *atomic.Int64, wait func()) {
	failed = new(atomic.Int64)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := proxytest.Client()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req.SetRequestURI(url + "/x")
				if err := c.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	return failed, wg.Wait
}

func TestReloadUnderLoadDropsNothing(t *testing.T) {
	a, b := proxytest.StartUpstream(t), proxytest.StartUpstream(t)
	// Each upstream says when it serves a request.
	hitA, hitB := make(chan struct{}, 1), make(chan struct{}, 1)
	serve := func(body string, hit chan struct{}) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyString(body)
			select {
			case hit <- struct{}{}:
			default:
			}
		}
	}
	a.Handler, b.Handler = serve("a", hitA), serve("b", hitB)
	gw := proxytest.Start(t, routeYAML("r", a.URL))

	stop := make(chan struct{})
	failed, wait := load(t, gw.URL, stop)
	stopLoad := sync.OnceFunc(func() { close(stop); wait() })
	defer stopLoad()
	for i := 0; i < 20; i++ {
		target, name, hit := a.URL, "a", hitA
		if i%2 == 0 {
			target, name, hit = b.URL, "b", hitB
		}
		select { // a request routed before the previous reload
		case <-hit:
		default:
		}
		if err := gw.Reload(t, routeYAML("r", target)); err != nil {
			t.Fatal(err)
		}
		// Traffic flows on each config: its upstream serves again.
		select {
		case <-hit:
		case <-time.After(10 * time.Second):
			t.Fatalf("reload %d: no request reached upstream %s (%d failed): the reload did not take effect", i, name, failed.Load())
		}
	}
	stopLoad()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during 20 reloads", n)
	}
}

func TestBadReloadKeepsServing(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL))
	err := gw.Reload(t, routeYAML("r", up.URL)+"      policies:\n        - no-such-policy\n")
	if err == nil || !strings.Contains(err.Error(), `unknown policy "no-such-policy"`) {
		t.Fatalf("reload error = %v", err)
	}
	resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("after a bad reload: status %d", resp.StatusCode())
	}
	m := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(m)
	if !strings.Contains(string(m.Body()), `flexgate_config_reloads_total{result="failed"} 1`) {
		t.Error("the failed reload is not counted in /metrics")
	}
}

func TestDrainFinishesInFlightRequests(t *testing.T) {
	up := proxytest.StartUpstream(t)
	started := make(chan struct{}, 16)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		ctx.SetBodyString("done")
	}
	gw := proxytest.Start(t, routeYAML("r", up.URL), func(o *proxy.Options) { o.DrainDelay = 200 * time.Millisecond })

	const n = 8
	results := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			c := proxytest.Client()
			code, _, err := c.GetTimeout(nil, gw.URL+"/slow", 10*time.Second)
			if err != nil {
				code = -1
			}
			results <- code
		}()
	}
	for i := 0; i < n; i++ {
		<-started
	}
	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- gw.GW.Shutdown(ctx)
	}()
	// /readyz turns 503 at once, while requests still flow.
	deadline := time.Now().Add(2 * time.Second)
	for gw.GW.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready after Shutdown began")
		}
		time.Sleep(time.Millisecond)
	}
	code, _, err := proxytest.Client().GetTimeout(nil, gw.AdminURL+"/readyz", time.Second)
	if err != nil || code != 503 {
		t.Errorf("/readyz while draining = %d, %v; want 503", code, err)
	}
	for i := 0; i < n; i++ {
		if code := <-results; code != 200 {
			t.Errorf("in-flight request ended with %d", code)
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownRightAfterStart: a gateway stopped before any listener
// goroutine has begun to serve still stops.
func TestShutdownRightAfterStart(t *testing.T) {
	up := proxytest.StartUpstream(t)
	for i := 0; i < 20; i++ {
		gw := proxytest.Start(t, routeYAML("r", up.URL))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		done := make(chan error, 1)
		go func() { done <- gw.GW.Shutdown(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown right after Start did not return")
		}
		cancel()
	}
}
