package basicauth

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/internal/metriclabel"
)

// policyMetrics count one route's bcrypt checks: each costs tens of
// milliseconds of a core, so they show what the cache of accepted passwords
// saves and what a flood of wrong ones costs.
type policyMetrics struct {
	pass *metrics.Counter
	fail *metrics.Counter
}

func newPolicyMetrics(set *metrics.Set, route string) *policyMetrics {
	r := `route=` + metriclabel.Quote(route)
	return &policyMetrics{
		pass: set.GetOrCreateCounter(`flexgate_basic_auth_bcrypt_checks_total{` + r + `,result="pass"}`),
		fail: set.GetOrCreateCounter(`flexgate_basic_auth_bcrypt_checks_total{` + r + `,result="fail"}`),
	}
}
