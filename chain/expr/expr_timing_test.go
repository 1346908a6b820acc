package expr

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
)

func BenchmarkAppend(b *testing.B) {
	tmpl := MustCompile("v1-$request.method $request.header.X-Api-Key $datetime")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx("http://gw/api/x", "X-Api-Key", "k1")
		ex := &chain.Exchange{}
		buf := make([]byte, 0, 128)
		for pb.Next() {
			buf = tmpl.Append(buf[:0], ctx, ex)
		}
	})
}

func BenchmarkAppendValues(b *testing.B) {
	tmpl := MustCompile(`$test.user/$test.claims.email/${test.claims.roles[1]}/$test.claims.address.country`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx("http://gw/api/x")
		ex := &chain.Exchange{}
		ex.SetValue(testUser, []byte("ann"))
		ex.SetValue(testClaims, []byte(testClaimsJSON))
		buf := make([]byte, 0, 128)
		for pb.Next() {
			buf = tmpl.Append(buf[:0], ctx, ex)
		}
	})
}
