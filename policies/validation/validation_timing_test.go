package validation

import (
	"fmt"
	"strings"
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

// BenchmarkManyParameters: a query of 1000 parameters (the 50 a schema
// declares, and 950 others, each named like a declared one but not read
// as it) against that schema. The policy goes to the library past 64
// parameters; names is the look-up of each parameter among the declared
// ones in every name an upstream reads as them, alone, and unchecked the
// policy without it.
func BenchmarkManyParameters(b *testing.B) {
	var schema, query strings.Builder
	schema.WriteString(`{"type": "object", "properties": {`)
	for i := range 50 {
		if i > 0 {
			schema.WriteString(",")
		}
		fmt.Fprintf(&schema, `"param_%d": {"type": "integer", "maximum": 100}`, i)
		fmt.Fprintf(&query, "param_%d=%d&", i, i)
	}
	schema.WriteString("}}")
	for i := range 950 {
		fmt.Fprintf(&query, "param-%d=x&", i)
	}
	uri := "/api/products/x?" + strings.TrimSuffix(query.String(), "&")
	c := mustRoute(b, []string{"GET"}, schemaPolicy(schema.String(), ""))
	v := c.Policies[0].Policy.(*Validator)
	if v.names.Len() != 50 {
		b.Fatalf("%d declared names, want 50", v.names.Len())
	}
	b.Run("policy", func(b *testing.B) { benchGet(b, c, uri) })
	b.Run("names", func(b *testing.B) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		if n := ctx.QueryArgs().Len(); n != 1000 {
			b.Fatalf("%d parameters", n)
		}
		w := acquireWalk(nil)
		defer releaseWalk(w)
		b.ReportAllocs()
		for b.Loop() {
			if !v.otherNames(w, &ctx) {
				b.Fatal("a parameter was taken for a declared one")
			}
		}
	})
	unchecked := mustRoute(b, []string{"GET"}, schemaPolicy(schema.String(), ""))
	unchecked.Policies[0].Policy.(*Validator).names = nil
	b.Run("unchecked", func(b *testing.B) { benchGet(b, unchecked, uri) })
}

func benchGet(b *testing.B, c *chain.Chain, uri string) {
	b.ReportAllocs()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(uri)
	ctx.QueryArgs()
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	for b.Loop() {
		if r := c.RunRequest(&ctx, ex); r != nil {
			b.Fatalf("rejected: %v %s", r, ex.Details)
		}
	}
}

// BenchmarkBody10K: a valid body of 10 KiB (an array of 240 small objects
// and a few members around it) against bodySchema, on the fast path and
// the library's; each member name is checked against the declared ones
// and its object's others, ignoring case.
func BenchmarkBody10K(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"limit":5,"page":{"size":10},"note":"x","items":[`)
	for i := 0; body.Len() < 10<<10-64; i++ {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"qty":%d,"name":"item-%d","color":"red"}`, i%10, i)
	}
	body.WriteString(`]}`)
	fast := mustCompile(b, schemaPolicy(bodySchema, ""))
	lib := mustCompile(b, schemaPolicy(bodySchema, ""))
	lib.Policies[0].Policy.(*Validator).fast = nil
	b.Run("fast", func(b *testing.B) { benchPost(b, fast, body.String()) })
	b.Run("library", func(b *testing.B) { benchPost(b, lib, body.String()) })
}

func benchPost(b *testing.B, c *chain.Chain, body string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/api/products/x")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBodyString(body)
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	for b.Loop() {
		if r := c.RunRequest(&ctx, ex); r != nil {
			b.Fatalf("rejected: %v %s", r, ex.Details)
		}
	}
}
