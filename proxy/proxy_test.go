package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

func TestRoutingPrecedence(t *testing.T) {
	a, b, c := proxytest.StartUpstream(t), proxytest.StartUpstream(t), proxytest.StartUpstream(t)
	for name, u := range map[string]*proxytest.Upstream{"a": a, "b": b, "c": c} {
		name := name
		u.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name) }
	}
	// Written least specific first: the order of the file must not matter.
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: catch-all
      path: ["/api/*"]
      upstream: {url: "%s"}
    - id: one-segment
      path: ["/api/*/orders"]
      upstream: {url: "%s"}
    - id: exact
      path: ["/api/v1/orders"]
      methods: [GET]
      upstream: {url: "%s/base"}
`, a.URL, b.URL, c.URL))

	f := func(method, path string, wantStatus int, wantBody string) {
		t.Helper()
		resp := proxytest.Do(t, method, gw.URL+path, nil, nil)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != wantStatus || (wantBody != "" && string(resp.Body()) != wantBody) {
			t.Errorf("%s %s = %d %q, want %d %q", method, path, resp.StatusCode(), resp.Body(), wantStatus, wantBody)
		}
	}
	f("GET", "/api/v1/orders", 200, "c")
	f("GET", "/api/v2/orders", 200, "b")
	f("GET", "/api/v1/orders/7", 200, "a")
	f("GET", "/api", 200, "a")
	// The exact route only allows GET: the most specific pattern decides,
	// so POST is a 405, not a trip to a broader route.
	f("POST", "/api/v1/orders", 405, "")
	f("GET", "/other", 404, "")
	f("GET", "/api/v1/../../other", 404, "")
	if got := c.Last(t).URI; got != "/base/api/v1/orders" {
		t.Errorf("upstream with base path saw %q, want /base/api/v1/orders", got)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: products
      path: ["/api/products/*"]
      methods: [GET, POST]
      upstream: {url: "%s"}
`, up.URL))
	resp := proxytest.Do(t, "DELETE", gw.URL+"/api/products/1", nil, nil)
	if resp.StatusCode() != 405 {
		t.Fatalf("status %d, want 405", resp.StatusCode())
	}
	if allow := string(resp.Header.Peek("Allow")); allow != "GET, HEAD, POST" {
		t.Errorf("Allow = %q, want %q", allow, "GET, HEAD, POST")
	}
	if got := string(resp.Header.Peek("X-Flexgate-Error")); got != "method_not_allowed" {
		t.Errorf("X-Flexgate-Error = %q", got)
	}
	fasthttp.ReleaseResponse(resp)

	resp = proxytest.Do(t, "GET", gw.URL+"/nothing/here", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 404 || string(resp.Header.Peek("X-Flexgate-Error")) != "no_route" {
		t.Fatalf("status %d, error %q; want 404 no_route", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
	body := string(resp.Body())
	for _, want := range []string{`"status":404`, `"error":"no route matches the request path"`, `"requestId":"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	if up.Count.Load() != 0 {
		t.Errorf("upstream got %d requests, want 0", up.Count.Load())
	}
}

func TestProxyHeaders(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Connection", "X-Upstream-Hop")
		ctx.Response.Header.Set("X-Upstream-Hop", "secret")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.Response.Header.Set("X-Kept", "yes")
		ctx.SetBodyString("ok")
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
`, up.URL))
	resp := proxytest.Do(t, "GET", gw.URL+"/x?q=1", map[string]string{
		"Host":            "shop.example.com",
		"Connection":      "X-Client-Hop",
		"X-Client-Hop":    "drop me",
		"Keep-Alive":      "timeout=5",
		"Te":              "trailers",
		"X-Forwarded-For": "203.0.113.9",
		"X-Request-Id":    "req-abc-123",
	}, nil)
	defer fasthttp.ReleaseResponse(resp)
	got := up.Last(t)
	for _, h := range []string{"X-Client-Hop", "Keep-Alive", "Te"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("upstream saw hop-by-hop header %s: %q", h, v)
		}
	}
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example.com",
		"X-Request-Id":      "req-abc-123",
	}
	for h, v := range want {
		if got.Header[h] != v {
			t.Errorf("upstream saw %s: %q, want %q", h, got.Header[h], v)
		}
	}
	if got.Host != "shop.example.com" {
		t.Errorf("upstream saw Host %q, want the client's", got.Host)
	}
	if got.URI != "/x?q=1" {
		t.Errorf("upstream saw URI %q", got.URI)
	}
	if tp := got.Header["Traceparent"]; len(tp) != 55 {
		t.Errorf("upstream saw traceparent %q, want a W3C traceparent", tp)
	}
	if v := resp.Header.Peek("X-Upstream-Hop"); v != nil {
		t.Errorf("client saw hop-by-hop response header X-Upstream-Hop: %q", v)
	}
	if v := resp.Header.Peek("Keep-Alive"); v != nil {
		t.Errorf("client saw Keep-Alive: %q", v)
	}
	if string(resp.Header.Peek("X-Kept")) != "yes" || string(resp.Body()) != "ok" {
		t.Errorf("end-to-end header or body lost: %q %q", resp.Header.Peek("X-Kept"), resp.Body())
	}
	if string(resp.Header.Peek("X-Request-Id")) != "req-abc-123" {
		t.Errorf("client saw X-Request-Id %q", resp.Header.Peek("X-Request-Id"))
	}
}

func TestHostOverrideAndExpect(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s", host: "internal.svc"}
`, up.URL))
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: public.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	br := bufio.NewReader(conn)
	line, _ := br.ReadString('\n')
	if !strings.Contains(line, "100 Continue") {
		t.Fatalf("first line %q, want 100 Continue", line)
	}
	for l, _ := br.ReadString('\n'); l != "\r\n" && l != ""; l, _ = br.ReadString('\n') {
	}
	fmt.Fprint(conn, "hello")
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
	got := up.Last(t)
	if got.Host != "internal.svc" {
		t.Errorf("upstream saw Host %q, want the route's host", got.Host)
	}
	if _, ok := got.Header["Expect"]; ok {
		t.Error("Expect was forwarded")
	}
	if string(got.Body) != "hello" {
		t.Errorf("upstream saw body %q", got.Body)
	}
}

func TestUpstreamErrors(t *testing.T) {
	// A port that refuses: listen, note the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	slow := proxytest.StartUpstream(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.Handler = func(ctx *fasthttp.RequestCtx) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: down
      path: ["/down/*"]
      upstream: {url: "http://%s", connectTimeout: 1s}
    - id: slow
      path: ["/slow/*"]
      upstream: {url: "%s", responseTimeout: 200ms}
`, refused, slow.URL))
	f := func(path string, status int, reason string) {
		t.Helper()
		resp := proxytest.Do(t, "GET", gw.URL+path, nil, nil)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status || string(resp.Header.Peek("X-Flexgate-Error")) != reason {
			t.Fatalf("GET %s = %d %q, want %d %q", path, resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), status, reason)
		}
		if ct := string(resp.Header.ContentType()); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		body := string(resp.Body())
		if !strings.Contains(body, fmt.Sprintf(`"status":%d`, status)) || !strings.Contains(body, `"route":"`+strings.Split(path, "/")[1]+`"`) {
			t.Errorf("body %s", body)
		}
	}
	f("/down/x", 502, "upstream_unreachable")
	f("/slow/x", 504, "upstream_timeout")

	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	for _, want := range []string{
		`flexgate_upstream_errors_total{route="down",reason="connect"} 1`,
		`flexgate_upstream_errors_total{route="slow",reason="timeout"} 1`,
		`flexgate_requests_total{route="down",status="5xx"} 1`,
	} {
		if !strings.Contains(string(resp.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// rawExchange sends raw bytes and returns the status line and whether the
// gateway closed the connection after answering.
func rawExchange(t *testing.T, addr, raw string) (status string, closed bool) {
	t.Helper()
	resp, conn, br := rawRequest(t, addr, raw)
	defer conn.Close()
	status = fmt.Sprint(resp.StatusCode())
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return status, err != nil && !timedOut
}

// rawRequest sends raw bytes on a new connection and reads one response;
// the caller closes the connection, which br reads on.
func rawRequest(t *testing.T, addr, raw string) (resp *fasthttp.Response, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	br = bufio.NewReader(conn)
	resp = new(fasthttp.Response)
	if err := resp.Read(br); err != nil {
		conn.Close()
		t.Fatalf("reading answer to %q: %v", raw, err)
	}
	return resp, conn, br
}

func TestMalformedFraming(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
`, up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	cases := map[string]string{
		"content-length and transfer-encoding": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"duplicate content-length":             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		// fasthttp reads identity as no coding: with Content-Length it frames
		// by the length, without it the body is empty and what follows is
		// the next request; a front proxy may frame either otherwise.
		"identity with content-length": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
		"identity alone":               "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"bare LF in a header line":     "GET / HTTP/1.1\r\nHost: x\nX-Smuggle: 1\r\n\r\n",
		"invalid content-length":       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello",
		"space in a header name":       "GET / HTTP/1.1\r\nHost: x\r\nX Forwarded-For: 1.2.3.4\r\n\r\n",
		"folded header line":           "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
		"folded transfer-encoding":     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		"space before the colon":       "GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n",
		"empty header name":            "GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n",
		"control character in a name":  "GET / HTTP/1.1\r\nHost: x\r\nX\x01A: 1\r\n\r\n",
		"NUL in a value":               "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
		"DEL in a value":               "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
		"bare CR in a value":           "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			status, closed := rawExchange(t, addr, raw)
			if status != "400" || !closed {
				t.Errorf("status %s, closed %v; want 400 and a closed connection", status, closed)
			}
		})
	}
	if n := up.Count.Load(); n != 0 {
		t.Errorf("upstream received %d ambiguous requests", n)
	}
}

func TestHeaderLimit(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
`, up.URL))
	// Real clients send large cookies and JWTs: 20 KiB must pass.
	resp := proxytest.Do(t, "GET", gw.URL+"/", map[string]string{"Cookie": strings.Repeat("a", 20<<10)}, nil)
	if resp.StatusCode() != 200 {
		t.Errorf("20 KiB header: status %d, want 200", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	status, closed := rawExchange(t, strings.TrimPrefix(gw.URL, "http://"),
		"GET / HTTP/1.1\r\nHost: x\r\nCookie: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
	if status != "431" || !closed {
		t.Errorf("70 KiB header: status %s closed %v, want 431 and closed", status, closed)
	}
}

func TestBodyLimit(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      maxRequestBodySize: 1KiB
      upstream: {url: "%s"}
`, up.URL))
	resp := proxytest.Do(t, "POST", gw.URL+"/", nil, make([]byte, 2048))
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 413 || string(resp.Header.Peek("X-Flexgate-Error")) != "body_too_large" {
		t.Fatalf("status %d %q, want 413 body_too_large", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
	if up.Count.Load() != 0 {
		t.Error("an oversized body reached the upstream")
	}
	resp2 := proxytest.Do(t, "POST", gw.URL+"/", nil, make([]byte, 1000))
	defer fasthttp.ReleaseResponse(resp2)
	if resp2.StatusCode() != 200 {
		t.Fatalf("body under the limit: status %d", resp2.StatusCode())
	}
}

func TestChunkedBodyLimit(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		n, _ := io.Copy(io.Discard, ctx.RequestBodyStream())
		ctx.SetBodyString(fmt.Sprint(n))
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      maxRequestBodySize: 100KiB
      upstream: {url: "%s"}
`, up.URL))
	send := func(size int) *fasthttp.Response {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.Header.SetMethod("POST")
		req.SetRequestURI(gw.URL + "/upload")
		req.SetBodyStream(io.LimitReader(zeros{}, int64(size)), -1) // chunked
		resp := fasthttp.AcquireResponse()
		if err := proxytest.Client().DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := send(100 << 10)
	if resp.StatusCode() != 200 || string(resp.Body()) != fmt.Sprint(100<<10) {
		t.Fatalf("chunked body at the limit: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	// Over the limit by less than fasthttp drains (256 KiB), so that the
	// client, still writing, reads the answer instead of a reset.
	resp = send(150 << 10)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 413 || string(resp.Header.Peek("X-Flexgate-Error")) != "body_too_large" {
		t.Fatalf("chunked body over the limit: %d %q", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
}

// TestCookiesForwardedAsSent: the gateway forwards Cookie headers byte for
// byte — quoting, order and separate lines kept.
func TestCookiesForwardedAsSent(t *testing.T) {
	got := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var head strings.Builder
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
			head.WriteString(line)
		}
		got <- head.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	}()
	gw := proxytest.Start(t, routeYAML("r", "http://"+ln.Addr().String()))
	status, _ := rawExchange(t, strings.TrimPrefix(gw.URL, "http://"),
		"GET /x HTTP/1.1\r\nHost: x\r\nCookie: sid=\"abc\"; theme=dark\r\nX-Other: 1\r\nCookie: e=5\r\nConnection: close\r\n\r\n")
	if status != "200" {
		t.Fatalf("status %s", status)
	}
	head := <-got
	if !strings.Contains(head, "Cookie: sid=\"abc\"; theme=dark\r\n") || !strings.Contains(head, "Cookie: e=5\r\n") {
		t.Fatalf("upstream saw cookies changed:\n%s", head)
	}
}
