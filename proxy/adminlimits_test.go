package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// adminAddr is the host:port of gw's admin server.
func adminAddr(gw *proxytest.Gateway) string { return strings.TrimPrefix(gw.AdminURL, "http://") }

// rawAdmin sends req on a new connection to the admin server and returns
// the response's status code, or 0 when none came within two seconds.
func rawAdmin(t *testing.T, gw *proxytest.Gateway, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", adminAddr(gw))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminRefusesLargeRequests: the admin endpoints read no body, so a
// body over a few KiB is refused from its Content-Length without being
// read; a bearer token of several KiB still reaches /metrics.
func TestAdminRefusesLargeRequests(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL))
	f := func(name, req string, want int) {
		t.Helper()
		if got := rawAdmin(t, gw, req); got != want {
			t.Errorf("%s: status %d, want %d", name, got, want)
		}
	}
	f("a body of 1 MiB, announced", "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n", 413)
	f("a small body", "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("a", 100), 200)
	f("a 6 KiB token", "GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "+strings.Repeat("t", 6<<10)+"\r\n\r\n", 200)
	f("a 9 KiB header", "GET /metrics HTTP/1.1\r\nHost: a\r\nX-A: "+strings.Repeat("t", 9<<10)+"\r\n\r\n", 431)
}

// holdAdmin opens n keep-alive connections to the admin server from the
// local address ip, each served once, and returns them open.
func holdAdmin(t *testing.T, gw *proxytest.Gateway, ip string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := d.Dial("tcp", adminAddr(gw))
		if err != nil {
			t.Skipf("cannot connect from %s: %v", ip, err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d from %s: %v", len(conns), ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("connection %d from %s: status %d", len(conns), ip, resp.StatusCode)
		}
	}
	return conns
}

// refusedAdmin connects from ip and reports whether the admin server
// answered with its connection-limit 503 before any request was sent.
func refusedAdmin(t *testing.T, gw *proxytest.Gateway, ip string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", adminAddr(gw))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(c)
	return strings.HasPrefix(string(b), "HTTP/1.1 503") && strings.Contains(string(b), "admin server is at its connection limit")
}

// adminMetric returns the line of /metrics that starts with name.
func adminMetric(t *testing.T, gw *proxytest.Gateway, name string) string {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	for _, line := range strings.Split(string(resp.Body()), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// TestAdminCapsConnectionsPerClient: one client holds at most its cap of
// admin connections (here 16); the next is answered 503, counted and logged, and a place
// freed is taken again.
func TestAdminCapsConnectionsPerClient(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL), proxy.AdminCaps(64, 16))
	conns := holdAdmin(t, gw, "127.0.0.1", 16)
	if !refusedAdmin(t, gw, "127.0.0.1") {
		t.Fatal("the 17th connection of one client was not refused")
	}
	// Another client is not refused.
	held := holdAdmin(t, gw, "127.0.0.2", 1)
	_ = held[0].Close()
	_ = conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for rawAdmin(t, gw, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's place is not taken again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The wait above may have been refused too.
	if got := adminMetric(t, gw, `flexgate_admin_connections_refused_total{reason="client_connection_limit"}`); got == "" || strings.HasSuffix(got, " 0") {
		t.Errorf("refusals are not counted: %q", got)
	}
	if logs := gw.Logs.String(); !strings.Contains(logs, "admin connections refused") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}
}

// TestAdminCapsConnectionsInAll: the admin server holds at most its cap of
// connections (here 64) whoever opens them, and a full admin server leaves the
// listeners serving.
func TestAdminCapsConnectionsInAll(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("r", up.URL), proxy.AdminCaps(64, 16))
	for i := 1; i <= 4; i++ {
		holdAdmin(t, gw, fmt.Sprintf("127.0.0.%d", i), 16)
	}
	if !refusedAdmin(t, gw, "127.0.0.5") {
		t.Fatal("the 65th admin connection was not refused")
	}
	resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("listener with the admin server full: %d %s", resp.StatusCode(), resp.Body())
	}
}
