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
