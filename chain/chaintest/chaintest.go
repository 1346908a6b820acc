// Package chaintest compiles policies from inline YAML and runs requests
// through them, for the tests of policy packages: the same config loader
// and chain compiler as the gateway, without sockets.
package chaintest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/proxy/router"
)

// Request is what the gateway's conditions read of ctx's request, received
// on the named listener: its method, its path normalised as the gateway
// routes it, and its host in lower case without the port.
func Request(ctx *fasthttp.RequestCtx, listener string) *match.Request {
	return &match.Request{
		Listener: listener,
		Method:   ctx.Method(),
		Path:     router.Normalize(nil, ctx.Request.URI().PathOriginal()),
		Host:     match.AppendHost(nil, ctx.Request.Host()),
		Header:   &ctx.Request.Header,
	}
}

// Gateway wraps a route's policies list (indented as under `policies:`)
// in a complete Gateway document with one route, "r", on /api/*.
func Gateway(policies string) string {
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

// Load loads text as the file gw.yaml and returns the config and the
// file's path (for error positions), failing the test if it does not load.
func Load(t testing.TB, text string) (*config.Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg, path
}

// Compile loads text as the file gw.yaml, compiles and provisions its
// chains, and returns them with the file's path (for error positions).
// The chains are closed when the test ends.
func Compile(t testing.TB, text string) (*chain.Set, string, error) {
	t.Helper()
	cfg, path := Load(t, text)
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err == nil {
		t.Cleanup(func() { _ = set.Retire(nil) })
	}
	return set, path, err
}

// MustChain compiles the policies of Gateway(policies) and returns the
// route's chain, failing the test on any error.
func MustChain(t testing.TB, policies string) *chain.Chain {
	t.Helper()
	set, _, err := Compile(t, Gateway(policies))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set.Chains[0]
}

// Ctx returns a request for uri from 10.0.0.7 with the given headers
// (name, value pairs).
func Ctx(uri string, headers ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}, nil)
	return ctx
}

// Run passes ctx through c's request steps, then (as the gateway does for
// every response) its response steps, and returns the rejection, if any.
// Policies limited by rules run when ctx's request meets them, as in the
// gateway (see Request).
func Run(c *chain.Chain, ctx *fasthttp.RequestCtx) *chain.Rejection {
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	if len(c.Conds) > 0 {
		c.Select(ex, Request(ctx, ""))
	}
	rej := c.RunRequest(ctx, ex)
	c.RunResponse(ctx, ex)
	return rej
}
