package introspection

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/internal/metriclabel"
)

// policyMetrics are one route's introspection series. They live in the
// gateway's long-lived set, so a reload finds the same counters.
type policyMetrics struct {
	active   *metrics.Counter
	inactive *metrics.Counter
	failed   *metrics.Counter
	hit      *metrics.Counter
	miss     *metrics.Counter
	duration *metrics.PrometheusHistogram
}

func newPolicyMetrics(set *metrics.Set, route string) *policyMetrics {
	r := `route=` + metriclabel.Quote(route)
	return &policyMetrics{
		active:   set.GetOrCreateCounter(`flexgate_introspection_requests_total{` + r + `,result="active"}`),
		inactive: set.GetOrCreateCounter(`flexgate_introspection_requests_total{` + r + `,result="inactive"}`),
		failed:   set.GetOrCreateCounter(`flexgate_introspection_requests_total{` + r + `,result="error"}`),
		hit:      set.GetOrCreateCounter(`flexgate_introspection_cache_total{` + r + `,result="hit"}`),
		miss:     set.GetOrCreateCounter(`flexgate_introspection_cache_total{` + r + `,result="miss"}`),
		duration: set.GetOrCreatePrometheusHistogram(`flexgate_introspection_duration_seconds{` + r + `}`),
	}
}
