//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLoops runs n loops in front of origin until the test ends, and
// checks that each ended because it was stopped.
func startLoops(t *testing.T, origin *httptest.Server, n int, headers bool) string {
	t.Helper()
	addr, stop, errs, err := start("127.0.0.1:0", strings.TrimPrefix(origin.URL, "http://"), n, headers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		for range n {
			if err := <-errs; err != errStopped {
				t.Errorf("a loop ended with %v", err)
			}
		}
	})
	return addr
}

// TestProxiesKeepAlive: through two loops, concurrent keep-alive clients
// each get their own answers, bodies both ways, and a request pipelined
// behind another is answered after it, in order.
func TestProxiesKeepAlive(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	defer origin.Close()
	addr := startLoops(t, origin, 2, false)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				path := fmt.Sprintf("/w%d/r%d", w, i)
				resp, err := client.Post("http://"+addr+path, "text/plain", strings.NewReader(path))
				if err != nil {
					t.Error(err)
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := "POST " + path + " " + path; string(got) != want {
					t.Errorf("got %q, want %q", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /first ", "GET /second "} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("pipelined: got %q, want %q", got, want)
		}
	}
}

// TestHeadersAddsWhatAGatewayAdds: with -headers the origin sees the
// forwarding headers and a request id, the client gets the same id back
// with the answer, and bodies pass both ways, on kept-alive connections.
func TestHeadersAddsWhatAGatewayAdds(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("X-Request-Id")
		fmt.Fprintf(w, "%s|%s|%s|%s|%s|%s|%s|%s|%s", id, r.Header.Get("X-Forwarded-For"), r.Header.Get("Forwarded"),
			r.Header.Get("X-Real-Ip"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Port"), r.Header.Get("Traceparent"), body)
	}))
	defer origin.Close()
	addr := startLoops(t, origin, 1, true)
	_, port, _ := net.SplitHostPort(addr)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	seen := map[string]bool{}
	for i := range 20 {
		payload := fmt.Sprintf("body %d", i)
		resp, err := client.Post("http://"+addr+"/x", "text/plain", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f := strings.Split(string(got), "|")
		id := resp.Header.Get("X-Request-Id")
		want := []string{id, "127.0.0.1", `for=127.0.0.1;proto=http;host="` + addr + `"`, "127.0.0.1", "http", addr, port, "00-" + id + "-" + id[:min(16, len(id))] + "-01", payload}
		if len(id) != 32 || seen[id] || strings.Join(f, "|") != strings.Join(want, "|") {
			t.Fatalf("request %d: origin saw %q, want %q (answer's X-Request-Id %q, a new one each time)", i, f, want, id)
		}
		seen[id] = true
	}
}
