package httpcache

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/policies/ratelimit/redistest"
)

// redisStoreOn returns a store of a distributed cache of maxBytes in the
// Redis srv, and its connection's metrics.
func redisStoreOn(t *testing.T, srv *redistest.Server, maxBytes int64) (*redisStore, *metrics.Set) {
	t.Helper()
	return redisStoreWith(t, &config.Redis{Address: srv.Addr}, maxBytes)
}

// redisStoreWith is redisStoreOn with the shared storage's settings r.
func redisStoreWith(t *testing.T, r *config.Redis, maxBytes int64) (*redisStore, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	conn, err := acquireConn(set, r)
	if err != nil {
		t.Fatal(err)
	}
	if !conn.up.Load() {
		t.Fatal("Redis is not up")
	}
	mem, err := newMemStore(10000, maxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := newRedisStore(mem, conn, "flexgate:cache:test:", maxBytes, func() int64 { return time.Now().UnixNano() })
	t.Cleanup(st.close)
	return st, set
}

// TestRedisQueueIsBoundedInBytes: while Redis takes no writes, the
// entries waiting to be written hold no more bytes than the bound (here
// the cache's maxBytes, 32 MiB); the others are dropped and counted.
func TestRedisQueueIsBoundedInBytes(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	st, set := redisStoreOn(t, srv, 32<<20)
	// The writer waits on its first SET, 1 s, then on the next.
	srv.MustDo("CLIENT", "PAUSE", "3000", "WRITE")
	body := make([]byte, 1<<20)
	most := 0
	for i := range 100 {
		st.set(fmt.Sprintf("k%d", i), &entry{kind: kindResponse, status: 200, stored: time.Now().UnixNano(), ttl: time.Minute, body: body, size: len(body)})
		most = max(most, len(st.conn.writes))
	}
	// 32 entries of 1 MiB, and the one being written.
	if most > 33 {
		t.Errorf("%d entries of 1 MiB waited for Redis", most)
	}
	if d := set.GetOrCreateCounter(`flexgate_cache_redis_writes_dropped_total`).Get(); d < 100-33 {
		t.Errorf("%d writes dropped", d)
	}
}

// TestFirstProbeHoldsNoLock: while a gateway's first probe waits on a
// Redis that accepts but never answers, another gateway's connection is
// made without waiting for it.
func TestFirstProbeHoldsNoLock(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c
		}
	}()
	slowDone := make(chan *redisConn, 1)
	go func() {
		c, err := acquireConn(metrics.NewSet(), &config.Redis{Address: silent.Addr().String()})
		if err != nil {
			t.Error(err)
		}
		slowDone <- c
	}()
	var held net.Conn
	select {
	case held = <-accepted:
		defer held.Close()
	case c := <-slowDone:
		t.Fatalf("the silent Redis was never dialled (%v)", c != nil)
	}

	// A port no one listens on: the probe fails at once.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	fastDone := make(chan *redisConn, 1)
	go func() {
		c, err := acquireConn(metrics.NewSet(), &config.Redis{Address: addr})
		if err != nil {
			t.Error(err)
		}
		fastDone <- c
	}()
	var slow *redisConn
	select {
	case c := <-fastDone:
		if c != nil {
			c.release()
		}
	case slow = <-slowDone:
		t.Error("a connection waited for another one's first probe")
		if c := <-fastDone; c != nil {
			c.release()
		}
	}
	if slow == nil {
		slow = <-slowDone
	}
	if slow != nil {
		slow.release()
	}
}

// TestSlowRedisIsMarkedDown: calls that fail every other time (a slow
// Redis answering some in time) mark Redis down, so that misses stop
// waiting for it.
func TestSlowRedisIsMarkedDown(t *testing.T) {
	c := &redisConn{log: slog.Default(), errors: metrics.NewSet().NewCounter("errors"), wake: make(chan struct{}, 1)}
	c.up.Store(true)
	for i := 0; i < 2*judgeEvery && c.up.Load(); i++ {
		if i%2 == 0 {
			c.failed(errors.New("timeout"))
		} else {
			c.succeeded()
		}
	}
	if c.up.Load() {
		t.Error("Redis failing every other call is still up")
	}
}

// TestRedisWritesRefused: a Redis that answers reads but refuses writes (a
// read-only replica, out of memory, too few replicas) is marked down at
// the first write it refuses, said once in the log with what to do, and
// stays down while the probe's write is refused too: the caches keep
// their entries in memory for their full ttl meanwhile. A probe that only
// asked would pass it: each pass would drop the entries kept in memory,
// and the next write mark it down again, as fast as writes come. Once
// writes are taken again, entries go to Redis again.
func TestRedisWritesRefused(t *testing.T) {
	redistest.Require(t)
	for _, r := range redistest.WriteRefusals {
		t.Run(r.Name, func(t *testing.T) {
			srv := redistest.Start(t)
			logs := redistest.RecordLogs(t)
			st, set := redisStoreOn(t, srv, 64<<20)
			undo := srv.RefuseWrites(r)
			body := make([]byte, 1000)
			store := func(k string) {
				st.set(k, &entry{kind: kindResponse, status: 200, stored: time.Now().UnixNano(), ttl: time.Minute, body: body, size: len(body)})
			}
			// Misses and hits of 50 keys until Redis has refused writes
			// for a second of probing (five writes), or, were the probe
			// not to write, until it went up and down four times.
			start := time.Now()
			hits, misses := 0, 0
			for i := 0; srv.Refused(r.Code) < 5; i++ {
				for j := range 100 {
					k := fmt.Sprintf("k%d", (i*100+j)%50)
					if st.get([]byte(k)) != nil {
						hits++
						continue
					}
					misses++
					store(k)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("Redis refused %d writes in 10 s", srv.Refused(r.Code))
				}
			}
			lines := logs()
			downs, ups := redistest.CountLines(lines, "refuses writes"), redistest.CountLines(lines, "shared storage answers")
			errs := set.GetOrCreateCounter(`flexgate_cache_redis_errors_total`).Get()
			t.Logf("%d gets of 50 keys in %s: %d hits (%.1f %%); %d writes refused, %d counted as errors; down %d times, up again %d times; %d log lines",
				hits+misses, time.Since(start).Round(time.Millisecond), hits, 100*float64(hits)/float64(hits+misses), srv.Refused(r.Code), errs, downs, ups-1, len(lines))
			if st.conn.up.Load() || downs != 1 || ups != 1 || errs != 1 {
				t.Errorf("Redis refusing writes: up %v, marked down %d times, up again %d times, %d errors; want down once, at the first refused write",
					st.conn.up.Load(), downs, ups-1, errs)
			}
			for _, l := range lines {
				if strings.Contains(l, "refuses writes") && (!strings.Contains(l, r.Code) || !strings.Contains(l, "advice=")) {
					t.Errorf("the log says %q; want the error %s and what to do", l, r.Code)
				}
			}
			// Kept in memory for its ttl, not for localTTL.
			store("kept")
			if e := st.local.get([]byte("kept")); e == nil || e.ttl != time.Minute {
				t.Errorf("an entry stored while Redis refuses writes is kept in memory as %+v", e)
			}

			undo()
			waitUntil(t, "Redis is up again", st.conn.up.Load)
			store("after")
			waitUntil(t, "an entry is written to Redis again", func() bool {
				return srv.MustDo("KEYS", "flexgate:cache:test:*after") != ""
			})
		})
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisLeastPrivilege: an ACL user limited to the flexgate: keys and
// the commands the README lists is enough: the probe passes, entries are
// written and found by another replica, invalidated one by one and all at
// once.
func TestRedisLeastPrivilege(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	srv.MustDo("ACL", "SETUSER", "gateway", "on", ">gateway-pw", "~flexgate:*", "+@connection", "+get", "+set", "+del", "+incr")
	r := &config.Redis{Address: srv.Addr, Username: "gateway", Password: "gateway-pw"}
	st, set := redisStoreWith(t, r, 1<<20)
	other, _ := redisStoreWith(t, r, 1<<20)
	st.set("a", &entry{kind: kindResponse, status: 200, stored: time.Now().UnixNano(), ttl: time.Minute, body: []byte("A"), size: 1})
	waitUntil(t, "the other replica finds the entry in Redis", func() bool { return other.get([]byte("a")) != nil })
	st.drop([]byte("a"))
	waitUntil(t, "the entry is deleted from Redis", func() bool { return srv.MustDo("KEYS", "flexgate:cache:test:*a") == "" })
	st.dropAll()
	waitUntil(t, "the generation is incremented", func() bool { return st.pending.Load() == 0 })
	if g := srv.MustDo("GET", "flexgate:cache:test:gen"); g != "1" {
		t.Errorf("generation %q after invalidate-all, want 1", g)
	}
	if n := set.GetOrCreateCounter(`flexgate_cache_redis_errors_total`).Get(); n != 0 || !st.conn.up.Load() {
		t.Errorf("%d errors, up %v; ACL LOG: %s", n, st.conn.up.Load(), srv.MustDo("ACL", "LOG"))
	}
}
