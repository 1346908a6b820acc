// Package chaintest compiles policies from inline YAML and runs requests
// through them, for the tests of policy packages: the same config loader
// and chain compiler as the gateway, without sockets.
package chaintest

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/proxy/router"
)

// PoliciesLine is the line of the document Gateway and Doc build on which
// the route's policies list begins; the list is indented by 8 columns.
const PoliciesLine = 12

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
	return Doc{Policies: policies}.String()
}

// Doc is a Gateway document with one route. Its policies list begins on
// PoliciesLine, indented by 8 columns, whatever the other fields hold, so
// that a test can name the file positions of its policies' errors.
type Doc struct {
	// RouteID is the route's id; "r" when empty.
	RouteID string
	// Path is the route's path pattern; "/api/*" when empty.
	Path string
	// Methods the route allows; nil: every method.
	Methods []string
	// Clients are the entries of spec.clients, each a YAML flow mapping
	// such as `{id: app-1, secret: s3cret}`; nil: no client registry.
	Clients []string
	// Policies is the route's policies list, written at any indentation
	// (the common indentation of its lines is replaced by 8 columns).
	// Line n of it is line PoliciesLine+n-1 of the document.
	Policies string
}

// String renders the document.
func (d Doc) String() string {
	id, path := d.RouteID, d.Path
	if id == "" {
		id = "r"
	}
	if path == "" {
		path = "/api/*"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: test
spec:
  routes:
    - id: %s
      path: [%q]
      upstream:
        url: "http://127.0.0.1:1"
      policies:
`, id, path)
	b.WriteString(indent(d.Policies, 8))
	if d.Methods != nil {
		fmt.Fprintf(&b, "      methods: [%s]\n", strings.Join(d.Methods, ", "))
	}
	if d.Clients != nil {
		b.WriteString("  clients:\n")
		for _, c := range d.Clients {
			b.WriteString("    - " + c + "\n")
		}
	}
	return b.String()
}

// indent replaces the common indentation of text's non-blank lines by n
// spaces and ends it with a newline. Blank lines stay, so that line k of
// text stays line k of the result.
func indent(text string, n int) string {
	if text == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if k := len(l) - len(strings.TrimLeft(l, " ")); common < 0 || k < common {
			common = k
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString(strings.Repeat(" ", n) + l[common:])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// CompileFile loads the config file at path, as the gateway does (its
// relative file names against its directory), and provisions its chains,
// retired when the test ends.
func CompileFile(t testing.TB, path string) *chain.Set {
	t.Helper()
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Retire(nil) })
	return set
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

// Options steer CompileWith.
type Options struct {
	// ValidateOnly decodes and validates the policies without
	// provisioning them, as `flexgate validate` does.
	ValidateOnly bool
	// Metrics is the set the policies register their metrics in; nil: a
	// set of their own.
	Metrics *metrics.Set
	// Logger receives the policies' events; nil: slog.Default().
	Logger *slog.Logger
	// Old is the set a reload replaces (nil: none). Its instances whose
	// route, name and parameters are unchanged are carried over; once the
	// new set has compiled, Old is retired as the gateway retires it,
	// closing what the new set did not take, and must not be used again.
	// When the new set does not compile, Old is left as it was. With
	// ValidateOnly nothing is retired or closed.
	Old *chain.Set
}

// retired holds the sets that a reload through CompileWith has retired, so
// that the end of the test does not close their instances a second time.
var retired sync.Map

// Compile loads text as the file gw.yaml, compiles and provisions its
// chains, and returns them with the file's path (for error positions).
// The chains are closed when the test ends.
func Compile(t testing.TB, text string) (*chain.Set, string, error) {
	t.Helper()
	return CompileWith(t, text, Options{})
}

// CompileWith is Compile with options. Every instance it provisions is
// closed exactly once: by the reload that retires its set, or when the
// test ends.
func CompileWith(t testing.TB, text string, opts Options) (*chain.Set, string, error) {
	t.Helper()
	if opts.Old != nil {
		if _, gone := retired.Load(opts.Old); gone {
			t.Fatal("chaintest: Options.Old was already replaced by another reload")
		}
	}
	cfg, path := Load(t, text)
	set, err := chain.CompileAll(cfg, opts.Old, chain.Options{Provision: !opts.ValidateOnly, Metrics: opts.Metrics, Logger: opts.Logger})
	if err != nil || opts.ValidateOnly {
		return set, path, err
	}
	if opts.Old != nil {
		retired.Store(opts.Old, true)
		if err := opts.Old.Retire(set); err != nil {
			t.Errorf("retiring the replaced set: %v", err)
		}
	}
	t.Cleanup(func() {
		if _, gone := retired.LoadAndDelete(set); !gone {
			_ = set.Retire(nil)
		}
	})
	return set, path, err
}

// CompileRoute compiles doc with CompileWith and returns its route's chain
// (nil on error) and the file's path.
func CompileRoute(t testing.TB, doc Doc, opts Options) (*chain.Chain, string, error) {
	t.Helper()
	set, path, err := CompileWith(t, doc.String(), opts)
	if err != nil {
		return nil, path, err
	}
	return set.Chains[0], path, nil
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
// every response but a policy's own answer, see chain.Rejection.Answer)
// its response steps, and returns the rejection, if any. Policies limited
// by rules run when ctx's request meets them, as in the gateway (see
// Request).
func Run(c *chain.Chain, ctx *fasthttp.RequestCtx) *chain.Rejection {
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	if len(c.Conds) > 0 {
		c.Select(ex, Request(ctx, ""))
	}
	rej := c.RunRequest(ctx, ex)
	if rej == nil || !rej.Answer {
		c.RunResponse(ctx, ex)
	}
	return rej
}
