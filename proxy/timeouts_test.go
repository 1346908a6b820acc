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

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// timeoutsPolicy stands in for the timeout policies: it sets the
// per-request overrides of the upstream's timeouts on the Exchange.
type timeoutsPolicy struct {
	Response   time.Duration `yaml:"response"`
	StreamIdle time.Duration `yaml:"streamIdle"`
}

func (*timeoutsPolicy) Validate(*chain.Env) error  { return nil }
func (*timeoutsPolicy) Provision(*chain.Env) error { return nil }
func (*timeoutsPolicy) Close() error               { return nil }

func (p *timeoutsPolicy) HandleRequest(_ *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ex.ResponseTimeout, ex.StreamIdleTimeout = p.Response, p.StreamIdle
	return nil
}

func init() {
	chain.Register(chain.Registration{Name: "test-upstream-timeouts", New: func() chain.Policy { return new(timeoutsPolicy) }})
}

// TestPoliciesOverrideUpstreamTimeouts: a policy shortens the wait for the
// answer's head, or for the next bytes of its body, for its route only.
func TestPoliciesOverrideUpstreamTimeouts(t *testing.T) {
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		switch path := string(req.URI().Path()); {
		case strings.HasSuffix(path, "/late-head"):
			time.Sleep(300 * time.Millisecond) // the slowness under test
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
		case strings.HasSuffix(path, "/stalling-body"):
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
			time.Sleep(300 * time.Millisecond) // the stall under test
			io.WriteString(c, strings.Repeat("x", 99000))
		}
	})
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: plain
      path: ["/plain/*"]
      upstream: {url: "%[1]s", responseTimeout: 5s}
    - id: short
      path: ["/short/*"]
      upstream: {url: "%[1]s", responseTimeout: 5s}
      policies:
        - test-upstream-timeouts: {response: 100ms, streamIdle: 100ms}
`, upstream))
	get := func(path string) (int, string, int) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		var resp fasthttp.Response
		resp.SkipBody = true
		br := bufio.NewReader(conn)
		if err := resp.Header.Read(br); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(br)
		return resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error")), len(body)
	}
	if status, _, _ := get("/plain/late-head"); status != 200 {
		t.Errorf("without the override a late head is waited for: %d", status)
	}
	if status, reason, _ := get("/short/late-head"); status != 504 || reason != "upstream_timeout" {
		t.Errorf("with response 100ms a head 300ms late: %d %q, want 504 upstream_timeout", status, reason)
	}
	if _, _, n := get("/plain/stalling-body"); n != 100000 {
		t.Errorf("without the override a stalling body arrives whole: %d bytes", n)
	}
	if status, _, n := get("/short/stalling-body"); status != 200 || n >= 100000 {
		t.Errorf("with streamIdle 100ms a body stalling 300ms: %d, %d bytes; want it cut short", status, n)
	}
}

// TestUpstreamIdleTimeout: a pooled connection idle for the upstream's
// idleTimeout is closed by the gateway, before the 4 s default would.
func TestUpstreamIdleTimeout(t *testing.T) {
	closed := make(chan struct{}, 4)
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var req fasthttp.Request
			if err := req.Read(br); err != nil {
				closed <- struct{}{}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s", idleTimeout: 200ms}
`, upstream))
	status, _, err := fasthttp.Get(nil, gw.URL+"/x")
	if err != nil || status != 200 {
		t.Fatalf("GET: %d %v", status, err)
	}
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the idle upstream connection is still open 3 s after a request, with idleTimeout: 200ms")
	}
}
