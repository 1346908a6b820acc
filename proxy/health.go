package proxy

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

// observe counts how a try on tg ended (uerr, or an answer of status) and
// feeds outlier detection: failures in a row eject the target.
func (u *upstream) observe(tg *target, uerr *upstreamError, status int) {
	if uerr != nil {
		if uerr.kind == failOverloaded || uerr.kind == failSaturated {
			// The gateway's own limits: the target did nothing wrong.
			if uerr.err == errConnLimit {
				u.m.overloaded[limitConnections].Inc()
			}
			return
		}
		tg.m.errors[uerr.kind].Inc()
	} else if status >= 500 {
		tg.m.status5xx.Inc()
	} else {
		// Stored only when it changes, so that busy targets do not
		// write a shared word on every answer.
		if tg.consecutive.Load() != 0 {
			tg.consecutive.Store(0)
		}
		return
	}
	n := tg.consecutive.Add(1)
	if c := u.cfg.Outlier.ConsecutiveFailures; c > 0 && int(n) >= c && tg.down.Load()&downEjected == 0 {
		u.eject(tg)
	}
}

// eject takes tg out of service for the outlier ejection time: the base
// time, times the ejections in a row, at most the maximum. It does not when
// the upstream has ejected its share of targets already, or when tg is the
// last target in service.
func (u *upstream) eject(tg *target) {
	o := u.cfg.Outlier
	u.healthMu.Lock()
	defer u.healthMu.Unlock()
	if tg.down.Load()&downEjected != 0 || tg.removed.Load() {
		return
	}
	s := u.set.Load()
	if int(u.ejected.Load()) >= max(1, len(s.targets)*o.MaxEjectionPercent/100) {
		return
	}
	others := false
	for _, t := range s.targets {
		if t != tg && t.down.Load() == 0 {
			others = true
			break
		}
	}
	if !others {
		return
	}
	now := time.Now()
	if now.UnixNano()-tg.ejectedUntil.Load() > int64(o.MaxEjectionTime) {
		// Long in service since the last ejection: the count starts over.
		tg.ejections.Store(0)
	}
	k := tg.ejections.Add(1)
	d := o.BaseEjectionTime * time.Duration(k)
	if d > o.MaxEjectionTime || d <= 0 {
		d = o.MaxEjectionTime
	}
	tg.ejectedUntil.Store(now.Add(d).UnixNano())
	tg.setDown(downEjected)
	u.ejected.Add(1)
	tg.m.ejections.Inc()
	u.log.Warn("upstream target ejected: its requests failed "+strconv.Itoa(o.ConsecutiveFailures)+" times in a row",
		"upstream", u.name, "target", tg.url, "for", d.String())
	time.AfterFunc(d, func() { u.readmit(tg, downEjected) })
}

// readmit clears one reason for tg to be out of service; with none left it
// is back, starting slowly.
func (u *upstream) readmit(tg *target, why uint32) {
	u.healthMu.Lock()
	defer u.healthMu.Unlock()
	if tg.down.Load()&why == 0 {
		return
	}
	if why == downEjected {
		u.ejected.Add(-1)
		tg.consecutive.Store(0)
	}
	if tg.clearDown(why) == 0 && !tg.removed.Load() {
		tg.startSlow()
		u.log.Info("upstream target back in service", "upstream", u.name, "target", tg.url)
	}
}

// markUnhealthy takes tg out of service because its health check fails.
func (u *upstream) markUnhealthy(tg *target) {
	u.healthMu.Lock()
	defer u.healthMu.Unlock()
	if tg.down.Load()&downUnhealthy != 0 {
		return
	}
	tg.setDown(downUnhealthy)
	u.log.Warn("upstream target failed its health check "+strconv.Itoa(u.cfg.HealthCheck.UnhealthyThreshold)+
		" times in a row and is out of service", "upstream", u.name, "target", tg.url)
}

func (t *target) setDown(why uint32) {
	for {
		old := t.down.Load()
		if t.down.CompareAndSwap(old, old|why) {
			t.m.healthy.Set(0)
			return
		}
	}
}

// clearDown clears why and returns what is left.
func (t *target) clearDown(why uint32) uint32 {
	for {
		old := t.down.Load()
		if t.down.CompareAndSwap(old, old&^why) {
			if old&^why == 0 {
				t.m.healthy.Set(1)
			}
			return old &^ why
		}
	}
}

// check probes tg every interval until it leaves the upstream: `GET path`
// on a connection of its own, with `Connection: close`, so that the probe
// also finds out whether a connection can be made. unhealthyThreshold
// failures in a row take tg out of service, healthyThreshold passes bring
// it back; a pass also ends an outlier ejection, as in Envoy.
func (u *upstream) check(tg *target) {
	hc := u.cfg.HealthCheck
	p := tg.pool
	client := &fasthttp.HostClient{
		Addr:                     p.addr,
		IsTLS:                    p.tlsConfig != nil,
		TLSConfig:                p.tlsConfig,
		DialTimeout:              p.dial,
		MaxConns:                 1,
		ReadBufferSize:           4 << 10,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
	req, resp := new(fasthttp.Request), new(fasthttp.Response)
	req.SetRequestURI(hc.Path)
	req.Header.SetHostBytes(p.host)
	req.Header.SetUserAgent("flexgate-health-check")
	req.SetConnectionClose()
	// Probes of many targets spread over the interval instead of
	// starting together; the first comes soon, so that a new target that
	// is not ready is found out quickly.
	timer := time.NewTimer(time.Duration(rand.Int64N(int64(min(hc.Interval, time.Second))/4 + 1)))
	defer timer.Stop()
	passes, fails := 0, 0
	for {
		select {
		case <-tg.stop:
			return
		case <-u.stop:
			return
		case <-u.opts.done:
			return
		case <-timer.C:
		}
		err := client.DoTimeout(req, resp, hc.Timeout)
		if err == nil && expected(hc.ExpectStatus, resp.StatusCode()) {
			fails, passes = 0, passes+1
			if tg.down.Load()&downEjected != 0 {
				u.readmit(tg, downEjected)
			}
			if passes >= hc.HealthyThreshold {
				u.readmit(tg, downUnhealthy)
			}
		} else {
			passes, fails = 0, fails+1
			if fails >= hc.UnhealthyThreshold {
				u.markUnhealthy(tg)
			}
		}
		timer.Reset(hc.Interval)
	}
}

func expected(ranges []config.StatusRange, status int) bool {
	for _, r := range ranges {
		if status >= r.From && status <= r.To {
			return true
		}
	}
	return false
}
