package jwt

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flexgate/flexgate/internal/rfc6750"
)

// FuzzParseToken: whatever a client sends, parsing does not panic, and a
// token it accepts has three parts, an algorithm other than none and
// claims that are one JSON object without repeated names. The whole
// verification runs too, with every kind of key.
func FuzzParseToken(f *testing.F) {
	k := keysOnce()
	for _, s := range []string{
		sign(f, "RS256", k.rsa, hdr("RS256", "k"), claims()),
		sign(f, "ES256", k.ec256, `{"alg":"ES256","crit":["x"]}`, claims()),
		sign(f, "HS256", k.secret, hdr("HS256", ""), `{"sub":"a","sub":"b"}`),
		sign(f, "EdDSA", k.ed, hdr("EdDSA", ""), `{"aud":["a",1],"exp":"x"}`),
		enc(`{"alg":"none"}`) + "." + enc(`{}`) + ".",
		"a.b.c", "..", "", strings.Repeat("A", 100),
	} {
		f.Add([]byte(s))
	}
	v := setup(f, policy(fmt.Sprintf("keys:\n  - pem: |\n%s  - secret: %q\nrequireExp: false",
		indentLines(pemOf(f, &k.rsa.PublicKey), "      "), k.secret))).v
	f.Fuzz(func(t *testing.T, tok []byte) {
		p, fail := parseToken(tok)
		if fail == failNone {
			if bytes.Count(tok, []byte{'.'}) != 2 || p.alg == "" || strings.EqualFold(p.alg, "none") {
				t.Fatalf("accepted %q: alg %q", tok, p.alg)
			}
			if p.claims[0] != '{' || !jsontext.Value(p.claims).IsValid() {
				t.Fatalf("accepted claims %q", p.claims)
			}
		} else if p != nil {
			t.Fatal("a refused token came with a parse")
		}
		if e, fail := v.verify(tok, start); fail == failNone && e == nil {
			t.Fatal("verified without an entry")
		}
	})
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "bearer  x==", "Basic abc", "Bearer", "Bearer a b", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		tok, ok := bearer(v)
		if tok != nil && (!ok || !rfc6750.IsB64Token(tok) || bytes.ContainsAny(tok, " \t\r\n")) {
			t.Fatalf("bearer(%q) = %q, %v", v, tok, ok)
		}
	})
}

// FuzzParseJWKS: a JWK set comes from the network; whatever it holds,
// reading it does not panic, and every key it yields verifies at least one
// algorithm its type fits, never with a secret or private key published in
// the set.
func FuzzParseJWKS(f *testing.F) {
	k := keysOnce()
	f.Add(jwksOf(f, jwkEntry{pub: &k.rsa.PublicKey, kid: "r"}, jwkEntry{pub: &k.ec256.PublicKey, kid: "e", alg: "ES256"},
		jwkEntry{pub: k.ed.Public(), kid: "d"}))
	f.Add(jwksOf(f, jwkEntry{pub: &k.ec521.PublicKey, extra: map[string]any{"use": "enc", "key_ops": []string{"sign"}}}))
	f.Add(jwksOf(f, jwkEntry{pub: k.rsa}))
	for _, s := range []string{`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[]}`, `{"kty":"EC","crv":"P-256","x":"","y":""}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"HS256"}]}`, `[]`, `{"keys":{}}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, _, err := parseJWKS(body, nil)
		if err != nil && len(keys) > 0 {
			t.Fatalf("an error (%v) came with keys", err)
		}
		for _, vk := range keys {
			if _, secret := vk.raw.([]byte); secret || len(vk.algs) == 0 {
				t.Fatalf("key %q: %T verifying %v", vk.kid, vk.raw, vk.algs)
			}
			if _, err := algsFor(vk.raw); err != nil {
				t.Fatalf("key %q: %v", vk.kid, err)
			}
		}
	})
}
