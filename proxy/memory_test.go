package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestIdleConnectionMemory opens many client connections, leaves them
// idle, and bounds the heap and goroutine stack each one costs the
// gateway. These are the figures the connection cap and the Helm chart's
// memory arithmetic rest on (deploy/README.md): before the fix a connection
// that had sent nothing held fasthttp's 64 KiB read buffer, and one that had
// sent a 60 kB header held four times that for as long as it stayed open.
func TestIdleConnectionMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what sync.Pool keeps; memory figures mean nothing under it")
	}
	gw := proxytest.Start(t, preamble+`  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: "http://127.0.0.1:9"}
`)
	addr := strings.TrimPrefix(gw.URL, "http://")
	const n = 200
	const kib = 1 << 10

	// costPerConn opens n connections, sends each one request with a
	// header of head bytes and a path of about path bytes (no request when
	// head < 0), and returns what the gateway holds per connection once
	// they are all idle, and how many the gateway closed after answering.
	costPerConn := func(head, path int) (bytes int64, closedByGateway int) {
		t.Helper()
		before := memInUse()
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			waitOpenConnections(t, gw, 0)
		}()
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if head < 0 {
				continue
			}
			// No route matches /idle: the gateway answers 404 itself.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /idle/%s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", strings.Repeat("i", path), strings.Repeat("p", head))
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(c)); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if resp.StatusCode() != 404 {
				t.Fatalf("connection %d: status %d, want the gateway's 404", i, resp.StatusCode())
			}
			if resp.ConnectionClose() {
				closedByGateway++
			}
		}
		waitOpenConnections(t, gw, n-closedByGateway)
		bytes = (memInUse() - before) / n
		t.Logf("header %6d, path %6d bytes: %6d bytes per connection, %d of %d closed by the gateway", head, path, bytes, closedByGateway, n)
		return bytes, closedByGateway
	}

	if got, _ := costPerConn(-1, 0); got > 16*kib {
		t.Errorf("a connection that has sent nothing costs %d KiB; want at most 16 KiB (its read buffer must not be held while idle)", got/kib)
	}
	// Headers of 7 KiB stay on a kept-alive connection; the chart budgets
	// 128 KiB for each (gateway.memoryPerConnectionKiB).
	if got, closed := costPerConn(7*kib, 0); got > 128*kib || closed != 0 {
		t.Errorf("after a request with 7 KiB of headers a connection costs %d KiB and %d of %d were closed; want at most 128 KiB and all kept alive", got/kib, closed, n)
	}
	// A 60 kB header or path: the answer closes the connection, so that
	// fasthttp's buffers, grown to that size, go with it.
	if got, closed := costPerConn(60*1000, 0); got > 16*kib || closed != n {
		t.Errorf("after a request with a 60 kB header a connection costs %d KiB and %d of %d were closed; want every one closed, costing at most 16 KiB", got/kib, closed, n)
	}
	if got, closed := costPerConn(0, 60*1000); got > 16*kib || closed != n {
		t.Errorf("after a request with a 60 kB path a connection costs %d KiB and %d of %d were closed; want every one closed, costing at most 16 KiB", got/kib, closed, n)
	}
}

// memInUse is the heap in use plus goroutine stacks, after the garbage
// sync.Pool still holds has been collected (it keeps items one cycle).
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// waitOpenConnections waits until the gateway's http listener reports want
// open connections in /metrics.
func waitOpenConnections(t *testing.T, gw *proxytest.Gateway, want int) {
	t.Helper()
	const series = `flexgate_open_connections{listener="http"} `
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
		body := string(resp.Body())
		fasthttp.ReleaseResponse(resp)
		got := -1
		if i := strings.Index(body, series); i >= 0 {
			rest := body[i+len(series):]
			got, _ = strconv.Atoi(rest[:strings.IndexByte(rest, '\n')])
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway reports %d open connections, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
