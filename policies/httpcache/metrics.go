package httpcache

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/metriclabel"
)

// series are a route's cache metrics. The entries gauge outlives an
// instance (GetOrCreateGauge keeps its first callback), so it reads the
// route's live stores from a registry.
type series struct {
	route                                                   string
	hit, coalesced, miss, bypass, ambiguous, stored, passed *metrics.Counter
}

var (
	liveMu sync.Mutex
	live   = map[string]map[store]struct{}{}
)

func newSeries(env *chain.Env, route string, st store) *series {
	label := func(result string) string {
		return `flexgate_cache_requests_total{route=` + metriclabel.Quote(route) + `,result="` + result + `"}`
	}
	liveMu.Lock()
	if live[route] == nil {
		live[route] = map[store]struct{}{}
	}
	live[route][st] = struct{}{}
	liveMu.Unlock()
	env.Metrics.GetOrCreateGauge(`flexgate_cache_entries{route=`+metriclabel.Quote(route)+`}`, func() float64 {
		liveMu.Lock()
		defer liveMu.Unlock()
		n := 0
		for s := range live[route] {
			n += s.len()
		}
		return float64(n)
	})
	m := env.Metrics
	return &series{route: route,
		hit: m.GetOrCreateCounter(label("hit")), coalesced: m.GetOrCreateCounter(label("coalesced")),
		miss: m.GetOrCreateCounter(label("miss")), bypass: m.GetOrCreateCounter(label("bypass")),
		ambiguous: m.GetOrCreateCounter(label("ambiguous")),
		stored:    m.GetOrCreateCounter(`flexgate_cache_stores_total{route=` + metriclabel.Quote(route) + `}`),
		passed:    m.GetOrCreateCounter(`flexgate_cache_not_stored_total{route=` + metriclabel.Quote(route) + `}`)}
}

func (s *series) untrack(st store) {
	liveMu.Lock()
	delete(live[s.route], st)
	liveMu.Unlock()
}
