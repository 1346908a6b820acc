package spikecontrol

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkSpikeControl admits requests through a window that never
// fills, from every core: the cost of the lock and the bisection.
func BenchmarkSpikeControl(b *testing.B) {
	c := chaintest.MustChain(b, "- spike-control: {limit: 1000000, period: 1ms, exposeHeaders: true}\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		for pb.Next() {
			ex.Prepare(c)
			c.RunRequest(ctx, ex)
			c.RunResponse(ctx, ex)
			ex.Reset()
		}
		chain.ReleaseExchange(ex)
	})
}

// BenchmarkSpikeControlRefused refuses requests over a full queue: what a
// flood costs.
func BenchmarkSpikeControlRefused(b *testing.B) {
	c := chaintest.MustChain(b, "- spike-control: {limit: 1, period: 5s, queueLimit: 1}\n")
	s := c.Policies[0].Policy.(*Spike)
	s.queued.Store(1 << 40)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		for pb.Next() {
			ex.Prepare(c)
			c.RunRequest(ctx, ex)
			ex.Reset()
		}
		chain.ReleaseExchange(ex)
	})
}
