package httpcache

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestReloadFollowsTheUpstream: a distributed cache's Redis namespace is
// made of the route's upstream (among others); a reload that points the
// route elsewhere builds the cache anew, with the namespace a replica
// started on the new config uses, and one that does not keeps it.
func TestReloadFollowsTheUpstream(t *testing.T) {
	doc := func(upstream string) string {
		d := chaintest.Gateway("        - http-caching: {distributed: true}\n") +
			"  sharedStorage:\n    redis: {address: \"127.0.0.1:1\"}\n"
		return strings.Replace(d, `url: "http://127.0.0.1:1"`, `url: "`+upstream+`"`, 1)
	}
	first, _, err := chaintest.CompileWith(t, doc("http://one.internal:8080"), chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	same, _, err := chaintest.CompileWith(t, doc("http://one.internal:8080"), chaintest.Options{Old: first})
	if err != nil || same.Chains[0].Policies[0].Policy != first.Chains[0].Policies[0].Policy {
		t.Fatalf("an unchanged route: %v, or its cache was not carried over", err)
	}
	old := same.Chains[0].Policies[0].Policy.(*Cache)
	next, _, err := chaintest.CompileWith(t, doc("http://two.internal:8080"), chaintest.Options{Old: same})
	if err != nil {
		t.Fatal(err)
	}
	c := next.Chains[0].Policies[0].Policy.(*Cache)
	if c == old || c.p.namespace == old.p.namespace {
		t.Errorf("after pointing the route elsewhere the cache kept its namespace %q", old.p.namespace)
	}
}
