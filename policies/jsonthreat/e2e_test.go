package jsonthreat_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	_ "github.com/flexgate/flexgate/policies/jsonthreat"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

func gatewayYAML(upstream string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  routes:
    - id: orders
      path: ["/orders/*"]
      upstream: {url: "%s"}
      maxRequestBodySize: 4MiB
      policies:
        - json-threat-protection: {maxStringValueLength: 100, maxArrayElementCount: 100000}
`, upstream)
}

// rawPost sends a POST with a chunked body written by write, on a
// connection of its own, and reads the answer.
func rawPost(t *testing.T, addr string, write func(w *bufio.Writer)) *fasthttp.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriterSize(conn, 64<<10)
		fmt.Fprint(w, "POST /orders/1 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		write(w)
		_ = w.Flush()
	}()
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_ = conn.Close()
	<-done
	return resp
}

func chunk(w *bufio.Writer, s string) {
	fmt.Fprintf(w, "%x\r\n%s\r\n", len(s), s)
}

// TestEndToEnd: a deep body is refused as soon as it passes the gateway's
// bound, an over-long string at its limit, both counted as the policy's
// rejections; a valid body streamed in chunks reaches the upstream whole.
func TestEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")

	// A million levels, sent as fast as the gateway reads: refused once
	// 10,001 have arrived; the rest is never needed.
	resp := rawPost(t, addr, func(w *bufio.Writer) {
		for i := 0; i < 1000; i++ {
			chunk(w, strings.Repeat("[", 1000))
			if w.Flush() != nil {
				return
			}
		}
	})
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "json_too_deep" {
		t.Fatalf("a million levels: %d %s %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
	var body struct {
		Policy string
		Limit  map[string]any
	}
	if err := json.Unmarshal(resp.Body(), &body); err != nil || body.Policy != "json-threat-protection" || body.Limit["gatewayLimit"] != 10000.0 {
		t.Errorf("body %s", resp.Body())
	}

	resp = proxytest.Do(t, "POST", gw.URL+"/orders/1", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"note":"`+strings.Repeat("x", 101)+`"}`))
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "json_string_too_long" ||
		!strings.Contains(string(resp.Body()), "maxStringValueLength (100 characters)") {
		t.Errorf("a long string: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream saw %d refused requests", n)
	}

	// 300 KiB in 1 KiB chunks: more than the gateway reads ahead.
	var sent strings.Builder
	resp = rawPost(t, addr, func(w *bufio.Writer) {
		part := "[" + strings.Repeat(`"abcdefghij",`, 78) + `1],`
		chunk(w, "[")
		sent.WriteString("[")
		for i := 0; i < 300; i++ {
			chunk(w, part)
			sent.WriteString(part)
		}
		chunk(w, "0]")
		sent.WriteString("0]")
		fmt.Fprint(w, "0\r\n\r\n")
	})
	if resp.StatusCode() != 200 {
		t.Fatalf("a valid streamed body: %d %s", resp.StatusCode(), resp.Body())
	}
	if got := up.Last(t).Body; string(got) != sent.String() {
		t.Errorf("the upstream got %d bytes, want the %d sent", len(got), sent.Len())
	}

	m := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(m)
	for _, want := range []string{
		`flexgate_policy_rejections_total{route="orders",policy="json-threat-protection",reason="json_too_deep"} 1`,
		`flexgate_policy_rejections_total{route="orders",policy="json-threat-protection",reason="json_string_too_long"} 1`,
	} {
		if !strings.Contains(string(m.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEndToEndDoesNotAllocate posts a typical JSON body through the real
// gateway, with the policy and without: the policy adds no allocation to
// what the gateway's forwarding of a body costs.
func TestEndToEndDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceOn {
		t.Skip("coverage and race instrumentation allocate")
	}
	small := []byte(`{"order":{"id":"ORD-1","items":[{"sku":"PRD-42","quantity":2},{"sku":"PRD-7","quantity":1}],"note":"door"}}`)
	// Past what the gateway reads ahead and the policy holds: it streams
	// through the check.
	large := []byte(`[` + strings.Repeat(`{"sku":"PRD-42","quantity":2},`, 7000) + `{}]`)
	for _, body := range [][]byte{small, large} {
		without, with := endToEndAllocs(t, body, "response-headers-set: {headers: {X-A: b}}"),
			endToEndAllocs(t, body, "json-threat-protection: {maxStringValueLength: 100, maxArrayElementCount: 100000}")
		t.Logf("a body of %d bytes: %.2f allocations per request without the policy, %.2f with it", len(body), without, with)
		if with-without >= 0.5 {
			t.Errorf("a body of %d bytes: the policy adds %.2f allocations per request, want 0", len(body), with-without)
		}
	}
}

// endToEndAllocs is the allocations of a request through the real gateway
// with policy, in the steady state.
func endToEndAllocs(t *testing.T, body []byte, policy string) float64 {
	up := proxytest.StartUpstream(t)
	up.Record = false
	gw := proxytest.Start(t, strings.Replace(gatewayYAML(up.URL), "json-threat-protection: {maxStringValueLength: 100, maxArrayElementCount: 100000}", policy, 1))
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(gw.URL, "http://"), MaxConns: 4, ReadTimeout: 5 * time.Second}
	req, resp := new(fasthttp.Request), new(fasthttp.Response)
	req.SetRequestURI(gw.URL + "/orders/1")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	do := func() {
		req.SetBody(body)
		if err := hc.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("%d %s", resp.StatusCode(), resp.Body())
		}
	}
	for i := 0; i < 200; i++ {
		do()
	}
	return proxytest.SteadyAllocs(200, do)
}
