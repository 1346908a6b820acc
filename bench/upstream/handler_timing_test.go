package main

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHandler shows the upstream's own cost per request, which every
// target in bench/compare pays alike.
func BenchmarkHandler(b *testing.B) {
	for _, body := range []string{"small", "large"} {
		path := "/api/products/" + body
		b.Run(body, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.SetRequestURI(path)
				for pb.Next() {
					ctx.Response.Reset()
					Handler(&ctx)
				}
			})
		})
	}
}
