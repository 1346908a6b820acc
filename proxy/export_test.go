package proxy

// InFlight is how many requests the plan in force counts as running.
func (g *Gateway) InFlight() int64 { return g.plan.Load().inflight.Load() }
