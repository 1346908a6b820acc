package jwt

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
)

// jwksPolicy is a jwt-validation policy with a JWKS at url and extra
// parameters.
func jwksPolicy(url, extra string) string {
	return policy(fmt.Sprintf("jwks: {url: %q}\n%s", url, extra))
}

func TestJWKSRotationAndFlood(t *testing.T) {
	k := keysOnce()
	p := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}))
	f := setup(t, jwksPolicy(p.url(), ""))
	f.waitKeys()
	if p.calls.Load() != 1 {
		t.Fatalf("%d fetches at start, want 1", p.calls.Load())
	}
	f.wantOK("kid k1", sign(t, "RS256", k.rsa, hdr("RS256", "k1"), claims()))

	// A flood of made-up kids, concurrently: the set is fetched again once
	// in the interval, however many ask.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, "RS256", k.rsa2, hdr("RS256", fmt.Sprintf("random-%d", i)), claims())
			if r := f.do(tok); r.rej == nil || r.rej.Status != 401 {
				t.Errorf("random kid %d: %v", i, r.rej)
			}
		}()
	}
	wg.Wait()
	if got := p.calls.Load(); got > 1 {
		t.Errorf("%d fetches for 200 unknown kids within %s of the first fetch, want none", got-1, MinRefreshInterval)
	}
	f.clock.advance(MinRefreshInterval)
	for i := range 50 {
		f.do(sign(t, "RS256", k.rsa2, hdr("RS256", fmt.Sprintf("again-%d", i)), claims()))
	}
	if got := p.calls.Load(); got != 2 {
		t.Errorf("%d fetches after the interval, want 2", got)
	}
	if n := f.counter(`flexgate_jwt_jwks_refresh_throttled_total{route="orders"}`); n < 200 {
		t.Errorf("throttled refreshes counted %d", n)
	}

	// The identity provider rotates: k2 is added. A token with k2 makes
	// the gateway fetch the set again (once the interval has passed), and
	// passes.
	p.set(jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}, jwkEntry{pub: &k.rsa2.PublicKey, kid: "k2"}), 0)
	f.clock.advance(MinRefreshInterval)
	f.wantOK("new kid k2", sign(t, "RS256", k.rsa2, hdr("RS256", "k2"), claims("n", "1")))
	if got := p.calls.Load(); got != 3 {
		t.Errorf("%d fetches, want 3", got)
	}
}

func TestJWKSDown(t *testing.T) {
	k := keysOnce()
	p := newIdP(t, nil)
	p.set(nil, 503)
	f := setup(t, jwksPolicy(p.url(), ""))
	f.waitKeys()
	tok := sign(t, "RS256", k.rsa, hdr("RS256", "k1"), claims())
	// Never fetched: 503, as Flex Gateway answers.
	r := f.do(tok)
	if r.rej == nil || r.rej.Status != 503 || r.rej.Reason != "jwks_unavailable" {
		t.Fatalf("no set ever fetched: %v", r.rej)
	}
	// The set arrives.
	p.set(jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}), 0)
	f.clock.advance(MinRefreshInterval)
	f.wantOK("after the IdP came up", tok)

	// Down again, and the set's TTL has passed: the last good set is
	// used for tokens never seen.
	p.set(nil, 500)
	f.clock.advance(DefaultJWKSTTL + time.Second)
	calls := p.calls.Load()
	f.v.rt.keys.refreshDue()
	if p.calls.Load() != calls+1 {
		t.Fatalf("the expired set was not fetched again")
	}
	if n := f.counter(`flexgate_jwt_jwks_fetches_total{route="orders",result="error"}`); n < 2 {
		t.Errorf("failed fetches counted %d", n)
	}
	f.wantOK("new token while the IdP is down", sign(t, "RS256", k.rsa, hdr("RS256", "k1"), claims("n", "2")))
	// Backoff: not due again at once; due after a second, then two.
	s := f.v.rt.keys.sources[0]
	if d := s.due().Sub(f.clock.now()); d != time.Second {
		t.Errorf("next try in %s after one failure, want 1s", d)
	}
	f.clock.advance(time.Second)
	f.v.rt.keys.refreshDue()
	if d := s.due().Sub(f.clock.now()); d != 2*time.Second {
		t.Errorf("next try in %s after two failures, want 2s", d)
	}
}

func TestJWKSHungEndpointTimesOut(t *testing.T) {
	k := keysOnce()
	p := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}))
	hold := make(chan struct{})
	defer close(hold)
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
	f := setup(t, policy(fmt.Sprintf("jwks: {url: %q, timeout: 200ms}", p.url())))
	r := f.do(sign(t, "RS256", k.rsa, hdr("RS256", "k1"), claims()))
	if r.rej == nil || r.rej.Status != 503 {
		t.Errorf("hung JWKS endpoint: %v, want 503", r.rej)
	}
}

// TestJWKSSlowEndpointDoesNotHoldRequests: a request with an unknown kid
// waits for the fetch it joined for maxDemandWait, not for the fetch's
// whole timeout (here a minute), and is answered while the identity
// provider still holds the fetch.
func TestJWKSSlowEndpointDoesNotHoldRequests(t *testing.T) {
	defer func(d time.Duration) { maxDemandWait = d }(maxDemandWait)
	maxDemandWait = 50 * time.Millisecond
	k := keysOnce()
	p := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}))
	hold := make(chan struct{})
	defer close(hold)
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
	f := setup(t, policy(fmt.Sprintf("jwks: {url: %q, timeout: 1m}", p.url())))
	tok := sign(t, "RS256", k.rsa, hdr("RS256", "k1"), claims())
	done := make(chan *chain.Rejection, 1)
	go func() { done <- f.do(tok).rej }()
	select {
	case rej := <-done:
		if rej == nil || rej.Status != 503 {
			t.Errorf("JWKS endpoint still answering: %v, want 503", rej)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request waited for the JWKS fetch's whole timeout")
	}
}

func TestJWKSKeyDroppedInvalidatesCache(t *testing.T) {
	k := keysOnce()
	p := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "k1"}, jwkEntry{pub: &k.rsa2.PublicKey, kid: "k2"}))
	f := setup(t, jwksPolicy(p.url(), ""))
	f.waitKeys()
	day := fmt.Sprintf(`{"sub":"alice","exp":%d}`, start.Add(24*time.Hour).Unix())
	t1 := sign(t, "RS256", k.rsa, hdr("RS256", "k1"), day)
	t2 := sign(t, "RS256", k.rsa2, hdr("RS256", "k2"), day)
	f.wantOK("k1", t1)
	f.wantOK("k2", t2)
	hits := f.counter(`flexgate_jwt_cache_total{route="orders",result="hit"}`)
	f.wantOK("k1 again", t1)
	if f.counter(`flexgate_jwt_cache_total{route="orders",result="hit"}`) != hits+1 {
		t.Fatal("a repeated token was not served from the cache")
	}
	// k1 is revoked: the next fetch drops it, and its cached token with it.
	p.set(jwksOf(t, jwkEntry{pub: &k.rsa2.PublicKey, kid: "k2"}), 0)
	f.clock.advance(DefaultJWKSTTL)
	f.v.rt.keys.refreshDue()
	f.wantRefused("k1 after its key was dropped", t1, 401, "invalid_token")
	// k2 kept its identity: its token is still cached.
	hits = f.counter(`flexgate_jwt_cache_total{route="orders",result="hit"}`)
	f.wantOK("k2 after the fetch", t2)
	if f.counter(`flexgate_jwt_cache_total{route="orders",result="hit"}`) != hits+1 {
		t.Error("a key the fetch kept lost its cached tokens")
	}
}

func TestJWKSSeveralURLsAndKeyTypes(t *testing.T) {
	k := keysOnce()
	a := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "a"}))
	b := newIdP(t, jwksOf(t,
		jwkEntry{pub: &k.ec256.PublicKey, kid: "b-ec"},
		jwkEntry{pub: k.ed.Public(), kid: "b-ed"},
		jwkEntry{pub: k.secret, kid: "b-oct"}, // a secret published: left out
		jwkEntry{pub: &k.rsa2.PublicKey, kid: "b-enc", extra: map[string]any{"use": "enc"}},
		jwkEntry{pub: &k.rsa2.PublicKey, kid: "b-ps", alg: "PS256"},
	))
	f := setup(t, policy(fmt.Sprintf("jwks: {url: [%q, %q]}", a.url(), b.url())))
	f.waitKeys()
	f.wantOK("a", sign(t, "RS256", k.rsa, hdr("RS256", "a"), claims()))
	f.wantOK("b-ec", sign(t, "ES256", k.ec256, hdr("ES256", "b-ec"), claims()))
	f.wantOK("b-ed", sign(t, "EdDSA", k.ed, hdr("EdDSA", "b-ed"), claims()))
	f.wantRefused("published secret", sign(t, "HS256", k.secret, hdr("HS256", "b-oct"), claims()), 401, "invalid_token")
	f.wantRefused("encryption key", sign(t, "RS256", k.rsa2, hdr("RS256", "b-enc"), claims()), 401, "invalid_token")
	f.wantOK("alg of the JWK", sign(t, "PS256", k.rsa2, hdr("PS256", "b-ps"), claims()))
	f.wantRefused("another alg than the JWK's", sign(t, "RS256", k.rsa2, hdr("RS256", "b-ps"), claims()), 401, "invalid_token")
}

func TestParseJWKS(t *testing.T) {
	k := keysOnce()
	for _, c := range []struct {
		name, body, want string
	}{
		{"not JSON", "<html>", "not a JWK set"},
		{"empty", `{"keys":[]}`, "no keys"},
		{"private key", string(jwksOf(t, jwkEntry{pub: k.rsa, kid: "p"})), "private"},
		{"only secrets", string(jwksOf(t, jwkEntry{pub: k.secret})), "symmetric"},
		{"small RSA", `{"keys":[{"kty":"RSA","n":"` + strings.Repeat("A", 171) + `Q","e":"AQAB"}]}`, "key"},
	} {
		_, _, err := parseJWKS([]byte(c.body), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
