package ratelimit

import (
	"sync"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/metriclabel"
)

// The bucket gauge outlives any one Limiter: a reload compiles the policy
// again and GetOrCreateGauge returns the first gauge with its first
// callback. So the callback reads this registry of live stores by route
// rather than holding a store itself.
var (
	liveMu     sync.Mutex
	liveStores = map[string]map[*MemStore]struct{}{}
)

func track(env *chain.Env, route string, s *MemStore) {
	liveMu.Lock()
	if liveStores[route] == nil {
		liveStores[route] = map[*MemStore]struct{}{}
	}
	liveStores[route][s] = struct{}{}
	liveMu.Unlock()
	env.Metrics.GetOrCreateGauge(bucketsName(route), func() float64 {
		return float64(buckets(route))
	})
}

func untrack(route string, s *MemStore) {
	liveMu.Lock()
	delete(liveStores[route], s)
	liveMu.Unlock()
}

// bucketsName is the gauge of the token buckets a route holds.
func bucketsName(route string) string {
	return `flexgate_ratelimit_buckets{route=` + metriclabel.Quote(route) + `}`
}

// buckets is the number of token buckets held in memory for route.
func buckets(route string) int {
	liveMu.Lock()
	defer liveMu.Unlock()
	n := 0
	for s := range liveStores[route] {
		n += s.Len()
	}
	return n
}
