package specvalidation_test

import (
	"fmt"
	"strings"
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

// BenchmarkManyParameters: a query of 1000 parameters (the operation's 50,
// and 950 others, each named like one of them but not read as it), each
// looked for among the operation's in every name an upstream reads.
func BenchmarkManyParameters(b *testing.B) {
	var spec, query strings.Builder
	spec.WriteString(head + "paths:\n  /items:\n    get:\n      parameters:\n")
	for i := range 50 {
		fmt.Fprintf(&spec, "        - {name: param_%d, in: query, schema: {type: integer, maximum: 100}}\n", i)
		fmt.Fprintf(&query, "param_%d=%d&", i, i)
	}
	spec.WriteString(ok)
	for i := range 950 {
		fmt.Fprintf(&query, "param-%d=x&", i)
	}
	c := chaintest.MustChain(b, "- spec-validation:\n    spec: |\n"+block(spec.String(), 6))
	ctx := request("GET", "/items?"+strings.TrimSuffix(query.String(), "&"), "", nil)
	if n := ctx.QueryArgs().Len(); n != 1000 {
		b.Fatalf("%d parameters", n)
	}
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	b.ReportAllocs()
	for b.Loop() {
		if rej := run(c, ctx, ex); rej != nil {
			b.Fatal(rej)
		}
	}
}
