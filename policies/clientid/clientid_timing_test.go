package clientid

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// BenchmarkKnownClient is the common path: a registered client with the
// right secret.
func BenchmarkKnownClient(b *testing.B) {
	c, _ := mustCompile(b, "- client-id-enforcement")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&fasthttp.Request{}, nil, nil)
		ctx.Request.SetRequestURI("/orders/1")
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		for pb.Next() {
			ctx.Request.Header.Set("client_id", "app-1")
			ctx.Request.Header.Set("client_secret", "s3cret")
			if rej := c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
		}
	})
}
