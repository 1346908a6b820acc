package introspection

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// flexSetup provisions an oauth2-token-introspection-flex policy against
// url with extra parameters in YAML flow syntax.
func flexSetup(t *testing.T, url, extra string) *fixture {
	t.Helper()
	// "gateway" and "gw&secret", form-encoded inside Basic, as the IdP
	// wants them.
	params := fmt.Sprintf("{introspectionURL: %q, authorizationValue: \"Basic Z2F0ZXdheTpndyUyNnNlY3JldA==\", skipClientIdValidation: true", url)
	if !strings.Contains(extra, "consumerBy") {
		params += ", consumerBy: client_id"
	}
	if extra != "" {
		params += ", " + extra
	}
	set := metrics.NewSet()
	c, err := compile(t, "- oauth2-token-introspection-flex: "+params+"}",
		chaintest.Options{Metrics: set, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	in := &c.Policies[0].Policy.(*FlexIntrospector).Introspector
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	in.now = clk.now
	return &fixture{c: c, in: in, set: set, clock: clk}
}

// TestFlexIntrospection: Flex Gateway's parameters map onto the policy:
// authorizationValue is sent as written, its defaults (600 s cache, 10 s
// timeout) apply, scopes is a space-separated list checked with AND or OR,
// and the claims reach later steps as token-introspection's do.
func TestFlexIntrospection(t *testing.T) {
	p := newIdP(t, false)
	p.answers["tok-1"] = fmt.Sprintf(goodAnswer, 1_700_003_600)

	f := flexSetup(t, p.srv.URL+"/introspect", `scopes: "orders:read admin", scopeValidationCriteria: OR`)
	if f.in.cacheTTL != 600*time.Second || f.in.timeout != 10*time.Second || f.in.MaxCacheEntries != 1000 {
		t.Errorf("defaults: cache %s, timeout %s, entries %d; want Flex's 600s, 10s, 1000", f.in.cacheTTL, f.in.timeout, f.in.MaxCacheEntries)
	}
	r := f.do("Bearer tok-1")
	if r.rej != nil {
		t.Fatalf("OR of orders:read and admin: rejected %v", r.rej)
	}
	if p.auth != "Basic Z2F0ZXdheTpndyUyNnNlY3JldA==" {
		t.Errorf("server got Authorization %q", p.auth)
	}
	if got := string(r.ex.Value(clientIDValue)); got != "shop-app" {
		t.Errorf("$token.client_id = %q", got)
	}

	f = flexSetup(t, p.srv.URL+"/introspect", `scopes: "orders:read admin", validatedTokenTTL: 30, authenticationTimeout: 1500`)
	if f.in.cacheTTL != 30*time.Second || f.in.timeout != 1500*time.Millisecond {
		t.Errorf("cache %s, timeout %s; want 30s, 1.5s", f.in.cacheTTL, f.in.timeout)
	}
	if r := f.do("Bearer tok-1"); r.rej == nil || r.rej.Status != 403 || r.rej.Reason != "insufficient_scope" {
		t.Errorf("AND (the default) of orders:read and admin: %v", r.rej)
	}
}

// TestFlexConsumerBy: consumerBy names the answer's member that identifies
// the request's client for later policies ($client.id, Flex's
// authentication.clientId): client_id by default, username when asked. A
// username-keyed answer without a username leaves the client unnamed.
func TestFlexConsumerBy(t *testing.T) {
	p := newIdP(t, false)
	p.answers["tok-1"] = `{"active":true,"sub":"alice","client_id":"shop-app","username":"alice@example.com","exp":1700003600}`
	p.answers["tok-2"] = `{"active":true,"client_id":"shop-app","exp":1700003600}`
	for _, tc := range []struct{ extra, token, want string }{
		{"", "Bearer tok-1", "shop-app"},
		{"consumerBy: client_id", "Bearer tok-1", "shop-app"},
		{"consumerBy: username", "Bearer tok-1", "alice@example.com"},
		{"consumerBy: username", "Bearer tok-2", ""},
	} {
		f := flexSetup(t, p.srv.URL+"/introspect", tc.extra)
		r := f.do(tc.token)
		if r.rej != nil {
			t.Fatalf("%s: rejected %v", tc.extra, r.rej)
		}
		if got := string(r.ex.Value(clientValue)); got != tc.want {
			t.Errorf("%q with %s: $client.id = %q, want %q", tc.extra, tc.token, got, tc.want)
		}
		if got := string(r.ex.Value(clientIDValue)); got != "shop-app" {
			t.Errorf("%q: $token.client_id = %q, want the answer's client_id whatever consumerBy says", tc.extra, got)
		}
	}
}

func TestFlexIntrospectionErrors(t *testing.T) {
	f := func(params, want string) {
		t.Helper()
		_, err := compile(t, "- oauth2-token-introspection-flex: {"+params+"}", chaintest.Options{ValidateOnly: true})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v, want %q", params, err, want)
		}
	}
	const url = `introspectionURL: "http://idp/introspect"`
	f(`authorizationValue: "Basic eA=="`, "introspectionURL is required")
	f(url, "authorizationValue is required")
	f(url+`, authorizationValue: "Token eA=="`, `gw.yaml:12:108: oauth2-token-introspection-flex: authorizationValue must be "Basic <credentials>" or "Bearer <token>"`)
	f(url+`, authorizationValue: "Basic eA==", scopeValidationCriteria: XOR`, `scopeValidationCriteria "XOR" is unknown`)
	f(url+`, authorizationValue: "Basic eA==", consumerBy: email`, `consumerBy "email" is unknown`)
	f(url+`, authorizationValue: "Basic eA==", url: "http://x"`, `unknown parameter "url"`)
	f(url+`, authorizationValue: "Basic eA==", authenticationTimeout: -1`, "authenticationTimeout must be a whole number from 1 to 60000, not -1")
	f(url+`, authorizationValue: "Basic eA==", authenticationTimeout: 99999999999999999999`,
		"authenticationTimeout must be a whole number from 1 to 60000, not 99999999999999999999")
	f(url+`, authorizationValue: "Basic eA==", validatedTokenTTL: -600`, "validatedTokenTTL must be a whole number from 0 to 31622400, not -600")
	f(url+`, authorizationValue: "Basic eA==", skipClientIdValidation: yes`, `skipClientIdValidation must be true or false, not "yes"`)
}

func TestHasScopes(t *testing.T) {
	for _, c := range []struct {
		have     string
		required []string
		any      bool
		want     bool
	}{
		{"a b", []string{"a", "b"}, false, true},
		{"a", []string{"a", "b"}, false, false},
		{"a", []string{"a", "b"}, true, true},
		{"c", []string{"a", "b"}, true, false},
		{"", nil, true, true},
		{"", nil, false, true},
	} {
		if got := hasScopes(c.have, c.required, c.any); got != c.want {
			t.Errorf("hasScopes(%q, %q, any=%v) = %v", c.have, c.required, c.any, got)
		}
	}
}
