package chain_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestCompileStepsInOrder: a route's policies become flat request and
// response steps in the order written; a policy with no phase has none,
// and each step finds its own policy's slot of the exchange.
func TestCompileStepsInOrder(t *testing.T) {
	set := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: a}
        - probe-none: {tag: b}
        - probe-response: {tag: c}
        - probe-both: {tag: d}
        - probe-request: {tag: e}
`), nil)
	defer set.Retire(nil)
	c := set.Chains[0]
	if c.RouteID != "r" {
		t.Errorf("RouteID = %q, want r", c.RouteID)
	}
	var names []string
	for _, inst := range c.Policies {
		names = append(names, inst.Name)
	}
	if got := strings.Join(names, " "); got != "probe-request probe-none probe-response probe-both probe-request" {
		t.Errorf("policies %s, want them as written", got)
	}
	var req, resp []int
	for _, s := range c.Request {
		req = append(req, s.Index)
	}
	for _, s := range c.Response {
		resp = append(resp, s.Index)
	}
	if !slices.Equal(req, []int{0, 3, 4}) || !slices.Equal(resp, []int{2, 3}) || c.HeadSteps != 3 {
		t.Errorf("request steps of policies %v, response steps of %v, %d head steps; want [0 3 4], [2 3], 3", req, resp, c.HeadSteps)
	}
	if rej, steps := run(c); rej != nil || steps != "a.req d.req e.req c.resp d.resp(slot d)" {
		t.Errorf("ran %q (rejection %v), want a.req d.req e.req c.resp d.resp(slot d)", steps, rej)
	}
}

// TestCompileHeadSteps: the request steps before the first policy that
// reads the body are the head, which runs while a client waits for its
// 100 Continue; head and tail together run what RunRequest runs.
func TestCompileHeadSteps(t *testing.T) {
	f := func(policies string, wantHead int, wantHeadRun, wantTailRun string) {
		t.Helper()
		set := mustCompileAll(t, chaintest.Gateway(policies), nil)
		defer set.Retire(nil)
		c := set.Chains[0]
		if c.HeadSteps != wantHead {
			t.Errorf("%s: %d head steps, want %d", policies, c.HeadSteps, wantHead)
		}
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		ex.Prepare(c)
		c.RunRequestHead(ctx, ex)
		head := string(ctx.Response.Header.Peek("X-Trace"))
		ctx.Response.Header.Del("X-Trace")
		c.RunRequestTail(ctx, ex)
		var tail []string
		for _, s := range ctx.Response.Header.PeekAll("X-Trace") {
			tail = append(tail, string(s))
		}
		if head != wantHeadRun || strings.Join(tail, " ") != wantTailRun {
			t.Errorf("%s: head ran %q, tail %q; want %q, %q", policies, head, tail, wantHeadRun, wantTailRun)
		}
	}
	f("        - probe-request: {tag: a}\n        - probe-body: {tag: b}\n        - probe-request: {tag: c}\n", 1, "a.req", "b.req c.req")
	f("        - probe-none: {tag: a}\n        - probe-body: {tag: b}\n        - probe-request: {tag: c}\n", 0, "", "b.req c.req")
	f("        - probe-response: {tag: a}\n        - probe-request: {tag: b}\n", 1, "b.req", "")
	f("        - probe-body: {tag: a}\n", 0, "", "a.req")
}

// TestCompileRejectionStopsTheRequestSteps: a rejection ends the request
// steps, and every response step runs all the same.
func TestCompileRejectionStopsTheRequestSteps(t *testing.T) {
	set := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: a}
        - probe-both: {tag: b}
        - probe-reject: {tag: no}
        - probe-request: {tag: c}
        - probe-response: {tag: d}
`), nil)
	defer set.Retire(nil)
	rej, steps := run(set.Chains[0])
	if rej == nil || rej.Status != 403 || rej.Reason != "probe_says_no" || rej.Policy != "probe-reject" {
		t.Errorf("rejection %+v, want probe-reject's 403", rej)
	}
	if steps != "a.req b.req no.req b.resp(slot b) d.resp" {
		t.Errorf("ran %q, want a.req b.req no.req b.resp(slot b) d.resp", steps)
	}
}

// TestCompileReportsEveryError: the errors of every policy of every route
// come back together, each at its place; nothing provisioned before an
// error stays open.
func TestCompileReportsEveryError(t *testing.T) {
	start := len(made)
	// The policies list of route r begins on line 12, column 9; route
	// other's on line 22.
	_, path, err := compileAll(t, chaintest.Gateway(`        - probe-request: {tag: fine}
        - probe-nope
        - probe-request: {tag: x, colour: red}
        - probe-request: {tag: y, after: probe-none}
        - probe-response: {tag: fine-too}
`)+route("other", "        - probe-both: {tag: z, after: probe-reject}\n"), nil)
	if err == nil {
		t.Fatal("compiled")
	}
	for _, want := range []string{
		path + `:13:11: route "r": unknown policy "probe-nope"; known policies: `,
		path + `:14:35: probe-request: unknown parameter "colour"; known parameters: after, failClose, failProvision, tag`,
		path + ":15:11: probe-request: y must run after probe-none",
		path + ":22:11: probe-both: z must run after probe-reject",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
	if !strings.Contains(err.Error(), "probe-keyed, probe-none, probe-reject, probe-request, probe-response") {
		t.Errorf("the unknown policy's error does not list the known ones: %v", err)
	}
	// fine and fine-too were provisioned before the route failed.
	for _, p := range madeSince(start) {
		if p.closes != p.provisions {
			t.Errorf("probe %q: provisioned %d times, closed %d", p.Tag, p.provisions, p.closes)
		}
	}
}

// TestCompileWithoutProvision: what `flexgate validate` runs decodes and
// validates every policy and provisions none.
func TestCompileWithoutProvision(t *testing.T) {
	start := len(made)
	cfg, _ := chaintest.Load(t, chaintest.Gateway("        - probe-request: {tag: a}\n        - probe-both: {tag: b, after: probe-request}\n"))
	set, err := chain.CompileAll(cfg, nil, chain.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.Chains[0].Policies); n != 2 {
		t.Errorf("%d policies, want 2", n)
	}
	for _, p := range madeSince(start) {
		if p.provisions != 0 {
			t.Errorf("probe %q was provisioned", p.Tag)
		}
	}
	cfg, _ = chaintest.Load(t, chaintest.Gateway("        - probe-both: {tag: b, after: probe-request}\n"))
	if _, err := chain.CompileAll(cfg, nil, chain.Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "b must run after probe-request") {
		t.Errorf("error %v, want the Validate error", err)
	}
}

// TestCompileEnv: a policy sees where it stands: its route, its own entry
// and the policies before it.
func TestCompileEnv(t *testing.T) {
	var seen []string
	onEnv = func(env *chain.Env) {
		seen = append(seen, fmt.Sprintf("%s %s %d %v %d:%d", env.Route.ID, env.Name, env.Index, env.Before, env.Spec.Pos.Line, env.Spec.Pos.Col))
	}
	defer func() { onEnv = nil }()
	set := mustCompileAll(t, chaintest.Gateway("        - probe-none\n        - probe-env\n        - probe-request: {tag: a}\n        - probe-env\n"), nil)
	defer set.Retire(nil)
	want := []string{"r probe-env 1 [probe-none] 13:11", "r probe-env 3 [probe-none probe-env probe-request] 15:11"}
	if !slices.Equal(seen, want) {
		t.Errorf("policies saw %q, want %q", seen, want)
	}
}

// TestCompileFormChecks: a policy that declares credentials has them
// looked for in a form body by a step of their own, after the steps that
// read no body (so a client waiting for 100 Continue is answered first)
// and after the policy's own step; an instance carried over to a reloaded
// config keeps it.
func TestCompileFormChecks(t *testing.T) {
	text := chaintest.Gateway("        - probe-creds: {tag: a}\n        - probe-request: {tag: n}\n" +
		"        - probe-body: {tag: b}\n        - probe-creds: {tag: c}\n")
	set := mustCompileAll(t, text, nil)
	next := mustCompileAll(t, text, set)
	defer next.Retire(nil)
	if probeAt(t, next.Chains[0], 0) != probeAt(t, set.Chains[0], 0) {
		t.Fatal("the instance was not carried over")
	}
	for _, s := range []*chain.Set{set, next} {
		c := s.Chains[0]
		var idx []int
		for _, st := range c.Request {
			idx = append(idx, st.Index)
		}
		if !slices.Equal(idx, []int{0, 1, 0, 2, 3, 3}) || c.HeadSteps != 2 {
			t.Errorf("request steps of policies %v, %d head steps; want [0 1 0 2 3 3], 2", idx, c.HeadSteps)
		}
		f := func(body, wantHead, wantTail, wantRefusal string) {
			t.Helper()
			ctx := chaintest.Ctx("http://gw/api/x")
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
			ctx.Request.SetBodyString(body)
			ex := chain.AcquireExchange()
			defer chain.ReleaseExchange(ex)
			ex.Prepare(c)
			if rej := c.RunRequestHead(ctx, ex); rej != nil {
				t.Fatalf("%s: head refused: %v", body, rej)
			}
			head := string(bytes.Join(ctx.Response.Header.PeekAll("X-Trace"), []byte(" ")))
			ctx.Response.Header.Del("X-Trace")
			rej := c.RunRequestTail(ctx, ex)
			var tail []string
			for _, s := range ctx.Response.Header.PeekAll("X-Trace") {
				tail = append(tail, string(s))
			}
			if head != wantHead || strings.Join(tail, " ") != wantTail {
				t.Errorf("%s: head ran %q, tail %q; want %q, %q", body, head, tail, wantHead, wantTail)
			}
			switch {
			case wantRefusal == "" && rej != nil:
				t.Errorf("%s: refused: %v", body, rej)
			case wantRefusal == "":
			case rej == nil || rej.Status != 400 || rej.Policy != "probe-creds" || !strings.Contains(rej.Message, wantRefusal) ||
				ex.Rejected != rej:
				t.Errorf("%s: got %v, want probe-creds's 400 %q", body, rej, wantRefusal)
			}
		}
		f("q=1", "a.req n.req", "b.req c.req", "")
		f("x_a=1", "a.req n.req", "", "carries X-a in the form body")
		f("A_KEY=1", "a.req n.req", "", "carries a_key in the form body")
		f("c_key=1", "a.req n.req", "b.req c.req", "carries c_key in the form body")
	}
}
