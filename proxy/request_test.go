package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// headUpstream records the raw header block of every request it receives
// (bodies framed by Content-Length) and answers each with answer.
func headUpstream(t *testing.T, answer string) (url string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					length := 0
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
						head.WriteString(line)
						if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
							length, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
						return
					}
					select {
					case ch <- head.String():
					default:
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	return "http://" + ln.Addr().String(), ch
}

// nextHead waits for the upstream to receive a request.
func nextHead(t *testing.T, heads <-chan string) string {
	t.Helper()
	select {
	case h := <-heads:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream received no request")
		return ""
	}
}

// headerLines returns the values of every line of header name in a raw
// header block, in order.
func headerLines(head, name string) []string {
	var vals []string
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// rawStatus sends raw bytes on a new connection and returns the status of
// the answer.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	resp, conn, _ := rawRequest(t, addr, raw)
	conn.Close()
	return resp.StatusCode()
}

// TestForwardedForEveryLine: behind a proxy that adds its own
// X-Forwarded-For line (HAProxy), the client's forged first line must not
// decide $request.remoteAddress, and the upstream gets every line, in
// order, as one list ending with the gateway's peer.
func TestForwardedForEveryLine(t *testing.T) {
	upstream, heads := headUpstream(t, okAnswer)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  trustedProxies: ["127.0.0.0/8"]
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - request-headers-set:
            headers: {X-Client: $request.remoteAddress}
`, upstream))
	status := rawStatus(t, strings.TrimPrefix(gw.URL, "http://"), "GET /x HTTP/1.1\r\nHost: shop.example\r\n"+
		"X-Forwarded-For: 198.51.100.66\r\nX-Other: 1\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	head := nextHead(t, heads)
	if got := headerLines(head, "X-Client"); len(got) != 1 || got[0] != "203.0.113.7" {
		t.Errorf("$request.remoteAddress = %q, want the address the trusted proxy added, 203.0.113.7", got)
	}
	if got := headerLines(head, "X-Forwarded-For"); len(got) != 1 || got[0] != "198.51.100.66, 203.0.113.7, 127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-For lines %q, want one: 198.51.100.66, 203.0.113.7, 127.0.0.1", got)
	}
	if got := headerLines(head, "X-Real-Ip"); len(got) != 1 || got[0] != "203.0.113.7" {
		t.Errorf("upstream saw X-Real-IP %q, want the client address 203.0.113.7", got)
	}
}

// TestForwardingHeadersAreTheGateways: what a client sends in Forwarded
// is kept and the gateway's own element appended, as for X-Forwarded-For;
// a client's X-Real-IP, X-Forwarded-Proto, -Host and -Port are replaced,
// every line of them, and their spellings with '_' removed; X-Request-Id
// and traceparent reach the upstream once.
func TestForwardingHeadersAreTheGateways(t *testing.T) {
	upstream, heads := headUpstream(t, okAnswer)
	gw := proxytest.Start(t, routeYAML("r", upstream))
	addr := strings.TrimPrefix(gw.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	status := rawStatus(t, addr, "GET /x HTTP/1.1\r\nHost: shop.example:8443\r\n"+
		"Forwarded: for=192.0.2.1\r\nX-Real-IP: 192.0.2.99\r\nForwarded: for=\"[2001:db8::7]\";proto=https\r\n"+
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 1\r\n"+
		"X_Forwarded_For: 192.0.2.99\r\nx_real_ip: 192.0.2.99\r\nclient_id: kept\r\n"+
		"X-Request-Id: first-id\r\nX-Request-Id: second-id\r\n"+
		"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"+
		"traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	head := nextHead(t, heads)
	for _, name := range []string{"X_Forwarded_For", "X_Real_Ip"} {
		if got := headerLines(head, name); len(got) != 0 {
			t.Errorf("upstream saw %s %q, which frameworks read as the gateway's header", name, got)
		}
	}
	if got := headerLines(head, "Traceparent"); len(got) != 1 || !strings.HasPrefix(got[0], "00-0af7651916cd43dd8448eb211c80319c-") {
		t.Errorf("upstream saw traceparent lines %q, want one continuing the client's first", got)
	}
	want := map[string]string{
		"Client_id":         "kept",
		"X-Request-Id":      "first-id",
		"Forwarded":         `for=192.0.2.1, for="[2001:db8::7]";proto=https, for=127.0.0.1;proto=http;host="shop.example:8443"`,
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example:8443",
		"X-Forwarded-Port":  port,
	}
	for name, v := range want {
		if got := headerLines(head, name); len(got) != 1 || got[0] != v {
			t.Errorf("upstream saw %s lines %q, want one: %s", name, got, v)
		}
	}
}

// TestTrustedProxyForwardingHeadersKept: a trusted proxy in front (a load
// balancer terminating TLS) says how the client connected; its
// X-Forwarded-Proto, -Host and -Port are kept.
func TestTrustedProxyForwardingHeadersKept(t *testing.T) {
	upstream, heads := headUpstream(t, okAnswer)
	gw := proxytest.Start(t, routeYAML("r", upstream)+"  trustedProxies: [\"127.0.0.1\"]\n")
	status := rawStatus(t, strings.TrimPrefix(gw.URL, "http://"), "GET /x HTTP/1.1\r\nHost: backend.internal\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-Port: 443\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	head := nextHead(t, heads)
	for name, v := range map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
		"X-Forwarded-Port": "443", "X-Real-Ip": "203.0.113.7"} {
		if got := headerLines(head, name); len(got) != 1 || got[0] != v {
			t.Errorf("upstream saw %s lines %q, want one: %s", name, got, v)
		}
	}
}

// TestConnectionCannotRemovePolicyHeaders: the headers a client names in
// Connection are removed before the policies run, not after, so that a
// client cannot strip what a policy sets.
func TestConnectionCannotRemovePolicyHeaders(t *testing.T) {
	upstream, heads := headUpstream(t, okAnswer)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - request-headers-set:
            headers: {X-Authenticated-Client: "verified", X-Other: "set"}
`, upstream))
	status := rawStatus(t, strings.TrimPrefix(gw.URL, "http://"), "GET /x HTTP/1.1\r\nHost: x\r\n"+
		"Connection: X-Authenticated-Client, x-other, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	head := nextHead(t, heads)
	for name, v := range map[string]string{"X-Authenticated-Client": "verified", "X-Other": "set"} {
		if got := headerLines(head, name); len(got) != 1 || got[0] != v {
			t.Errorf("upstream saw %s %q, want the policy's %q", name, got, v)
		}
	}
	for _, name := range []string{"X-Hop", "Keep-Alive", "Connection"} {
		if got := headerLines(head, name); len(got) != 0 {
			t.Errorf("upstream saw hop-by-hop %s: %q", name, got)
		}
	}
}

// TestRequestTrailersAreNotForwarded: the fields of a chunked request's
// trailer section arrive after the policies have read the headers, and an
// upstream that reads them as headers (a fasthttp server's Peek does, as
// Apache's MergeTrailers and older Tomcat did) would take a header the
// route removes, or sets, from the client. They are not forwarded, whether
// the body streams through or a policy has read it first; and a header a
// policy set stays, though the trailer repeats its name.
func TestRequestTrailersAreNotForwarded(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		body := ctx.Request.Body() // reads the trailer section too
		ctx.SetBodyString(fmt.Sprintf("body=%s user=%s role=%s trailers=%d", body,
			ctx.Request.Header.Peek("X-Internal-User"), ctx.Request.Header.Peek("X-Role"),
			len(ctx.Request.Header.PeekTrailerKeys())))
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: streamed
      path: ["/streamed/*"]
      upstream: {url: "%s"}
      policies:
        - request-headers-remove: {headers: [X-Internal-User]}
        - request-headers-set: {headers: {X-Role: guest}}
    - id: held
      path: ["/held/*"]
      upstream: {url: "%s"}
      policies:
        - request-headers-remove: {headers: [X-Internal-User]}
        - request-headers-set: {headers: {X-Role: guest}}
        - json-threat-protection: {maxContainerDepth: 5}
`, up.URL, up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, path := range []string{"/streamed/x", "/held/x"} {
		resp, conn, _ := rawRequest(t, addr, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Transfer-Encoding: chunked\r\nX-Internal-User: admin\r\n\r\n2\r\n{}\r\n0\r\n"+
			"X-Internal-User: admin\r\nX-Role: admin\r\nX-Request-Id: forged\r\n\r\n")
		conn.Close()
		if got, want := string(resp.Body()), "body={} user= role=guest trailers=0"; resp.StatusCode() != 200 || got != want {
			t.Errorf("%s: the upstream answered %d %q, want %q: no trailer field, the policies' headers", path, resp.StatusCode(), got, want)
		}
	}
}

// TestManyTrailerFieldsAreRefused: dropping a trailer section costs the
// gateway a pass over the header per field name, so a trailer of thousands
// of fields (8,000 empty ones fit in 64 KiB) is refused with a 400 rather
// than dropped, and the upstream never has the request whole: it streamed
// without its last chunk, or a policy read it and it went nowhere. The
// connection closes. 8 fields are still served, without them.
func TestManyTrailerFieldsAreRefused(t *testing.T) {
	// The streamed body's upstream keeps everything it receives on each
	// connection, until the gateway closes it.
	received := make(chan string, 4)
	streamed := rawServer(t, func(_ net.Conn, br *bufio.Reader) {
		b, _ := io.ReadAll(br)
		received <- string(b)
	})
	held, served := proxytest.StartUpstream(t), proxytest.StartUpstream(t)
	served.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(fmt.Sprintf("body=%s trailers=%d t1=%s", ctx.Request.Body(),
			len(ctx.Request.Header.PeekTrailerKeys()), ctx.Request.Header.Peek("T1")))
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: streamed
      path: ["/streamed/*"]
      upstream: {url: "%s"}
    - id: held
      path: ["/held/*"]
      upstream: {url: "%s"}
      policies:
        - json-threat-protection: {maxContainerDepth: 5}
    - id: served
      path: ["/served/*"]
      upstream: {url: "%s"}
`, streamed, held.URL, served.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	chunked := func(path string, fields int) string {
		var b strings.Builder
		b.WriteString("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
		for i := range fields {
			fmt.Fprintf(&b, "T%d:\r\n", i)
		}
		b.WriteString("\r\n")
		return b.String()
	}

	for _, tc := range []struct{ path, route string }{{"/held/x", "held"}, {"/streamed/x", "streamed"}} {
		for _, fields := range []int{9, 8000} {
			resp, conn, br := rawRequest(t, addr, chunked(tc.path, fields))
			_, err := br.ReadByte()
			conn.Close()
			if got := string(resp.Header.Peek("X-Flexgate-Error")); resp.StatusCode() != 400 || got != "too_many_trailer_fields" ||
				!strings.Contains(string(resp.Body()), `"reason":"too_many_trailer_fields"`) ||
				!strings.Contains(string(resp.Body()), "more than 8 fields") {
				t.Errorf("%s, %d trailer fields: %d, X-Flexgate-Error %q, %s; want 400 too_many_trailer_fields",
					tc.path, fields, resp.StatusCode(), got, resp.Body())
			}
			if !resp.ConnectionClose() || err == nil {
				t.Errorf("%s, %d trailer fields: the connection stays open (read %v)", tc.path, fields, err)
			}
			if tc.route == "held" {
				if n := held.Count.Load(); n != 0 {
					t.Errorf("%s: the upstream received %d requests, want none", tc.path, n)
				}
				continue
			}
			select {
			case got := <-received:
				if strings.Contains(got, "\r\n0\r\n") || strings.Contains(got, "T0:") {
					t.Errorf("%s, %d trailer fields: the upstream received the body's end: %q", tc.path, fields, got)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s: the gateway kept the upstream connection of a refused request open", tc.path)
			}
		}
		if got := metricValue(t, gw, fmt.Sprintf(`flexgate_errors_total{route="%s",reason="too_many_trailer_fields"}`, tc.route)); got != 2 {
			t.Errorf("%s: flexgate_errors_total counts %v refusals, want 2", tc.route, got)
		}
	}

	resp, conn, _ := rawRequest(t, addr, chunked("/served/x", 8))
	conn.Close()
	if got, want := string(resp.Body()), "body={} trailers=0 t1="; resp.StatusCode() != 200 || got != want {
		t.Errorf("8 trailer fields: %d %q, want 200 %q: served, the trailer dropped", resp.StatusCode(), got, want)
	}
}

// TestClientConnectionSemantics: removing the client's Connection header
// early must not change whether its connection stays open.
func TestClientConnectionSemantics(t *testing.T) {
	upstream, _ := headUpstream(t, okAnswer)
	gw := proxytest.Start(t, routeYAML("r", upstream))
	addr := strings.TrimPrefix(gw.URL, "http://")
	for name, raw := range map[string]string{
		"HTTP/1.1 close":        "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 close, token": "GET /x HTTP/1.1\r\nHost: x\r\nConnection: X-A, close\r\nX-A: 1\r\n\r\n",
		"HTTP/1.0":              "GET /x HTTP/1.0\r\n\r\n",
	} {
		if status, closed := rawExchange(t, addr, raw); status != "200" || !closed {
			t.Errorf("%s: status %s, closed %v; want 200 and a closed connection", name, status, closed)
		}
	}
	// Kept open: a second request on the connection is answered.
	for name, raw := range map[string]string{
		"HTTP/1.0 keep-alive": "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1":            "GET /x HTTP/1.1\r\nHost: x\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
	} {
		resp, conn, br := rawRequest(t, addr, raw)
		if resp.StatusCode() != 200 || (strings.HasPrefix(name, "HTTP/1.0") &&
			!strings.EqualFold(string(resp.Header.Peek("Connection")), "keep-alive")) {
			t.Errorf("%s: %d, Connection %q", name, resp.StatusCode(), resp.Header.Peek("Connection"))
		}
		io.WriteString(conn, raw)
		var second fasthttp.Response
		if err := second.Read(br); err != nil || second.StatusCode() != 200 {
			t.Errorf("%s: second request on the connection: %v %d", name, err, second.StatusCode())
		}
		conn.Close()
	}
}

// TestConnectAndTraceAreNotForwarded: CONNECT would open a tunnel through
// the gateway and TRACE echoes the request, credentials included, back:
// neither reaches an upstream unless a route lists TRACE.
func TestConnectAndTraceAreNotForwarded(t *testing.T) {
	anyUp, trace := proxytest.StartUpstream(t), proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: any
      path: ["/*"]
      upstream: {url: "%s"}
    - id: trace
      path: ["/trace/*"]
      methods: [GET, TRACE]
      upstream: {url: "%s"}
`, anyUp.URL, trace.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	const anyAllow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	for _, c := range []struct{ name, raw, allow string }{
		{"CONNECT authority-form", "CONNECT " + anyUp.Addr + " HTTP/1.1\r\nHost: " + anyUp.Addr + "\r\n\r\n", anyAllow},
		{"CONNECT origin-form", "CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n", anyAllow},
		{"TRACE on a route allowing any method", "TRACE /x HTTP/1.1\r\nHost: x\r\n\r\n", anyAllow},
	} {
		resp, conn, _ := rawRequest(t, addr, c.raw)
		conn.Close()
		if resp.StatusCode() != 405 || string(resp.Header.Peek("Allow")) != c.allow ||
			string(resp.Header.Peek("X-Flexgate-Error")) != "method_not_allowed" {
			t.Errorf("%s: %d, Allow %q, error %q; want 405, Allow %q", c.name, resp.StatusCode(),
				resp.Header.Peek("Allow"), resp.Header.Peek("X-Flexgate-Error"), c.allow)
		}
	}
	if n := anyUp.Count.Load(); n != 0 {
		t.Errorf("the upstream received %d CONNECT or TRACE requests", n)
	}
	status := rawStatus(t, addr, "TRACE /trace/x HTTP/1.1\r\nHost: x\r\n\r\n")
	if status != 200 || trace.Count.Load() != 1 {
		t.Errorf("TRACE on a route listing it: status %d, upstream saw %d requests", status, trace.Count.Load())
	}
}

// expectExchange sends a request's head with Expect: 100-continue and
// waits for either 100 Continue, after which it sends body, or a final
// answer. It returns whether 100 came, the final answer and, with
// checkClose, whether the gateway closed the connection after it.
func expectExchange(t *testing.T, addr, head, body string, checkClose bool) (continued bool, resp *fasthttp.Response, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	first, err := br.Peek(len("HTTP/1.1 100 "))
	if err != nil {
		t.Fatalf("no answer to the head of %q: %v", head, err)
	}
	if string(first) == "HTTP/1.1 100 " {
		continued = true
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
		}
		io.WriteString(conn, body)
	}
	resp = new(fasthttp.Response)
	if err := resp.Read(br); err != nil {
		t.Fatalf("reading the answer to %q: %v", head, err)
	}
	if !checkClose {
		return continued, resp, false
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return continued, resp, closed
}

// TestExpectContinueOnlyWhenTheRequestMayProceed: a client waiting for
// 100 Continue gets it only once routing, the method, the declared body
// size and the header-only policies have let the request through;
// otherwise it gets the final answer without having sent its body.
func TestExpectContinueOnlyWhenTheRequestMayProceed(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  clients:
    - id: app
      secret: app-secret-value
  routes:
    - id: open
      path: ["/open/*"]
      methods: [POST]
      maxRequestBodySize: 1KiB
      upstream: {url: "%s"}
      policies:
        - rate-limiting: {limit: 2, period: 3600}
    - id: guarded
      path: ["/guarded/*"]
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement
        - request-validation:
            in: body
            schema: '{"type": "object", "required": ["n"]}'
`, up.URL, up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	post := func(path, headers string, length int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n",
			path, headers, length)
	}
	creds := "client_id: app\r\nclient_secret: app-secret-value\r\n"
	for _, c := range []struct {
		name, head string
		status     int
		reason     string
	}{
		{"no route", post("/nowhere", "", 5), 404, "no_route"},
		{"method not allowed", strings.Replace(post("/open/x", "", 5), "POST", "PUT", 1), 405, "method_not_allowed"},
		{"body over the route's limit", post("/open/x", "", 2048), 413, "body_too_large"},
		{"header-only policy refuses", post("/guarded/x", "", 7), 401, ""},
		{"framing", post("/open/x", "Transfer-Encoding: chunked\r\n", 5), 400, "bad_request"},
	} {
		continued, resp, closed := expectExchange(t, addr, c.head, "{...}", true)
		if continued || resp.StatusCode() != c.status || !closed ||
			(c.reason != "" && string(resp.Header.Peek("X-Flexgate-Error")) != c.reason) {
			t.Errorf("%s: 100 sent %v, then %d %q, closed %v; want no 100, %d %s and a closed connection",
				c.name, continued, resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), closed, c.status, c.reason)
		}
	}
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream received %d refused requests", n)
	}

	// Accepted: 100, then the body, which the policies needing it read.
	continued, resp, _ := expectExchange(t, addr, post("/guarded/x", creds, 7), `{"n":1}`, false)
	if !continued || resp.StatusCode() != 200 {
		t.Fatalf("valid request: 100 sent %v, then %d %s", continued, resp.StatusCode(), resp.Body())
	}
	if got := up.Last(t); string(got.Body) != `{"n":1}` || got.Header["Expect"] != "" {
		t.Errorf("upstream saw body %q, Expect %q", got.Body, got.Header["Expect"])
	}
	continued, resp, _ = expectExchange(t, addr, post("/guarded/x", creds, 7), `{"m":1}`, false)
	if !continued || resp.StatusCode() != 400 {
		t.Errorf("body failing the schema: 100 sent %v, then %d; want 100 and 400", continued, resp.StatusCode())
	}

	// The chain runs once per request, whether before the 100 or after:
	// a limit of 2 lets two requests through.
	for i := 0; i < 2; i++ {
		continued, resp, _ := expectExchange(t, addr, post("/open/x", "", 5), "hello", false)
		if !continued || resp.StatusCode() != 200 {
			t.Fatalf("request %d under the rate limit: 100 sent %v, then %d %s", i+1, continued, resp.StatusCode(), resp.Body())
		}
	}
	continued, resp, _ = expectExchange(t, addr, post("/open/x", "", 5), "hello", false)
	if continued || resp.StatusCode() != 429 {
		t.Errorf("request over the rate limit: 100 sent %v, then %d; want no 100 and 429", continued, resp.StatusCode())
	}

	// A client asking to close gets its connection closed after the answer.
	continued, resp, closed := expectExchange(t, addr, post("/guarded/x", creds+"Connection: close\r\n", 7), `{"n":2}`, true)
	if !continued || resp.StatusCode() != 200 || !closed {
		t.Errorf("Connection: close: 100 sent %v, then %d, closed %v; want 100, 200 and a closed connection",
			continued, resp.StatusCode(), closed)
	}
}

// rawAnswer sends raw, which should ask to close the connection, and
// returns all the gateway sent back.
func rawAnswer(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, raw)
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	return string(b)
}

// TestNoDefaultContentType: a message without Content-Type is forwarded
// without one, both ways, and the gateway adds no User-Agent.
func TestNoDefaultContentType(t *testing.T) {
	upstream, heads := headUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	gw := proxytest.Start(t, routeYAML("r", upstream))
	answer := rawAnswer(t, strings.TrimPrefix(gw.URL, "http://"),
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata")
	head := nextHead(t, heads)
	for _, name := range []string{"Content-Type", "User-Agent"} {
		if got := headerLines(head, name); len(got) != 0 {
			t.Errorf("upstream saw %s %q the client did not send", name, got)
		}
	}
	if !strings.HasPrefix(answer, "HTTP/1.1 200 ") || len(headerLines(answer, "Content-Type")) != 0 {
		t.Errorf("client got a Content-Type the upstream did not send:\n%s", answer)
	}
}

// TestNoDefaultContentTypeAfterRetry: a response read on a second attempt
// (the pooled connection had been closed by the upstream) gains no
// Content-Type either.
func TestNoDefaultContentTypeAfterRetry(t *testing.T) {
	// Each connection answers one request, keeping the connection open as
	// far as the gateway can tell, then closes it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				var req fasthttp.Request
				if err := req.Read(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			}(c)
		}
	}()
	gw := proxytest.Start(t, routeYAML("r", "http://"+ln.Addr().String()))
	for i := 0; i < 3; i++ {
		answer := rawAnswer(t, strings.TrimPrefix(gw.URL, "http://"), "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(answer, "HTTP/1.1 200 ") || len(headerLines(answer, "Content-Type")) != 0 {
			t.Errorf("request %d: client got a Content-Type the upstream did not send:\n%s", i+1, answer)
		}
	}
}

// TestForwardingHeadersDoNotAllocate: a request behind a trusted proxy,
// with list headers over several lines and hop-by-hop headers, costs no
// allocation either.
func TestForwardingHeadersDoNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	up := proxytest.StartUpstream(t)
	up.Record = false
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  trustedProxies: ["127.0.0.0/8"]
  routes:
    - id: r
      path: ["/api/*"]
      methods: [GET]
      upstream: {url: "%s"}
`, up.URL))
	rt := newRoundTrip(t, gw.URL, "/api/x")
	h := &rt.req.Header
	h.Add("X-Forwarded-For", "198.51.100.66")
	h.Add("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
	h.Add("Forwarded", "for=198.51.100.66")
	h.Add("Forwarded", "for=203.0.113.7;proto=https")
	h.Set("X-Forwarded-Proto", "https")
	h.Set("Connection", "X-Hop")
	h.Set("X-Hop", "1")
	h.Set("Keep-Alive", "timeout=5")
	for i := 0; i < 200; i++ {
		rt.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { rt.do(t) }); allocs >= 0.5 {
		t.Fatalf("a proxied request with forwarding headers costs %.2f allocations, want 0", allocs)
	}
}

// TestExpectContinueBodyNeverSent: a request let through with 100 Continue
// whose body never comes is dropped by fasthttp without reaching the
// handler; it must not stay counted as running, or a reload would wait
// for it forever.
func TestExpectContinueBodyNeverSent(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL))
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	if n := gw.GW.InFlight(); n != 1 {
		t.Fatalf("%d requests in flight while the body is awaited, want 1", n)
	}
	io.WriteString(conn, "abc")
	conn.(*net.TCPConn).CloseWrite()
	deadline := time.Now().Add(5 * time.Second)
	for gw.GW.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still in flight after the client went away", gw.GW.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if up.Count.Load() != 0 {
		t.Error("a request without its body reached the upstream")
	}
}

// TestBodyRefusalAfterEarlyAnswer: when the upstream answers before the
// client's body ends and the gateway then refuses the body (too many
// trailer fields, too large), the client gets either the upstream's answer
// whole (the gateway stopped reading the body when it came) or the
// gateway's error alone: none of the upstream's headers (a cookie, an
// encoding) ride on the error.
func TestBodyRefusalAfterEarlyAnswer(t *testing.T) {
	answered := make(chan struct{}, 4)
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var h fasthttp.RequestHeader
		if err := h.Read(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: session=upstream\r\nContent-Encoding: gzip\r\nX-Up: 1\r\nContent-Length: 2\r\n\r\nok")
		answered <- struct{}{}
		_, _ = io.Copy(io.Discard, br)
	})
	gw := proxytest.Start(t, routeYAML("r", upstream)+"  limits: {maxRequestBodySize: 1KiB}\n")
	addr := strings.TrimPrefix(gw.URL, "http://")
	var trailer strings.Builder
	for i := range 9 {
		fmt.Fprintf(&trailer, "T%d:\r\n", i)
	}
	for _, tc := range []struct{ name, rest, reason string }{
		{"too many trailer fields", "0\r\n" + trailer.String() + "\r\n", "too_many_trailer_fields"},
		{"body too large", "800\r\n" + strings.Repeat("a", 2048) + "\r\n0\r\n\r\n", "body_too_large"},
	} {
		// Which comes first is the machine's choice: try until the
		// gateway refuses.
		refused := false
		for attempt := 0; attempt < 20 && !refused; attempt++ {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n")
			select {
			case <-answered:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream did not get the request's head")
			}
			io.WriteString(conn, tc.rest)
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(conn)); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			conn.Close()
			got := string(resp.Header.Peek("X-Flexgate-Error"))
			if got == "" && resp.StatusCode() == 200 && string(resp.Header.Peek("X-Up")) == "1" {
				continue
			}
			refused = true
			if got != tc.reason {
				t.Errorf("%s: %d, X-Flexgate-Error %q; want %s", tc.name, resp.StatusCode(), got, tc.reason)
			}
			for _, h := range []string{"Set-Cookie", "Content-Encoding", "X-Up"} {
				if v := resp.Header.Peek(h); len(v) > 0 {
					t.Errorf("%s: the gateway's error carries the upstream's %s: %s", tc.name, h, v)
				}
			}
		}
		if !refused {
			t.Errorf("%s: 20 tries, each answered by the upstream before the gateway refused the body", tc.name)
		}
	}
}

// TestMalformedChunkedBodyNamesItsCause: a chunked body whose trailer
// section or chunk size does not parse is refused as incomplete or
// malformed, in words that name chunks and trailers, not only a length the
// request never announced.
func TestMalformedChunkedBodyNamesItsCause(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
`, up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")
	head := "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for name, body := range map[string]string{
		"a trailer field that is no token": "2\r\n{}\r\n0\r\nX@Y: v\r\n\r\n",
		"a chunk size that is no number":   "zz\r\n{}\r\n0\r\n\r\n",
	} {
		resp, conn, _ := rawRequest(t, addr, head+body)
		conn.Close()
		if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "client_body_incomplete" ||
			!strings.Contains(string(resp.Body()), "chunks or trailer section do not parse") {
			t.Errorf("%s: %d %s, want 400 client_body_incomplete naming chunks and trailers", name, resp.StatusCode(), resp.Body())
		}
	}
}
