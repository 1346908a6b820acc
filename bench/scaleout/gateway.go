package main

import (
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Paths of the gateway config's routes. The accuracy routes carry the low
// limit under test; the throughput routes a limit far above any load this
// machine can offer, so that the limiter's cost is measured, not its 429s.
const (
	pathAccuracy           = "/accuracy/x"
	pathAccuracyPerReplica = "/accuracy-per-replica/x"
	pathCluster            = "/cluster/x"
	pathClusterNoLease     = "/cluster-no-lease/x"
	pathPerReplica         = "/per-replica/x"
	// highLimit per 60 s: a million a second, which the gateways spend in
	// leases (replicas: FLEXGATE_MAX_REPLICAS).
	highLimit = 60000000
	// noLeaseLimit per 60 s, 4,000 a second for each client, is the
	// highest limit that replicas spend request by request, without
	// leases (ratelimit.leaseSize: a lease of limit ÷ (200² × replicas)
	// tokens is none under 2).
	noLeaseLimit = 2*200*200*replicas - 1
	// replicas is the gateways' FLEXGATE_MAX_REPLICAS: the three run.
	replicas = 3
)

// gatewayParams fill gatewayTemplate.
type gatewayParams struct {
	Redis, Upstream string
	// Limit per Period (seconds, as YAML writes it) for each client on
	// the accuracy routes.
	Limit  int
	Period string
	// HighLimit per 60 s on the throughput routes.
	HighLimit int
	// StoreTimeout, when set, is the clusterizable limits' storeTimeout
	// ("25ms"); empty keeps the policy's default.
	StoreTimeout string
}

// gatewayTemplate is the one config all three gateways run, as three pods
// of one Deployment would: five routes to the same upstream, each with one
// rate limit by X-Client, identical but for clusterizable and the limit.
// All five live in the same processes, so the clusterizable and
// per-replica throughputs are measured on the same three gateways.
var gatewayTemplate = template.Must(template.New("gateway").Option("missingkey=error").Parse(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: bench-scaleout
spec:
  sharedStorage:
    redis:
      address: "{{.Redis}}"
  routes:
{{- range .Routes}}
    - id: {{.ID}}
      path: ["{{.Path}}"]
      upstream:
        url: "http://{{$.Upstream}}"
      policies:
        - rate-limiting:
            limit: {{.Limit}}
            period: {{.Period}}
            identifier: $request.header.X-Client
            clusterizable: {{.Clusterizable}}
{{- if and .Clusterizable $.StoreTimeout}}
            storeTimeout: {{$.StoreTimeout}}
{{- end}}
{{- end}}
`))

type gatewayRoute struct {
	ID, Path      string
	Limit         int
	Period        string
	Clusterizable bool
}

// renderGateway is the config text for p.
func renderGateway(p gatewayParams) (string, error) {
	routePath := func(path string) string { return strings.TrimSuffix(path, "x") + "*" }
	data := struct {
		gatewayParams
		Routes []gatewayRoute
	}{p, []gatewayRoute{
		{"accuracy", routePath(pathAccuracy), p.Limit, p.Period, true},
		{"accuracy-per-replica", routePath(pathAccuracyPerReplica), p.Limit, p.Period, false},
		{"cluster", routePath(pathCluster), p.HighLimit, "60", true},
		{"cluster-no-lease", routePath(pathClusterNoLease), noLeaseLimit, "60", true},
		{"per-replica", routePath(pathPerReplica), p.HighLimit, "60", false},
	}}
	var b strings.Builder
	err := gatewayTemplate.Execute(&b, data)
	return b.String(), err
}

// yamlSeconds writes d as the seconds a rate limit's period takes ("2",
// "0.5").
func yamlSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
