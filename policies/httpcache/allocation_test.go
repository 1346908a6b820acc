package httpcache

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestHitDoesNotAllocate: answering from the cache allocates nothing: the
// lookup, the Vary marker, the headers and body written, Age.
func TestHitDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		headers     []string
		distributed bool
		// key, when set, is the http-caching key.
		key string
	}{
		{"plain", []string{"Content-Type", "application/json", "Cache-Control", "max-age=60"}, false, ""},
		{"vary", []string{"Content-Type", "application/json", "Vary", "Accept-Language"}, false, ""},
		// A distributed cache answers from its copy in memory.
		{"distributed", []string{"Content-Type", "application/json", "Vary", "Accept-Language"}, true, ""},
		// The key's parameter and header are looked for in every name.
		{"key reads a parameter and a header", []string{"Vary", "Accept-Language"}, false, "$request.path|$request.query.a|$request.header.Accept-Language"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := "- http-caching-flex: {httpCachingKey: \"#[attributes.requestUri]\"}\n"
			if tc.key != "" {
				policy = "- http-caching: {key: \"" + tc.key + "\"}\n"
			}
			ch, c, _ := cached(t, policy)
			if tc.distributed {
				mem := c.st.(*memStore)
				conn := &redisConn{writes: make(chan redisWrite, 16), dropped: metrics.NewSet().NewCounter("dropped")}
				conn.up.Store(true)
				c.st = &redisStore{local: mem, conn: conn, prefix: "p:", now: c.now, maxQueued: maxQueuedBytes}
				defer func() { c.st = mem }()
				defer func() {
					if n := len(conn.writes); n != 2 {
						t.Errorf("%d writes for Redis, want the Vary marker and the answer", n)
					}
				}()
			}
			o := &origin{status: 200, body: `{"ok":true}`, headers: tc.headers}
			get(ch, o, "/api/x?a=1", "Accept-Language", "en")
			ctx := chaintest.Ctx("http://gw/api/x?a=1", "Accept-Language", "en")
			ex := chain.AcquireExchange()
			defer chain.ReleaseExchange(ex)
			hit := func() {
				ex.Prepare(ch)
				if rej := ch.RunRequest(ctx, ex); rej != chain.Answered {
					t.Fatalf("not a hit: %v", rej)
				}
				ch.RunResponse(ctx, ex)
				ex.Reset()
				ctx.Response.Reset()
			}
			for range 100 {
				hit()
			}
			if n := testing.AllocsPerRun(1000, hit); n != 0 {
				t.Errorf("a hit costs %.2f allocations, want 0", n)
			}
		})
	}
}

// TestBypassDoesNotAllocate: a request the cache does not take (here a
// POST) costs nothing either.
func TestBypassDoesNotAllocate(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {}\n")
	ctx := chaintest.Ctx("http://gw/api/x")
	ctx.Request.Header.SetMethod("POST")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	if n := testing.AllocsPerRun(1000, func() {
		ex.Prepare(ch)
		ch.RunRequest(ctx, ex)
		ch.RunResponse(ctx, ex)
		ex.Reset()
	}); n != 0 {
		t.Errorf("a bypass costs %.2f allocations, want 0", n)
	}
}
