package specvalidation_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// validRequests are requests the petstore lets through, each on schemas
// of the fast path: every kind of parameter, lists, and a JSON body.
var validRequests = []struct {
	method, uri, body string
	headers           []string
}{
	{"GET", "/api/pets?limit=10&tags=dog&tags=cat", "", []string{"X-Request-Id", "0af7651916cd43dd"}},
	{"GET", "/api/pets/7/photos/cute.jpg?sizes=64|128", "", nil},
	{"GET", "/api/pets/mine", "", nil},
	{"DELETE", "/api/pets/7", "", []string{"Cookie", "session=0123456789", "ids", "1,2,3"}},
	{"POST", "/api/pets", `{"name":"rex","tag":null,"age":2}`, []string{"Content-Type", "application/json"}},
	// Parameters, headers and cookies the operation does not describe,
	// each looked for among its own in every name an upstream reads.
	{"GET", "/api/pets?limit=10&other=1&limits=2&page.size=3", "", []string{"X-Request-Id", "0af7651916cd43dd", "X-Other", "1", "X_Trace_Id", "2"}},
	{"DELETE", "/api/pets/7", "", []string{"Cookie", "session=0123456789; theme=dark; sessions=x", "ids", "1,2"}},
	// A cookie name PHP would decode, naming nothing declared.
	{"DELETE", "/api/pets/7", "", []string{"Cookie", "session=0123456789; my%20theme=dark; a+b=c", "ids", "1,2"}},
	// Names after a ';' are looked for too.
	{"GET", "/api/pets?limit=10&q=a;b&ids=1;2;3&x;y=1", "", []string{"X-Request-Id", "0af7651916cd43dd"}},
	// Names with letters that fold to ASCII ones (namefold), naming
	// nothing declared.
	{"GET", "/api/pets?limit=10&l%C4%B1mits=1&%C5%BFize=2", "", []string{"X-Request-Id", "0af7651916cd43dd"}},
	{"POST", "/api/pets", `{"name":"rex","tag":null,"age":2,"nıck":"x","Kind":1}`, []string{"Content-Type", "application/json"}},
}

func request(method, uri, body string, headers []string) *fasthttp.RequestCtx {
	ctx := chaintest.Ctx("http://gw"+uri, headers...)
	ctx.Request.Header.SetMethod(method)
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	return ctx
}

func run(c *chain.Chain, ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ex.Prepare(c)
	r := c.RunRequest(ctx, ex)
	ex.Reset()
	return r
}

// TestDoesNotAllocate: a valid request costs no allocation.
func TestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	c := chaintest.MustChain(t, policy(t, ""))
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	for _, r := range validRequests {
		ctx := request(r.method, r.uri, r.body, r.headers)
		if rej := run(c, ctx, ex); rej != nil {
			t.Fatalf("%s %s: %v", r.method, r.uri, rej)
		}
		if n := testing.AllocsPerRun(1000, func() { run(c, ctx, ex) }); n != 0 {
			t.Errorf("%s %s: %v allocations, want 0", r.method, r.uri, n)
		}
	}
}
