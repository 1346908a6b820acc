package chain

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// orderProbe records its tag in a response header when its steps run.
type orderProbe struct {
	Tag string `yaml:"tag"`
}

func (p *orderProbe) Validate(*Env) error  { return nil }
func (p *orderProbe) Provision(*Env) error { return nil }
func (p *orderProbe) Close() error         { return nil }
func (p *orderProbe) HandleRequest(ctx *fasthttp.RequestCtx, _ *Exchange) *Rejection {
	ctx.Request.Header.Add("X-Order", p.Tag)
	return nil
}
func (p *orderProbe) HandleResponse(ctx *fasthttp.RequestCtx, _ *Exchange) {
	ctx.Response.Header.Add("X-Order", p.Tag)
}

func init() {
	Register(Registration{Name: "test-order-probe", New: func() Policy { return new(orderProbe) }})
}

// TestReverseResponse: a route that asks for it runs its response steps
// last to first (Flex Gateway's order), its request steps still first to
// last; other routes run both in the order written.
func TestReverseResponse(t *testing.T) {
	probe := func(tag string) config.PolicySpec {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("tag: "+tag), &n); err != nil {
			t.Fatal(err)
		}
		return config.PolicySpec{Name: "test-order-probe", Params: n.Content[0]}
	}
	for _, reverse := range []bool{false, true} {
		route := &config.Route{ID: "r", ReverseResponse: reverse,
			Policies: []config.PolicySpec{probe("a"), probe("b"), probe("c")}}
		c, err := Compile(&config.Config{Routes: []config.Route{*route}}, route, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ex := &Exchange{}
		if r := c.RunRequest(&ctx, ex); r != nil {
			t.Fatal(r)
		}
		c.RunResponse(&ctx, ex)
		var req, resp []string
		for _, v := range ctx.Request.Header.PeekAll("X-Order") {
			req = append(req, string(v))
		}
		for _, v := range ctx.Response.Header.PeekAll("X-Order") {
			resp = append(resp, string(v))
		}
		wantResp := "a,b,c"
		if reverse {
			wantResp = "c,b,a"
		}
		if strings.Join(req, ",") != "a,b,c" || strings.Join(resp, ",") != wantResp {
			t.Errorf("reverse=%v: request %v, response %v; want a,b,c and %s", reverse, req, resp, wantResp)
		}
	}
}

// closeCounter counts how often its instances are provisioned and closed.
type closeCounter struct {
	Tag string `yaml:"tag"`
	n   *counts
}

type counts struct{ provisioned, closed int }

var scopeCounts = map[string]*counts{}

func (p *closeCounter) Validate(*Env) error { return nil }
func (p *closeCounter) Provision(*Env) error {
	if scopeCounts[p.Tag] == nil {
		scopeCounts[p.Tag] = &counts{}
	}
	p.n = scopeCounts[p.Tag]
	p.n.provisioned++
	return nil
}
func (p *closeCounter) Close() error {
	p.n.closed++
	return nil
}

func init() {
	Register(Registration{Name: "test-close-counter", New: func() Policy { return new(closeCounter) }})
}

// TestPolicyScope: routes of one PolicyScope run one instance of each
// policy they have alike (a Flex ApiInstance's budget is the API's);
// other routes their own. A shared instance is closed once, and carried
// over a reload whole.
func TestPolicyScope(t *testing.T) {
	spec := func(tag string) config.PolicySpec {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("tag: "+tag), &n); err != nil {
			t.Fatal(err)
		}
		return config.PolicySpec{Name: "test-close-counter", Params: n.Content[0]}
	}
	cfg := &config.Config{Routes: []config.Route{
		{ID: "a1", PolicyScope: "api-a", Policies: []config.PolicySpec{spec("a")}},
		{ID: "a2", PolicyScope: "api-a", Policies: []config.PolicySpec{spec("a")}},
		{ID: "b", Policies: []config.PolicySpec{spec("b")}},
		{ID: "c", Policies: []config.PolicySpec{spec("b")}},
	}}
	set, err := CompileAll(cfg, nil, Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	if set.Chains[0].Policies[0].Policy != set.Chains[1].Policies[0].Policy {
		t.Error("the routes of a scope do not share their policy")
	}
	if set.Chains[2].Policies[0].Policy == set.Chains[3].Policies[0].Policy {
		t.Error("routes without a scope share a policy")
	}
	if a, b := scopeCounts["a"], scopeCounts["b"]; a.provisioned != 1 || b.provisioned != 2 {
		t.Errorf("provisioned: a %d, b %d; want 1 and 2", a.provisioned, b.provisioned)
	}
	next, err := CompileAll(cfg, set, Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	if next.Chains[1].Policies[0].Policy != set.Chains[0].Policies[0].Policy || scopeCounts["a"].provisioned != 1 {
		t.Error("the shared instance is not carried over the reload")
	}
	if err := set.Retire(next); err != nil {
		t.Fatal(err)
	}
	if err := next.Retire(nil); err != nil {
		t.Fatal(err)
	}
	if a := scopeCounts["a"]; a.closed != 1 {
		t.Errorf("the shared instance was closed %d times, want 1", a.closed)
	}
}

// firstProbe is a policy registered to run first, like CORS; it records
// what ran before it.
type firstProbe struct {
	Tag    string `yaml:"tag"`
	before []string
}

func (p *firstProbe) Validate(env *Env) error {
	p.before = env.Before
	return nil
}
func (p *firstProbe) Provision(*Env) error { return nil }
func (p *firstProbe) Close() error         { return nil }
func (p *firstProbe) HandleRequest(ctx *fasthttp.RequestCtx, _ *Exchange) *Rejection {
	ctx.Request.Header.Add("X-Order", p.Tag)
	return nil
}
func (p *firstProbe) HandleResponse(ctx *fasthttp.RequestCtx, _ *Exchange) {
	ctx.Response.Header.Add("X-Order", p.Tag)
}

func init() {
	Register(Registration{Name: "test-first-probe", New: func() Policy { return new(firstProbe) }, First: true})
}

// TestFirst: a policy registered First runs before the others wherever
// it is written, on every kind of route; two of them keep their order;
// a reversed response runs it last. Env.Before and Env.Index follow the
// order the policies run in.
func TestFirst(t *testing.T) {
	spec := func(name, tag string) config.PolicySpec {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("tag: "+tag), &n); err != nil {
			t.Fatal(err)
		}
		return config.PolicySpec{Name: name, Params: n.Content[0]}
	}
	for _, reverse := range []bool{false, true} {
		route := &config.Route{ID: "r", ReverseResponse: reverse, Policies: []config.PolicySpec{
			spec("test-order-probe", "a"), spec("test-first-probe", "f1"), spec("test-order-probe", "b"), spec("test-first-probe", "f2")}}
		c, err := Compile(&config.Config{Routes: []config.Route{*route}}, route, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ex := &Exchange{}
		ex.Prepare(c)
		if r := c.RunRequest(&ctx, ex); r != nil {
			t.Fatal(r)
		}
		c.RunResponse(&ctx, ex)
		var req, resp []string
		for _, v := range ctx.Request.Header.PeekAll("X-Order") {
			req = append(req, string(v))
		}
		for _, v := range ctx.Response.Header.PeekAll("X-Order") {
			resp = append(resp, string(v))
		}
		wantResp := "f1,f2,a,b"
		if reverse {
			wantResp = "b,a,f2,f1"
		}
		if strings.Join(req, ",") != "f1,f2,a,b" || strings.Join(resp, ",") != wantResp {
			t.Errorf("reverse=%v: request %v, response %v; want f1,f2,a,b and %s", reverse, req, resp, wantResp)
		}
		if b := c.Policies[1].Policy.(*firstProbe).before; strings.Join(b, ",") != "test-first-probe" {
			t.Errorf("the second first-runner sees %v before it", b)
		}
		if c.Policies[0].Policy.(*firstProbe).Tag != "f1" {
			t.Errorf("the chain's first instance is not f1")
		}
	}
}

// scopeProbe records the Scope it was provisioned with.
type scopeProbe struct {
	Tag   string `yaml:"tag"`
	scope string
}

func (p *scopeProbe) Validate(*Env) error { return nil }
func (p *scopeProbe) Provision(env *Env) error {
	p.scope = env.Scope
	return nil
}
func (p *scopeProbe) Close() error { return nil }

func init() {
	Register(Registration{Name: "test-scope-probe", New: func() Policy { return new(scopeProbe) }})
}

// TestScopeNamesWhatAnInstanceServes: an instance shared by the routes of
// a PolicyScope is named by the scope, whichever of its routes comes
// first, and never like a route that has the scope's name; a route of its
// own is named by its ID (what names a rate limit's budget in Redis).
func TestScopeNamesWhatAnInstanceServes(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("tag: x"), &n); err != nil {
		t.Fatal(err)
	}
	spec := config.PolicySpec{Name: "test-scope-probe", Params: n.Content[0]}
	scopes := func(routes ...config.Route) map[string]string {
		t.Helper()
		set, err := CompileAll(&config.Config{Routes: routes}, nil, Options{Provision: true})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range set.Chains {
			out[c.RouteID] = c.Policies[0].Policy.(*scopeProbe).scope
		}
		return out
	}
	a1 := config.Route{ID: "a1", PolicyScope: "api", Policies: []config.PolicySpec{spec}}
	a2 := config.Route{ID: "a2", PolicyScope: "api", Policies: []config.PolicySpec{spec}}
	a3 := config.Route{ID: "a3", PolicyScope: "api", Policies: []config.PolicySpec{spec}}
	alone := config.Route{ID: "api", Policies: []config.PolicySpec{spec}}
	got := scopes(a1, a2, alone)
	if got["a1"] != got["a2"] || got["a1"] == "" {
		t.Errorf("the routes of a scope: %q and %q", got["a1"], got["a2"])
	}
	if got["api"] != "api" || got["a1"] == got["api"] {
		t.Errorf("a route of its own: %q; the scope of the same name: %q", got["api"], got["a1"])
	}
	// Routes of the scope reordered, added, removed.
	for _, routes := range [][]config.Route{{a2, a1}, {a3, a2}, {a2}} {
		if s := scopes(routes...)[routes[0].ID]; s != got["a1"] {
			t.Errorf("the scope's first route %s: the scope is %q, was %q", routes[0].ID, s, got["a1"])
		}
	}
}
