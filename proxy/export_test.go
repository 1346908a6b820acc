package proxy

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// InFlight is how many requests the plan in force counts as running.
func (g *Gateway) InFlight() int64 { return g.plan.Load().inflight.Load() }

// WithNetwork makes the gateway of o resolve names with resolve and dial
// with dial, for tests that play DNS.
func WithNetwork(o *Options, resolve func(ctx context.Context, host string) ([]netip.Addr, error),
	dial func(addr string, timeout time.Duration) (net.Conn, error)) {
	o.resolve, o.dial = resolve, dial
}

// ParkAfter makes idle keep-alive connections park after d, so that tests
// need not wait a second for it.
func ParkAfter(d time.Duration) func(*Options) {
	return func(o *Options) { o.parkAfter = d }
}

// AdminCaps makes the admin server hold at most max connections, perClient
// of one client, so that tests need not open a thousand.
func AdminCaps(max, perClient int) func(*Options) {
	return func(o *Options) { o.adminConns, o.adminConnsPerClient = max, perClient }
}
