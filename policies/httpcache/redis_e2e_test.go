package httpcache_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// distributedGateway starts a gateway whose route /c/* caches in the
// Redis at addr.
func distributedGateway(t *testing.T, up *proxytest.Upstream, addr string) *proxytest.Gateway {
	t.Helper()
	return proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: replica}
spec:
  sharedStorage:
    redis: {address: %q}
  routes:
    - id: c
      path: ["/c/*"]
      upstream: {url: %q}
      policies:
        - http-caching: {distributed: true, invalidationHeader: X-Invalidate}
`, addr, up.URL))
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keysOf lists the cache's keys in Redis whose request URI holds uri.
func keysOf(t *testing.T, srv *redistest.Server, uri string) string {
	t.Helper()
	return srv.MustDo("KEYS", "flexgate:cache:*"+uri+"*")
}

// TestDistributedCacheIsShared: an answer one gateway stored in the shared
// Redis answers the same request on another gateway of the config without
// the upstream, and not on a gateway of another config; invalidate-all
// drops the cache's entries from Redis.
func TestDistributedCacheIsShared(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	up := proxytest.StartUpstream(t)
	counting(up)
	gw1, gw2 := distributedGateway(t, up, srv.Addr), distributedGateway(t, up, srv.Addr)

	first := do(t, "GET", gw1.URL+"/c/a?x=1")
	waitFor(t, "the answer is in Redis", func() bool { return keysOf(t, srv, "/c/a?x=1") != "" })
	second := do(t, "GET", gw2.URL+"/c/a?x=1")
	if first.status != 200 || second.body != first.body || up.Count.Load() != 1 || second.headers["Age"] == "" {
		t.Fatalf("the other gateway answered %+v (first %+v); upstream saw %d", second, first, up.Count.Load())
	}
	if again := do(t, "GET", gw2.URL+"/c/a?x=1"); again.body != first.body || up.Count.Load() != 1 {
		t.Errorf("a second hit: %+v", again)
	}
	// A gateway of another config (its route of the same name goes to
	// another upstream) does not get the answer.
	up2 := proxytest.StartUpstream(t)
	counting(up2)
	other := distributedGateway(t, up2, srv.Addr)
	if a := do(t, "GET", other.URL+"/c/a?x=1"); a.status != 200 || up2.Count.Load() != 1 {
		t.Errorf("a gateway of another upstream: %+v; its upstream saw %d", a, up2.Count.Load())
	}

	do(t, "GET", gw1.URL+"/c/b")
	waitFor(t, "the answer of /c/b is in Redis", func() bool { return keysOf(t, srv, "/c/b") != "" })
	before := up.Count.Load()
	if a := do(t, "GET", gw2.URL+"/c/b"); a.status != 200 || up.Count.Load() != before {
		t.Fatalf("/c/b on the other gateway: %+v; upstream saw %d, before %d", a, up.Count.Load(), before)
	}
	do(t, "GET", gw1.URL+"/c/z", "X-Invalidate", "invalidate-all")
	waitMiss(t, "invalidate-all on one gateway reaches the other", up, gw2.URL+"/c/b")
}

// waitMiss asks url until the upstream sees the request (the entry is
// gone), failing the test after 10 s.
func waitMiss(t *testing.T, what string, up *proxytest.Upstream, url string) {
	t.Helper()
	waitFor(t, what, func() bool {
		before := up.Count.Load()
		if a := do(t, "GET", url); a.status != 200 {
			t.Fatalf("%s: %+v", url, a)
		}
		return up.Count.Load() != before
	})
}

// TestDistributedInvalidateAllWhileRedisIsDown: an invalidate-all that a
// gateway receives while Redis does not answer takes effect in Redis when
// it answers again: the other gateway no longer serves the entry.
func TestDistributedInvalidateAllWhileRedisIsDown(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	up := proxytest.StartUpstream(t)
	counting(up)
	gw1, gw2 := distributedGateway(t, up, srv.Addr), distributedGateway(t, up, srv.Addr)
	do(t, "GET", gw1.URL+"/c/a")
	waitFor(t, "the answer is in Redis", func() bool { return keysOf(t, srv, "/c/a") != "" })

	// Redis keeps its keys but answers nothing for 5 s; three misses on
	// gw1 (each waits 100 ms) mark it down there.
	go func() { _, _ = srv.Do("DEBUG", "SLEEP", "5") }()
	waitBlocked(t, srv)
	for i := range 3 {
		do(t, "GET", fmt.Sprintf("%s/c/m%d", gw1.URL, i))
	}
	do(t, "GET", gw1.URL+"/c/z", "X-Invalidate", "invalidate-all")
	// redis-cli waits for the sleep to end.
	srv.MustDo("PING")
	waitMiss(t, "the invalidate-all is made once Redis is back", up, gw2.URL+"/c/a")
}

// waitBlocked returns once srv stops answering (DEBUG SLEEP has begun),
// asking over a socket of its own.
func waitBlocked(t *testing.T, srv *redistest.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = io.WriteString(c, "PING\r\n")
		if err == nil {
			_, err = c.Read(buf)
		}
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
	}
	t.Fatal("Redis still answers PING 5 s after DEBUG SLEEP was sent")
}

// TestDistributedCacheWithoutRedis: when Redis goes away, every request is
// still answered, and each gateway caches in its own memory; when Redis is
// back, entries go to it again.
func TestDistributedCacheWithoutRedis(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	up := proxytest.StartUpstream(t)
	counting(up)
	gw := distributedGateway(t, up, srv.Addr)
	srv.Kill()

	fromMemory := false
	for i := 0; i < 20 && !fromMemory; i++ {
		before := up.Count.Load()
		a := do(t, "GET", gw.URL+"/c/d")
		if a.status != 200 || !strings.HasPrefix(a.body, "answer ") {
			t.Fatalf("request %d without Redis: %+v", i, a)
		}
		fromMemory = up.Count.Load() == before
	}
	if !fromMemory {
		t.Fatalf("without Redis, 20 requests of one key all went upstream")
	}

	srv.Restart()
	waitFor(t, "the gateway stores in Redis again", func() bool {
		if a := do(t, "GET", gw.URL+"/c/e"); a.status != 200 {
			t.Fatalf("while Redis comes back: %+v", a)
		}
		return keysOf(t, srv, "/c/e") != ""
	})
}

// TestDistributedCacheWhileRedisRefusesWrites: a Redis that answers reads
// but refuses writes (a read-only replica, out of memory, too few
// replicas) fails no request: each is answered, the repeated ones from the
// gateway's memory.
func TestDistributedCacheWhileRedisRefusesWrites(t *testing.T) {
	redistest.Require(t)
	for _, r := range redistest.WriteRefusals {
		t.Run(r.Name, func(t *testing.T) {
			srv := redistest.Start(t)
			up := proxytest.StartUpstream(t)
			counting(up)
			gw := distributedGateway(t, up, srv.Addr)
			srv.RefuseWrites(r)
			paths := []string{"/c/a", "/c/b", "/c/c"}
			round := func() {
				for _, p := range paths {
					if a := do(t, "GET", gw.URL+p); a.status != 200 || !strings.HasPrefix(a.body, "answer ") {
						t.Fatalf("%s while Redis refuses writes: %+v", p, a)
					}
				}
			}
			round()
			waitFor(t, "Redis refuses the gateway's writes", func() bool { return srv.Refused(r.Code) > 0 })
			for range 10 {
				round()
			}
			// Each once, or twice if its first copy, kept for 1 s while
			// Redis was thought up, ran out.
			if n := up.Count.Load(); n > int64(2*len(paths)) {
				t.Errorf("the upstream saw %d of 33 requests for %d paths", n, len(paths))
			}
		})
	}
}

// TestDistributedVary: an answer with Vary, stored by one gateway, answers
// a request with the same header values on another; other values go
// upstream.
func TestDistributedVary(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	up := proxytest.StartUpstream(t)
	counting(up, "Vary", "Accept-Language")
	gw1, gw2 := distributedGateway(t, up, srv.Addr), distributedGateway(t, up, srv.Addr)
	// A gateway that found Redis slow (the race detector makes it so)
	// keeps its answers in memory a while, as documented: the answer is
	// then asked again under another path until one is stored.
	var path string
	var first answer
	waitFor(t, "an answer and its Vary marker are in Redis", func() bool {
		path = fmt.Sprintf("/c/v%d", up.Count.Load())
		first = do(t, "GET", gw1.URL+path, "Accept-Language", "fr")
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Count(keysOf(t, srv, path), "\n") == 1 {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
	sent := up.Count.Load()
	if a := do(t, "GET", gw2.URL+path, "Accept-Language", "fr"); a.body != first.body || up.Count.Load() != sent {
		t.Errorf("the same language on the other gateway: %+v; upstream saw %d", a, up.Count.Load()-sent)
	}
	if a := do(t, "GET", gw2.URL+path, "Accept-Language", "de"); a.body == first.body || up.Count.Load() != sent+1 {
		t.Errorf("another language: %+v; upstream saw %d", a, up.Count.Load()-sent)
	}
}
