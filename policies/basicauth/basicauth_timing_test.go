package basicauth

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkKnownUser is the common path: a user whose password is known,
// plain, SHA-256, bcrypt or SHA-crypt (the last two after their first
// request, from the cache).
func BenchmarkKnownUser(b *testing.B) {
	f := mustCompile(b, fmt.Sprintf(`- http-basic-authentication: {users: [{username: plain, password: one}, {username: bcrypt, passwordHash: "%s"},
    {username: sha, passwordHash: "sha256:%x"}, {username: crypt, passwordHash: "%s"}]}`,
		bcryptOf(b, "two"), sha256.Sum256([]byte("three")), shaCryptVectors[0].hash))
	for _, creds := range []string{basic("plain", "one"), basic("bcrypt", "two"), basic("sha", "three"), basic("crypt", shaCryptVectors[0].password)} {
		b.Run(creds, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := chaintest.Ctx("http://gw/api/x")
				ex := chain.AcquireExchange()
				ex.Prepare(f.c)
				for pb.Next() {
					ctx.Request.Header.Set("Authorization", creds)
					if rej := f.c.RunRequest(ctx, ex); rej != nil {
						b.Fatal(rej)
					}
				}
			})
		})
	}
}
