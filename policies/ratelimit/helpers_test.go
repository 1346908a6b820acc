package ratelimit

import (
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

// gateway wraps a route's policies list (indented as under `policies:`) in
// a complete Gateway document.
func gateway(policies string) string {
	return `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: test
spec:
  routes:
    - id: r
      path: ["/api/*"]
      upstream:
        url: "http://127.0.0.1:1"
      policies:
` + policies
}

// compileYAML loads text as the file gw.yaml and compiles its chains.
func compileYAML(t testing.TB, text string) (*chain.Set, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err == nil {
		t.Cleanup(func() { _ = set.Retire(nil) })
	}
	return set, path, err
}

func mustChain(t *testing.T, policies string) *chain.Chain {
	t.Helper()
	set, _, err := compileYAML(t, gateway(policies))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set.Chains[0]
}

// newCtx returns a request from 10.0.0.7 with the given headers (name,
// value pairs).
func newCtx(uri string, hdrs ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.Header.Add(hdrs[i], hdrs[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}, nil)
	return ctx
}

// run passes ctx through c's request steps, then (as the gateway does for
// every response) its response steps.
func run(c *chain.Chain, ctx *fasthttp.RequestCtx) *chain.Rejection {
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	rej := c.RunRequest(ctx, ex)
	c.RunResponse(ctx, ex)
	return rej
}

// fakeClock is a clock that moves only when a test says so.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// limiter returns the i-th policy of c as a Limiter running on clk.
func limiter(t testing.TB, c *chain.Chain, i int, clk *fakeClock) *Limiter {
	t.Helper()
	l, ok := c.Policies[i].Policy.(*Limiter)
	if !ok {
		t.Fatalf("policy %d is %T, not *Limiter", i, c.Policies[i].Policy)
	}
	l.clock = clk.now
	if ms, ok := l.store.(*MemStore); ok {
		ms.clock = clk.now
	}
	return l
}
