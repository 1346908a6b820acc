package cors_test

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkCORS: an allowed cross-origin request, and a preflight, through
// the policy's request and response steps.
func BenchmarkCORS(b *testing.B) {
	c := chaintest.MustChain(b, appPolicy)
	for _, bc := range []struct {
		name, method string
		headers      []string
	}{
		{"request", "GET", []string{"Origin", "https://app.example.com"}},
		{"preflight", "OPTIONS", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "content-type,x-token"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := chaintest.Ctx("http://gw/api/x", bc.headers...)
				ctx.Request.Header.SetMethod(bc.method)
				ex := chain.AcquireExchange()
				defer chain.ReleaseExchange(ex)
				for pb.Next() {
					serve(c, ctx, ex)
				}
			})
		})
	}
}
