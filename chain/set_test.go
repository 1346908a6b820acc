package chain_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestReuseCarriesOverUnchangedInstances: over a reload, an instance whose
// route, name and parameters did not change keeps its state, wherever it
// now stands in its route; a changed one, or the same one on another
// route, is new; Retire closes what the new set did not take.
func TestReuseCarriesOverUnchangedInstances(t *testing.T) {
	first := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: a}
        - probe-request: {tag: b}
`)+route("other", "        - probe-request: {tag: a}\n"), nil)
	a, b, otherA := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[0], 1), probeAt(t, first.Chains[1], 0)
	run(first.Chains[0])
	run(first.Chains[0])

	// A policy is added before a, a comment after it, and b changes.
	next := mustCompileAll(t, chaintest.Gateway(`
        - probe-response: {tag: new}
        - probe-request: {tag: a} # the same a
        - probe-request: {tag: b2}
`)+route("other", "        - probe-request: {tag: a}\n"), first)
	if probeAt(t, next.Chains[0], 1) != a || probeAt(t, next.Chains[1], 0) != otherA {
		t.Fatal("unchanged instances were not carried over")
	}
	if a.requests != 2 || a.provisions != 1 {
		t.Errorf("a carried over with %d requests and %d provisions, want 2 and 1", a.requests, a.provisions)
	}
	if b2 := probeAt(t, next.Chains[0], 2); b2 == b || b2.provisions != 1 {
		t.Errorf("the changed b was carried over, or its successor not provisioned")
	}
	// a's request step is the second policy's now: it runs after new's
	// place, and its slot is its own.
	if _, steps := run(next.Chains[0]); steps != "a.req b2.req new.resp" || a.requests != 3 {
		t.Errorf("after the reload ran %q with a at %d requests, want a.req b2.req new.resp and 3", steps, a.requests)
	}
	if next.Chains[0].Request[0].Index != 1 {
		t.Errorf("a's request step has index %d, want 1", next.Chains[0].Request[0].Index)
	}
	if b.closes != 0 {
		t.Fatal("the reload closed b before the old set was retired")
	}
	if err := first.Retire(next); err != nil {
		t.Fatal(err)
	}
	if b.closes != 1 || a.closes != 0 || otherA.closes != 0 {
		t.Errorf("retiring the old set closed b %d, a %d, other's a %d times; want 1, 0, 0", b.closes, a.closes, otherA.closes)
	}
	if err := next.Retire(nil); err != nil {
		t.Fatal(err)
	}
	if b.closes != 1 || a.closes != 1 || otherA.closes != 1 {
		t.Errorf("at shutdown b closed %d, a %d, other's a %d times; want each once", b.closes, a.closes, otherA.closes)
	}
}

// TestReuseOfRepeatedPolicies: the same policy written twice on a route is
// two instances, each carried over to its own place.
func TestReuseOfRepeatedPolicies(t *testing.T) {
	const twice = "        - probe-request: {tag: a}\n        - probe-request: {tag: a}\n"
	first := mustCompileAll(t, chaintest.Gateway(twice), nil)
	p0, p1 := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[0], 1)
	if p0 == p1 || first.Chains[0].Policies[0].Key == first.Chains[0].Policies[1].Key {
		t.Fatal("two entries share an instance or a key")
	}
	next := mustCompileAll(t, chaintest.Gateway(twice), first)
	if probeAt(t, next.Chains[0], 0) != p0 || probeAt(t, next.Chains[0], 1) != p1 {
		t.Error("the repeated entries were not carried over to their own places")
	}
	_ = first.Retire(next)
	_ = next.Retire(nil)
	if p0.closes != 1 || p1.closes != 1 {
		t.Errorf("closed %d and %d times, want once each", p0.closes, p1.closes)
	}
}

// TestReuseKeyFrom: a policy whose state depends on more of the config
// than its parameters is new when that changes.
func TestReuseKeyFrom(t *testing.T) {
	doc := func(methods ...string) string {
		return chaintest.Doc{Methods: methods, Policies: "- probe-keyed: {tag: k}\n- probe-request: {tag: plain}\n"}.String()
	}
	first := mustCompileAll(t, doc("GET"), nil)
	k, plain := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[0], 1)
	same := mustCompileAll(t, doc("GET"), first)
	_ = first.Retire(same)
	if probeAt(t, same.Chains[0], 0) != k {
		t.Error("probe-keyed was not carried over though nothing changed")
	}
	next := mustCompileAll(t, doc("GET", "POST"), same)
	_ = same.Retire(next)
	defer func() { _ = next.Retire(nil) }()
	if probeAt(t, next.Chains[0], 0) == k || k.closes != 1 {
		t.Errorf("probe-keyed was carried over though its route's methods changed, or not closed (%d)", k.closes)
	}
	if probeAt(t, next.Chains[0], 1) != plain {
		t.Error("probe-request, which depends on its parameters only, was not carried over")
	}
}

// TestReuseRevalidates: a carried-over instance is still validated in its
// new place; a reload that fails leaves the old set as it was, and a later
// reload still finds its instances.
func TestReuseRevalidates(t *testing.T) {
	first := mustCompileAll(t, chaintest.Gateway("        - probe-none: {tag: n}\n        - probe-request: {tag: a, after: probe-none}\n"), nil)
	n, a := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[0], 1)
	_, path, err := compileAll(t, chaintest.Gateway("        - probe-request: {tag: a, after: probe-none}\n        - probe-none: {tag: n}\n"), first)
	if err == nil || !strings.Contains(err.Error(), path+":12:11: probe-request: a must run after probe-none") {
		t.Fatalf("reload with a moved before probe-none: error %v", err)
	}
	if n.closes != 0 || a.closes != 0 {
		t.Fatal("a failed reload closed instances of the old set")
	}
	if _, steps := run(first.Chains[0]); steps != "a.req" {
		t.Errorf("the old set after a failed reload ran %q", steps)
	}
	next := mustCompileAll(t, chaintest.Gateway("        - probe-none: {tag: n}\n        - probe-request: {tag: a, after: probe-none}\n"), first)
	if probeAt(t, next.Chains[0], 0) != n || probeAt(t, next.Chains[0], 1) != a {
		t.Error("after a failed reload, the next one did not carry the instances over")
	}
	_ = first.Retire(next)
	_ = next.Retire(nil)
	if n.closes != 1 || a.closes != 1 {
		t.Errorf("closed %d and %d times, want once each", n.closes, a.closes)
	}
}

// TestFailedProvisionLeavesNothingOpen: when a policy fails to provision,
// every instance the reload provisioned, on any route, before or after it,
// is closed again, once; the old set's instances, carried over or not, stay
// open. Close is for what Provision built: the policy that failed releases
// what it built itself, and is not closed.
func TestFailedProvisionLeavesNothingOpen(t *testing.T) {
	first := mustCompileAll(t, chaintest.Gateway("        - probe-request: {tag: a}\n")+
		route("other", "        - probe-request: {tag: o}\n"), nil)
	a, o := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[1], 0)
	start := len(made)
	_, path, err := compileAll(t, chaintest.Gateway("        - probe-request: {tag: a}\n        - probe-both: {tag: fresh}\n")+
		route("other", "        - probe-request: {tag: o}\n        - probe-request: {tag: broken, failProvision: true}\n        - probe-none: {tag: after}\n")+
		route("third", "        - probe-response: {tag: t}\n"), first)
	if err == nil || !strings.Contains(err.Error(), path+":20:11: probe-request: provision fails on purpose") {
		t.Fatalf("error %v, want the failed provision at its place", err)
	}
	var tags []string
	for _, p := range madeSince(start) {
		tags = append(tags, p.Tag)
		if p.closes != p.provisions {
			t.Errorf("probe %s provisioned %d times, closed %d", p.Tag, p.provisions, p.closes)
		}
		if provisioned := p.Tag == "fresh" || p.Tag == "after" || p.Tag == "t"; provisioned != (p.provisions == 1) {
			t.Errorf("probe %s provisioned %d times", p.Tag, p.provisions)
		}
	}
	// The a and o the reload made were decoded and validated only: the
	// old set's were to be carried over.
	if got := strings.Join(tags, " "); got != "a fresh o broken after t" {
		t.Errorf("the reload made %s", got)
	}
	if a.closes != 0 || o.closes != 0 {
		t.Error("the failed reload closed instances of the old set")
	}
	if err := first.Retire(nil); err != nil {
		t.Fatal(err)
	}
	if a.closes != 1 || o.closes != 1 {
		t.Errorf("at shutdown a closed %d, o %d times; want once each", a.closes, o.closes)
	}
}

// TestRetire: Retire closes each instance the next set did not take once,
// carries on past a Close that fails and reports it; a nil set retires
// nothing.
func TestRetire(t *testing.T) {
	first := mustCompileAll(t, chaintest.Gateway("        - probe-request: {tag: x, failClose: true}\n        - probe-request: {tag: y}\n        - probe-request: {tag: kept}\n"), nil)
	x, y, kept := probeAt(t, first.Chains[0], 0), probeAt(t, first.Chains[0], 1), probeAt(t, first.Chains[0], 2)
	next := mustCompileAll(t, chaintest.Gateway("        - probe-request: {tag: kept}\n"), first)
	err := first.Retire(next)
	if err == nil || !strings.Contains(err.Error(), "x: close fails on purpose") {
		t.Errorf("Retire: %v, want x's error", err)
	}
	if x.closes != 1 || y.closes != 1 || kept.closes != 0 {
		t.Errorf("closed x %d, y %d, kept %d times; want 1, 1, 0", x.closes, y.closes, kept.closes)
	}
	if err := next.Retire(nil); err != nil || kept.closes != 1 {
		t.Errorf("shutdown: %v, kept closed %d times", err, kept.closes)
	}
	var none *chain.Set
	if err := none.Retire(nil); err != nil {
		t.Errorf("a nil set: %v", err)
	}
}

// TestCompileReuseMap: Compile, called for one route, takes from
// Options.Reuse the instances it carries over and leaves the rest to the
// caller; when the route fails, the map is as it was.
func TestCompileReuseMap(t *testing.T) {
	compile := func(policies string, reuse map[string]chain.Instance) (*chain.Chain, error) {
		cfg, _ := chaintest.Load(t, chaintest.Gateway(policies))
		return chain.Compile(cfg, &cfg.Routes[0], chain.Options{Provision: true, Reuse: reuse, Logger: quiet})
	}
	first, err := compile("        - probe-request: {tag: a}\n        - probe-request: {tag: b}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := probeAt(t, first, 0), probeAt(t, first, 1)
	reuse := map[string]chain.Instance{}
	for _, inst := range first.Policies {
		reuse[inst.Key] = inst
	}
	if _, err := compile("        - probe-request: {tag: a}\n        - probe-both: {tag: c, after: probe-none}\n", reuse); err == nil {
		t.Fatal("compiled")
	}
	if len(reuse) != 2 || a.closes != 0 {
		t.Fatalf("after a failed compile the map holds %d instances (want 2), a closed %d times", len(reuse), a.closes)
	}
	next, err := compile("        - probe-request: {tag: a}\n        - probe-both: {tag: c}\n", reuse)
	if err != nil {
		t.Fatal(err)
	}
	if probeAt(t, next, 0) != a {
		t.Error("a was not carried over")
	}
	if len(reuse) != 1 || reuse[first.Policies[1].Key].Policy != first.Policies[1].Policy {
		t.Errorf("the map holds %v, want b's instance alone", reuse)
	}
	_ = next.Close()
	_ = b.Close()
}

// TestReuseIgnoresFormatting: rewriting a policy's parameters as a block
// mapping instead of a flow one (or quoting differently what means the
// same) keeps its instance and state; a value that changes type does not.
func TestReuseIgnoresFormatting(t *testing.T) {
	first := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: a}
`), nil)
	a := probeAt(t, first.Chains[0], 0)
	next := mustCompileAll(t, chaintest.Gateway(`
        - probe-request:
            tag: 'a'
`), first)
	if probeAt(t, next.Chains[0], 0) != a {
		t.Fatal("a policy rewritten as a block mapping was not carried over")
	}
	third := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: "1"}
`), next)
	fourth := mustCompileAll(t, chaintest.Gateway(`
        - probe-request: {tag: 1}
`), third)
	if probeAt(t, fourth.Chains[0], 0) == probeAt(t, third.Chains[0], 0) {
		t.Error(`tag "1" (a string) and tag 1 (a number) share an instance`)
	}
}
