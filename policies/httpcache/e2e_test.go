package httpcache_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// cacheGateway starts a gateway whose route /c/* has the policies given,
// in front of up.
func cacheGateway(t *testing.T, up *proxytest.Upstream, policies string) *proxytest.Gateway {
	t.Helper()
	return proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  routes:
    - id: c
      path: ["/c/*"]
      upstream: {url: %q}
      policies:
%s`, up.URL, indent(policies, 8)))
}

func indent(s string, n int) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(strings.Repeat(" ", n) + l + "\n")
	}
	return b.String()
}

type answer struct {
	status  int
	body    string
	headers map[string]string
}

func do(t *testing.T, method, url string, headers ...string) answer {
	t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	resp := proxytest.Do(t, method, url, h, nil)
	defer fasthttp.ReleaseResponse(resp)
	a := answer{status: resp.StatusCode(), body: string(resp.Body()), headers: map[string]string{}}
	for k, v := range resp.Header.All() {
		a.headers[string(k)] = string(v)
	}
	return a
}

// counting makes up answer each request with a body naming how many it
// has answered, and the headers given.
func counting(up *proxytest.Upstream, headers ...string) {
	var n atomic.Int64
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		for i := 0; i+1 < len(headers); i += 2 {
			ctx.Response.Header.Add(headers[i], headers[i+1])
		}
		ctx.SetContentType("text/plain")
		fmt.Fprintf(ctx, "answer %d for %s", n.Add(1), ctx.RequestURI())
	}
}

// TestCacheEndToEnd: through a real gateway, a second GET is answered
// from the cache without the upstream, with Age; HEAD is answered from
// the GET's entry; the query is part of flexgate's default key; POST
// passes through.
func TestCacheEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	counting(up)
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	first := do(t, "GET", gw.URL+"/c/a?x=1")
	second := do(t, "GET", gw.URL+"/c/a?x=1")
	if first.status != 200 || second.body != first.body || up.Count.Load() != 1 {
		t.Fatalf("second GET: %+v (first %+v), upstream saw %d", second, first, up.Count.Load())
	}
	if second.headers["Age"] == "" || second.headers["Content-Type"] != "text/plain" || second.headers["X-Request-Id"] == first.headers["X-Request-Id"] {
		t.Errorf("hit headers: %v", second.headers)
	}
	if head := do(t, "HEAD", gw.URL+"/c/a?x=1"); head.status != 200 || head.body != "" || up.Count.Load() != 1 {
		t.Errorf("HEAD: %+v, upstream saw %d", head, up.Count.Load())
	}
	if other := do(t, "GET", gw.URL+"/c/a?x=2"); other.body == first.body || up.Count.Load() != 2 {
		t.Errorf("another query: %+v", other)
	}
	do(t, "POST", gw.URL+"/c/a?x=1")
	if up.Count.Load() != 3 {
		t.Errorf("POST was answered from the cache")
	}
}

// TestCoalescing: N concurrent misses of one key send one request
// upstream; every client gets its answer.
func TestCoalescing(t *testing.T) {
	up := proxytest.StartUpstream(t)
	release := make(chan struct{})
	var calls atomic.Int64
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		<-release
		ctx.SetBodyString("the one answer")
	}
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	const n = 20
	var wg sync.WaitGroup
	bodies := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); bodies <- do(t, "GET", gw.URL+"/c/same").body }()
	}
	// Wait until the leader's request has reached the upstream, and the
	// others have had the time to queue behind it.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // lets the other requests arrive; the assertion below holds however long they take
	close(release)
	wg.Wait()
	close(bodies)
	for b := range bodies {
		if b != "the one answer" {
			t.Errorf("a client got %q", b)
		}
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("%d concurrent misses sent %d requests upstream, want 1", n, c)
	}
}
