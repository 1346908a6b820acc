package jwt

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
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
		if tok != nil && (!ok || !isB64Token(tok) || bytes.ContainsAny(tok, " \t\r\n")) {
			t.Fatalf("bearer(%q) = %q, %v", v, tok, ok)
		}
	})
}
