package httpcache

import (
	"fmt"
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
