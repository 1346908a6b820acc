package timeouts_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// slowUpstream answers /late-head 300 ms late and stalls /stalling-body
// for 300 ms after its first 1000 bytes.
func slowUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var req fasthttp.Request
				if err := req.Read(bufio.NewReader(c)); err != nil {
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
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestTimeoutPoliciesEndToEnd: through a real gateway, each policy bounds
// its route's waits only: a head later than response-timeout is 504
// upstream_timeout, a body stalling longer than stream-idle-timeout is cut
// short; a route without them waits for the upstream's responseTimeout.
func TestTimeoutPoliciesEndToEnd(t *testing.T) {
	up := slowUpstream(t)
	route := func(id, policy string) string {
		return fmt.Sprintf("    - id: %s\n      path: [\"/%s/*\"]\n      upstream: {url: %q, responseTimeout: 5s}\n      policies: [%s]\n", id, id, up, policy)
	}
	gw := proxytest.Start(t, "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: t}\nspec:\n  routes:\n"+
		route("plain", "")+
		route("resp", "response-timeout: {timeout: 100ms}")+
		route("respflex", "response-timeout-flex: {timeout: 0.1}")+
		route("idle", "stream-idle-timeout: {timeout: 100ms}")+
		route("idleflex", "stream-idle-timeout-flex: {timeout: 0.1}"))
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
		t.Errorf("without a policy a late head is waited for: %d", status)
	}
	for _, p := range []string{"/resp/late-head", "/respflex/late-head"} {
		if status, reason, _ := get(p); status != 504 || reason != "upstream_timeout" {
			t.Errorf("%s: %d %q, want 504 upstream_timeout", p, status, reason)
		}
	}
	if _, _, n := get("/plain/stalling-body"); n != 100000 {
		t.Errorf("without a policy a stalling body arrives whole: %d bytes", n)
	}
	for _, p := range []string{"/idle/stalling-body", "/idleflex/stalling-body"} {
		if status, reason, n := get(p); status != 200 || n >= 100000 {
			t.Errorf("%s: %d %q, %d bytes; want the body cut short", p, status, reason, n)
		}
	}
	// stream-idle-timeout bounds the body only: the head may come late.
	if status, _, _ := get("/idle/late-head"); status != 200 {
		t.Errorf("stream-idle-timeout cut a late head: %d", status)
	}
}
