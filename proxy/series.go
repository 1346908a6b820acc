package proxy

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// seriesRefs hands out metric series by name and counts their owners, so
// that a series shared by an old and a new generation of an upstream (a
// reload that keeps its targets) survives the old one's retirement, and one
// that no target owns any more is unregistered: targets that come and go
// with DNS leave no series behind. Safe for concurrent use.
type seriesRefs struct {
	mu   sync.Mutex
	set  *metrics.Set
	refs map[string]int
}

// newSeriesRefs hands out series of set; nil set: of a set nothing exports
// (validate).
func newSeriesRefs(set *metrics.Set) *seriesRefs {
	if set == nil {
		set = metrics.NewSet()
	}
	return &seriesRefs{set: set, refs: map[string]int{}}
}

func (s *seriesRefs) counter(name string) *metrics.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[name]++
	return s.set.GetOrCreateCounter(name)
}

// gauge returns a gauge that is Set, not read through a callback: the
// owner that sets it may change while the series stays.
func (s *seriesRefs) gauge(name string) *metrics.Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[name]++
	return s.set.GetOrCreateGauge(name, nil)
}

func (s *seriesRefs) histogram(name string) *metrics.PrometheusHistogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[name]++
	return s.set.GetOrCreatePrometheusHistogram(name)
}

// release drops one owner of each series, and the series that have none
// left.
func (s *seriesRefs) release(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.refs[n]--; s.refs[n] <= 0 {
			delete(s.refs, n)
			s.set.UnregisterMetric(n)
		}
	}
}

// poolRegistry holds the connection pools by key and counts their owners,
// so that targets with equal addresses and connection settings share one
// pool, across upstreams and across reloads, and a pool no target uses any
// more is closed. Safe for concurrent use.
type poolRegistry struct {
	mu    sync.Mutex
	pools map[string]*pool
}

func newPoolRegistry() *poolRegistry { return &poolRegistry{pools: map[string]*pool{}} }

// acquire returns the pool of spec, with one more owner; fresh says it
// was built now, as no target had its address and settings.
func (r *poolRegistry) acquire(spec poolSpec, gate *connGate, o upstreamOptions) (p *pool, fresh bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[spec.key(o.maxHeader())]; ok {
		p.refs++
		return p, false, nil
	}
	if p, err = newPool(spec, gate, o); err != nil {
		return nil, false, err
	}
	p.refs = 1
	r.pools[p.key] = p
	return p, true, nil
}

// release drops one owner of p and closes it when it has none left.
func (r *poolRegistry) release(p *pool, series *seriesRefs) {
	r.mu.Lock()
	p.refs--
	last := p.refs == 0
	if last {
		delete(r.pools, p.key)
	}
	r.mu.Unlock()
	if last {
		p.close(series)
	}
}

// closeAll closes every pool (at shutdown).
func (r *poolRegistry) closeAll(series *seriesRefs) {
	r.mu.Lock()
	pools := r.pools
	r.pools = map[string]*pool{}
	r.mu.Unlock()
	for _, p := range pools {
		p.close(series)
	}
}
