package all_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkProvidedValues runs client-id-enforcement and two steps that
// read $client.id (a header value and a rate-limit key) on a pooled
// exchange.
func BenchmarkProvidedValues(b *testing.B) {
	text := strings.Replace(chaintest.Gateway(`        - client-id-enforcement
        - request-headers-set: {headers: {X-Client: "id=$client.id"}}
        - rate-limiting: {limit: 1000000, period: 1, identifier: $client.id}
`), "spec:\n", "spec:\n  clients:\n    - {id: shop-app, secret: shop-secret}\n", 1)
	set, _, err := chaintest.Compile(b, text)
	if err != nil {
		b.Fatal(err)
	}
	c := set.Chains[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x", "client_id", "shop-app")
		for pb.Next() {
			ctx.Request.Header.Set("client_secret", "shop-secret")
			ex := chain.AcquireExchange()
			ex.Prepare(c)
			if rej := c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
			c.RunResponse(ctx, ex)
			chain.ReleaseExchange(ex)
		}
	})
}
