package validation

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// The fast path must not allocate when a request is valid: that is the
// common case and it runs on every request of the route.
func TestFastPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	c := mustCompile(t, seedPolicy)
	if c.Policies[0].Policy.(*Validator).fast == nil {
		t.Fatal("the seed schema is not on the fast path")
	}
	// The seed's own route: GET only, so "auto" validates the query.
	getOnly := mustRoute(t, []string{"GET"}, seedPolicy)
	f := func(c *chain.Chain, name, method, uri, contentType, body string) {
		t.Helper()
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		if contentType != "" {
			ctx.Request.Header.SetContentType(contentType)
		}
		ctx.Request.SetBodyString(body)
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		ex.Prepare(c)
		if r := c.RunRequest(&ctx, ex); r != nil {
			t.Fatalf("%s: rejected: %v %s", name, r, ex.Details)
		}
		allocs := testing.AllocsPerRun(200, func() {
			// A new URI makes fasthttp parse the query again, as it
			// does for each request of a connection.
			ctx.Request.SetRequestURI(uri)
			if c.RunRequest(&ctx, ex) != nil {
				t.Fatal("rejected")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per valid request, want 0", name, allocs)
		}
	}
	f(c, "body", "POST", "/api/products/x", "application/json", `{"productId":"PRD-42","quantity":2}`)
	f(c, "query", "GET", "/api/products/x?productId=PRD-42&quantity=2", "", "")
	f(getOnly, "query on a GET route", "GET", "/api/products/x?productId=PRD-42&quantity=2", "", "")
	// Each parameter is looked for among the declared ones in every name
	// an upstream reads as them.
	paging := mustRoute(t, []string{"GET"}, schemaPolicy(pagingSchema, ""))
	// Each member name of a body, at every depth, is looked for among
	// the declared ones ignoring case, and among its object's others.
	nested := mustCompile(t, schemaPolicy(bodySchema, ""))
	f(nested, "body with nested members", "POST", "/api/products/x", "application/json",
		`{"limit":5,"page":{"size":1},"items":[{"qty":1},{"qty":2,"name":"x"}],"Other":1,"other2":2}`)
	f(paging, "query with undeclared parameters", "GET", "/api/products/x?limit=5&page_size=3&other=1&limits=2&page-size=3", "", "")
	// Names after a ';' are looked for too.
	f(paging, "query with ';'", "GET", "/api/products/x?limit=5&q=a;b&ids=1;2;3&x;y=1", "", "")
	// Names with non-ASCII letters, some of which fold to ASCII ones
	// (namefold), naming nothing declared.
	f(paging, "query with non-ASCII letters", "GET", "/api/products/x?limit=5&l%C4%B1mits=1&page_%C5%BFizes=2&l%C3%ADmit=3", "", "")
	f(nested, "body with non-ASCII letters", "POST", "/api/products/x", "application/json",
		`{"limit":5,"lımits":1,"page":{"size":1,"ſizes":2,"śize":3},"items":[{"qty":1,"Kind":2}]}`)
}
