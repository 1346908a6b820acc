package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestIdleConnectionsPark: a keep-alive connection that idles after a
// request gives back its goroutine, request context and read buffer, and
// its next request is served as if it had never left.
func TestIdleConnectionsPark(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what sync.Pool keeps; memory figures mean nothing under it")
	}
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, apiRouteYAML(up.URL), fastPark)
	addr := strings.TrimPrefix(gw.URL, "http://")
	const n, batch = 200, 10
	// The first requests match no route, so that the figure is not
	// blurred by the upstream's connections, which live in this process.

	before := memInUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		if got := getOn(t, c, "/none"); got != 404 {
			t.Fatalf("status %d, want the gateway's 404", got)
		}
		// fasthttp keeps a worker goroutine for each connection served at
		// once, for 10 s after; in batches, the workers are few and it is
		// the parked connections that are measured.
		if (i+1)%batch == 0 {
			waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, i+1)
		}
	}
	waitOpenConnections(t, gw, n)
	perConn := (memInUse() - before) / n
	t.Logf("%d bytes per idle connection (heap and stacks, both ends of the socket)", perConn)
	// Before parking a connection held fasthttp's 64 KiB read buffer, its
	// request context and its goroutine: about 70 KiB.
	if perConn > 4<<10 {
		t.Errorf("an idle keep-alive connection costs %d bytes; want at most 4 KiB", perConn)
	}

	// Each is served again on the same socket, and parks again.
	for i, c := range conns {
		if got := getOn(t, c, "/api/second/"+strconv.Itoa(i)); got != 200 {
			t.Fatalf("connection %d after parking: status %d", i, got)
		}
	}
	if got := up.Last(t).URI; !strings.HasPrefix(got, "/api/second/") {
		t.Errorf("upstream saw %q last", got)
	}
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, n)
}

// TestParkedConnectionHeadInPieces: the request that wakes a parked
// connection may arrive in pieces; only the wait before its first byte
// parks.
func TestParkedConnectionHeadInPieces(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("api", up.URL), fastPark)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	getOn(t, c, "/api/a")
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 1)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /api/b HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 0)
	if _, err := io.WriteString(c, "Host: x\r\n\r\nGET /api/c HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"/api/b", "/api/c"} {
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("%s: status %d", want, resp.StatusCode())
		}
	}
	if got := up.Last(t).URI; got != "/api/c" {
		t.Errorf("upstream saw %q last, want /api/c", got)
	}
}

// TestParkedTLSConnectionResumes: a TLS connection parks and comes back
// with its session; parking sends no close_notify.
func TestParkedTLSConnectionResumes(t *testing.T) {
	up := proxytest.StartUpstream(t)
	certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "park")
	gw := proxytest.Start(t, tlsConfigYAML(certFile, keyFile, up.URL), fastPark)
	c, err := tls.Dial("tcp", strings.TrimPrefix(gw.URL, "https://"), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if got := getOn(t, c, "/api/v1/x"); got != 200 {
			t.Fatalf("request %d: status %d", i, got)
		}
		waitGauge(t, gw, `flexgate_parked_connections{listener="https-main"}`, 1)
	}
}

// idleTimeoutGateway starts a gateway that parks fast and ends idle
// connections after 1 s; dial opens a connection that has made one request.
func idleTimeoutGateway(t *testing.T) (gw *proxytest.Gateway, dial func() net.Conn) {
	up := proxytest.StartUpstream(t)
	gw = proxytest.Start(t, preamble+`  limits: {idleTimeout: 1s}
  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: "`+up.URL+`"}
`, fastPark)
	addr := strings.TrimPrefix(gw.URL, "http://")
	return gw, func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		getOn(t, c, "/api/x")
		return c
	}
}

// TestParkedConnectionsClose: a parked connection still ends at its idle
// timeout, and at shutdown.
func TestParkedConnectionsClose(t *testing.T) {
	gw, dial := idleTimeoutGateway(t)
	timedOut := dial()
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 1)
	waitClosed(t, timedOut)
	waitOpenConnections(t, gw, 0)

	atShutdown := dial()
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.GW.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	waitClosed(t, atShutdown)
}

// TestParkedConnectionClosesWhileOthersWake: a parked connection ends at
// its idle timeout even while another parked connection wakes the set more
// often than once a second.
func TestParkedConnectionClosesWhileOthersWake(t *testing.T) {
	gw, dial := idleTimeoutGateway(t)
	idle := dial()
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 1)
	busy := dial()
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 2)

	// busy parks between its requests, 200 ms apart: each wakes the set.
	stop, failed := make(chan struct{}), make(chan error, 1)
	go func() {
		br := bufio.NewReader(busy)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				failed <- nil
				return
			case <-tick.C:
			}
			_ = busy.SetDeadline(time.Now().Add(10 * time.Second))
			var resp fasthttp.Response
			_, err := io.WriteString(busy, "GET /api/busy HTTP/1.1\r\nHost: x\r\n\r\n")
			if err == nil {
				err = resp.Read(br)
			}
			if err != nil {
				failed <- err
				return
			}
		}
	}()
	waitClosed(t, idle)
	close(stop)
	if err := <-failed; err != nil {
		t.Fatalf("the busy connection: %v", err)
	}
}

// TestParkedConnectionAcrossReload: a connection parked under one config
// is served by the next.
func TestParkedConnectionAcrossReload(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, routeYAML("api", up.URL), fastPark)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	getOn(t, c, "/api/x")
	waitGauge(t, gw, `flexgate_parked_connections{listener="http"}`, 1)
	if err := gw.Reload(t, preamble+`  limits: {readTimeout: 20s}
  routes:
    - id: moved
      path: ["/moved/*"]
      upstream: {url: "`+up.URL+`"}
`); err != nil {
		t.Fatal(err)
	}
	if got := getOn(t, c, "/moved/y"); got != 200 {
		t.Fatalf("after the reload: status %d, want the new route's 200", got)
	}
}

// TestParkedConnectionAcrossProtocolChange: a reload that makes an HTTPS
// listener's address plain HTTP closes the TLS connections parked there,
// rather than serve their sessions on the HTTP listener.
func TestParkedConnectionAcrossProtocolChange(t *testing.T) {
	up := proxytest.StartUpstream(t)
	certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "reproto")
	gw := proxytest.Start(t, tlsConfigYAML(certFile, keyFile, up.URL), fastPark)
	addr := strings.TrimPrefix(gw.URL, "https://")
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := getOn(t, c, "/api/v1/x"); got != 200 {
		t.Fatalf("status %d", got)
	}
	waitGauge(t, gw, `flexgate_parked_connections{listener="https-main"}`, 1)
	if err := gw.Reload(t, preamble+`  listeners:
    - name: https-main
      port: 8443
      protocol: HTTP
  routes:
    - id: api-v1
      path: ["/api/v1/*"]
      upstream: {url: "`+up.URL+`"}
`); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if got := getOn(t, plain, "/api/v1/y"); got != 200 {
		t.Fatalf("plain HTTP after the reload: status %d", got)
	}
}

func apiRouteYAML(upstream string) string {
	return preamble + `  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: "` + upstream + `"}
`
}

// fastPark parks idle connections after 50 ms instead of a second.
var fastPark = proxy.ParkAfter(50 * time.Millisecond)

// getOn sends a GET for path on c and reads the whole answer.
func getOn(t *testing.T, c net.Conn, path string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if resp.ConnectionClose() {
		t.Fatalf("%s: the gateway closed the connection", path)
	}
	return resp.StatusCode()
}

// waitClosed waits until the gateway has closed c.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var one [1]byte
	_, err := c.Read(one[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway kept the connection open")
	}
	if err == nil {
		t.Fatal("the gateway sent bytes on an idle connection")
	}
}

// waitGauge waits until the admin server's /metrics shows series at want.
func waitGauge(t *testing.T, gw *proxytest.Gateway, series string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
		body := string(resp.Body())
		fasthttp.ReleaseResponse(resp)
		got := -1
		if i := strings.Index(body, series+" "); i >= 0 {
			rest := body[i+len(series)+1:]
			got, _ = strconv.Atoi(rest[:strings.IndexByte(rest, '\n')])
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d, want %d", series, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSRecordInPiecesAtKeepAlive: a client whose next request's TLS
// record arrives in pieces, slower than the park delay, is served: the
// short deadline that parking sets at the keep-alive wait must not cut the
// record.
func TestTLSRecordInPiecesAtKeepAlive(t *testing.T) {
	up := proxytest.StartUpstream(t)
	certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "pieces")
	gw := proxytest.Start(t, tlsConfigYAML(certFile, keyFile, up.URL), fastPark)
	raw, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	sc := &splitConn{Conn: raw}
	c := tls.Client(sc, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	defer c.Close()
	if got := getOn(t, c, "/api/v1/a"); got != 200 {
		t.Fatalf("first request: status %d", got)
	}
	// The next record: 3 bytes at once, the rest after three times the
	// park delay (a slow client, not a synchronisation).
	sc.pause = 300 * time.Millisecond
	if got := getOn(t, c, "/api/v1/b"); got != 200 {
		t.Fatalf("second request: status %d", got)
	}
}

// splitConn writes the first 3 bytes of its next Write, pauses, then the
// rest.
type splitConn struct {
	net.Conn
	pause time.Duration
}

func (c *splitConn) Write(p []byte) (int, error) {
	if c.pause == 0 || len(p) <= 3 {
		return c.Conn.Write(p)
	}
	pause := c.pause
	c.pause = 0
	n, err := c.Conn.Write(p[:3])
	if err != nil {
		return n, err
	}
	time.Sleep(pause)
	m, err := c.Conn.Write(p[3:])
	return n + m, err
}
