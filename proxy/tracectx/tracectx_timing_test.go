package tracectx

import "testing"

func BenchmarkAppendTraceparent(b *testing.B) {
	in := []byte(specExample)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 64)
		for pb.Next() {
			buf = AppendTraceparent(buf[:0], in)
		}
	})
}

func BenchmarkAppendRequestIDGenerated(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 64)
		for pb.Next() {
			buf = AppendRequestID(buf[:0], nil)
		}
	})
}
