package proxy

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/flexgate/flexgate/config"
)

// BenchmarkProxyInMemory is a full round trip — client, gateway, upstream —
// over in-memory connections, so that what it measures is the gateway's
// own work rather than the kernel's.
func BenchmarkProxyInMemory(b *testing.B) {
	upLn := fasthttputil.NewInmemoryListener()
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"PRD-42","name":"widget","price":9.99}`)
	}}
	go func() { _ = upstream.Serve(upLn) }()
	defer upLn.Close()

	dir := b.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: bench}
spec:
  routes:
    - id: products
      path: ["/api/products/*"]
      methods: [GET]
      upstream: {url: "http://upstream.invalid:80"}
`), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		b.Fatal(err)
	}
	gwLn := fasthttputil.NewInmemoryListener()
	g, err := New(cfg, Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		listen: func(string) (net.Listener, error) { return gwLn, nil },
		dial:   func(string, time.Duration) (net.Conn, error) { return upLn.Dial() },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = g.Shutdown(b.Context()) }()

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		hc := &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return gwLn.Dial() }}
		req, resp := new(fasthttp.Request), new(fasthttp.Response)
		req.SetRequestURI("http://gateway/api/products/42")
		for pb.Next() {
			if err := hc.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode() != 200 {
				b.Fatalf("status %d", resp.StatusCode())
			}
		}
	})
}
