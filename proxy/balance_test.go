package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// backend is an upstream process for the load-balancing tests: a real
// server on 127.0.0.1 that can be killed (its listener and every
// connection closed at once, as when a pod dies) and started again on the
// same address.
type backend struct {
	t       *testing.T
	name    string
	addr    string
	url     string
	handler atomic.Pointer[fasthttp.RequestHandler]
	served  atomic.Int64 // requests answered

	mu    sync.Mutex
	srv   *fasthttp.Server
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{t: t, name: name}
	b.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name) })
	b.listen("127.0.0.1:0")
	b.addr = b.ln.Addr().String()
	b.url = "http://" + b.addr
	t.Cleanup(b.kill)
	return b
}

func (b *backend) setHandler(h fasthttp.RequestHandler) { b.handler.Store(&h) }

func (b *backend) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("backend %s cannot listen on %s: %v", b.name, addr, err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			(*b.handler.Load())(ctx)
			b.served.Add(1)
		},
		ConnState: func(c net.Conn, s fasthttp.ConnState) {
			b.mu.Lock()
			defer b.mu.Unlock()
			switch s {
			case fasthttp.StateNew:
				b.conns[c] = struct{}{}
			case fasthttp.StateClosed:
				delete(b.conns, c)
			}
		},
		Logger: quietLog{},
	}
	b.mu.Lock()
	b.srv, b.ln, b.conns = srv, ln, map[net.Conn]struct{}{}
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection at once, requests in
// flight or not.
func (b *backend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return
	}
	_ = b.ln.Close()
	for c := range b.conns {
		_ = c.Close()
	}
	b.ln = nil
}

// restart serves again on the same address.
func (b *backend) restart() { b.listen(b.addr) }

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

// lbYAML is a gateway with one route to the backends, with upstream
// settings appended to the upstream mapping (indented by eight spaces).
func lbYAML(settings string, targets ...string) string {
	var b strings.Builder
	b.WriteString(preamble + "  routes:\n    - id: lb\n      path: [\"/*\"]\n      upstream:\n        targets:\n")
	for _, t := range targets {
		b.WriteString("          - " + t + "\n")
	}
	b.WriteString(settings)
	return b.String()
}

// loadResult counts what a load run saw.
type loadResult struct {
	ok, failed atomic.Int64
	firstErr   atomic.Pointer[string]
	byBody     sync.Map // body → *atomic.Int64
}

func (r *loadResult) fail(msg string) {
	r.failed.Add(1)
	r.firstErr.CompareAndSwap(nil, &msg)
}

func (r *loadResult) count(body string) int64 {
	if v, ok := r.byBody.Load(body); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (r *loadResult) String() string {
	msg := ""
	if p := r.firstErr.Load(); p != nil {
		msg = *p
	}
	return fmt.Sprintf("%d ok, %d failed (first: %s)", r.ok.Load(), r.failed.Load(), msg)
}

// runLoad sends GETs from clients connections until stop closes, or n
// requests in all when n > 0.
func runLoad(url string, clients, n int, stop <-chan struct{}) (*loadResult, func()) {
	r := &loadResult{}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := proxytest.Client()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if n > 0 && left.Add(-1) < 0 {
					return
				}
				req.SetRequestURI(url + "/x")
				if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
					r.fail(err.Error())
					continue
				}
				if resp.StatusCode() != 200 {
					r.fail(fmt.Sprintf("%d %s", resp.StatusCode(), resp.Body()))
					continue
				}
				r.ok.Add(1)
				v, _ := r.byBody.LoadOrStore(string(resp.Body()), new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}()
	}
	return r, wg.Wait
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// targetStates reads the live state of the first upstream from /config:
// target URL → state.
func targetStates(t *testing.T, gw *proxytest.Gateway) map[string]string {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	var doc struct {
		Upstreams []struct {
			Targets []struct{ URL, State string }
		}
	}
	if err := json.Unmarshal(resp.Body(), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if len(doc.Upstreams) > 0 {
		for _, tg := range doc.Upstreams[0].Targets {
			out[tg.URL] = tg.State
		}
	}
	return out
}

// TestWeightsHold: over 10,000 requests each target's share is its weight's
// within 3 points, with each balancing policy; round robin's is exact.
// least-request follows the weights while requests do not overlap; when
// they do, it sends to the targets with fewer in flight for their weight
// (TestSlowTargetGetsLessTraffic), so its clients send one at a time.
func TestWeightsHold(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	want := map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}
	for _, lb := range []string{"round-robin", "random", "least-request"} {
		t.Run(lb, func(t *testing.T) {
			gw := proxytest.Start(t, lbYAML("        loadBalancing: "+lb+"\n",
				fmt.Sprintf("{url: %q, weight: 5}", a.url), fmt.Sprintf("{url: %q, weight: 3}", b.url),
				fmt.Sprintf("{url: %q, weight: 2}", c.url)))
			const n = 10000
			clients := 4
			if lb == "least-request" {
				clients = 1
			}
			res, wait := runLoad(gw.URL, clients, n, nil)
			wait()
			if res.failed.Load() != 0 {
				t.Fatalf("requests failed: %s", res)
			}
			for name, share := range want {
				got := float64(res.count(name)) / n
				tolerance := 0.03
				if lb == "round-robin" {
					// Deterministic: off by at most the requests in
					// flight when the run ended.
					tolerance = 0.001
				}
				if got < share-tolerance || got > share+tolerance {
					t.Errorf("target %s got %.3f of the requests, want %.2f ± %.3f", name, got, share, tolerance)
				}
			}
		})
	}
}

// TestKilledTargetIsEjected: a target killed under load, requests in
// flight included, costs no client an error: requests it cannot have
// processed are sent elsewhere at once, those it may have are retried
// (GETs, with retries on resets), and outlier detection ejects it.
func TestKilledTargetIsEjected(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	gw := proxytest.Start(t, lbYAML(`        retries: {attempts: 3, on: [connect-failure, reset]}
`, fmt.Sprintf("{url: %q}", a.url), fmt.Sprintf("{url: %q}", b.url), fmt.Sprintf("{url: %q}", c.url)))
	stop := make(chan struct{})
	res, wait := runLoad(gw.URL, 4, 0, stop)
	waitFor(t, "every target serves", func() bool { return a.served.Load() > 50 && b.served.Load() > 50 && c.served.Load() > 50 })
	b.kill()
	waitFor(t, "the killed target is ejected", func() bool { return targetStates(t, gw)[b.url] == "ejected" })
	after := res.ok.Load()
	waitFor(t, "more requests succeed", func() bool { return res.ok.Load() > after+500 })
	close(stop)
	wait()
	if res.failed.Load() != 0 {
		t.Fatalf("a target killed under load cost clients errors: %s", res)
	}
	if got := metricValue(t, gw, fmt.Sprintf(`flexgate_upstream_target_ejections_total{upstream="%s, %s, %s",target="%s"}`,
		a.url, b.url, c.url, b.url)); got != 1 {
		t.Errorf("ejections of the killed target: %v, want 1", got)
	}
}

// TestRecoveredTargetIsReadmitted: the active health check takes a dead
// target out of service and brings it back once it answers again.
func TestRecoveredTargetIsReadmitted(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	for _, be := range []*backend{a, b} {
		be.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(be.name) })
	}
	gw := proxytest.Start(t, lbYAML(`        healthCheck: {path: /healthz, interval: 50ms, timeout: 50ms, unhealthyThreshold: 2, healthyThreshold: 2}
        outlierDetection: {consecutiveFailures: 0}
`, fmt.Sprintf("{url: %q}", a.url), fmt.Sprintf("{url: %q}", b.url)))
	b.kill()
	waitFor(t, "the dead target is unhealthy", func() bool { return targetStates(t, gw)[b.url] == "unhealthy" })
	if v := metricValue(t, gw, fmt.Sprintf(`flexgate_upstream_target_healthy{upstream="%s, %s",target="%s"}`, a.url, b.url, b.url)); v != 0 {
		t.Errorf("flexgate_upstream_target_healthy of the dead target is %v, want 0", v)
	}
	// Out of service, it is sent nothing: every request succeeds on a.
	res, wait := runLoad(gw.URL, 2, 200, nil)
	wait()
	if res.failed.Load() != 0 || res.count("a") != 200 {
		t.Fatalf("with b out of service: %s, %d on a", res, res.count("a"))
	}
	b.restart()
	waitFor(t, "the recovered target is healthy", func() bool { return targetStates(t, gw)[b.url] == "healthy" })
	served := b.served.Load()
	res, wait = runLoad(gw.URL, 2, 200, nil)
	wait()
	if res.failed.Load() != 0 || b.served.Load() == served {
		t.Fatalf("the recovered target gets no requests: %s", res)
	}
}

// TestSlowTargetGetsLessTraffic: with least-request, a target that answers
// slowly holds its requests longer and is sent fewer.
func TestSlowTargetGetsLessTraffic(t *testing.T) {
	fast, slow := startBackend(t, "fast"), startBackend(t, "slow")
	slow.setHandler(func(ctx *fasthttp.RequestCtx) {
		time.Sleep(20 * time.Millisecond) // the slowness under test, not synchronisation
		ctx.SetBodyString("slow")
	})
	gw := proxytest.Start(t, lbYAML("", fmt.Sprintf("{url: %q}", fast.url), fmt.Sprintf("{url: %q}", slow.url)))
	const n = 2000
	res, wait := runLoad(gw.URL, 8, n, nil)
	wait()
	if res.failed.Load() != 0 {
		t.Fatalf("requests failed: %s", res)
	}
	if share := float64(res.count("slow")) / n; share > 0.25 {
		t.Errorf("the slow target got %.2f of the requests; least-request should send it far less than half", share)
	}
}

// TestCircuitBreakerAnswersAtOnce: over a threshold, a request is answered
// 503 upstream_overloaded while the requests under it still wait.
func TestCircuitBreakerAnswersAtOnce(t *testing.T) {
	cases := []struct {
		name, settings string
		holding        int // requests held before the one refused
		inside         int // of them, in the upstream (the others wait for a connection)
	}{
		{"maxRequests", "        circuitBreaker: {maxRequests: 2}\n", 2, 2},
		{"maxConnections", "        circuitBreaker: {maxConnections: 1}\n", 1, 1},
		{"maxPendingRequests", "        maxConnections: 1\n        circuitBreaker: {maxPendingRequests: 1}\n", 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, "held")
			release := make(chan struct{})
			var inside atomic.Int64
			be.setHandler(func(ctx *fasthttp.RequestCtx) {
				inside.Add(1)
				<-release
				ctx.SetBodyString("held")
			})
			gw := proxytest.Start(t, lbYAML(tc.settings, fmt.Sprintf("{url: %q}", be.url)))
			var wg sync.WaitGroup
			statuses := make(chan int, tc.holding)
			for range tc.holding {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp := proxytest.Do(t, "GET", gw.URL+"/held", nil, nil)
					statuses <- resp.StatusCode()
					fasthttp.ReleaseResponse(resp)
				}()
			}
			// Held: in the upstream, or, for the pending case, the second
			// waits for the one connection.
			waitFor(t, "the requests under the threshold are held", func() bool {
				return inside.Load() == int64(tc.inside) && gw.GW.InFlight() == int64(tc.holding)
			})
			resp := proxytest.Do(t, "GET", gw.URL+"/over", nil, nil)
			got, reason := resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error"))
			fasthttp.ReleaseResponse(resp)
			if got != 503 || reason != "upstream_overloaded" {
				t.Errorf("over the threshold: %d %q, want 503 upstream_overloaded", got, reason)
			}
			close(release)
			wg.Wait()
			close(statuses)
			for s := range statuses {
				if s != 200 {
					t.Errorf("a request under the threshold got %d", s)
				}
			}
			if v := metricValue(t, gw, `flexgate_upstream_overloaded_total{upstream="`+be.url+`",limit="`+tc.name+`"}`); v != 1 {
				t.Errorf("flexgate_upstream_overloaded_total{limit=%q} = %v, want 1", tc.name, v)
			}
		})
	}
}

// TestRequestWaitsForConnection: at an upstream's maxConnections a request
// waits for a connection at most MaxConnWait (Flex's queue, until the
// response timeout), and, without it, the connect timeout, then is
// answered 503 upstream_saturated.
func TestRequestWaitsForConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wait   time.Duration
		status int
	}{{"connect timeout", 0, 503}, {"max connection wait", 5 * time.Second, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, "held")
			first := make(chan struct{}, 1)
			be.setHandler(func(ctx *fasthttp.RequestCtx) {
				if string(ctx.Path()) == "/first" {
					first <- struct{}{}
					// Holds the one connection past the connect timeout.
					time.Sleep(600 * time.Millisecond)
				}
				ctx.SetBodyString("held")
			})
			cfg, dir := loadConfig(t, lbYAML("        maxConnections: 1\n        connectTimeout: 200ms\n", fmt.Sprintf("{url: %q}", be.url)))
			cfg.Routes[0].Upstream.MaxConnWait = tc.wait
			gw := proxytest.StartConfig(t, cfg, dir)
			done := make(chan int, 1)
			go func() {
				resp := proxytest.Do(t, "GET", gw.URL+"/first", nil, nil)
				done <- resp.StatusCode()
				fasthttp.ReleaseResponse(resp)
			}()
			<-first
			resp := proxytest.Do(t, "GET", gw.URL+"/second", nil, nil)
			got, reason := resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error"))
			fasthttp.ReleaseResponse(resp)
			if got != tc.status {
				t.Errorf("a request waiting for the one connection: %d %q, want %d", got, reason, tc.status)
			}
			if tc.status == 503 && reason != "upstream_saturated" {
				t.Errorf("reason %q, want upstream_saturated", reason)
			}
			if s := <-done; s != 200 {
				t.Errorf("the request holding the connection got %d", s)
			}
		})
	}
}

// TestRollingRestartDropsNothing: the targets go away one after another,
// abruptly, and come back, under load: no GET fails.
func TestRollingRestartDropsNothing(t *testing.T) {
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	var targets []string
	for _, be := range bs {
		targets = append(targets, fmt.Sprintf("{url: %q}", be.url))
	}
	gw := proxytest.Start(t, lbYAML(`        retries: {attempts: 3, on: [connect-failure, reset]}
        healthCheck: {path: /healthz, interval: 50ms, timeout: 50ms, unhealthyThreshold: 1, healthyThreshold: 1}
`, targets...))
	stop := make(chan struct{})
	res, wait := runLoad(gw.URL, 4, 0, stop)
	for _, be := range bs {
		served := be.served.Load()
		waitFor(t, be.name+" serves", func() bool { return be.served.Load() > served+20 })
		be.kill()
		ok := res.ok.Load()
		waitFor(t, "requests succeed while "+be.name+" is down", func() bool { return res.ok.Load() > ok+100 })
		be.restart()
		served = be.served.Load()
		waitFor(t, be.name+" serves again", func() bool { return be.served.Load() > served+20 })
	}
	close(stop)
	wait()
	if res.failed.Load() != 0 {
		t.Fatalf("a rolling restart cost clients errors: %s", res)
	}
}

// TestRetriesGoToAnotherTarget: a 503 from one target is retried on the
// other for a GET, when the upstream retries on gateway errors; a POST,
// which may have been processed, is not.
func TestRetriesGoToAnotherTarget(t *testing.T) {
	bad, good := startBackend(t, "bad"), startBackend(t, "good")
	bad.setHandler(func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(503)
		ctx.SetBodyString("bad")
	})
	gw := proxytest.Start(t, lbYAML(`        loadBalancing: round-robin
        outlierDetection: {consecutiveFailures: 0}
        retries: {attempts: 2, on: [gateway-error], backoff: {base: 1ms, max: 2ms}}
`, fmt.Sprintf("{url: %q}", bad.url), fmt.Sprintf("{url: %q}", good.url)))
	for i := range 10 {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		if resp.StatusCode() != 200 || string(resp.Body()) != "good" {
			t.Fatalf("GET %d: %d %s, want the good target's 200", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if bad.served.Load() == 0 {
		t.Fatal("round robin never sent to the failing target: the test proves nothing")
	}
	badServed := bad.served.Load()
	posts503 := 0
	for range 10 {
		resp := proxytest.Do(t, "POST", gw.URL+"/x", nil, []byte("order"))
		if resp.StatusCode() == 503 {
			posts503++
		}
		fasthttp.ReleaseResponse(resp)
	}
	if posts503 == 0 || bad.served.Load()-badServed != int64(posts503) {
		t.Errorf("POSTs: %d got the failing target's 503 (of %d it served); a POST must not be sent again",
			posts503, bad.served.Load()-badServed)
	}
	if v := metricValue(t, gw, `flexgate_upstream_retries_total{upstream="`+bad.url+", "+good.url+`"}`); v != float64(badServed) {
		t.Errorf("flexgate_upstream_retries_total = %v, want %d", v, badServed)
	}
}

// TestPerTryTimeout: a target that does not answer within perTryTimeout is
// given up for another.
func TestPerTryTimeout(t *testing.T) {
	hung, good := startBackend(t, "hung"), startBackend(t, "good")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hung.setHandler(func(ctx *fasthttp.RequestCtx) { <-release })
	gw := proxytest.Start(t, lbYAML(`        loadBalancing: round-robin
        retries: {attempts: 2, on: [reset], perTryTimeout: 100ms}
`, fmt.Sprintf("{url: %q}", hung.url), fmt.Sprintf("{url: %q}", good.url)))
	for i := range 4 {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		if resp.StatusCode() != 200 || string(resp.Body()) != "good" {
			t.Fatalf("GET %d: %d %s, want the good target's 200", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
}

// TestPanicModeTriesUnhealthyTargets: with every target out of service
// the gateway still sends to them, and counts it.
func TestPanicModeTriesUnhealthyTargets(t *testing.T) {
	be := startBackend(t, "a")
	var healthy atomic.Bool
	be.setHandler(func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" && !healthy.Load() {
			ctx.SetStatusCode(500)
			return
		}
		ctx.SetBodyString("a")
	})
	gw := proxytest.Start(t, lbYAML(`        healthCheck: {path: /healthz, interval: 50ms, timeout: 50ms, unhealthyThreshold: 1}
`, fmt.Sprintf("{url: %q}", be.url)))
	waitFor(t, "the target is unhealthy", func() bool { return targetStates(t, gw)[be.url] == "unhealthy" })
	resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("with every target unhealthy: %d %s, want the target's answer", resp.StatusCode(), resp.Body())
	}
	if v := metricValue(t, gw, `flexgate_upstream_panic_total{upstream="`+be.url+`"}`); v < 1 {
		t.Errorf("flexgate_upstream_panic_total = %v, want at least 1", v)
	}
}

// TestTargetsChangeOnReloadDropNothing: a reload that adds and removes
// targets under load fails no request; the removed target's requests in
// flight finish on it.
func TestTargetsChangeOnReloadDropNothing(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	target := func(be *backend) string { return fmt.Sprintf("{url: %q}", be.url) }
	gw := proxytest.Start(t, lbYAML("", target(a), target(b)))
	stop := make(chan struct{})
	res, wait := runLoad(gw.URL, 4, 0, stop)
	for i, set := range [][]*backend{{a, b, c}, {b, c}, {c, a}, {a, b}} {
		var ts []string
		for _, be := range set {
			ts = append(ts, target(be))
		}
		if err := gw.Reload(t, lbYAML("", ts...)); err != nil {
			t.Fatal(err)
		}
		for _, be := range set {
			served := be.served.Load()
			waitFor(t, fmt.Sprintf("reload %d: %s serves", i, be.name), func() bool { return be.served.Load() > served+20 })
		}
	}
	close(stop)
	wait()
	if res.failed.Load() != 0 {
		t.Fatalf("reloads that change the targets cost clients errors: %s", res)
	}
}

// TestEachTargetItsBasePath: a request goes out under the base path of the
// target it is sent to, a retry under the next one's, with the query each
// time (Flex's route-weighted gives each destination its own path).
func TestEachTargetItsBasePath(t *testing.T) {
	a, b := proxytest.StartUpstream(t), proxytest.StartUpstream(t)
	a.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }
	gw := proxytest.Start(t, lbYAML(`        loadBalancing: round-robin
        outlierDetection: {consecutiveFailures: 0}
        retries: {attempts: 2, on: [5xx]}
`, fmt.Sprintf("{url: %q}", a.URL+"/v1"), fmt.Sprintf("{url: %q}", b.URL+"/v2/")))
	for range 4 {
		resp := proxytest.Do(t, "GET", gw.URL+"/orders/7?expand=items", nil, nil)
		if resp.StatusCode() != 200 {
			t.Fatalf("GET: %d %s", resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if len(a.Requests()) == 0 {
		t.Fatal("no request reached the first target: the test proves nothing")
	}
	for name, up := range map[string]*proxytest.Upstream{"/v1": a, "/v2": b} {
		for _, r := range up.Requests() {
			if r.URI != name+"/orders/7?expand=items" {
				t.Errorf("target with base path %s received %q", name, r.URI)
			}
		}
	}
}

// TestSlowStartForTargetsThatJoin: a target a reload adds starts slowly;
// those the gateway started with, and those a reload keeps, do not.
func TestSlowStartForTargetsThatJoin(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	target := func(be *backend) string { return fmt.Sprintf("{url: %q}", be.url) }
	gw := proxytest.Start(t, lbYAML("        slowStart: 1h\n", target(a), target(b)))
	if got := slowTargets(t, gw); got != "" {
		t.Errorf("targets the gateway starts with start slowly: %s", got)
	}
	if err := gw.Reload(t, lbYAML("        slowStart: 1h\n", target(a), target(b), target(c))); err != nil {
		t.Fatal(err)
	}
	if got := slowTargets(t, gw); got != c.url {
		t.Errorf("after a reload that adds %s, starting slowly: %q", c.url, got)
	}
}

// slowTargets lists the targets of the first upstream that start slowly,
// as /config shows them.
func slowTargets(t *testing.T, gw *proxytest.Gateway) string {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	var doc struct {
		Upstreams []struct {
			Targets []struct {
				URL       string
				SlowStart bool
			}
		}
	}
	if err := json.Unmarshal(resp.Body(), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tg := range doc.Upstreams[0].Targets {
		if tg.SlowStart {
			out = append(out, tg.URL)
		}
	}
	return strings.Join(out, " ")
}

// TestReloadKeepsTargetHealth: a reload that changes an upstream (adds a
// target) keeps a dead target out of service, so that no request, POSTs
// included, is sent to it again before its checks fail anew.
func TestReloadKeepsTargetHealth(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	target := func(be *backend) string { return fmt.Sprintf("{url: %q}", be.url) }
	settings := "        healthCheck: {path: /healthz, interval: 50ms, timeout: 50ms, unhealthyThreshold: 1, healthyThreshold: 3}\n"
	gw := proxytest.Start(t, lbYAML(settings, target(a), target(b)))
	b.kill()
	waitFor(t, "the dead target is unhealthy", func() bool { return targetStates(t, gw)[b.url] == "unhealthy" })
	if err := gw.Reload(t, lbYAML(settings, target(a), target(b), target(c))); err != nil {
		t.Fatal(err)
	}
	if got := targetStates(t, gw)[b.url]; got != "unhealthy" {
		t.Fatalf("right after the reload the dead target is %q, want it still unhealthy", got)
	}
	for i := range 50 {
		resp := proxytest.Do(t, "POST", gw.URL+"/x", nil, []byte("order"))
		if resp.StatusCode() != 200 {
			t.Fatalf("POST %d after the reload: %d %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
}

// TestShutdownEndsHealthChecks: at shutdown every upstream's health
// checks end, also those of an upstream a reload replaced while a request
// still ran on it.
func TestShutdownEndsHealthChecks(t *testing.T) {
	be := startBackend(t, "a")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	be.setHandler(func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/held" {
			entered <- struct{}{}
			<-release
		}
		ctx.SetBodyString("a")
	})
	gw := proxytest.Start(t, lbYAML("        healthCheck: {path: /healthz, interval: 50ms, timeout: 50ms}\n",
		fmt.Sprintf("{url: %q}", be.url)))
	held := make(chan struct{})
	go func() {
		defer close(held)
		_, _, _ = proxytest.Client().GetTimeout(nil, gw.URL+"/held", 10*time.Second)
	}()
	<-entered
	// A new upstream; the old one waits for the held request to retire.
	if err := gw.Reload(t, lbYAML("        healthCheck: {path: /healthz, interval: 60ms, timeout: 50ms}\n",
		fmt.Sprintf("{url: %q}", be.url))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = gw.GW.Shutdown(ctx) // gives up on the held request
	close(release)
	<-held
	waitFor(t, "no health check runs", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "proxy.(*upstream).check")
	})
}
