package all_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestProvidedValuesReachTheUpstream: the values client-id-enforcement and
// token-introspection provide expand in the header values of a later step,
// on a real gateway.
func TestProvidedValuesReachTheUpstream(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"active":true,"sub":"alice","client_id":"shop-app","scope":"a b",`+
			`"username":"Alice \u00c5","address":{"country":"NZ"},"https://example.com/tier":"gold"}`)
	}))
	t.Cleanup(idp.Close)
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  clients:
    - {id: shop-app, secret: shop-secret}
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - client-id-enforcement
        - token-introspection: {url: "%s", clientId: gw, clientSecret: s}
        - rate-limiting: {limit: 100, period: 60, identifier: "$client.id/$token.sub"}
        - request-headers-set:
            headers:
              X-Client: $client.id
              X-Token: "$token.sub $token.client_id $token.scope"
              X-User: $token.claims.username
              X-Country: $token.claims.address.country
              X-Tier: '${token.claims["https://example.com/tier"]}'
`, up.URL, idp.URL))
	resp := proxytest.Do(t, "GET", gw.URL+"/x", map[string]string{
		"client_id": "shop-app", "client_secret": "shop-secret", "Authorization": "Bearer tok"}, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	got := up.Last(t).Header
	for h, want := range map[string]string{"X-Client": "shop-app", "X-Token": "alice shop-app a b",
		"X-User": "Alice Å", "X-Country": "NZ", "X-Tier": "gold"} {
		if got[h] != want {
			t.Errorf("upstream saw %s: %q, want %q", h, got[h], want)
		}
	}
}

// TestProvidedValuesNeedTheirPolicyFirst: an expression that reads a value
// with no policy providing it before is a config error at the value, which
// names the policy to put first.
func TestProvidedValuesNeedTheirPolicyFirst(t *testing.T) {
	withRegistry := func(policies string) string {
		return strings.Replace(chaintest.Gateway(policies), "spec:\n", "spec:\n  clients:\n    - {id: alice, secret: a}\n", 1)
	}
	f := func(policies, want string) {
		t.Helper()
		_, _, err := chaintest.Compile(t, withRegistry(policies))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", policies, err, want)
		}
	}
	// The policies list starts on line 14 of the document.
	f("        - request-headers-set:\n            headers:\n              X-A: $client.id\n",
		"gw.yaml:16:20: request-headers-set: the value of X-A: $client.id is only known after client-id-enforcement, client-id-enforcement-flex, http-basic-authentication, http-basic-authentication-flex, jwt-validation, jwt-validation-flex, oauth2-token-introspection-flex or token-introspection: "+
			"put one of them before request-headers-set in the route's policies")
	f("        - rate-limiting: {limit: 1, period: 1, identifier: $token.claims.email}\n",
		"gw.yaml:14:60: rate-limiting: identifier: $token.claims.email is only known after jwt-validation, jwt-validation-flex, oauth2-token-introspection-flex or token-introspection: "+
			"put one of them before rate-limiting in the route's policies")
	f("        - rate-limiting: {limit: 1, period: 1, identifier: $client.id}\n        - client-id-enforcement\n",
		"$client.id is only known after client-id-enforcement, client-id-enforcement-flex, http-basic-authentication, http-basic-authentication-flex, jwt-validation, jwt-validation-flex, oauth2-token-introspection-flex or token-introspection, but client-id-enforcement runs after rate-limiting "+
			"on this route: move client-id-enforcement before rate-limiting in the route's policies")
	f("        - request-headers-set: {headers: {X-A: $clients.id}}\n",
		"unknown expression $clients.id; known expressions: $request.remoteAddress, $request.method, $request.path, "+
			"$request.header.NAME, $request.query.NAME, $datetime, $requestId, $client.id, $token.claims.NAME, "+
			"$token.client_id, $token.scope, $token.sub, $env.NAME")
}
