package jwt

import (
	"fmt"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkCachedToken is a request whose RS256 token is in the cache.
func BenchmarkCachedToken(b *testing.B) {
	k := keysOnce()
	f := setup(b, policy(fmt.Sprintf("keys:\n  - pem: |\n%s", indentLines(pemOf(b, &k.rsa.PublicKey), "      "))))
	tok := sign(b, "RS256", k.rsa, hdr("RS256", ""), claims())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("/orders/1", "Authorization", "Bearer "+tok)
		ex := chain.AcquireExchange()
		for pb.Next() {
			ex.Reset()
			ex.Prepare(f.c)
			if rej := f.c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
		}
	})
}

// BenchmarkVerifyRS256 is a new RS256 token each time: parsing, claims and
// the signature check.
func BenchmarkVerifyRS256(b *testing.B) {
	k := keysOnce()
	f := setup(b, policy(fmt.Sprintf("keys:\n  - pem: |\n%s", indentLines(pemOf(b, &k.rsa.PublicKey), "      "))))
	tok := []byte(sign(b, "RS256", k.rsa, hdr("RS256", ""), claims()))
	b.ReportAllocs()
	for b.Loop() {
		if _, fl := f.v.verify(tok, start); fl != failNone {
			b.Fatal(failureNames[fl])
		}
	}
}
