package jwt

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func TestRepeatedTokenCostsNoVerification(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret)))
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims())
	for range 5 {
		f.wantOK("repeated", tok)
	}
	if n := f.result("valid"); n != 1 {
		t.Errorf("%d verifications of one token sent 5 times, want 1", n)
	}
	if n := f.counter(`flexgate_jwt_cache_total{route="orders",result="hit"}`); n != 4 {
		t.Errorf("%d cache hits, want 4", n)
	}
}

func TestCacheNeverOutlivesExp(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret)))
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), fmt.Sprintf(`{"exp":%d}`, start.Unix()+100))
	f.wantOK("fresh", tok)
	f.clock.advance(100 * time.Second)
	// At exp the cache no longer answers; the leeway still lets the token
	// through, verified again.
	f.wantOK("at exp, within the leeway", tok)
	if n := f.result("valid"); n != 2 {
		t.Errorf("%d verifications, want 2: the cache answered at exp", n)
	}
	f.clock.advance(60 * time.Second)
	f.wantRefused("past the leeway", tok, 401, "invalid_token")
}

func TestCacheIsBounded(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nmaxCacheEntries: 64", k.secret)))
	for i := range 500 {
		f.wantOK("distinct", sign(t, "HS256", k.secret, hdr("HS256", ""), claims("n", fmt.Sprint(i))))
	}
	if n := f.v.rt.cache.Len(); n > 64 {
		t.Errorf("%d cached tokens, want at most 64", n)
	}
}

// TestCachedTokenDoesNotAllocate: a token in the cache passes, with its
// values set, without an allocation; for the bearer header and for a
// token read by an expression.
func TestCachedTokenDoesNotAllocate(t *testing.T) {
	k := keysOnce()
	for _, c := range []struct {
		name, policy, header string
	}{
		{"bearer", policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret)), "Authorization"},
		{"from", policy(fmt.Sprintf("keys: [{secret: %q}]\nfrom: $request.header.X-Jwt", k.secret)), "X-Jwt"},
		{"flex", fmt.Sprintf("- jwt-validation-flex: {signingMethod: hmac, textKey: %q, jwtOrigin: customExpression, clientIdExpression: '$token.claims.azp'}", k.secret), "jwt"},
		{"flex expressions", fmt.Sprintf(`- jwt-validation-flex:
    signingMethod: hmac
    textKey: %q
    jwtOrigin: customExpression
    jwtExpression: "#[attributes.headers['x-token']]"
    clientIdExpression: "#[lower(vars.claimSet.azp)]"
    validateCustomClaim: true
    mandatoryCustomClaims: [{key: scope, value: "#[vars.claimSet.scope contains 'a']"}]`, k.secret), "X-Token"},
	} {
		f := setup(t, c.policy)
		tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims("client_id", `"shop-app"`, "azp", `"web"`, "scope", `"a b"`))
		value := tok
		if c.header == "Authorization" {
			value = "Bearer " + tok
		}
		ctx := chaintest.Ctx("/orders/1", c.header, value)
		ex := chain.AcquireExchange()
		ex.Prepare(f.c)
		run := func() {
			ex.Reset()
			ex.Prepare(f.c)
			if rej := f.c.RunRequest(ctx, ex); rej != nil {
				t.Fatalf("%s: %v", c.name, rej)
			}
		}
		run()
		if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
			t.Errorf("%s: %v allocations per cached token, want 0", c.name, allocs)
		}
		want := "shop-app"
		if strings.HasPrefix(c.name, "flex") {
			want = "web"
		}
		if got := string(ex.Value(clientValue)); got != want {
			t.Errorf("%s: client.id %q, want %q", c.name, got, want)
		}
		chain.ReleaseExchange(ex)
	}
}
