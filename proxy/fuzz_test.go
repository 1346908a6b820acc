package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// scriptedUpstream answers each request it reads, in order, with the next
// of a script's answers, with every "{T}" replaced by the tag of the
// request it answers. Answers are separated by "|||" in the script; an
// answer starting with "!" closes the connection once written. When the
// script runs out, the answers are well-formed and tagged.
type scriptedUpstream struct {
	mu      sync.Mutex
	answers [][]byte
	next    int
}

func (u *scriptedUpstream) set(script []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.answers = bytes.Split(script, []byte("|||"))
	u.next = 0
}

func (u *scriptedUpstream) answer(tag string) (answer []byte, closeAfter bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.next >= len(u.answers) {
		return []byte(tagged(tag)), false
	}
	a := u.answers[u.next]
	u.next++
	if len(a) > 0 && a[0] == '!' {
		a, closeAfter = a[1:], true
	}
	return bytes.ReplaceAll(a, []byte("{T}"), []byte(tag)), closeAfter
}

func (u *scriptedUpstream) serve(c net.Conn, br *bufio.Reader) {
	for {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		a, closeAfter := u.answer(string(req.Header.Peek("X-Tag")))
		for i, part := range bytes.Split(a, []byte("~~~")) {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := c.Write(part); err != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

var (
	tagPattern = regexp.MustCompile(`tag-[0-9]+-`)
	tagSeq     atomic.Int64
)

// FuzzAnswersStayWithTheirClient drives an upstream that answers with
// arbitrary bytes: answers that lie about their length, bodies after HEAD,
// 204 and 304, garbage, early closes. Clients take turns on the gateway,
// each request tagged; whatever a client gets (an answer, the gateway's
// error, a cut-off body), it must never hold another request's tag.
func FuzzAnswersStayWithTheirClient(f *testing.F) {
	seeds := []string{
		"",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok~~~" + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n~~~" + tagged("{T}"),
		"HTTP/1.1 204 No Content\r\n\r\n~~~" + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n" + tagged("{T}"),
		"HTTP/1.1 204 No Content\r\nContent-Length: 40\r\n\r\n" + tagged("{T}"),
		"HTTP/1.1 304 Not Modified\r\n\r\n" + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + tagged("{T}") + "|||" + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ntag-{T}|||!" + tagged("{T}"),
		"HTTP/1.1 100 Continue\r\n\r\n" + tagged("{T}") + tagged("{T}"),
		"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000) + tagged("{T}"),
		"HTTP/1.0 200 OK\r\n\r\n{T}|||" + tagged("{T}"),
		"garbage {T}\r\n\r\n|||" + tagged("{T}"),
	}
	for _, s := range seeds {
		f.Add([]byte("GHGPG"), []byte(s))
	}
	up := &scriptedUpstream{}
	upstream := rawServer(f, up.serve)
	gw := proxytest.Start(f, fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s", responseTimeout: 200ms}
`, upstream))
	addr := strings.TrimPrefix(gw.URL, "http://")

	f.Fuzz(func(t *testing.T, methods, script []byte) {
		if len(methods) == 0 || len(methods) > 8 || len(script) > 1<<17 {
			return
		}
		up.set(script)
		for i, m := range methods {
			method := map[byte]string{'H': "HEAD", 'P': "POST"}[m]
			if method == "" {
				method = "GET"
			}
			tag := fmt.Sprintf("%d", tagSeq.Add(1))
			got := exchange(t, addr, method, tag)
			for _, seen := range tagPattern.FindAll(got, -1) {
				if string(seen) != "tag-"+tag+"-" {
					t.Fatalf("request %d (%s, tag %s) received %s, another request's answer:\n%q", i, method, tag, seen, got)
				}
			}
		}
	})
}

// exchange sends one request on a connection of its own and returns every
// byte the gateway sent back until it closed the connection or went quiet.
func exchange(t *testing.T, addr, method, tag string) []byte {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	body := ""
	if method == "POST" {
		body = "tag-" + tag + "-"
	}
	fmt.Fprintf(conn, "%s /x HTTP/1.1\r\nHost: x\r\nX-Tag: tag-%s-\r\nContent-Length: %d\r\n\r\n%s", method, tag, len(body), body)
	var out bytes.Buffer
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	resp.SkipBody = method == "HEAD"
	if err := resp.Read(br); err != nil {
		// Whatever arrived is still checked.
		_, _ = io.Copy(&out, br)
		return out.Bytes()
	}
	_, _ = resp.WriteTo(&out)
	return out.Bytes()
}
