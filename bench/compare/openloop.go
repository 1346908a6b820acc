package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/flexgate/flexgate/bench/wrk"
)

// openLoopMaxConns bounds the load generator's workers and connections.
const openLoopMaxConns = 2048

// OpenLoopResult is one constant-rate run against one target.
type OpenLoopResult struct {
	Target string
	// Percent of nginx's maximum, and the rate that is (requests a second).
	Percent int
	Rate    int
	// Achieved is the rate at which requests were actually sent; below Rate
	// means the load generator fell behind (the machine is saturated).
	Achieved float64
	Requests int
	// OK counts 2xx answers; Errors the rest (transport errors, timeouts,
	// other statuses).
	OK, Errors int
	// Latencies from the intended send time (coordinated omission
	// corrected): a request the generator sent late because the target was
	// slow counts its wait.
	P50, P99, P999, Max time.Duration
	// SendLagP99 is how late the generator sent requests (99th percentile):
	// large values mean the client, not the target, was the bottleneck.
	SendLagP99 time.Duration
}

// openLoopPhase offers each open-loop target a constant rate at each
// percentage of nginx's maximum (from the rounds' first case, or a
// calibration run when the rounds did not measure it).
func openLoopPhase(ctx context.Context, rep *Report, targets []*Target, script string, p plan) {
	o := rep.Options
	var nginx *Target
	for _, t := range targets {
		if t.Name == "nginx" {
			nginx = t
		}
	}
	if nginx == nil {
		rep.Notes = append(rep.Notes, "the open-loop phase needs the nginx target (its maximum sets the rates): skipped")
		return
	}
	maxRPS := 0.0
	if row, ok := rep.row(Case{Body: o.bodies[0], Conns: o.conns[0]}, "nginx"); ok {
		maxRPS = row.RPS
	} else {
		res, err := runWrk(ctx, script, wrk.Load{URL: nginx.URL(pathFor(o.bodies[0])), Headers: benchHeaders, Conns: o.conns[0], Duration: p.openLoop})
		if err != nil {
			rep.Notes = append(rep.Notes, "open-loop phase: nginx's calibration run failed: "+firstLine(err.Error()))
			return
		}
		maxRPS = res.RPS()
		logf("open loop: nginx's maximum, measured for the rates: %.0f req/s", maxRPS)
	}
	rep.OpenLoopBase = maxRPS
	for _, pct := range o.openLoop {
		rate := int(maxRPS * float64(pct) / 100)
		if rate < 1 {
			continue
		}
		for _, t := range targets {
			if !t.openLoop() || ctx.Err() != nil {
				continue
			}
			r, err := runOpenLoop(ctx, t, o.bodies[0], rate, p.openLoop)
			if err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("open loop %s at %d req/s: %s", t.Name, rate, firstLine(err.Error())))
				continue
			}
			r.Percent = pct
			rep.OpenLoop = append(rep.OpenLoop, r)
			logf("open loop %3d%% %-15s %6d req/s  p50 %6.2f  p99 %7.2f  p99.9 %7.2f ms  sent %.0f/s  lag p99 %.2f ms",
				pct, t.Name, rate, msf(r.P50), msf(r.P99), msf(r.P999), r.Achieved, msf(r.SendLagP99))
		}
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runOpenLoop sends rate requests a second to t for d with vegeta, and
// reads the latencies from the intended send times.
func runOpenLoop(ctx context.Context, t *Target, body string, rate int, d time.Duration) (OpenLoopResult, error) {
	hdr := http.Header{}
	for _, h := range benchHeaders {
		k, v, _ := strings.Cut(h, ":")
		hdr.Set(k, strings.TrimSpace(v))
	}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: t.URL(pathFor(body)), Header: hdr})
	// The transport is ours so that its connections can be closed after
	// the run: left open, every run's keep-alive connections stay in this
	// process and the idle phase runs out of files.
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Timeout(5*time.Second),
		vegeta.KeepAlive(true),
		// A target that falls behind makes vegeta open a worker and a
		// connection per late request; the cap keeps that within the file
		// limit, and a request it delays is charged its wait (corrected
		// latencies), so the cap hides nothing.
		vegeta.MaxWorkers(openLoopMaxConns),
		vegeta.Connections(openLoopMaxConns),
		vegeta.MaxConnections(openLoopMaxConns),
		vegeta.HTTP2(false),
		vegeta.TLSConfig(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // the benchmark's own certificate
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.MaxBody(0), // read and drop the body: keep no copy per request
	)
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	samples := make([]sentSample, 0, int(float64(rate)*d.Seconds())+16)
	res := OpenLoopResult{Target: t.Name, Rate: rate}
	for r := range atk.Attack(targeter, pacer, d, t.Name) {
		samples = append(samples, sentSample{seq: r.Seq, sent: r.Timestamp, latency: r.Latency})
		res.Requests++
		switch {
		case r.Error != "":
			res.Errors++
		case r.Code >= 200 && r.Code < 300:
			res.OK++
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if len(samples) == 0 {
		return res, fmt.Errorf("no request was sent")
	}
	s := correctedLatencies(samples, time.Second/time.Duration(rate))
	res.P50, res.P99, res.P999, res.Max = s.quantile(0.50), s.quantile(0.99), s.quantile(0.999), s.latencies[len(s.latencies)-1]
	res.SendLagP99 = s.lagQuantile(0.99)
	res.Achieved = s.sendRate()
	return res, nil
}

// sentSample is what the latency accounting needs of one request.
type sentSample struct {
	seq     uint64
	sent    time.Time
	latency time.Duration
}

// corrected holds the sorted latencies from the intended send times.
type corrected struct {
	latencies, lags []time.Duration
	first, last     time.Time
	n               int
}

// correctedLatencies turns vegeta's samples (latency measured from the
// actual send) into latencies from the intended send time: request seq was
// due at start + seq×interval, and a request sent late (the generator was
// short of workers or CPU) waited that long too. start is unknown to the
// caller, but no request is ever sent early, so the earliest sent-minus-due
// over all samples is the start.
func correctedLatencies(ss []sentSample, interval time.Duration) corrected {
	c := corrected{n: len(ss)}
	start := ss[0].sent.Add(-time.Duration(ss[0].seq) * interval)
	c.first, c.last = ss[0].sent, ss[0].sent
	for _, s := range ss {
		if due := s.sent.Add(-time.Duration(s.seq) * interval); due.Before(start) {
			start = due
		}
		if s.sent.Before(c.first) {
			c.first = s.sent
		}
		if s.sent.After(c.last) {
			c.last = s.sent
		}
	}
	c.latencies = make([]time.Duration, len(ss))
	c.lags = make([]time.Duration, len(ss))
	for i, s := range ss {
		due := start.Add(time.Duration(s.seq) * interval)
		lag := s.sent.Sub(due)
		c.lags[i] = lag
		c.latencies[i] = lag + s.latency
	}
	slices.Sort(c.latencies)
	slices.Sort(c.lags)
	return c
}

// quantile of sorted durations, nearest rank.
func quantileOf(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(len(sorted)-1, max(0, i))]
}

func (c corrected) quantile(q float64) time.Duration    { return quantileOf(c.latencies, q) }
func (c corrected) lagQuantile(q float64) time.Duration { return quantileOf(c.lags, q) }

// sendRate is requests sent per second between the first and last send.
func (c corrected) sendRate() float64 {
	span := c.last.Sub(c.first).Seconds()
	if span <= 0 || c.n < 2 {
		return 0
	}
	return float64(c.n-1) / span
}
