package introspection

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// BenchmarkCachedHit is the common path: a token the cache already holds.
func BenchmarkCachedHit(b *testing.B) {
	p := newIdP(b, false)
	f := setup(b, p.srv.URL, "scopes: [orders:read]")
	p.answers["tok"] = fmt.Sprintf(goodAnswer, 1_700_003_600)
	if r := f.do("Bearer tok"); r.rej != nil {
		b.Fatal(r.rej)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&fasthttp.Request{}, nil, nil)
		ctx.Request.SetRequestURI("/orders/1")
		ctx.Request.Header.Set("Authorization", "Bearer tok")
		ex := chain.AcquireExchange()
		ex.Prepare(f.c)
		for pb.Next() {
			if rej := f.c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
		}
	})
}
