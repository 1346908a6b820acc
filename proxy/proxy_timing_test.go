package proxy_test

import (
	"testing"
)

// BenchmarkProxyRoundTrip is a client → gateway → upstream round trip on
// loopback, one connection per goroutine.
func BenchmarkProxyRoundTrip(b *testing.B) {
	gw := startPassthrough(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rt := newRoundTrip(b, gw.URL, "/api/products/42")
		for pb.Next() {
			rt.do(b)
		}
	})
}
