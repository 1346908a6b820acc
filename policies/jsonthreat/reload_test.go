package jsonthreat

import (
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestReloadFollowsTheBodyLimit: the protector takes its body size limit
// from the gateway (or route) at load; a reload that raises it builds the
// policy anew, one that does not keeps it.
func TestReloadFollowsTheBodyLimit(t *testing.T) {
	doc := func(limit string) string {
		return chaintest.Gateway("        - json-threat-protection: {maxStringValueLength: 100000}\n") +
			"  limits:\n    maxRequestBodySize: " + limit + "\n"
	}
	first, _, err := chaintest.Compile(t, doc("1KiB"))
	if err != nil {
		t.Fatal(err)
	}
	same, _, err := chaintest.CompileWith(t, doc("1KiB"), chaintest.Options{Old: first})
	if err != nil || same.Chains[0].Policies[0].Policy != first.Chains[0].Policies[0].Policy {
		t.Fatalf("an unchanged limit: %v, or the instance was not kept", err)
	}
	next, _, err := chaintest.CompileWith(t, doc("1MiB"), chaintest.Options{Old: same})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := next.Chains[0].Policies[0].Policy.(*Protector)
	if !ok || p.maxBody != 1<<20 {
		t.Fatalf("after raising the limit to 1 MiB the protector's limit is %+v", next.Chains[0].Policies[0].Policy)
	}
}
