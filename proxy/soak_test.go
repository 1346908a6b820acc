package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// flappingUpstream misbehaves on purpose: by the request's path it answers
// well, sends bytes beyond its answer, answers HEAD with a body, closes
// without answering, answers late or streams a long chunked body; and
// every few seconds it goes away (listener and connections closed) and
// comes back on the same address.
type flappingUpstream struct {
	addr  string
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startFlapping(t *testing.T) *flappingUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &flappingUpstream{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	u.serve(ln)
	t.Cleanup(u.down)
	return u
}

func (u *flappingUpstream) serve(ln net.Listener) {
	u.mu.Lock()
	u.ln = ln
	u.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = struct{}{}
			u.mu.Unlock()
			go func() {
				defer func() {
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
					c.Close()
				}()
				u.handle(c, bufio.NewReader(c))
			}()
		}
	}()
}

func (u *flappingUpstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
	for c := range u.conns {
		c.Close()
	}
}

func (u *flappingUpstream) up() error {
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		return err
	}
	u.serve(ln)
	return nil
}

func (u *flappingUpstream) handle(c net.Conn, br *bufio.Reader) {
	for {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		tag := string(req.Header.Peek("X-Tag"))
		var err error
		switch string(req.URI().Path()) {
		case "/extra":
			_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			time.Sleep(time.Millisecond)
			_, _ = io.WriteString(c, tagged(tag))
		case "/head":
			_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"+tagged(tag))
		case "/nocontent":
			_, err = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"+tagged(tag))
		case "/drop":
			return
		case "/late":
			time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond) // sometimes over the timeout
			_, err = io.WriteString(c, tagged(tag))
		case "/stream":
			chunk := "tag=" + tag + strings.Repeat(".", 4000)
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < 64 && err == nil; i++ {
				_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
			}
			if err == nil {
				_, err = io.WriteString(c, "0\r\n\r\n")
			}
		default:
			_, err = io.WriteString(c, tagged(tag))
		}
		if err != nil {
			return
		}
	}
}

// TestSoak runs mixed clients against a flapping, misbehaving upstream
// while the config reloads, for FLEXGATE_SOAK (make soak: 10m). It fails
// on any answer that reached the wrong client, on heap growth, and on
// goroutine growth between the first third of the run and its end.
func TestSoak(t *testing.T) {
	d := os.Getenv("FLEXGATE_SOAK")
	if d == "" {
		t.Skip("a long run: set FLEXGATE_SOAK to its length (make soak runs 10m)")
	}
	length, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("FLEXGATE_SOAK=%q: %v", d, err)
	}
	up := startFlapping(t)
	config := func(limit int) string {
		return fmt.Sprintf(preamble+`  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "http://%s", responseTimeout: 500ms}
      policies:
        - rate-limiting: {limit: %d, period: 1}
`, up.addr, limit)
	}
	gw := proxytest.Start(t, config(100000))
	addr := strings.TrimPrefix(gw.URL, "http://")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, crossed, failed, gatewayErrors atomic.Int64
	var crossedExample atomic.Value
	// What recent requests were, by tag, for the report; bounded, so that
	// the test's own memory stays flat.
	var sent [1 << 14]atomic.Pointer[string]
	paths := []string{"/ok", "/ok", "/ok", "/extra", "/head", "/nocontent", "/drop", "/late", "/stream"}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				path := paths[rand.IntN(len(paths))]
				method, proto := "GET", "HTTP/1.1"
				switch {
				case path == "/head":
					method = "HEAD"
				case rand.IntN(10) == 0:
					proto = "HTTP/1.0"
				}
				seq := tagSeq.Add(1)
				tag := fmt.Sprintf("%d", seq)
				desc := method + " " + path + " " + proto
				sent[seq%int64(len(sent))].Store(&desc)
				got, err := soakExchange(addr, method, path, proto, tag)
				requests.Add(1)
				if err != nil {
					failed.Add(1)
				}
				if bytes.Contains(got, []byte("X-Flexgate-Error: upstream_")) {
					gatewayErrors.Add(1)
				}
				for _, seen := range tagPattern.FindAll(got, -1) {
					if string(seen) != "tag-"+tag+"-" {
						crossed.Add(1)
						var from string
						if n, err := strconv.ParseInt(string(seen[4:len(seen)-1]), 10, 64); err == nil {
							if d := sent[n%int64(len(sent))].Load(); d != nil {
								from = *d
							}
						}
						crossedExample.Store(fmt.Sprintf("%s %s %s (tag %s) received %s, of %v", method, path, proto, tag, seen, from))
						t.Logf("%s %s %s (tag %s) received %s, of %v", method, path, proto, tag, seen, from)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // flapping and reloads
		defer wg.Done()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := gw.Reload(t, config(100000+i)); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
			if i%3 == 0 {
				up.down()
				time.Sleep(300 * time.Millisecond)
				if err := up.up(); err != nil {
					t.Errorf("upstream back up: %v", err)
				}
			}
		}
	}()

	sample := func() (heap uint64, goroutines int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse, runtime.NumGoroutine()
	}
	time.Sleep(length / 3)
	heap1, gor1 := sample()
	time.Sleep(length - length/3)
	close(stop)
	wg.Wait()
	heap2, gor2 := sample()
	t.Logf("%d requests in %s: %d answered by the gateway for a failed upstream (down, dropped, late), "+
		"%d failed at the client; heap %d → %d KiB, goroutines %d → %d",
		requests.Load(), length, gatewayErrors.Load(), failed.Load(), heap1>>10, heap2>>10, gor1, gor2)
	if n := crossed.Load(); n > 0 {
		t.Errorf("%d answers reached the wrong client, e.g. %s", n, crossedExample.Load())
	}
	if heap2 > heap1+32<<20 {
		t.Errorf("heap grew from %d to %d MiB", heap1>>20, heap2>>20)
	}
	if gor2 > gor1+64 {
		t.Errorf("goroutines grew from %d to %d", gor1, gor2)
	}
}

// soakExchange is one client's request on a connection of its own.
func soakExchange(addr, method, path, proto, tag string) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s %s\r\nHost: x\r\nX-Tag: tag-%s-\r\nConnection: close\r\n\r\n", method, path, proto, tag); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(conn, 1<<20))
}
