package clientid

import "github.com/flexgate/flexgate/internal/metriclabel"

// requestsName is the counter of requests a client made on a route. The
// registry bounds its cardinality: only known clients get a series.
func requestsName(route, client string) string {
	return `flexgate_client_requests_total{route=` + metriclabel.Quote(route) + `,client=` + metriclabel.Quote(client) + `}`
}
