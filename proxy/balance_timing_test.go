package proxy

import (
	"testing"

	"github.com/flexgate/flexgate/config"
)

// BenchmarkPick is the balancer's decision for one request, from many
// goroutines at once, for each policy: three targets of weights 5, 3 and
// 2, and thirty of equal weight.
func BenchmarkPick(b *testing.B) {
	thirty := make([]int, 30)
	for i := range thirty {
		thirty[i] = 1
	}
	for _, lb := range []config.LoadBalancing{config.RoundRobin, config.Random, config.LeastRequest} {
		for _, tc := range []struct {
			name    string
			weights []int
		}{{"3-weighted", []int{5, 3, 2}}, {"30-equal", thirty}} {
			b.Run(string(lb)+"/"+tc.name, func(b *testing.B) {
				u := testUpstream(b, lb, tc.weights, nil)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var tr tried
						tg := u.pick(u.set.Load(), &tr)
						tg.begin()
						tg.finish()
					}
				})
			})
		}
	}
}
