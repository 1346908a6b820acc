package proxy_test

import (
	"bufio"
	cryptotls "crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// rawServer serves every connection with handle, on 127.0.0.1, until the
// test ends.
func rawServer(t testing.TB, handle func(c net.Conn, br *bufio.Reader)) string {
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
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// tagged is an answer naming the request it answers.
func tagged(tag string) string {
	body := "tag=" + tag
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// forged is what a misbehaving upstream sends beyond its answer: bytes
// that, read as the next request's answer, would hand one client's data to
// another.
var forged = tagged("stolen")

func metricValue(t *testing.T, gw *proxytest.Gateway, prefix string) float64 {
	t.Helper()
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	sum := 0.0
	for _, line := range strings.Split(string(resp.Body()), "\n") {
		if strings.HasPrefix(line, prefix) {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += f
		}
	}
	return sum
}

// TestAnswersNeverShiftBetweenClients has an upstream send more than the
// answer it announced, in the same write or a moment later: a body after
// HEAD, 204 or 304, or bytes beyond Content-Length. The next client on
// the pooled connection must get its own answer, never those bytes.
func TestAnswersNeverShiftBetweenClients(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		answer  string // to the first request
		later   string // sent a moment after answer
		counted bool   // a protocol violation the gateway can see
	}{
		{"body after HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n" + forged, "", false},
		{"body after HEAD, a moment later", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n", forged, false},
		{"body after 204", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 60\r\n\r\n" + forged, "", true},
		{"chunked body after 304", "GET", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", forged, true},
		{"body after 204 without a length, a moment later", "GET", "HTTP/1.1 204 No Content\r\n\r\n", forged, true},
		{"more than Content-Length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged, "", true},
		{"more than Content-Length, a moment later", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", forged, true},
		{"more than the chunks", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + forged, "", true},
		{"more than a long body, a moment later", "GET",
			"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), forged, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sentLater := make(chan struct{}, 1)
			upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					tag := string(req.Header.Peek("X-Tag"))
					if tag != "a" {
						io.WriteString(c, tagged(tag))
						continue
					}
					io.WriteString(c, tc.answer)
					if tc.later != "" {
						time.Sleep(20 * time.Millisecond) // the misbehaviour: bytes after the answer
						io.WriteString(c, tc.later)
					}
					sentLater <- struct{}{}
				}
			})
			gw := proxytest.Start(t, routeYAML("r", upstream))
			resp := proxytest.Do(t, tc.method, gw.URL+"/x", map[string]string{"X-Tag": "a"}, nil)
			fasthttp.ReleaseResponse(resp)
			<-sentLater
			for _, tag := range []string{"b", "c"} {
				resp := proxytest.Do(t, "GET", gw.URL+"/x", map[string]string{"X-Tag": tag}, nil)
				if got := string(resp.Body()); resp.StatusCode() != 200 || got != "tag="+tag {
					t.Fatalf("client %s got %d %q, not its own answer", tag, resp.StatusCode(), got)
				}
				fasthttp.ReleaseResponse(resp)
			}
			v := metricValue(t, gw, "flexgate_upstream_protocol_violations_total")
			if tc.counted && v == 0 {
				t.Error("the violation is not counted in flexgate_upstream_protocol_violations_total")
			}
		})
	}
}

// TestRequestsAreRetriedAtMostOnce: an upstream that reads each request and
// closes the connection without answering may have processed it: the
// request is not sent again, and the client gets 502.
func TestRequestsAreRetriedAtMostOnce(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		mu.Lock()
		seen++
		n := seen
		mu.Unlock()
		if n == 1 {
			// The first answer is good, so that the connection is pooled;
			// then the upstream drops it after reading the next request.
			io.WriteString(c, tagged("first"))
			if err := req.Read(br); err != nil {
				return
			}
			mu.Lock()
			seen++
			mu.Unlock()
		}
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	fasthttp.ReleaseResponse(resp)
	resp = proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_reset" {
		t.Errorf("an upstream closing without an answer: %d %s, want 502 upstream_reset", resp.StatusCode(), resp.Body())
	}
	mu.Lock()
	defer mu.Unlock()
	if seen != 2 {
		t.Errorf("the upstream read %d requests for 2 GETs: a request it may have processed was sent again", seen)
	}
}

// TestUpstreamFailingBeforeItsBody: an upstream that announces a body and
// closes before sending a byte of it is a 502, not an empty reply; one
// that fails mid-body is counted and logged.
func TestUpstreamFailingBeforeItsBody(t *testing.T) {
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		switch string(req.URI().Path()) {
		case "/none":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		case "/some":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		}
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	for _, path := range []string{"/none", "/chunked"} {
		resp := proxytest.Do(t, "GET", gw.URL+path, nil, nil)
		if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_reset" {
			t.Errorf("GET %s: %d %q, want the gateway's 502 upstream_reset", path, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /some HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK") || len(got) > 100000 {
		t.Fatalf("GET /some: the client should get the status and part of the body, then a close; got %d bytes", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, gw, `flexgate_upstream_errors_total{route="r",reason="body_reset"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a body cut short by the upstream is not counted as body_reset")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(gw.Logs.String(), "upstream failed while its body streamed") {
		t.Errorf("no log line for the failure mid-body:\n%s", gw.Logs.String())
	}
}

// TestEarlyUpstreamAnswersAreForwarded: an upstream that answers before
// reading the request body (413 for a body too large, 401 before an
// upload) has its answer forwarded, whether it then closes or just stops
// reading, instead of the gateway's 502 or 504.
func TestEarlyUpstreamAnswersAreForwarded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int64
		close bool
	}{
		{"small body, upstream closes", 60 << 10, true},
		{"large body, upstream closes", 16 << 20, true},
		{"large body, upstream stops reading", 16 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				var h fasthttp.RequestHeader
				if err := h.Read(br); err != nil {
					return
				}
				if tc.close {
					io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
					return
				}
				io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nunauthorized")
				time.Sleep(3 * time.Second) // holding the connection open without reading
			})
			gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      maxRequestBodySize: 64MiB
      upstream: {url: "%s", responseTimeout: 10s}
`, upstream))
			req, _ := http.NewRequest("POST", gw.URL+"/upload", io.LimitReader(zeros{}, tc.size))
			req.ContentLength = tc.size
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("%v\n%s", err, gw.Logs.String())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[bool]int{true: 413, false: 401}[tc.close]
			if resp.StatusCode != want || resp.Header.Get("X-Flexgate-Error") != "" {
				t.Fatalf("got %d %q (X-Flexgate-Error %q), want the upstream's %d", resp.StatusCode, body,
					resp.Header.Get("X-Flexgate-Error"), want)
			}
		})
	}
}

// TestSlowSteadyUploadIsNotCutOff: timeouts bound waits for progress, not
// a whole upload: 200 kB sent at about 100 kB/s, over 2 s, gets through a
// gateway whose read and response timeouts are far shorter than the upload.
func TestSlowSteadyUploadIsNotCutOff(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		n, err := io.Copy(io.Discard, ctx.RequestBodyStream())
		if err != nil {
			ctx.Error(err.Error(), 500)
			return
		}
		ctx.SetBodyString(strconv.FormatInt(n, 10))
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  limits: {readTimeout: 700ms}
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s", responseTimeout: 700ms}
`, up.URL))
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	const size, chunk = 200_000, 10_000
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	for sent := 0; sent < size; sent += chunk {
		time.Sleep(100 * time.Millisecond) // the client under test: slow, but never stalled
		if _, err := conn.Write(make([]byte, chunk)); err != nil {
			t.Fatalf("the gateway stopped reading after %d bytes: %v", sent, err)
		}
	}
	resp := new(fasthttp.Response)
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || string(resp.Body()) != strconv.Itoa(size) {
		t.Fatalf("slow upload: %d %s", resp.StatusCode(), resp.Body())
	}
}

// TestInvalidUpstreamAnswers: what the gateway will not pass on as an
// answer, and the header that only the gateway may send.
func TestInvalidUpstreamAnswers(t *testing.T) {
	answers := map[string]string{
		"/000":     "HTTP/1.1 000 OK\r\nContent-Length: 2\r\n\r\nok",
		"/099":     "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
		"/600":     "HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok",
		"/garbage": "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
		// Two lengths: read by the chunks, the answer ends where the
		// upstream, if it went by its Content-Length, has more to send.
		"/cl-te": "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		// fasthttp splits a head's lines at a bare LF too.
		"/lf-te": "HTTP/1.1 200 OK\nContent-Length: 40\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"/te-cl": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		// Heads that end with a bare LF, which fasthttp does not take for
		// their end: it would wait for one until the response timeout.
		"/lf-end":    "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"/lf-crlf":   "HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok",
		"/crlf-lf":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok",
		"/lf-status": "HTTP/1.1 200 OK\n\n",
		"/spoof": "HTTP/1.1 404 Not Found\r\nX-Flexgate-Error: no_route\r\nX-Flexgate-Policy: rate-limiting\r\n" +
			"X-Request-Id: upstream-1\r\nX-Request-Id: upstream-2\r\nContent-Length: 2\r\n\r\nno",
		"/big": "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\nContent-Length: 2\r\n\r\nok",
	}
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var req fasthttp.Request
			if err := req.Read(br); err != nil {
				return
			}
			io.WriteString(c, answers[string(req.URI().Path())])
		}
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	client := proxytest.Client()
	client.ReadBufferSize = 128 << 10
	get := func(path string) *fasthttp.Response {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI(gw.URL + path)
		resp := fasthttp.AcquireResponse()
		if err := client.Do(req, resp); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp
	}
	for _, path := range []string{"/000", "/099", "/600", "/garbage", "/cl-te", "/te-cl", "/lf-te", "/lf-end", "/lf-crlf", "/crlf-lf", "/lf-status"} {
		resp := get(path)
		if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_protocol_error" {
			t.Errorf("answer %q: %d %s, want 502 upstream_protocol_error", path[1:], resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	resp := get("/spoof")
	if resp.StatusCode() != 404 || len(resp.Header.Peek("X-Flexgate-Error")) > 0 || len(resp.Header.Peek("X-Flexgate-Policy")) > 0 {
		t.Errorf("an upstream's X-Flexgate-* headers reached the client: %s", resp.Header.String())
	}
	if ids := resp.Header.PeekAll("X-Request-Id"); len(ids) != 1 || strings.HasPrefix(string(ids[0]), "upstream-") {
		t.Errorf("X-Request-Id lines reaching the client: %q, want the gateway's alone", ids)
	}
	fasthttp.ReleaseResponse(resp)

	resp = get("/big")
	if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_header_too_large" {
		t.Errorf("a 40 KiB response header block over the 32 KiB default: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	if err := gw.Reload(t, routeYAML("r", upstream)+"  limits: {maxResponseHeaderSize: 64KiB}\n"); err != nil {
		t.Fatal(err)
	}
	resp = get("/big")
	if resp.StatusCode() != 200 {
		t.Errorf("with maxResponseHeaderSize 64KiB, a 40 KiB header block: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
}

// TestMalformedAnswerFields: a header line a client, or a proxy in front
// of the gateway, could read otherwise than the gateway does is refused
// with 502 upstream_protocol_error, as nginx refuses it: the field name
// must be a token, with nothing between it and its colon, and no line may
// be folded onto another. fasthttp forwarded "Bad Name: x" as it was,
// turned "Set-Cookie : a=b" into Set-Cookie and joined folded lines; the
// rest it refused already. The same holds for a 1xx answer's head. The
// upstream's connection is closed, the failure logged and counted.
func TestMalformedAnswerFields(t *testing.T) {
	lines := []struct{ name, line string }{
		{"space before the colon", "Set-Cookie : a=b"},
		{"tab before the colon", "Set-Cookie\t: a=b"},
		{"space in the name", "Bad Name: x"},
		{"@ in the name", "X@Y: x"},
		{"( in the name", "X(Y): x"},
		{"DEL in the name", "X\x7fY: x"},
		{"non-ASCII byte in the name", "X\x80Y: x"},
		{"CR in the name", "X\rY: x"},
		{"empty name", ": x"},
		{"no colon", "NoColon"},
		{"NUL in the value", "X-A: a\x00b"},
		{"bare CR in the value", "X-A: a\rb"},
		{"control byte in the value", "X-A: a\x01b"},
		{"folded with a space", "X-A: a\r\n b"},
		{"folded with a tab", "X-A: a\r\n\tb"},
	}
	closed := make(chan bool, 1)
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var req fasthttp.Request
			if err := req.Read(br); err != nil {
				return
			}
			path := string(req.URI().Path())
			if path == "/good" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Token!#$%&'*+-.^_`|~09: v\r\nX-Value: a\tb caf\xc3\xa9 \x7e\r\n"+
					"Content-Length: 2\r\n\r\nok")
				continue
			}
			i, _ := strconv.Atoi(path[2:])
			head := "HTTP/1.1 200 OK\r\nX-Before: 1\r\n" + lines[i].line + "\r\nContent-Length: 2\r\n\r\n"
			if path[1] == 'i' {
				head = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n" + lines[i].line + "\r\n\r\n" +
					"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
			}
			io.WriteString(c, head+"ok")
			// The gateway closes the connection rather than take another
			// request on it.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := br.ReadByte()
			closed <- err == io.EOF
			return
		}
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	client := proxytest.Client()
	refused := 0
	for i, tc := range lines {
		for _, interim := range []bool{false, true} {
			path := fmt.Sprintf("/f%d", i)
			what := tc.name
			if interim {
				path, what = fmt.Sprintf("/i%d", i), tc.name+", in a 103"
			}
			req := fasthttp.AcquireRequest()
			req.SetRequestURI(gw.URL + path)
			resp := fasthttp.AcquireResponse()
			if err := client.Do(req, resp); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_protocol_error" {
				t.Errorf("%s: the client got %d %q\n%s; want 502 upstream_protocol_error", what, resp.StatusCode(), resp.Body(), resp.Header.String())
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
			if !<-closed {
				t.Errorf("%s: the upstream's connection was not closed", what)
			}
			refused++
		}
	}
	if got := metricValue(t, gw, `flexgate_upstream_errors_total{route="r",reason="protocol"}`); got != float64(refused) {
		t.Errorf("flexgate_upstream_errors_total{reason=\"protocol\"} is %v, want %d", got, refused)
	}
	if logs := gw.Logs.String(); !strings.Contains(logs, `not a token`) || !strings.Contains(logs, `\"Bad Name: x\"`) ||
		!strings.Contains(logs, `folded`) {
		t.Errorf("the log does not say which line was refused:\n%s", logs)
	}

	resp := proxytest.Do(t, "GET", gw.URL+"/good", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Token!#$%&'*+-.^_`|~09")) != "v" ||
		string(resp.Header.Peek("X-Value")) != "a\tb caf\xc3\xa9 ~" {
		t.Errorf("an answer whose names are tokens and whose values have a tab and UTF-8: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
}

// TestAnswerTrailersAreNotForwarded: the fields after a chunked answer's
// last chunk never reach the client, malformed ones included: the client
// gets the whole body, and no field a parser could read otherwise.
func TestAnswerTrailersAreNotForwarded(t *testing.T) {
	upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var req fasthttp.Request
			if err := req.Read(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\n"+
				"X-T: v\r\nBad Name: x\r\nX-Folded: a\r\n b\r\n\r\n")
		}
	})
	gw := proxytest.Start(t, routeYAML("r", upstream))
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	got, _ := io.ReadAll(conn)
	if !strings.HasSuffix(string(got), "\r\n\r\n2\r\nok\r\n0\r\n\r\n") {
		t.Errorf("the client got %q; want the body whole, and no trailer field", got)
	}
}

// TestHTTP10ClientStreamsWithFlatMemory: an answer of unknown length goes
// to an HTTP/1.0 client as it arrives, ended by the connection's close,
// whatever its size, instead of being buffered whole.
func TestHTTP10ClientStreamsWithFlatMemory(t *testing.T) {
	const size = 64 << 20
	up := proxytest.StartUpstream(t)
	up.Record = false
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		// Not an io.LimitedReader, whose size fasthttp would send.
		ctx.SetBodyStream(struct{ io.Reader }{io.LimitReader(zeros{}, size)}, -1)
	}
	gw := proxytest.Start(t, routeYAML("r", up.URL))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	peak := peakHeap(stop)

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.0\r\n\r\n")
	br := bufio.NewReader(conn)
	var h fasthttp.ResponseHeader
	if err := h.Read(br); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, br)
	close(stop)
	if err != nil || n != size || h.StatusCode() != 200 {
		t.Fatalf("HTTP/1.0 client: status %d, %d of %d bytes before the close, %v", h.StatusCode(), n, size, err)
	}
	if len(h.Peek("Content-Length")) > 0 || len(h.Peek("Transfer-Encoding")) > 0 || !h.ConnectionClose() {
		t.Errorf("an HTTP/1.0 answer of unknown length is framed by the close alone, got:\n%s", h.String())
	}
	grown := int64(<-peak) - int64(base)
	if grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB to an HTTP/1.0 client", grown>>20, size>>20)
	}
}

// TestUpstreamTrustBundleRotation: an https upstream's caFile is read
// again when it changes, as cert-manager rotates a trust bundle, and a
// certificate the bundle does not trust is reported as a TLS failure.
func TestUpstreamTrustBundleRotation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "upstream")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("secure") }, Logger: quiet{}}
	go func() { _ = srv.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	// The bundle first holds another certificate: the upstream's is not
	// trusted.
	caDir := t.TempDir()
	otherCert, _ := proxytest.WriteCert(t, t.TempDir(), "other")
	caFile := caDir + "/ca.crt"
	copyFile(t, otherCert, caFile)
	cfg := fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "https://%s", caFile: "%s"}
`, ln.Addr(), caFile)
	gw := proxytest.Start(t, cfg, func(o *proxy.Options) { o.CertPollInterval = 50 * time.Millisecond })
	resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
	if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Flexgate-Error")) != "upstream_tls_error" {
		t.Fatalf("an untrusted upstream certificate: %d %s, want 502 upstream_tls_error", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)

	copyFile(t, certFile, caFile) // the rotation
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		ok := resp.StatusCode() == 200 && string(resp.Body()) == "secure"
		fasthttp.ReleaseResponse(resp)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated trust bundle is not used")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedUploadsAreAnsweredNotReset: a request refused before its
// body was read (over the size limit, declared or chunked, or by a policy)
// gets its answer even while the client is still sending a large body:
// the gateway reads and drops the rest before closing instead of
// resetting the connection under the answer.
func TestRefusedUploadsAreAnsweredNotReset(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  clients:
    - {id: app, secret: s3cret}
  routes:
    - id: small
      path: ["/small/*"]
      maxRequestBodySize: 100KiB
      upstream: {url: "%s"}
    - id: secured
      path: ["/secured/*"]
      maxRequestBodySize: 64MiB
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement: {}
`, up.URL, up.URL))
	for _, tc := range []struct {
		name, path string
		chunked    bool
		want       int
	}{
		{"declared length over the limit", "/small/x", false, 413},
		{"chunked body over the limit", "/small/x", true, 413},
		{"refused by a policy", "/secured/x", false, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 16 << 20
			before := up.Count.Load()
			req, _ := http.NewRequest("POST", gw.URL+tc.path, struct{ io.Reader }{io.LimitReader(zeros{}, size)})
			if !tc.chunked {
				req.ContentLength = size
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("the client did not get the gateway's answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
			}
			// A chunked body's size is known only once it has streamed
			// past the limit; the others never leave the gateway.
			if !tc.chunked && up.Count.Load() != before {
				t.Error("the upstream received a refused request")
			}
		})
	}
}

// TestTLSUpstreamClosingIdleIsNotAViolation: an https upstream that closes
// an idle connection sends a close_notify first, which under TLS 1.3 looks
// like data until read. It is a closed connection, not an upstream
// breaking framing: nothing is counted and connections stay reused.
func TestTLSUpstreamClosingIdleIsNotAViolation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := proxytest.WriteCert(t, dir, "upstream")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 16)
	srv := &fasthttp.Server{
		Logger:      quiet{},
		Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
		IdleTimeout: 50 * time.Millisecond,
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateClosed {
				closed <- struct{}{}
			}
		},
	}
	go func() { _ = srv.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "https://%s", caFile: "%s"}
`, ln.Addr(), certFile))
	for i := 0; i < 3; i++ {
		resp := proxytest.Do(t, "GET", gw.URL+"/x", nil, nil)
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
		select {
		case <-closed: // the upstream closed the idle connection
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream did not close its idle connection")
		}
	}
	if v := metricValue(t, gw, "flexgate_upstream_protocol_violations_total"); v != 0 {
		t.Errorf("an upstream closing idle TLS connections counted %v protocol violations", v)
	}
}

// TestStreamedBodyGoesOutAsItComes: the first bytes of a long body reach
// the client while the upstream is still sending the rest, over plain HTTP
// and TLS, instead of waiting for a buffer to fill.
func TestStreamedBodyGoesOutAsItComes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			rest := make(chan struct{})
			upstream := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				var req fasthttp.Request
				if err := req.Read(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("a", 1000))
				select {
				case <-rest:
					io.WriteString(c, strings.Repeat("b", 99000))
				case <-time.After(10 * time.Second):
				}
			})
			cfg := routeYAML("r", upstream)
			if tls {
				certFile, keyFile := proxytest.WriteCert(t, t.TempDir(), "gw")
				cfg = tlsConfigYAML(certFile, keyFile, upstream)
			}
			gw := proxytest.Start(t, cfg)
			var conn net.Conn
			var err error
			if tls {
				conn, err = cryptotls.Dial("tcp", strings.TrimPrefix(gw.URL, "https://"), &cryptotls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
			} else {
				conn, err = net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(conn, "GET /api/v1/x HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(conn)
			var h fasthttp.ResponseHeader
			if err := h.Read(br); err != nil {
				t.Fatalf("the headers did not arrive while the upstream held the rest of the body: %v", err)
			}
			first := make([]byte, 1000)
			if _, err := io.ReadFull(br, first); err != nil || string(first) != strings.Repeat("a", 1000) {
				t.Fatalf("the body's first 1000 bytes did not arrive while the upstream held the rest: %v", err)
			}
			close(rest)
			n, err := io.Copy(io.Discard, io.LimitReader(br, 99000))
			if err != nil || n != 99000 {
				t.Fatalf("the rest of the body: %d bytes, %v", n, err)
			}
		})
	}
}

// quiet drops a test server's log lines (the handshakes refused on purpose).
type quiet struct{}

func (quiet) Printf(string, ...any) {}
