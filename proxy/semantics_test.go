package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// rawUpstream answers every request on every connection with answer,
// keeping connections open unless answer closes them.
func rawUpstream(t *testing.T, answer func(n int) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := 0
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
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					n++
					a := answer(n)
					io.WriteString(c, a)
					if strings.Contains(a, "Connection: close") || strings.HasPrefix(a, "HTTP/1.0") {
						return
					}
				}
			}(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestRoutesSharingAnUpstreamKeepTheirBasePaths(t *testing.T) {
	up := proxytest.StartUpstream(t)
	cfg := func(b string) string {
		return fmt.Sprintf(preamble+`  routes:
    - id: a
      path: ["/a/*"]
      upstream: {url: "%s/v1"}
    - id: b
      path: ["/b/*"]
      upstream: {url: "%s/%s", host: "b.internal"}
`, up.URL, up.URL, b)
	}
	gw := proxytest.Start(t, cfg("v2"))
	check := func(path, wantURI, wantHost string) {
		t.Helper()
		resp := proxytest.Do(t, "GET", gw.URL+path, map[string]string{"Host": "client.example"}, nil)
		fasthttp.ReleaseResponse(resp)
		got := up.Last(t)
		if got.URI != wantURI || got.Host != wantHost {
			t.Errorf("GET %s reached the upstream as %s (Host %s), want %s (Host %s)", path, got.URI, got.Host, wantURI, wantHost)
		}
	}
	check("/a/x", "/v1/a/x", "client.example")
	check("/b/x", "/v2/b/x", "b.internal")
	if err := gw.Reload(t, cfg("v3")); err != nil {
		t.Fatal(err)
	}
	check("/b/x", "/v3/b/x", "b.internal")
}

// TestConnectionHeaderCannotDesyncAnUpstream: an upstream naming
// Content-Length in Connection must not make the gateway read its body as
// empty and serve the rest to the next client.
func TestConnectionHeaderCannotDesyncAnUpstream(t *testing.T) {
	upstream := rawUpstream(t, func(n int) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 8\r\n\r\nanswer-%d", n)
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	for i := 1; i <= 3; i++ {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		if got := string(resp.Body()); resp.StatusCode() != 200 || got != fmt.Sprintf("answer-%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode(), got)
		}
		fasthttp.ReleaseResponse(resp)
	}
	// A client naming its own framing headers in Connection gets its
	// request forwarded intact.
	resp := proxytest.Do(t, "POST", gw.URL+"/x", map[string]string{"Connection": "Content-Length, Host"}, []byte("body"))
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("client naming Content-Length in Connection: %d %s", resp.StatusCode(), resp.Body())
	}
}

func TestHTTP10Upstream(t *testing.T) {
	// An HTTP/1.0 upstream that ends its body by closing the connection.
	upstream := rawUpstream(t, func(int) string { return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world" })
	gw := proxytest.Start(t, routeYAML("r", upstream))
	resp, conn, _ := rawRequest(t, strings.TrimPrefix(gw.URL, "http://"), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	defer conn.Close()
	if string(resp.Header.Protocol()) != "HTTP/1.1" || string(resp.Body()) != "hello world" {
		t.Fatalf("got %s %q", resp.Header.Protocol(), resp.Body())
	}
}

// TestHTTP10ClientGetsACloseDelimitedBody: an HTTP/1.0 client cannot read
// chunked encoding; a chunked answer reaches it unframed, ended by the
// connection's close.
func TestHTTP10ClientGetsACloseDelimitedBody(t *testing.T) {
	upstream := rawUpstream(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.0\r\n\r\n")
	raw, _ := io.ReadAll(conn)
	text := strings.ToLower(string(raw))
	if strings.Contains(text, "transfer-encoding") || strings.Contains(text, "content-length") ||
		!strings.Contains(text, "connection: close") || !strings.HasSuffix(text, "\r\n\r\nhello world") {
		t.Fatalf("HTTP/1.0 client got:\n%s", raw)
	}
}

func TestUpstreamSwitchingProtocolsIsAnError(t *testing.T) {
	upstream := rawUpstream(t, func(int) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	resp := proxytest.Do(t, "GET", gw.URL+"/x", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_protocol_error" {
		t.Fatalf("got %d %q, want 502 upstream_protocol_error", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
}
