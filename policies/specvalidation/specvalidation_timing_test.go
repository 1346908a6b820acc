package specvalidation_test

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkSpecValidation: valid requests of the petstore: parameters of
// each kind, and a JSON body.
func BenchmarkSpecValidation(b *testing.B) {
	c := chaintest.MustChain(b, policy(b, ""))
	for _, r := range []int{0, 4} {
		vr := validRequests[r]
		b.Run(vr.method, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := request(vr.method, vr.uri, vr.body, vr.headers)
				ex := chain.AcquireExchange()
				defer chain.ReleaseExchange(ex)
				for pb.Next() {
					if rej := run(c, ctx, ex); rej != nil {
						b.Fatal(rej)
					}
				}
			})
		})
	}
}
