package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// BenchmarkStoreHotKey is the worst case for sharding: every goroutine
// takes from one client's bucket.
func BenchmarkStoreHotKey(b *testing.B) { benchHotKey(b, NewRule(1_000_000_000, time.Second)) }

// BenchmarkStoreManyKeys spreads 100,000 clients over the shards.
func BenchmarkStoreManyKeys(b *testing.B) { benchManyKeys(b, NewRule(1_000_000, time.Second)) }

// BenchmarkStoreWindowHotKey and BenchmarkStoreWindowManyKeys are the two
// above with rate-limiting-flex's fixed windows instead of buckets: run
// them alternately with those (-bench 'Store(Window)?HotKey' -count) to
// compare.
func BenchmarkStoreWindowHotKey(b *testing.B) {
	benchHotKey(b, NewFixedWindow(1_000_000_000, time.Second))
}

func BenchmarkStoreWindowManyKeys(b *testing.B) {
	benchManyKeys(b, NewFixedWindow(1_000_000, time.Second))
}

func benchHotKey(b *testing.B, rule Rule) {
	s := NewMemStore(DefaultMaxKeys, 0, monoClock)
	defer s.Close()
	rules := []Rule{rule}
	key := []byte("203.0.113.9")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Take(key, monoClock(), rules)
		}
	})
}

func benchManyKeys(b *testing.B, rule Rule) {
	s := NewMemStore(DefaultMaxKeys, 0, monoClock)
	defer s.Close()
	rules := []Rule{rule}
	const clients = 100_000
	keys := make([][]byte, clients)
	for i := range keys {
		keys[i] = []byte("10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
		s.Take(keys[i], monoClock(), rules)
	}
	var next atomic.Uint64
	b.ResetTimer()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(7919)
		for pb.Next() {
			i++
			s.Take(keys[i%clients], monoClock(), rules)
		}
	})
}

// BenchmarkLimiterPolicy is the whole policy as the chain runs it:
// request and response phase with the X-RateLimit-* headers.
func BenchmarkLimiterPolicy(b *testing.B) {
	set, _, err := chaintest.Compile(b, chaintest.Gateway("        - rate-limiting:\n            limit: 1000000\n            period: 1\n"))
	if err != nil {
		b.Fatal(err)
	}
	c := set.Chains[0]
	var n atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := chaintest.Ctx("http://gw/api/x")
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		addr := []byte("10.2.0." + strconv.Itoa(int(n.Add(1))))
		for pb.Next() {
			ex.Prepare(c)
			ex.RemoteAddr = append(ex.RemoteAddr, addr...)
			c.RunRequest(ctx, ex)
			c.RunResponse(ctx, ex)
			ex.Reset()
		}
	})
}
