package httpcache

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	set := metrics.NewSet()
	conn, err := acquireConn(set, &config.Redis{Address: srv.Addr})
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
