package jsonthreat_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// received is what the upstream read of one request body.
type received struct {
	n   int64
	err error
}

// discardingGateway is a gateway whose upstream reads every body to its
// end without keeping it, and reports what it read.
func discardingGateway(t *testing.T, policy string) (addr string, got chan received) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	got = make(chan received, 4)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		var r received
		if s := ctx.RequestBodyStream(); s != nil {
			r.n, r.err = io.Copy(io.Discard, s)
		} else {
			r.n = int64(len(ctx.Request.Body()))
		}
		got <- r
		ctx.SetBodyString(`{"ok":true}`)
	}
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  routes:
    - id: uploads
      path: ["/uploads/*"]
      upstream: {url: "%s", responseTimeout: 60s}
      maxRequestBodySize: 2GiB
      policies:
        - %s
`, up.URL, policy))
	return strings.TrimPrefix(gw.URL, "http://"), got
}

// post sends a POST whose body write sends (framed by the caller: head
// says Content-Length or chunked) and returns the answer.
func post(t *testing.T, addr, head string, write func(w *bufio.Writer) error) *fasthttp.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriterSize(conn, 64<<10)
		fmt.Fprint(w, "POST /uploads/1 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"+head+"\r\n")
		if write(w) == nil {
			_ = w.Flush()
		}
	}()
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_ = conn.Close()
	<-done
	return resp
}

// TestGigabyteStreamsInFixedMemory sends a valid JSON body of a gigabyte
// through the real gateway: it reaches the upstream whole, and the
// process (gateway, upstream and client together) allocates a few
// megabytes for it, not the gigabyte, however large the route lets bodies
// be.
func TestGigabyteStreamsInFixedMemory(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("a gigabyte takes seconds; under the race detector, minutes")
	}
	addr, got := discardingGateway(t, "json-threat-protection: {maxContainerDepth: 3, maxStringValueLength: 64, maxArrayElementCount: -1}")
	// One block of 3449 array elements, written 15260 times: 1,000,003,063
	// bytes with the opening and closing.
	block := []byte(strings.Repeat(`"0123456789abcdef",`, 3449))
	const blocks = 15260
	total := int64(1 + blocks*len(block) + 2)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp := post(t, addr, fmt.Sprintf("Content-Length: %d\r\n", total), func(w *bufio.Writer) error {
		w.WriteString("[")
		for range blocks {
			if _, err := w.Write(block); err != nil {
				return err
			}
		}
		_, err := w.WriteString("0]")
		return err
	})
	runtime.ReadMemStats(&after)
	if resp.StatusCode() != 200 {
		t.Fatalf("a valid gigabyte: %d %s %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
	select {
	case r := <-got:
		if r.n != total || r.err != nil {
			t.Fatalf("the upstream read %d bytes (%v), want %d", r.n, r.err, total)
		}
	case <-time.After(time.Minute):
		t.Fatal("the upstream never finished reading")
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes through the gateway: %d bytes allocated, stacks %d → %d bytes", total, allocated, before.StackInuse, after.StackInuse)
	if allocated > 32<<20 {
		t.Errorf("streaming %d bytes allocated %d bytes, want a few buffers", total, allocated)
	}
}

// TestMillionDeepAfterAMegabyte: a body that is valid for its first
// megabyte, more than the policy holds, and then opens a million arrays is
// refused at the 10,001st level with the policy's 400, in fixed memory and
// stack; the upstream, which was sent the valid part, never gets the
// level past the limit nor the end of the request.
func TestMillionDeepAfterAMegabyte(t *testing.T) {
	if raceOn {
		t.Skip("memory counts mean nothing under the race detector")
	}
	addr, got := discardingGateway(t, "json-threat-protection: {}")
	item := `"0123456789abcdef",`
	prefix := "[" + strings.Repeat(item, (1<<20)/len(item))
	levels := []byte(strings.Repeat("[", 1000))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp := post(t, addr, "Transfer-Encoding: chunked\r\n", func(w *bufio.Writer) error {
		fmt.Fprintf(w, "%x\r\n%s\r\n", len(prefix), prefix)
		for range 1000 {
			fmt.Fprintf(w, "%x\r\n%s\r\n", len(levels), levels)
			if err := w.Flush(); err != nil {
				return err // the gateway answered and stopped reading
			}
		}
		_, err := w.WriteString("0\r\n\r\n")
		return err
	})
	runtime.ReadMemStats(&after)
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "json_too_deep" ||
		!strings.Contains(string(resp.Body()), `"policy":"json-threat-protection"`) ||
		!strings.Contains(string(resp.Body()), `"gatewayLimit":10000`) {
		t.Fatalf("a million levels after a megabyte: %d %q %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
	select {
	case r := <-got:
		// Nesting 10,000 deep in the array that opens the body is the
		// most the upstream may see.
		if r.err == nil || r.n > int64(len(prefix))+9999 {
			t.Errorf("the upstream read %d bytes (error %v): want at most %d and no end of the request", r.n, r.err, len(prefix)+9999)
		}
	case <-time.After(time.Minute):
		t.Fatal("the upstream was never released")
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes, stacks %d → %d bytes", allocated, before.StackInuse, after.StackInuse)
	if allocated > 32<<20 {
		t.Errorf("refusing the body allocated %d bytes", allocated)
	}
	if after.StackInuse > before.StackInuse+8<<20 {
		t.Errorf("stacks grew from %d to %d bytes", before.StackInuse, after.StackInuse)
	}
}
