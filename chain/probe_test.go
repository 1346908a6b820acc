package chain_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
)

// probe is the policy of the compile and reuse tests. Its kinds, registered
// below under names of their own, differ in the phases they have. Every
// instance is recorded in made, in the order the registry made them, so
// that a test can count what was provisioned and closed even of instances
// that no set holds.
type probe struct {
	Tag string `yaml:"tag"`
	// After names a policy that must run before this one (Validate).
	After         string `yaml:"after"`
	FailProvision bool   `yaml:"failProvision"`
	FailClose     bool   `yaml:"failClose"`

	provisions, closes int
	// requests is state that a reload carries over with the instance.
	requests int
	reject   *chain.Rejection
}

func (p *probe) Validate(env *chain.Env) error {
	if p.After != "" && !env.HasBefore(p.After) {
		return fmt.Errorf("%s must run after %s", p.Tag, p.After)
	}
	return nil
}

func (p *probe) Provision(env *chain.Env) error {
	if p.FailProvision {
		return errors.New("provision fails on purpose")
	}
	p.provisions++
	p.reject = env.Reject(403, "probe_says_no", p.Tag+" says no")
	return nil
}

func (p *probe) Close() error {
	p.closes++
	if p.FailClose {
		return errors.New(p.Tag + ": close fails on purpose")
	}
	return nil
}

func (p *probe) record() *probe { return p }

// trace records a step on the response, where the test reads the order
// the steps ran in.
func trace(ctx *fasthttp.RequestCtx, step string) { ctx.Response.Header.Add("X-Trace", step) }

// probe-request has a request phase only.
type requestProbe struct {
	probe `yaml:",inline"`
}

func (p *requestProbe) HandleRequest(ctx *fasthttp.RequestCtx, _ *chain.Exchange) *chain.Rejection {
	p.requests++
	trace(ctx, p.Tag+".req")
	return nil
}

// probe-response has a response phase only.
type responseProbe struct {
	probe `yaml:",inline"`
}

func (p *responseProbe) HandleResponse(ctx *fasthttp.RequestCtx, _ *chain.Exchange) {
	trace(ctx, p.Tag+".resp")
}

// probe-both hands its tag from its request phase to its response phase
// in its slot of the exchange.
type bothProbe struct {
	probe `yaml:",inline"`
}

func (p *bothProbe) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ex.Slot().Buf = append(ex.Slot().Buf[:0], p.Tag...)
	trace(ctx, p.Tag+".req")
	return nil
}

func (p *bothProbe) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	trace(ctx, p.Tag+".resp(slot "+string(ex.Slot().Buf)+")")
}

// probe-body is probe-request that reads the request body.
type bodyProbe struct {
	requestProbe `yaml:",inline"`
}

func (*bodyProbe) ReadsRequestBody() bool { return true }

// probe-reject rejects every request.
type rejectProbe struct {
	probe `yaml:",inline"`
}

func (p *rejectProbe) HandleRequest(ctx *fasthttp.RequestCtx, _ *chain.Exchange) *chain.Rejection {
	trace(ctx, p.Tag+".req")
	return p.reject
}

// probe-creds is probe-request that declares the header X-<tag> and the
// query parameter <tag>_key as its credentials.
type credsProbe struct {
	requestProbe `yaml:",inline"`
}

func (p *credsProbe) Provision(env *chain.Env) error {
	if err := p.probe.Provision(env); err != nil {
		return err
	}
	_, err := env.Credentials([]string{"X-" + p.Tag}, []string{p.Tag + "_key"})
	return err
}

var made []*probe

func init() {
	for name, mk := range map[string]func() chain.Policy{
		"probe-none":     func() chain.Policy { return new(probe) },
		"probe-request":  func() chain.Policy { return new(requestProbe) },
		"probe-response": func() chain.Policy { return new(responseProbe) },
		"probe-both":     func() chain.Policy { return new(bothProbe) },
		"probe-body":     func() chain.Policy { return new(bodyProbe) },
		"probe-reject":   func() chain.Policy { return new(rejectProbe) },
		"probe-creds":    func() chain.Policy { return new(credsProbe) },
	} {
		chain.Register(chain.Registration{Name: name, New: recorded(mk)})
	}
	chain.Register(chain.Registration{Name: "probe-env", New: func() chain.Policy { return envProbe{} }})
	// probe-keyed's state depends on the methods of its route.
	chain.Register(chain.Registration{Name: "probe-keyed", New: recorded(func() chain.Policy { return new(requestProbe) }),
		KeyFrom: func(_ *config.Config, route *config.Route) string { return strings.Join(route.Methods, ",") }})
}

// onEnv, when set, is called with the Env of every probe-env validated.
var onEnv func(env *chain.Env)

// envProbe is probe-env, which reports the Env it is validated in.
type envProbe struct{}

func (envProbe) Validate(env *chain.Env) error {
	if onEnv != nil {
		onEnv(env)
	}
	return nil
}
func (envProbe) Provision(*chain.Env) error { return nil }
func (envProbe) Close() error               { return nil }

func recorded(mk func() chain.Policy) func() chain.Policy {
	return func() chain.Policy {
		p := mk()
		made = append(made, p.(interface{ record() *probe }).record())
		return p
	}
}

// probeAt returns the probe at position i of c.
func probeAt(t testing.TB, c *chain.Chain, i int) *probe {
	t.Helper()
	if i >= len(c.Policies) {
		t.Fatalf("route %s has %d policies, want more than %d", c.RouteID, len(c.Policies), i)
	}
	return c.Policies[i].Policy.(interface{ record() *probe }).record()
}

// route is one more entry of a Gateway document's routes list, on
// /<id>/*, with a policies list indented as under `policies:`.
func route(id, policies string) string {
	return fmt.Sprintf("    - id: %s\n      path: [\"/%s/*\"]\n      upstream:\n        url: \"http://127.0.0.1:1\"\n      policies:\n%s", id, id, policies)
}

var quiet = slog.New(slog.DiscardHandler)

// compileAll loads text and compiles its chains as the gateway does,
// carrying over from old (nil: none).
func compileAll(t testing.TB, text string, old *chain.Set) (*chain.Set, string, error) {
	t.Helper()
	cfg, path := chaintest.Load(t, text)
	set, err := chain.CompileAll(cfg, old, chain.Options{Provision: true, Logger: quiet})
	return set, path, err
}

func mustCompileAll(t testing.TB, text string, old *chain.Set) *chain.Set {
	t.Helper()
	set, _, err := compileAll(t, text, old)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set
}

// run passes a request through c as chaintest.Run does and returns the
// rejection and the steps that ran, in order.
func run(c *chain.Chain) (*chain.Rejection, string) {
	ctx := chaintest.Ctx("http://gw/api/x")
	rej := chaintest.Run(c, ctx)
	var steps []string
	for _, s := range ctx.Response.Header.PeekAll("X-Trace") {
		steps = append(steps, string(s))
	}
	return rej, strings.Join(steps, " ")
}

// madeSince returns the probes made since made had n entries.
func madeSince(n int) []*probe { return append([]*probe(nil), made[n:]...) }
