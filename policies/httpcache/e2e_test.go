package httpcache_test

import (
	"bufio"
	"fmt"
	"net/url"
	"runtime"
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

// TestStreamedBodies: a body that streams through the gateway (over
// 64 KiB, or chunked) is stored once it has streamed whole, within 1 MiB;
// a larger one streams through and is not stored.
func TestStreamedBodies(t *testing.T) {
	up := proxytest.StartUpstream(t)
	big := strings.Repeat("0123456789abcdef", 200<<10/16) // 200 KiB
	huge := strings.Repeat("x", 2<<20)                    // 2 MiB
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/c/big":
			ctx.SetBodyString(big)
		case "/c/huge":
			ctx.SetBodyString(huge)
		case "/c/chunked":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for range 10 {
					w.WriteString(strings.Repeat("c", 10<<10))
					w.Flush()
				}
			})
		}
	}
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	for _, tc := range []struct {
		path   string
		size   int
		stored bool
	}{{"/c/big", len(big), true}, {"/c/chunked", 100 << 10, true}, {"/c/huge", len(huge), false}} {
		before := up.Count.Load()
		a := do(t, "GET", gw.URL+tc.path)
		b := do(t, "GET", gw.URL+tc.path)
		if len(a.body) != tc.size || b.body != a.body {
			t.Errorf("%s: %d and %d bytes, want %d", tc.path, len(a.body), len(b.body), tc.size)
		}
		if calls := up.Count.Load() - before; (calls == 1) != tc.stored {
			t.Errorf("%s: the upstream answered %d of 2 requests; stored want %v", tc.path, calls, tc.stored)
		}
	}
}

// TestPrivateAnswersEndToEnd: answers with Set-Cookie, and answers to
// requests with Authorization, are never given to another client.
func TestPrivateAnswersEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/c/login" {
			ctx.Response.Header.Set("Set-Cookie", "session="+string(ctx.Request.Header.Peek("X-User")))
		}
		fmt.Fprintf(ctx, "for %s%s", ctx.Request.Header.Peek("X-User"), ctx.Request.Header.Peek("Authorization"))
	}
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	do(t, "GET", gw.URL+"/c/login", "X-User", "alice")
	if b := do(t, "GET", gw.URL+"/c/login", "X-User", "bob"); b.headers["Set-Cookie"] != "session=bob" {
		t.Errorf("bob got %v", b.headers)
	}
	do(t, "GET", gw.URL+"/c/me", "Authorization", "Bearer alice")
	if b := do(t, "GET", gw.URL+"/c/me", "Authorization", "Bearer bob"); b.body != "for Bearer bob" {
		t.Errorf("bob got %q", b.body)
	}
	if b := do(t, "GET", gw.URL+"/c/me"); b.body != "for " {
		t.Errorf("an anonymous client got %q", b.body)
	}
}

// TestVaryEndToEnd: answers varying on Accept-Encoding are kept apart.
func TestVaryEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
		fmt.Fprintf(ctx, "encoded as %q", ctx.Request.Header.Peek("Accept-Encoding"))
	}
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	gz := do(t, "GET", gw.URL+"/c/v", "Accept-Encoding", "gzip")
	id := do(t, "GET", gw.URL+"/c/v", "Accept-Encoding", "identity")
	if gz.body == id.body || do(t, "GET", gw.URL+"/c/v", "Accept-Encoding", "gzip").body != gz.body || up.Count.Load() != 2 {
		t.Errorf("gzip %q, identity %q, upstream %d", gz.body, id.body, up.Count.Load())
	}
}

// TestLeaderFailsWaitersGoUpstream: when the request the others wait for
// fails, they are not answered from nothing: each goes upstream.
func TestLeaderFailsWaitersGoUpstream(t *testing.T) {
	up := proxytest.StartUpstream(t)
	var calls atomic.Int64
	release := make(chan struct{})
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if calls.Add(1) == 1 {
			<-release
			ctx.SetStatusCode(500)
			return
		}
		ctx.SetBodyString("ok")
	}
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	var wg sync.WaitGroup
	statuses := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); statuses <- do(t, "GET", gw.URL+"/c/x").status }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(statuses)
	n500 := 0
	for s := range statuses {
		if s == 500 {
			n500++
		}
	}
	if n500 != 1 {
		t.Errorf("%d clients got the leader's 500, want 1", n500)
	}
}

// TestHitThroughGatewayDoesNotAllocate counts every allocation of the
// process while the gateway answers from its cache.
func TestHitThroughGatewayDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	up := proxytest.StartUpstream(t)
	up.Record = false
	gw := cacheGateway(t, up, "- http-caching: {}\n")
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(gw.URL, "http://"), MaxConns: 4}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(gw.URL + "/c/x")
	hit := func() {
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%v %d", err, resp.StatusCode())
		}
	}
	for range 200 {
		hit()
	}
	if up.Count.Load() != 1 {
		t.Fatalf("the upstream answered %d requests", up.Count.Load())
	}
	if n := proxytest.SteadyAllocs(500, hit); n >= 0.5 {
		t.Errorf("a hit through the gateway costs %.2f allocations, want 0", n)
	}
}

// TestBoundedMemory fills the cache with many distinct answers: the heap
// stays within maxBytes and a margin.
func TestBoundedMemory(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	body := strings.Repeat("m", 32<<10)
	up.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(body) }
	gw := cacheGateway(t, up, "- http-caching: {maxBytes: 2MiB, maxEntries: 100000}\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1000 { // 32 MiB of answers
		do(t, "GET", fmt.Sprintf("%s/c/%d", gw.URL, i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 12<<20 {
		t.Errorf("the heap grew by %d MiB storing 32 MiB of answers in a cache of 2 MiB", grown>>20)
	}
}

// doRaw sends a GET to url with headers (name, value pairs; a name may
// repeat, and is sent as written) and returns the body.
func doRaw(t *testing.T, url string, headers ...string) string {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.DisableNormalizing()
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	if err := proxytest.Client().DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(resp.Body())
}

// multilingual makes up answer in the language a request asks for, read
// as ASP.NET and PHP read a query parameter (ui_lang in any case, with '.'
// or ' ' for '_'), the query split at ';' too, as Rack 2 splits it, and
// as CGI reads a header (X-Lang or Accept-Language, with '_' for '-'), the
// last copy winning; "en" when none does.
func multilingual(up *proxytest.Upstream) {
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		lang := "en"
		for _, p := range strings.FieldsFunc(string(ctx.URI().QueryString()), func(r rune) bool { return r == '&' || r == ';' }) {
			k, v, _ := strings.Cut(p, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			if strings.NewReplacer(".", "_", " ", "_").Replace(strings.ToLower(k)) == "ui_lang" {
				lang = v
			}
		}
		for k, v := range ctx.Request.Header.All() {
			if n := strings.ReplaceAll(string(k), "_", "-"); strings.EqualFold(n, "X-Lang") || strings.EqualFold(n, "Accept-Language") {
				lang = string(v)
			}
		}
		if strings.HasPrefix(string(ctx.Path()), "/c/vary") {
			ctx.Response.Header.Set("Vary", "Accept-Language")
		}
		fmt.Fprintf(ctx, "in %s", lang)
	}
}

// TestKeyReadsWhatTheUpstreamReads: a request whose key parameter or
// header comes in a spelling the key does not read (?UI_LANG=, ?ui.lang=,
// X_Lang), or more than once, reaches an upstream that reads it, and the
// answer it gets must not be stored under the key of the plain request: a
// later visitor would get the attacker's language. Nor is it answered
// from the cache. The same for the request headers an answer's Vary
// names.
func TestKeyReadsWhatTheUpstreamReads(t *testing.T) {
	up := proxytest.StartUpstream(t)
	multilingual(up)
	gw := cacheGateway(t, up, "- http-caching: {key: \"$request.path|$request.query.ui_lang|$request.header.X-Lang\"}\n")
	for i, c := range []struct {
		// attack is sent first; then the victim's request, which must
		// get the answer in its own language, and get it again from
		// the cache.
		attack, victim []string
		want           string
	}{
		{[]string{"?UI_LANG=fr"}, []string{""}, "in en"},
		{[]string{"?Ui_Lang=fr"}, []string{""}, "in en"},
		{[]string{"?ui.lang=fr"}, []string{""}, "in en"},
		{[]string{"?ui%20lang=fr"}, []string{""}, "in en"},
		{[]string{"?ui_lang=de&UI.LANG=fr"}, []string{"?ui_lang=de"}, "in de"},
		{[]string{"?ui_lang=de&ui_lang=fr"}, []string{"?ui_lang=de"}, "in de"},
		// Rack 2 and Python before 3.9.2 split the query at ';' too; a
		// ';' that hides no key parameter is stored as any query.
		{[]string{"?utm=1;ui_lang=fr"}, []string{""}, "in en"},
		{[]string{"?utm;ui_lang=fr"}, []string{""}, "in en"},
		{[]string{"?ui_lang=de&utm=1;UI_LANG=fr"}, []string{"?ui_lang=de&q=a;b&ids=1;2;3"}, "in de"},
		{[]string{"", "X_Lang", "fr"}, []string{""}, "in en"},
		{[]string{"", "x_lang", "fr"}, []string{""}, "in en"},
		{[]string{"", "X-Lang", "de", "X_Lang", "fr"}, []string{"", "X-Lang", "de"}, "in de"},
		{[]string{"", "X-Lang", "de", "X-Lang", "fr"}, []string{"", "X-Lang", "de"}, "in de"},
		// The answers vary on Accept-Language, which the upstream reads
		// in either spelling.
		{[]string{"", "Accept_Language", "fr"}, []string{""}, "in en"},
		{[]string{"", "Accept-Language", "de", "Accept_Language", "fr"}, []string{"", "Accept-Language", "de"}, "in de"},
		{[]string{"", "Accept-Language", "de", "Accept-Language", "fr"}, []string{"", "Accept-Language", "de"}, "in de"},
	} {
		path := fmt.Sprintf("/c/%d", i)
		if i >= 13 {
			path = fmt.Sprintf("/c/vary%d", i)
		}
		if got := doRaw(t, gw.URL+path+c.attack[0], c.attack[1:]...); got != "in fr" {
			t.Fatalf("%s%s %q: the attacker got %q", path, c.attack[0], c.attack[1:], got)
		}
		before := up.Count.Load()
		if got := doRaw(t, gw.URL+path+c.victim[0], c.victim[1:]...); got != c.want {
			t.Errorf("%s%s %q after %s %q: the victim got %q, want %q", path, c.victim[0], c.victim[1:], c.attack[0], c.attack[1:], got, c.want)
		}
		if got := doRaw(t, gw.URL+path+c.victim[0], c.victim[1:]...); got != c.want || up.Count.Load() != before+1 {
			t.Errorf("%s%s %q again: got %q, the upstream answered %d of 2, want 1", path, c.victim[0], c.victim[1:], got, up.Count.Load()-before)
		}
		// Nor is the attacker answered from the victim's entry.
		if got := doRaw(t, gw.URL+path+c.attack[0], c.attack[1:]...); got != "in fr" {
			t.Errorf("%s%s %q after the victim: got %q from the cache", path, c.attack[0], c.attack[1:], got)
		}
	}
}
