package all_test

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// seedRequest is a keep-alive client sending the seed route a request that
// passes all six steps.
type seedRequest struct {
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func newSeedRequest(s *seedGateway) *seedRequest {
	addr := s.gw.URL[len("http://"):]
	r := &seedRequest{hc: &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 5 * time.Second},
		req: new(fasthttp.Request), resp: new(fasthttp.Response)}
	r.req.SetRequestURI("http://" + addr + "/api/products/PRD-42?productId=PRD-42&quantity=2")
	r.req.Header.Set("client_id", "shop-app")
	r.req.Header.Set("client_secret", "shop-secret")
	r.req.Header.Set("Authorization", "Bearer good-token")
	r.req.Header.Set("X-Internal-Foo", "internal")
	return r
}

func (r *seedRequest) do(tb testing.TB) {
	if err := r.hc.Do(r.req, r.resp); err != nil {
		tb.Fatal(err)
	}
	if r.resp.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", r.resp.StatusCode(), r.resp.Body())
	}
}

// TestSeedChainDoesNotAllocate sends requests through the seed's whole
// chain — rate limit, schema validation of the query, client id, cached
// token introspection, header removal and setting, response headers — and
// counts every allocation in the process.
func TestSeedChainDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	s := startSeed(t, 50_000_000)
	s.up.Record = false
	r := newSeedRequest(s)
	for i := 0; i < 200; i++ {
		r.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { r.do(t) }); allocs >= 0.5 {
		t.Fatalf("a request through the seed chain costs %.2f allocations, want 0", allocs)
	}
}

// BenchmarkSeedChain is a full round trip through the seed's chain.
func BenchmarkSeedChain(b *testing.B) {
	s := startSeed(b, 50_000_000)
	s.up.Record = false
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newSeedRequest(s)
		for pb.Next() {
			r.do(b)
		}
	})
}

// TestRejectionDoesNotAllocate floods the seed route past its rate limit:
// a 429 storm must cost no more than passing requests do.
func TestRejectionDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	s := startSeed(t, 1)
	s.up.Record = false
	r := newSeedRequest(s)
	r.do(t) // the one request the limit allows
	reject := func() {
		if err := r.hc.Do(r.req, r.resp); err != nil {
			t.Fatal(err)
		}
		if r.resp.StatusCode() != 429 {
			t.Fatalf("status %d, want 429", r.resp.StatusCode())
		}
	}
	for i := 0; i < 200; i++ {
		reject()
	}
	if allocs := proxytest.SteadyAllocs(500, reject); allocs >= 0.5 {
		t.Fatalf("a rate-limited request costs %.2f allocations, want 0", allocs)
	}
}
