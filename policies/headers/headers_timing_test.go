package headers

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func benchChain(b *testing.B, policies string) {
	set, _, err := chaintest.Compile(b, chaintest.Gateway(policies))
	if err != nil {
		b.Fatal(err)
	}
	c := set.Chains[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/products/1", "User-Agent", "bench", "Accept", "*/*")
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		for pb.Next() {
			serve(c, ctx, ex)
		}
	})
}

func BenchmarkRequestHeadersRemove(b *testing.B) {
	benchChain(b, "        - request-headers-remove:\n            headers: [\"X-Internal-*\", \"Authorization\"]\n")
}

func BenchmarkRequestHeadersSet(b *testing.B) {
	benchChain(b, "        - request-headers-set:\n            headers:\n              X-API-Version: v1\n              X-Gateway-Time: $datetime\n")
}

func BenchmarkResponseHeadersSet(b *testing.B) {
	benchChain(b, "        - response-headers-set:\n            headers:\n              Strict-Transport-Security: \"max-age=31536000; includeSubDomains\"\n              X-Content-Type-Options: nosniff\n")
}

func BenchmarkSeedHeaderSteps(b *testing.B) { benchChain(b, seedSteps) }
