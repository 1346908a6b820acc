package timeouts

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func BenchmarkResponseTimeout(b *testing.B) {
	c := chaintest.MustChain(b, "- response-timeout: {timeout: 5s}\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		for pb.Next() {
			ex.Prepare(c)
			c.RunRequest(ctx, ex)
			ex.Reset()
		}
		chain.ReleaseExchange(ex)
	})
}
