package clientid

import "strconv"

// requestsName is the counter of requests a client made on a route. The
// registry bounds its cardinality: only known clients get a series.
func requestsName(route, client string) string {
	return `flexgate_client_requests_total{route=` + strconv.Quote(route) + `,client=` + strconv.Quote(client) + `}`
}
