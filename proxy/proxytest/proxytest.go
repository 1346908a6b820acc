// Package proxytest starts real gateways and upstreams on 127.0.0.1 for
// end-to-end tests: real sockets, real config files, the same code paths as
// `flexgate run`.
package proxytest

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/all"
	"github.com/flexgate/flexgate/proxy"
)

// Gateway is a running gateway under test.
type Gateway struct {
	// GW is the gateway itself.
	GW *proxy.Gateway
	// URL is the base URL of the first listener ("http://127.0.0.1:port").
	URL string
	// URLs maps every listener's name to its base URL.
	URLs map[string]string
	// AdminURL is the base URL of the admin server.
	AdminURL string
	// Dir holds the config file; Reload rewrites it.
	Dir string
	// Logs collects the gateway's JSON log lines.
	Logs *LogBuffer
}

// Option adjusts the proxy.Options of Start.
type Option func(*proxy.Options)

// Start writes yamlText to a config file, loads it as `flexgate run` would,
// and serves it with every listener on 127.0.0.1:0. The gateway stops when
// the test ends.
func Start(t testing.TB, yamlText string, opts ...Option) *Gateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("config does not load:\n%v", err)
	}
	return StartConfig(t, cfg, dir, opts...)
}

// StartConfig serves an already loaded config.
func StartConfig(t testing.TB, cfg *config.Config, dir string, opts ...Option) *Gateway {
	t.Helper()
	logs := &LogBuffer{}
	o := proxy.Options{
		Listen:       "127.0.0.1:0",
		AdminAddr:    "127.0.0.1:0",
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ListenerAddr: func(config.Listener) string { return "127.0.0.1:0" },
	}
	for _, f := range opts {
		f(&o)
	}
	gw, err := proxy.New(cfg, o)
	if err != nil {
		t.Fatalf("gateway does not start:\n%v", err)
	}
	if err := gw.Start(); err != nil {
		t.Fatalf("gateway does not listen: %v", err)
	}
	g := &Gateway{GW: gw, Dir: dir, Logs: logs, URLs: map[string]string{}}
	addrs := gw.Addrs()
	specs := cfg.Listeners
	if len(specs) == 0 {
		specs = []config.Listener{{Name: "http", Protocol: "HTTP"}}
	}
	for i, l := range specs {
		scheme := "http"
		if l.Protocol == "HTTPS" {
			scheme = "https"
		}
		u := scheme + "://" + addrs[l.Name]
		g.URLs[l.Name] = u
		if i == 0 {
			g.URL = u
		}
	}
	g.AdminURL = "http://" + addrs["admin"]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	return g
}

// Reload writes yamlText over the config file and applies it, as a file
// change or SIGHUP would. It returns the load or compile error, if any.
func (g *Gateway) Reload(t testing.TB, yamlText string) error {
	t.Helper()
	path := filepath.Join(g.Dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		return err
	}
	return g.GW.Apply(cfg)
}

// Client returns a fasthttp client for the gateway that trusts any
// certificate (tests use self-signed ones).
func Client() *fasthttp.Client {
	return &fasthttp.Client{
		TLSConfig:                &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test certificates
		NoDefaultUserAgentHeader: true,
		ReadTimeout:              10 * time.Second,
		WriteTimeout:             10 * time.Second,
	}
}

// Do sends one request and returns the response; the caller releases it
// with fasthttp.ReleaseResponse.
func Do(t testing.TB, method, url string, headers map[string]string, body []byte) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	req.UseHostHeader = true
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Header.SetHost(v)
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.SetBody(body)
	}
	resp := fasthttp.AcquireResponse()
	if err := defaultClient.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

var defaultClient = Client()

// LogBuffer collects log output; safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Recorded is what an Upstream received in one request.
type Recorded struct {
	Method string
	URI    string
	Host   string
	Header map[string]string
	Body   []byte
}

// Upstream is a real HTTP server on 127.0.0.1 that records every request
// and answers with Handler (200 and a small JSON body by default).
type Upstream struct {
	// Addr is host:port; URL is "http://" + Addr.
	Addr, URL string
	// Handler answers requests after they are recorded; replace it before
	// traffic starts.
	Handler fasthttp.RequestHandler
	// Record keeps every request for Requests and Last (default true);
	// benchmarks turn it off.
	Record bool
	Count  atomic.Int64

	mu   sync.Mutex
	reqs []Recorded
	srv  *fasthttp.Server
	ln   net.Listener
}

// StartUpstream starts a recording upstream that stops when the test ends.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{Addr: ln.Addr().String(), ln: ln, Record: true}
	u.URL = "http://" + u.Addr
	u.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"ok":true}`)
	}
	u.srv = &fasthttp.Server{Handler: u.handle, StreamRequestBody: true, MaxRequestBodySize: 1 << 30, Logger: quietLogger{},
		ReadBufferSize: 128 << 10}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() { _ = u.srv.Shutdown() })
	return u
}

func (u *Upstream) handle(ctx *fasthttp.RequestCtx) {
	u.Count.Add(1)
	if !u.Record {
		u.Handler(ctx)
		return
	}
	r := Recorded{Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Host: string(ctx.Host()),
		Header: map[string]string{}}
	for k, v := range ctx.Request.Header.All() {
		r.Header[string(k)] = string(v)
	}
	if ctx.Request.Header.ContentLength() != 0 && ctx.Request.Header.ContentLength() < 1<<20 {
		r.Body = append([]byte(nil), ctx.Request.Body()...)
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, r)
	u.mu.Unlock()
	u.Handler(ctx)
}

// Requests returns what the upstream has received so far.
func (u *Upstream) Requests() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Recorded(nil), u.reqs...)
}

// Last returns the most recent request; it fails the test when there was
// none.
func (u *Upstream) Last(t testing.TB) Recorded {
	t.Helper()
	r := u.Requests()
	if len(r) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r[len(r)-1]
}

// Discard is an io.Writer that drops everything.
var Discard io.Writer = io.Discard

// quietLogger drops fasthttp's own log lines in tests.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// SteadyAllocs is testing.AllocsPerRun for a process serving over real
// sockets once its pools are warm: the least of three measures of runs
// calls of f. A pooled connection rests 2 ms after an answer, so a burst
// faster than any before (a busy machine's CPU coming back) dials a
// connection or two, and a garbage collection empties sync.Pools; an
// allocation per request shows in every measure.
func SteadyAllocs(runs int, f func()) float64 {
	least := math.Inf(1)
	for range 3 {
		least = min(least, testing.AllocsPerRun(runs, f))
		if least < 0.5 {
			break
		}
	}
	return least
}
