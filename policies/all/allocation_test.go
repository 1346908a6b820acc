package all_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
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

// seedExtras are cors and spec-validation for the seed's route: its
// requests as an OpenAPI operation.
func seedExtras(tb testing.TB) []config.PolicySpec {
	tb.Helper()
	var specs []config.PolicySpec
	for _, p := range []struct{ name, params string }{
		{"cors", `{origins: ["https://shop.example.com"], headers: [client_id, client_secret, authorization], credentials: true}`},
		{"spec-validation", `spec: |
  openapi: 3.0.3
  info: {title: products, version: "1"}
  paths:
    /api/products/{id}:
      get:
        parameters:
          - {name: id, in: path, required: true, schema: {type: string, pattern: "^PRD-[0-9]+$"}}
          - {name: productId, in: query, required: true, schema: {type: string}}
          - {name: quantity, in: query, required: true, schema: {type: integer, minimum: 1}}
          - {name: client_id, in: header, required: true, schema: {type: string, minLength: 1}}
        responses: {"200": {description: the product}}
`},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(p.params), &n); err != nil {
			tb.Fatal(err)
		}
		specs = append(specs, config.PolicySpec{Name: p.name, Params: n.Content[0], Pos: config.Pos{File: "extra.yaml", Line: 1, Col: 1}})
	}
	return specs
}

// TestSeedChainWithCORSAndSpecDoesNotAllocate: the seed's chain with cors
// and spec-validation added allocates nothing for a cross-origin request
// that passes every step, nor for a preflight the gateway answers.
func TestSeedChainWithCORSAndSpecDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	s := startSeed(t, 50_000_000, seedExtras(t)...)
	s.up.Record = false
	r := newSeedRequest(s)
	r.req.Header.Set("Origin", "https://shop.example.com")
	r.do(t)
	if got := string(r.resp.Header.Peek("Access-Control-Allow-Origin")); got != "https://shop.example.com" {
		t.Fatalf("no CORS headers: %s", r.resp.Header.String())
	}
	for i := 0; i < 200; i++ {
		r.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { r.do(t) }); allocs >= 0.5 {
		t.Errorf("a request through the seed chain with cors and spec-validation costs %.2f allocations, want 0", allocs)
	}
	// The preflight as a browser sends it: OPTIONS without a body or a
	// Content-Length. (fasthttp's client would add Content-Length: 0, and
	// fasthttp's server allocates to discard such a declared empty body.)
	conn, err := net.Dial("tcp", s.gw.URL[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := []byte("OPTIONS /api/products/PRD-42?productId=PRD-42&quantity=2 HTTP/1.1\r\nHost: gw\r\n" +
		"Origin: https://shop.example.com\r\nAccess-Control-Request-Method: GET\r\n" +
		"Access-Control-Request-Headers: client_id,client_secret,authorization\r\n\r\n")
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	preflight := func() {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(head); err != nil {
			t.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 204 || resp.ConnectionClose() {
			t.Fatalf("preflight: %d %s", resp.StatusCode(), resp.Header.String())
		}
	}
	for i := 0; i < 200; i++ {
		preflight()
	}
	if allocs := proxytest.SteadyAllocs(500, preflight); allocs >= 0.5 {
		t.Errorf("a preflight costs %.2f allocations, want 0", allocs)
	}
	bad := newSeedRequest(s)
	bad.req.SetRequestURI(string(bad.req.URI().FullURI()[:len(bad.req.URI().FullURI())-len("PRD-42?productId=PRD-42&quantity=2")]) + "42?productId=PRD-42&quantity=2")
	if err := bad.hc.Do(bad.req, bad.resp); err != nil || bad.resp.StatusCode() != 400 ||
		string(bad.resp.Header.Peek("X-Flexgate-Policy")) != "spec-validation" {
		t.Errorf("a path off the spec: %v %d %s", err, bad.resp.StatusCode(), bad.resp.Body())
	}
}
