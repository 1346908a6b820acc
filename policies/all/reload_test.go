package all_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
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
	cfg, _ := chaintest.Load(t, withRegistry(limiter+clientID))
	_, err = chain.CompileAll(cfg, first, chain.Options{Provision: true})
	if err == nil || !strings.Contains(err.Error(), "only known after client-id-enforcement") {
		t.Fatalf("reload with the limiter moved first: %v", err)
	}
}
