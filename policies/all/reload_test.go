package all_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestReloadRevalidatesCarriedOverPolicies: a policy whose parameters did
// not change keeps its state over a reload, but is still checked in its new
// place — moved before client-id-enforcement, $client.id means nothing, and
// every caller would share one budget.
func TestReloadRevalidatesCarriedOverPolicies(t *testing.T) {
	const limiter = "        - rate-limiting: {limit: 2, period: 60, identifier: $client.id}\n"
	const clientID = "        - client-id-enforcement\n"
	withRegistry := func(policies string) string {
		return strings.Replace(chaintest.Gateway(policies), "spec:\n", "spec:\n  clients:\n    - {id: alice, secret: a}\n", 1)
	}
	first, _, err := chaintest.Compile(t, withRegistry(clientID+limiter))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = chaintest.CompileWith(t, withRegistry(limiter+clientID), chaintest.Options{Old: first})
	if err == nil || !strings.Contains(err.Error(), "only known after client-id-enforcement") {
		t.Fatalf("reload with the limiter moved first: %v", err)
	}
}

// TestReloadSeesChangesBehindAliases: a policy is carried over a reload only
// when its parameters are unchanged, and a parameter written as an alias is
// unchanged only when the value of its anchor is.
func TestReloadSeesChangesBehindAliases(t *testing.T) {
	policies := func(limit string) string {
		return "        - response-headers-set:\n            headers: {X-Limit: &lim " + limit + "}\n" +
			"        - rate-limiting: {limit: *lim, period: 60, identifier: $request.remoteAddress}\n"
	}
	first, _, err := chaintest.Compile(t, chaintest.Gateway(policies("100")))
	if err != nil {
		t.Fatal(err)
	}
	next, _, err := chaintest.CompileWith(t, chaintest.Gateway(policies("1")), chaintest.Options{Old: first})
	if err != nil {
		t.Fatal(err)
	}
	if rej := chaintest.Run(next.Chains[0], chaintest.Ctx("http://gw/api/x")); rej != nil {
		t.Fatalf("first request: %v", rej)
	}
	if rej := chaintest.Run(next.Chains[0], chaintest.Ctx("http://gw/api/x")); rej == nil || rej.Status != 429 {
		t.Fatalf("second request after the limit went from 100 to 1: %v, want a 429", rej)
	}
}
