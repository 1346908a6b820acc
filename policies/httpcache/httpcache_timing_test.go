package httpcache

import (
	"fmt"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkHit answers from the cache on every core.
func BenchmarkHit(b *testing.B) {
	ch, _, _ := cached(b, "- http-caching: {}\n")
	o := &origin{status: 200, body: `{"ok":true}`, headers: []string{"Content-Type", "application/json"}}
	get(ch, o, "/api/x")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		for pb.Next() {
			ex.Prepare(ch)
			if ch.RunRequest(ctx, ex) != chain.Answered {
				b.Fatal("miss")
			}
			ch.RunResponse(ctx, ex)
			ex.Reset()
			ctx.Response.Reset()
		}
		chain.ReleaseExchange(ex)
	})
}

// BenchmarkMissAndStore stores an answer of a new key each time.
func BenchmarkMissAndStore(b *testing.B) {
	ch, _, _ := cached(b, "- http-caching: {maxEntries: 1000}\n")
	o := &origin{status: 200, body: `{"ok":true}`, headers: []string{"Content-Type", "application/json"}}
	b.ReportAllocs()
	for i := range b.N {
		get(ch, o, fmt.Sprintf("/api/%d", i))
	}
}
