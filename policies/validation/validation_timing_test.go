package validation

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

const seedBody = `{"productId":"PRD-42","quantity":2}`

// benchValidator returns the seed policy as compiled, and a copy that has
// no fast path, so that both paths run the same schema through the same
// HandleRequest.
func benchValidator(b *testing.B) (*chain.Chain, *chain.Chain) {
	fast := mustCompile(b, seedPolicy)
	lib := mustCompile(b, seedPolicy)
	lib.Policies[0].Policy.(*Validator).fast = nil
	return fast, lib
}

func benchRequest(b *testing.B, c *chain.Chain, uri, body string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(uri)
		if body != "" {
			ctx.Request.Header.SetContentType("application/json")
			ctx.Request.SetBodyString(body)
		}
		ctx.QueryArgs()
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		for pb.Next() {
			if r := c.RunRequest(&ctx, ex); r != nil {
				b.Fatalf("rejected: %v", r)
			}
		}
	})
}

// BenchmarkSeedBody compares the two paths on the seed's schema and a
// valid body: fast is the compiled walker, library is kaptinlin/jsonschema.
func BenchmarkSeedBody(b *testing.B) {
	fast, lib := benchValidator(b)
	b.Run("fast", func(b *testing.B) { benchRequest(b, fast, "/api/products/x", seedBody) })
	b.Run("library", func(b *testing.B) { benchRequest(b, lib, "/api/products/x", seedBody) })
}

// BenchmarkSeedQuery is the same for the seed's GET route: the query
// parameters validated as an object.
func BenchmarkSeedQuery(b *testing.B) {
	fast, lib := benchValidator(b)
	const uri = "/api/products/x?productId=PRD-42&quantity=2"
	b.Run("fast", func(b *testing.B) { benchRequest(b, fast, uri, "") })
	b.Run("library", func(b *testing.B) { benchRequest(b, lib, uri, "") })
}

// BenchmarkSeedBodyInvalid measures a rejected body on the fast path,
// which builds the violations list.
func BenchmarkSeedBodyInvalid(b *testing.B) {
	fast, _ := benchValidator(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/api/products/x")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(`{"productId":"42","quantity":0,"x":1}`)
		ex := chain.AcquireExchange()
		ex.Prepare(fast)
		for pb.Next() {
			ex.Details = ex.Details[:0]
			if fast.RunRequest(&ctx, ex) == nil {
				b.Fatal("passed")
			}
		}
	})
}

// BenchmarkSeedValidate compares the validators alone, without the
// policy's JSON well-formedness and depth checks around them.
func BenchmarkSeedValidate(b *testing.B) {
	n, lib := compileBoth(b, seedSchema)
	body := []byte(seedBody)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, decided := fastVerdict(n, body); !ok || !decided {
				b.Fatal("not valid on the fast path")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		var out violations
		for b.Loop() {
			if !lib.validateJSON(body, &out) {
				b.Fatal("not valid")
			}
		}
	})
}
