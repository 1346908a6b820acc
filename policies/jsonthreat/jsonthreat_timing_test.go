package jsonthreat

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// typical is an API body of a few hundred bytes.
var typical = []byte(`{"order":{"id":"ORD-1042","customer":{"name":"Åsa Öberg","email":"asa@example.com"},` +
	`"items":[{"sku":"PRD-42","quantity":2,"price":19.99},{"sku":"PRD-7","quantity":1,"price":5.5}],` +
	`"notes":"leave at the door \"please\"","gift":false,"coupon":null}}`)

// BenchmarkScanner is the scanner's throughput over a typical body with
// every limit set.
func BenchmarkScanner(b *testing.B) {
	lim := Limits{Depth: 10, String: 1000, Array: 1000, Object: 100, Name: 64}
	doc := []byte("[" + strings.Repeat(string(typical)+",", 200) + "0]")
	var s Scanner
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset(lim)
		if s.Feed(doc) != OK || s.Finish() != OK {
			b.Fatal("refused")
		}
	}
}

// BenchmarkPolicy is a request with a typical body through the policy.
func BenchmarkPolicy(b *testing.B) {
	c := mustChain(b, "1MiB", "        - json-threat-protection: {maxContainerDepth: 10, maxStringValueLength: 1000, maxArrayElementCount: 100, maxObjectEntryCount: 100, maxObjectEntryNameLength: 64}\n")
	b.SetBytes(int64(len(typical)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x", "Content-Type", "application/json")
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		for pb.Next() {
			ctx.Request.SetBody(typical)
			if rej := c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
		}
	})
}
