package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestStaleKeepAliveIsRetried has an upstream that closes every connection
// right after answering, without saying so: the gateway's pooled
// connection is dead when the next request comes, and a GET is sent again
// on a fresh one instead of failing.
func TestStaleKeepAliveIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				var req fasthttp.Request
				if err := req.Read(bufio.NewReader(c)); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					time.Sleep(50 * time.Millisecond) // the misbehaviour: a close soon after the answer, unannounced
				}
				c.Close()
				closed <- struct{}{}
			}(c)
		}
	}()
	gw := proxytest.Start(t, routeYAML("r", "http://"+ln.Addr().String()))
	for i := 0; i < 5; i++ {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d: status %d %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
		// The next request finds the pooled connection closed by the upstream.
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d: the upstream did not close its connection", i)
		}
	}
}

func TestSlowClientIsCutOff(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL)+"  limits:\n    readTimeout: 300ms\n")
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A slowloris client: a request line and then nothing.
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the gateway kept a half-sent request open for 5 s")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("connection closed only after %v", d)
	}
}

func TestConnectionCap(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL)+"  limits:\n    maxConnections: 2\n")
	addr := strings.TrimPrefix(gw.URL, "http://")
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		resp, c, _ := rawRequest(t, addr, get)
		held = append(held, c)
		if resp.StatusCode() != 200 {
			t.Fatalf("connection %d: status %d", i, resp.StatusCode())
		}
	}
	resp, c, _ := rawRequest(t, addr, get)
	c.Close()
	if resp.StatusCode() != 503 || string(resp.Header.Peek("X-Flexgate-Error")) != "overloaded" ||
		!strings.Contains(string(resp.Body()), `"status":503`) {
		t.Fatalf("third connection over a cap of 2: %d %q %s, want the gateway's JSON 503 overloaded",
			resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
	// A place freed is a place given again, once the gateway has seen the
	// connection close.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, c, _ := rawRequest(t, addr, get)
		c.Close()
		if resp.StatusCode() == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after one closed: status %d", resp.StatusCode())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectionCapSpansListeners: limits.maxConnections is what the
// whole process holds, so that a pod's memory arithmetic holds however
// many listeners its config declares.
func TestConnectionCapSpansListeners(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  listeners:
    - {name: a, port: 8081, protocol: HTTP}
    - {name: b, port: 8082, protocol: HTTP}
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
  limits:
    maxConnections: 2
`, up.URL))
	a, b := strings.TrimPrefix(gw.URLs["a"], "http://"), strings.TrimPrefix(gw.URLs["b"], "http://")
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, addr := range []string{a, b} {
		resp, c, _ := rawRequest(t, addr, get)
		defer c.Close()
		if resp.StatusCode() != 200 {
			t.Fatalf("connection to %s: status %d", addr, resp.StatusCode())
		}
	}
	resp, c, _ := rawRequest(t, a, get)
	c.Close()
	if resp.StatusCode() != 503 || string(resp.Header.Peek(proxy.HeaderError)) != "overloaded" {
		t.Fatalf("third connection, over a cap of 2 held across two listeners: %d %s", resp.StatusCode(), resp.Body())
	}
}

// TestMaxConnsOptionCapsTheConfig: --max-connections (what the pod's
// memory allows) lowers limits.maxConnections.
func TestMaxConnsOptionCapsTheConfig(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL)+"  limits:\n    maxConnections: 100\n",
		func(o *proxy.Options) { o.MaxConns = 1 })
	addr := strings.TrimPrefix(gw.URL, "http://")
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	resp, c, _ := rawRequest(t, addr, get)
	defer c.Close()
	if resp.StatusCode() != 200 {
		t.Fatalf("first connection: status %d", resp.StatusCode())
	}
	resp, c2, _ := rawRequest(t, addr, get)
	c2.Close()
	if resp.StatusCode() != 503 || string(resp.Header.Peek(proxy.HeaderError)) != "overloaded" {
		t.Fatalf("second connection over MaxConns 1: %d %s", resp.StatusCode(), resp.Body())
	}
	if !strings.Contains(gw.Logs.String(), `"limits.maxConnections":100,"maxConnections":1`) {
		t.Errorf("the lowered cap is not logged:\n%s", gw.Logs.String())
	}
}

// TestConnectionLimitPerClient: one client address cannot take the whole
// connection cap; trusted proxies are exempt, and a reload changes both.
func TestConnectionLimitPerClient(t *testing.T) {
	up := proxytest.StartUpstream(t)
	cfg := func(limit int, trusted string) string {
		return routeYAML("r", up.URL) + fmt.Sprintf("  limits:\n    maxConnectionsPerClient: %d\n  trustedProxies: [%s]\n", limit, trusted)
	}
	gw := proxytest.Start(t, cfg(2, ""))
	addr := strings.TrimPrefix(gw.URL, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// from opens a connection from a loopback address and sends a request;
	// accepted connections stay open.
	from := func(local string) *fasthttp.Response {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp := new(fasthttp.Response)
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Fatalf("from %s: %v", local, err)
		}
		if resp.StatusCode() == 200 {
			held = append(held, c)
		} else {
			c.Close()
		}
		return resp
	}
	refused := func(resp *fasthttp.Response) bool {
		return resp.StatusCode() == 503 && string(resp.Header.Peek(proxy.HeaderError)) == "client_connection_limit" &&
			strings.Contains(string(resp.Body()), `"reason":"client_connection_limit"`)
	}
	for i := 0; i < 2; i++ {
		if resp := from("127.0.0.1"); resp.StatusCode() != 200 {
			t.Fatalf("connection %d from 127.0.0.1: status %d", i, resp.StatusCode())
		}
	}
	if resp := from("127.0.0.1"); !refused(resp) {
		t.Fatalf("third connection from 127.0.0.1 over a limit of 2: %d %q %s, want the JSON 503 client_connection_limit",
			resp.StatusCode(), resp.Header.Peek(proxy.HeaderError), resp.Body())
	}
	if resp := from("127.0.0.2"); resp.StatusCode() != 200 {
		t.Fatalf("another client address is refused too: status %d", resp.StatusCode())
	}
	m := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	if !strings.Contains(string(m.Body()), `flexgate_errors_total{route="",reason="client_connection_limit"} 1`) {
		t.Errorf("the refusal is not counted under its own reason in /metrics")
	}
	fasthttp.ReleaseResponse(m)

	// A trusted proxy carries many clients: no per-client limit for it.
	if err := gw.Reload(t, cfg(2, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if resp := from("127.0.0.1"); resp.StatusCode() != 200 {
			t.Fatalf("connection %d from the trusted proxy 127.0.0.1: status %d", i, resp.StatusCode())
		}
	}
	// Untrusted again, with a limit of 3: its two counted connections
	// leave room for one more (the two it opened while trusted are not
	// counted).
	if err := gw.Reload(t, cfg(3, "")); err != nil {
		t.Fatal(err)
	}
	if resp := from("127.0.0.1"); resp.StatusCode() != 200 {
		t.Fatalf("third counted connection under a reloaded limit of 3: status %d", resp.StatusCode())
	}
	if resp := from("127.0.0.1"); !refused(resp) {
		t.Fatalf("fourth counted connection under a limit of 3: %d %s", resp.StatusCode(), resp.Body())
	}
	// A closed connection gives its place back.
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for resp := from("127.0.0.1"); resp.StatusCode() != 200; resp = from("127.0.0.1") {
		if time.Now().After(deadline) {
			t.Fatalf("no connection from 127.0.0.1 accepted after one closed: status %d", resp.StatusCode())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAccessLogAndConfigEndpoint(t *testing.T) {
	up := proxytest.StartUpstream(t)
	logs := &proxytest.LogBuffer{}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  clients:
    - id: mobile
      secret: hunter2-very-secret
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement
`, up.URL), func(o *proxy.Options) { o.AccessLog = logs })
	resp := proxytest.Do(t, "GET", gw.URL+"/orders?page=2", map[string]string{
		"client_id": "mobile", "client_secret": "hunter2-very-secret", "X-Request-Id": "log-me-1"}, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	_ = gw.GW.Shutdown(t.Context()) // flushes the access log
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("access log %q: %v", logs.String(), err)
	}
	for k, want := range map[string]any{"requestId": "log-me-1", "method": "GET", "path": "/orders",
		"route": "r", "status": float64(200), "client": "mobile"} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v", k, line[k], want)
		}
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Error("the access log contains a secret")
	}
}

func TestConfigEndpointRedactsSecrets(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  clients:
    - id: mobile
      secret: hunter2-very-secret
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement
        - token-introspection:
            url: http://127.0.0.1:1/introspect
            clientId: gw
            clientSecret: introspection-secret-value
`, up.URL))
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	body := string(resp.Body())
	if resp.StatusCode() != 200 || !strings.Contains(body, `"client-id-enforcement"`) || !strings.Contains(body, `"hash"`) {
		t.Fatalf("/config: %d %s", resp.StatusCode(), body)
	}
	for _, secret := range []string{"hunter2", "introspection-secret-value"} {
		if strings.Contains(body, secret) {
			t.Errorf("/config shows the secret %q", secret)
		}
	}
}

// TestConnectionsUnderTheCapAreServed: clients that open and close one
// connection after another never exceed the cap and are never refused.
func TestConnectionsUnderTheCapAreServed(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL)+"  limits:\n    maxConnections: 1\n")
	addr := strings.TrimPrefix(gw.URL, "http://")
	for i := 0; i < 300; i++ {
		status, _ := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if status != "200" {
			t.Fatalf("connection %d, one at a time under a cap of 1: status %s", i, status)
		}
	}
}
