package expr

import "github.com/flexgate/flexgate/chain"

// The Flex names of the values policies provide. Flex Gateway's
// expressions read the authenticated client and a token's claims under
// authentication and vars; here they are other names of the values
// flexgate's policies register, so that `#[authentication.clientId]` and
// `$client.id` read the same place, with the same check that a policy
// providing it runs first.
func init() {
	chain.RegisterAlias("authentication.clientId", "client.id")
	chain.RegisterAlias("authentication.principal", "token.sub")
	chain.RegisterAlias("authentication.properties.claims", "token.claims")
	chain.RegisterAlias("vars.claimSet", "token.claims")
}
