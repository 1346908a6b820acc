package all_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// flexSeed edits the seed's chain to read Flex expressions: the rate
// limit's identifier, a request header from the values the client and
// token policies provide, a response header from the upstream's status.
func flexSeed(route *config.Route) {
	set := func(params *yaml.Node, name, value string) {
		headers := chain.Field(params, "headers")
		headers.Content = append(headers.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: name}, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
	}
	for i := range route.Policies {
		switch p := &route.Policies[i]; p.Name {
		case "rate-limiting":
			chain.Field(p.Params, "identifier").Value = "#[attributes.remoteAddress]"
		case "request-headers-set":
			set(p.Params, "X-Client", "#[authentication.clientId ++ '/' ++ authentication.principal ++ '/' ++ "+
				"lower(dw::core::Strings::substringBefore(attributes.queryParams.productId, '-'))]")
		case "response-headers-set":
			set(p.Params, "X-Cacheable", "#[[200, 203, 204] contains attributes.statusCode]")
			set(p.Params, "X-Served", "#[attributes.headers['content-type'] ++ ' ' ++ (attributes.headers['client_id'] default 'no client_id')]")
		}
	}
}

// TestFlexExpressionsInSeedChain: Flex expressions read the request, the
// values client-id-enforcement and token-introspection provide and, on
// the response, its status and headers.
func TestFlexExpressionsInSeedChain(t *testing.T) {
	s := startSeedWith(t, 100, flexSeed)
	r := newSeedRequest(s)
	r.do(t)
	if got := s.up.Last(t).Header["X-Client"]; got != "shop-app/alice/prd" {
		t.Errorf("upstream saw X-Client %q, want shop-app/alice/prd", got)
	}
	if got := string(r.resp.Header.Peek("X-Cacheable")); got != "true" {
		t.Errorf("X-Cacheable %q, want true", got)
	}
	// On the response, attributes.headers are the response's.
	if got, want := string(r.resp.Header.Peek("X-Served")), string(r.resp.Header.ContentType())+" no client_id"; got != want {
		t.Errorf("X-Served %q, want %q", got, want)
	}
}

// TestFlexSeedChainDoesNotAllocate: the seed's chain with Flex
// expressions costs no allocation per request either.
func TestFlexSeedChainDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	s := startSeedWith(t, 50_000_000, flexSeed)
	s.up.Record = false
	r := newSeedRequest(s)
	for i := 0; i < 200; i++ {
		r.do(t)
	}
	if allocs := proxytest.SteadyAllocs(500, func() { r.do(t) }); allocs >= 0.5 {
		t.Fatalf("a request through the seed chain with Flex expressions costs %.2f allocations, want 0", allocs)
	}
}

// TestFlexNamesOfProvidedValues: after token-introspection alone, the
// token's client is authentication.clientId (and $client.id), its sub
// authentication.principal, and its claims are read under
// authentication.properties.claims and vars.claimSet, on a real gateway.
func TestFlexNamesOfProvidedValues(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"active":true,"sub":"alice","client_id":"shop-app","roles":["reader","buyer"],"address":{"country":"NZ"}}`)
	}))
	t.Cleanup(idp.Close)
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: t}
spec:
  routes:
    - id: r
      path: ["/*"]
      upstream: {url: "%s"}
      policies:
        - token-introspection: {url: "%s", clientId: gw, clientSecret: s}
        - rate-limiting: {limit: 100, period: 60, identifier: "#[authentication.clientId]"}
        - request-headers-set:
            headers:
              X-Client: "#[authentication.clientId ++ ' ' ++ authentication.principal]"
              X-Dollar: $client.id
              X-Buyer: "#[authentication.properties.claims.roles contains 'buyer']"
              X-Country: "#[lower(vars.claimSet.address.country)]"
`, up.URL, idp.URL))
	resp := proxytest.Do(t, "GET", gw.URL+"/x", map[string]string{"Authorization": "Bearer tok"}, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	got := up.Last(t).Header
	for h, want := range map[string]string{"X-Client": "shop-app alice", "X-Dollar": "shop-app", "X-Buyer": "true", "X-Country": "nz"} {
		if got[h] != want {
			t.Errorf("upstream saw %s: %q, want %q", h, got[h], want)
		}
	}
}
