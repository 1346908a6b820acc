package spikecontrol

import (
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/metriclabel"
)

// series are a route's spike control metrics. The queue gauge outlives an
// instance (GetOrCreateGauge keeps its first callback, and a reload
// provisions a new instance), so it reads the count of the route's newest
// instance through a pointer that each Provision replaces.
type series struct {
	// delayed counts requests that waited in the queue and then passed;
	// refusals are counted by the gateway (flexgate_policy_rejections_total).
	delayed *metrics.Counter
}

var (
	queuesMu sync.Mutex
	queues   = map[string]*atomic.Pointer[atomic.Int64]{}
)

func newSeries(env *chain.Env, route string, queued *atomic.Int64) *series {
	label := `{route=` + metriclabel.Quote(route) + `}`
	queuesMu.Lock()
	p := queues[route]
	if p == nil {
		p = new(atomic.Pointer[atomic.Int64])
		queues[route] = p
	}
	queuesMu.Unlock()
	p.Store(queued)
	env.Metrics.GetOrCreateGauge(`flexgate_spike_control_queued`+label, func() float64 {
		if q := p.Load(); q != nil {
			return float64(q.Load())
		}
		return 0
	})
	return &series{delayed: env.Metrics.GetOrCreateCounter(`flexgate_spike_control_delayed_total` + label)}
}
