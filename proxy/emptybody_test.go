package proxy_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestEmptyBodyKeepsConnection: a request that declares an empty body
// (Content-Length: 0, as HTTP clients send with OPTIONS, POST or DELETE)
// has nothing left unread, whether the gateway answers it or forwards it,
// so its connection stays open; one whose body was not read is still
// closed.
func TestEmptyBodyKeepsConnection(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, preamble+`  routes:
    - id: api
      path: ["/api/*"]
      methods: [GET, PUT]
      upstream: {url: "`+up.URL+`"}
`)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i, tc := range []struct {
		req    string
		status int
		closed bool
	}{
		{"OPTIONS /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, false},
		{"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, false},
		{"PUT /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, false},
		{"DELETE /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, false},
		{"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 404, true},
	} {
		if _, err := c.Write([]byte(tc.req)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode() != tc.status || resp.ConnectionClose() != tc.closed {
			t.Fatalf("request %d: %d, Connection: close %v; want %d, %v", i, resp.StatusCode(), resp.ConnectionClose(), tc.status, tc.closed)
		}
	}
}
