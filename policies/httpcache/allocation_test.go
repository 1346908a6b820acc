package httpcache

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestHitDoesNotAllocate: answering from the cache allocates nothing: the
// lookup, the Vary marker, the headers and body written, Age.
func TestHitDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"plain", []string{"Content-Type", "application/json", "Cache-Control", "max-age=60"}},
		{"vary", []string{"Content-Type", "application/json", "Vary", "Accept-Language"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, _, _ := cached(t, "- http-caching-flex: {httpCachingKey: \"#[attributes.requestUri]\"}\n")
			o := &origin{status: 200, body: `{"ok":true}`, headers: tc.headers}
			get(ch, o, "/api/x?a=1", "Accept-Language", "en")
			ctx := chaintest.Ctx("http://gw/api/x?a=1", "Accept-Language", "en")
			ex := chain.AcquireExchange()
			defer chain.ReleaseExchange(ex)
			hit := func() {
				ex.Prepare(ch)
				if rej := ch.RunRequest(ctx, ex); rej != chain.Answered {
					t.Fatalf("not a hit: %v", rej)
				}
				ch.RunResponse(ctx, ex)
				ex.Reset()
				ctx.Response.Reset()
			}
			for range 100 {
				hit()
			}
			if n := testing.AllocsPerRun(1000, hit); n != 0 {
				t.Errorf("a hit costs %.2f allocations, want 0", n)
			}
		})
	}
}

// TestBypassDoesNotAllocate: a request the cache does not take (here a
// POST) costs nothing either.
func TestBypassDoesNotAllocate(t *testing.T) {
	ch, _, _ := cached(t, "- http-caching: {}\n")
	ctx := chaintest.Ctx("http://gw/api/x")
	ctx.Request.Header.SetMethod("POST")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	if n := testing.AllocsPerRun(1000, func() {
		ex.Prepare(ch)
		ch.RunRequest(ctx, ex)
		ch.RunResponse(ctx, ex)
		ex.Reset()
	}); n != 0 {
		t.Errorf("a bypass costs %.2f allocations, want 0", n)
	}
}
