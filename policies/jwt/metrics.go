package jwt

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/internal/metriclabel"
)

// policyMetrics are one route's JWT series. They live in the gateway's
// long-lived set, so a reload finds the same counters.
type policyMetrics struct {
	// results counts verifications (cache misses) by outcome.
	results      [failCount]*metrics.Counter
	hit, miss    *metrics.Counter
	jwksOK       *metrics.Counter
	jwksError    *metrics.Counter
	throttled    *metrics.Counter
	jwksDuration *metrics.PrometheusHistogram
}

func newPolicyMetrics(set *metrics.Set, route string) *policyMetrics {
	r := `route=` + metriclabel.Quote(route)
	m := &policyMetrics{
		hit:          set.GetOrCreateCounter(`flexgate_jwt_cache_total{` + r + `,result="hit"}`),
		miss:         set.GetOrCreateCounter(`flexgate_jwt_cache_total{` + r + `,result="miss"}`),
		jwksOK:       set.GetOrCreateCounter(`flexgate_jwt_jwks_fetches_total{` + r + `,result="ok"}`),
		jwksError:    set.GetOrCreateCounter(`flexgate_jwt_jwks_fetches_total{` + r + `,result="error"}`),
		throttled:    set.GetOrCreateCounter(`flexgate_jwt_jwks_refresh_throttled_total{` + r + `}`),
		jwksDuration: set.GetOrCreatePrometheusHistogram(`flexgate_jwt_jwks_fetch_duration_seconds{` + r + `}`),
	}
	for f := range m.results {
		m.results[f] = set.GetOrCreateCounter(`flexgate_jwt_verifications_total{` + r + `,result="` + failureNames[f] + `"}`)
	}
	return m
}
