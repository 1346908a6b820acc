package proxy

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/metriclabel"
	"github.com/flexgate/flexgate/proxy/cabundle"
)

// upstream is a route's destination: its targets, how a request picks one
// (load balancing, health, slow start), what protects them (circuit
// breaker, retry budget), and their metrics. Routes whose upstreams are
// written alike share one, and plans share it across reloads while its
// settings stay the same, so its targets keep their state. Safe for
// concurrent use.
//
// The targets in force are an immutable set, replaced whole when DNS
// finds others: a request reads the set once and never waits for a lock.
type upstream struct {
	key   string
	name  string // for logs and /config
	label string // name, quoted for metrics
	cfg   config.Upstream
	opts  upstreamOptions
	log   *slog.Logger

	// gate bounds the connections to the targets together; nil: no bound.
	gate *connGate
	// The circuit breaker's other thresholds; 0: no bound.
	maxRequests, maxPending, maxRetries int64

	set      atomic.Pointer[targetSet]
	rr       atomic.Uint64 // round robin: the next slot
	active   atomic.Int64  // requests in flight, bodies streaming included
	pending  atomic.Int64  // requests waiting for a connection
	retrying atomic.Int64  // retries in flight
	ejected  atomic.Int32  // targets ejected by outlier detection

	// healthMu serialises changes of health: ejection counts against a
	// share of the targets.
	healthMu sync.Mutex

	mu      sync.Mutex               // serialises changes of the set, and close
	started bool                     // the first set is in: targets that join later start slowly
	prior   func(url string) *target // while the first set is built; see newUpstream
	closed  bool
	dnsErr  string // the last DNS failure, "" after a success
	stop    chan struct{}
	m       upstreamMetrics
}

// targetSet is the targets of an upstream at one moment. Immutable.
type targetSet struct {
	targets []*target
	// weights are the targets' shares in units of 1/weightUnit of a
	// configured weight: a name's addresses share its weight.
	weights []int64
	// uniform: every weight is equal, so a random pick needs no scan.
	uniform bool
	// seq is the round-robin schedule: target indices, interleaved by
	// weight (smooth weighted round robin).
	seq []uint32
}

// weightUnit divides a configured weight among the addresses of a name.
const weightUnit = 1_000_000

// upstreamMetrics are an upstream's own series.
type upstreamMetrics struct {
	panics         *metrics.Counter
	retries        *metrics.Counter
	retriesBudget  *metrics.Counter
	retriesBreaker *metrics.Counter
	overloaded     [numLimits]*metrics.Counter
	dnsFailures    *metrics.Counter
	names          []string
}

// limit is a circuit breaker threshold.
type limit uint8

const (
	limitRequests limit = iota
	limitPending
	limitConnections
	numLimits
)

var limitLabels = [numLimits]string{"maxRequests", "maxPendingRequests", "maxConnections"}

// upstreamKey names an upstream's settings: routes whose upstreams have
// equal keys share one. The Host header to send is the route's own.
func upstreamKey(u *config.Upstream, o upstreamOptions) string {
	c := *u
	c.HostHeader, c.Pos = "", config.Pos{}
	c.Targets = append([]config.Target(nil), u.Targets...)
	for i := range c.Targets {
		c.Targets[i].Pos = config.Pos{}
	}
	if c.HealthCheck != nil {
		hc := *c.HealthCheck
		hc.Pos = config.Pos{}
		c.HealthCheck = &hc
	}
	if c.Retries != nil {
		r := *c.Retries
		r.Pos = config.Pos{}
		c.Retries = &r
	}
	// Trust and client certificate by digest: the key holds no private
	// key, and stays short.
	c.CAPEM, c.ClientCert = tlsDigest(u), nil
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain values always encode
	}
	return fmt.Sprintf("%s|%d", b, o.maxHeader())
}

// upstreamName is how logs, metrics and /config name u.
func upstreamName(u *config.Upstream) string {
	if u.Name != "" {
		return u.Name
	}
	return u.URL()
}

// checkUpstream reports what would keep u from being built: a trust bundle
// that does not load, trust given twice, a client certificate that does not
// go with its key. It starts nothing.
func checkUpstream(u *config.Upstream) error {
	https := false
	for _, t := range u.Targets {
		https = https || t.Scheme == "https"
	}
	if !https {
		return nil
	}
	var err error
	switch {
	case u.CAPEM != "" && u.CAFile != "":
		err = errors.New("has both trusted CA PEM and caFile; give one")
	case u.InsecureSkipVerify:
	case u.CAPEM != "":
		err = cabundle.CheckPEM([]byte(u.CAPEM))
	case u.CAFile != "":
		err = cabundle.Check(u.CAFile)
	}
	if cc := u.ClientCert; err == nil && cc != nil {
		if _, kerr := tls.X509KeyPair(cc.CertPEM, cc.KeyPEM); kerr != nil {
			err = fmt.Errorf("client certificate: %w", kerr)
		}
	}
	lo, loOK := config.TLSVersion(u.TLSMinVersion)
	hi, hiOK := config.TLSVersion(u.TLSMaxVersion)
	switch {
	case err != nil:
	case u.TLSMinVersion != "" && !loOK:
		err = fmt.Errorf("TLS minimum version %q is not 1.2 or 1.3", u.TLSMinVersion)
	case u.TLSMaxVersion != "" && !hiOK:
		err = fmt.Errorf("TLS maximum version %q is not 1.2 or 1.3", u.TLSMaxVersion)
	case loOK && hiOK && lo > hi:
		err = fmt.Errorf("TLS maximum version %s is below the minimum %s", u.TLSMaxVersion, u.TLSMinVersion)
	case len(u.TLSCiphers) > 0:
		if _, cerr := config.TLS12Suites(u.TLSCiphers); cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: upstream %s: %w", u.Pos, u.URL(), err)
	}
	return nil
}

// newUpstream builds u's upstream and starts what keeps it current: DNS
// discovery and health checks. close stops them. prior, when not nil,
// finds the target with a URL (address and base path) among the upstreams
// in force: a reload that changes an upstream's settings hands each
// target's health on to the new upstream, so that a target out of service
// stays out.
func newUpstream(u *config.Upstream, o upstreamOptions, prior func(url string) *target) (*upstream, error) {
	if err := checkUpstream(u); err != nil {
		return nil, err
	}
	up := &upstream{key: upstreamKey(u, o), name: upstreamName(u), cfg: *u, opts: o, log: o.log,
		stop: make(chan struct{}), prior: prior}
	up.label = metriclabel.Quote(up.name)
	if up.log == nil {
		up.log = slog.New(slog.DiscardHandler)
	}
	if up.cfg.LoadBalancing == "" {
		up.cfg.LoadBalancing = config.LeastRequest
	}
	cb := u.CircuitBreaker
	up.maxRequests, up.maxPending, up.maxRetries = int64(cb.MaxRequests), int64(cb.MaxPendingRequests), int64(cb.MaxRetries)
	if cb.MaxConnections > 0 {
		up.gate = &connGate{max: int64(cb.MaxConnections)}
	}
	up.m.panics = up.counter(`flexgate_upstream_panic_total{upstream=%s}`)
	up.m.retries = up.counter(`flexgate_upstream_retries_total{upstream=%s}`)
	up.m.retriesBudget = up.counter(`flexgate_upstream_retries_skipped_total{upstream=%s,reason="budget"}`)
	up.m.retriesBreaker = up.counter(`flexgate_upstream_retries_skipped_total{upstream=%s,reason="circuit_breaker"}`)
	for l := range numLimits {
		up.m.overloaded[l] = up.counter(`flexgate_upstream_overloaded_total{upstream=%s,limit="` + limitLabels[l] + `"}`)
	}
	if u.Discovery == config.DiscoveryDNS {
		up.m.dnsFailures = up.counter(`flexgate_upstream_dns_failures_total{upstream=%s}`)
		up.resolve()
		go up.discover()
	} else {
		eps := make([]endpoint, len(u.Targets))
		for i, t := range u.Targets {
			eps[i] = endpoint{parent: i, addr: t.Host}
		}
		if err := up.update(eps); err != nil {
			up.close()
			return nil, err
		}
	}
	up.mu.Lock()
	up.started, up.prior = true, nil
	up.mu.Unlock()
	return up, nil
}

// counter creates the upstream's series named by format, whose one %s is
// the upstream label.
func (u *upstream) counter(format string) *metrics.Counter {
	name := fmt.Sprintf(format, u.label)
	u.m.names = append(u.m.names, name)
	return u.opts.series.counter(name)
}

// endpoint is one address of one of the configured targets.
type endpoint struct {
	parent int    // index in cfg.Targets
	addr   string // host:port dialed
}

// update makes eps the upstream's targets: the targets already there are
// kept with their state, new ones join (slowly, with slowStart, unless this
// is the first set), and those no longer listed leave: they take no new
// request and their pools close once their requests in flight are done.
func (u *upstream) update(eps []endpoint) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	old := u.set.Load()
	have := map[endpoint]*target{}
	if old != nil {
		for _, t := range old.targets {
			have[endpoint{t.parent, t.pool.addr}] = t
		}
	}
	perParent := make([]int64, len(u.cfg.Targets))
	for _, e := range eps {
		perParent[e.parent]++
	}
	s := &targetSet{uniform: true}
	var added []*target
	var firstErr error
	for _, e := range eps {
		t, ok := have[e]
		if ok {
			delete(have, e)
		} else {
			var err error
			if t, err = u.newTarget(e); err != nil {
				u.log.Error("upstream target cannot be used", "upstream", u.name, "address", e.addr, "error", err.Error())
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			added = append(added, t)
		}
		w := int64(u.cfg.Targets[e.parent].Weight)
		if w <= 0 {
			w = 1
		}
		w = w * weightUnit / perParent[e.parent]
		s.targets = append(s.targets, t)
		s.weights = append(s.weights, w)
		if w != s.weights[0] {
			s.uniform = false
		}
	}
	if firstErr != nil && old == nil {
		for _, t := range added {
			t.retire()
		}
		return firstErr
	}
	if old != nil && len(added) == 0 && len(have) == 0 && sameWeights(old, s) {
		return nil
	}
	if u.cfg.LoadBalancing == config.RoundRobin {
		s.seq = smoothSequence(s.weights)
	}
	u.set.Store(s)
	for _, t := range added {
		if u.prior != nil {
			if from := u.prior(t.url); from != nil {
				u.inherit(t, from)
			}
		}
		if u.started {
			u.log.Info("upstream target added", "upstream", u.name, "target", t.url)
		}
		if u.started || t.late {
			t.startSlow()
		}
		if u.cfg.HealthCheck != nil {
			go u.check(t)
		}
	}
	for _, t := range have {
		u.log.Info("upstream target removed; its requests in flight finish", "upstream", u.name, "target", t.url)
		t.retire()
	}
	return nil
}

func sameWeights(a, b *targetSet) bool {
	if len(a.targets) != len(b.targets) {
		return false
	}
	for i := range a.targets {
		if a.targets[i] != b.targets[i] || a.weights[i] != b.weights[i] {
			return false
		}
	}
	return true
}

// inherit gives t, new in u, the health and slow start of from, the same
// address in an upstream a reload replaces, as far as u's settings keep
// them: out of service while its health check failed (when u checks
// health too), ejected for what is left of its ejection (when u ejects).
func (u *upstream) inherit(t, from *target) {
	down := from.down.Load()
	if down&downUnhealthy != 0 && u.cfg.HealthCheck != nil {
		t.setDown(downUnhealthy)
	}
	now := time.Now().UnixNano()
	if until := from.ejectedUntil.Load(); down&downEjected != 0 && until > now && u.cfg.Outlier.ConsecutiveFailures > 0 {
		u.healthMu.Lock()
		t.ejections.Store(from.ejections.Load())
		t.ejectedUntil.Store(until)
		t.setDown(downEjected)
		u.ejected.Add(1)
		u.healthMu.Unlock()
		time.AfterFunc(time.Duration(until-now), func() { u.readmit(t, downEjected) })
	}
	if u.cfg.SlowStart > 0 {
		t.slowFrom.Store(from.slowFrom.Load())
	}
	t.consecutive.Store(from.consecutive.Load())
}

// close stops discovery and health checks and lets every target go once
// its requests in flight are done. Called when no plan uses u any more.
func (u *upstream) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	close(u.stop)
	s := u.set.Load()
	u.mu.Unlock()
	if s != nil {
		for _, t := range s.targets {
			t.retire()
		}
	}
	u.opts.series.release(u.m.names...)
}

// reloadCA reads the trust bundles of u's https targets again: a reload is
// when an operator expects files to be read again.
func (u *upstream) reloadCA() {
	if s := u.set.Load(); s != nil {
		for _, t := range s.targets {
			if t.pool.ca != nil {
				t.pool.ca.Reload()
			}
		}
	}
}

// smoothSequence is nginx's smooth weighted round robin run once over a
// whole cycle: target indices interleaved so that each gets its share
// evenly spread (weights 5,1,1 give a a b a c a a, not a a a a a b c).
// Weights are reduced by their common divisor, and scaled down when a
// cycle would be longer than maxSlots (or the number of targets).
func smoothSequence(weights []int64) []uint32 {
	const maxSlots = 4096
	if len(weights) == 0 {
		return nil
	}
	g := weights[0]
	for _, w := range weights[1:] {
		g = gcd(g, w)
	}
	w := make([]int64, len(weights))
	var sum int64
	for i, x := range weights {
		w[i] = x / g
		sum += w[i]
	}
	if slots := max(int64(maxSlots), int64(len(w))); sum > slots {
		scaled := sum
		sum = 0
		for i := range w {
			w[i] = max(1, w[i]*slots/scaled)
			sum += w[i]
		}
	}
	cur := make([]int64, len(w))
	seq := make([]uint32, sum)
	for k := range seq {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		seq[k] = uint32(best)
	}
	return seq
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// target is one address an upstream sends to: its pool of connections, its
// health, and its series. Safe for concurrent use.
type target struct {
	up       *upstream
	pool     *pool
	parent   int    // index in the upstream's configured targets
	url      string // scheme://address/base-path, as /config and metrics name it
	basePath []byte

	active      atomic.Int64  // requests in flight, bodies streaming included
	down        atomic.Uint32 // downUnhealthy | downEjected; 0: in service
	consecutive atomic.Int32  // failures in a row
	ejections   atomic.Int32  // ejections in a row: the multiplier of the next ejection time
	// ejectedUntil is when the last ejection ends (unix nanoseconds).
	ejectedUntil atomic.Int64
	// slowFrom is when the target's slow start began (unix nanoseconds);
	// 0: it has its full weight.
	slowFrom atomic.Int64

	// late: the target joined a gateway that was serving already (a
	// reload added it): it starts slowly, as one DNS finds does.
	late     bool
	removed  atomic.Bool
	release  sync.Once
	stopOnce sync.Once
	stop     chan struct{} // ends the target's health checks

	m targetMetrics
}

// Why a target is out of service; both may hold at once.
const (
	downUnhealthy uint32 = 1 << iota // its active health check fails
	downEjected                      // outlier detection ejected it
)

// targetMetrics are a target's series.
type targetMetrics struct {
	requests  *metrics.Counter
	errors    [numFailures]*metrics.Counter
	status5xx *metrics.Counter
	duration  *metrics.PrometheusHistogram
	healthy   *metrics.Gauge
	ejections *metrics.Counter
	names     []string
}

func (u *upstream) newTarget(e endpoint) (*target, error) {
	ct := u.cfg.Targets[e.parent]
	spec := poolSpec{scheme: ct.Scheme, addr: e.addr, host: ct.Host, u: &u.cfg}
	if u.gate != nil {
		spec.private = u.key
	}
	p, fresh, err := u.opts.pools.acquire(spec, u.gate, u.opts)
	if err != nil {
		return nil, err
	}
	t := &target{up: u, pool: p, parent: e.parent, url: ct.Scheme + "://" + e.addr + ct.BasePath,
		basePath: []byte(ct.BasePath), stop: make(chan struct{})}
	// New to a gateway that serves already: a target a reload adds.
	t.late = fresh && u.opts.serving
	series := u.opts.series
	label := fmt.Sprintf(`upstream=%s,target=%s`, u.label, metriclabel.Quote(t.url))
	name := func(metric, extra string) string {
		n := metric + "{" + label + extra + "}"
		t.m.names = append(t.m.names, n)
		return n
	}
	t.m.requests = series.counter(name("flexgate_upstream_target_requests_total", ""))
	for f := range numFailures {
		if f == failSaturated || f == failOverloaded {
			// The gateway's own limits, not the target's doing.
			t.m.errors[f] = new(metrics.Counter)
			continue
		}
		t.m.errors[f] = series.counter(name("flexgate_upstream_target_errors_total", `,reason="`+f.String()+`"`))
	}
	t.m.status5xx = series.counter(name("flexgate_upstream_target_errors_total", `,reason="status_5xx"`))
	t.m.duration = series.histogram(name("flexgate_upstream_target_duration_seconds", ""))
	t.m.healthy = series.gauge(name("flexgate_upstream_target_healthy", ""))
	t.m.healthy.Set(1)
	t.m.ejections = series.counter(name("flexgate_upstream_target_ejections_total", ""))
	return t, nil
}

// begin counts a request sent to t.
func (t *target) begin() {
	t.active.Add(1)
	t.m.requests.Inc()
}

// finish counts a request of t done, and lets a removed target go with its
// last one.
func (t *target) finish() {
	if t.active.Add(-1) == 0 && t.removed.Load() {
		t.free()
	}
}

// retire takes t out of the upstream: no request picks it any more (the
// set without it is in force), its health checks stop, and its pool and
// series go once its requests in flight are done.
func (t *target) retire() {
	t.stopOnce.Do(func() { close(t.stop) })
	t.removed.Store(true)
	if t.active.Load() == 0 {
		t.free()
	}
}

func (t *target) free() {
	t.release.Do(func() {
		t.up.opts.pools.release(t.pool, t.up.opts.series)
		t.up.opts.series.release(t.m.names...)
	})
}

// startSlow begins t's slow start, when the upstream has one.
func (t *target) startSlow() {
	if t.up.cfg.SlowStart > 0 {
		t.slowFrom.Store(time.Now().UnixNano())
	}
}

// weight is t's share now: w, or less while it starts slowly. now is read
// once per pick, and only when a target starts slowly.
func (t *target) weight(w int64, now *int64) int64 {
	from := t.slowFrom.Load()
	if from == 0 {
		return w
	}
	if *now == 0 {
		*now = time.Now().UnixNano()
	}
	window := int64(t.up.cfg.SlowStart)
	elapsed := *now - from
	if elapsed >= window {
		t.slowFrom.CompareAndSwap(from, 0)
		return w
	}
	// From a tenth of its weight, as Envoy's slow start, so that the
	// first requests come at once.
	f := max(0.1, float64(elapsed)/float64(window))
	return max(1, int64(float64(w)*f))
}

// tried are the targets one request was sent to, so that a retry goes
// elsewhere.
type tried struct {
	n int
	t [maxTries]*target
}

// maxTries bounds the tries of one request: retries.attempts (at most 10)
// and the one resend of a request that cannot have been processed.
const maxTries = 11

func (tr *tried) has(t *target) bool {
	for _, x := range tr.t[:tr.n] {
		if x == t {
			return true
		}
	}
	return false
}

func (tr *tried) add(t *target) {
	if tr.n < maxTries {
		tr.t[tr.n] = t
		tr.n++
	}
}

// pickMode says which targets a pick may return, from the strictest.
type pickMode uint8

const (
	pickFresh     pickMode = iota // in service, not yet tried
	pickInService                 // in service
	pickUntried                   // panic: not yet tried, in service or not
	pickAny                       // panic: any
)

func (t *target) usable(tr *tried, mode pickMode) bool {
	switch mode {
	case pickFresh:
		return t.down.Load() == 0 && !tr.has(t)
	case pickInService:
		return t.down.Load() == 0
	case pickUntried:
		return !tr.has(t)
	}
	return true
}

// pick chooses the target of the next try of a request that has tried tr:
// one in service it has not tried; else one in service; else, in panic
// mode, any (every target is out of service: trying them beats answering
// 503 to everything). nil: the upstream has no target at all. It takes no
// lock and allocates nothing.
func (u *upstream) pick(s *targetSet, tr *tried) *target {
	if s == nil || len(s.targets) == 0 {
		return nil
	}
	// Round robin moves one slot per pick, whatever the mode it ends in:
	// a move per mode tried would skip turns in step with the modes.
	var turn uint64
	if u.cfg.LoadBalancing == config.RoundRobin {
		turn = u.rr.Add(1) - 1
	}
	for mode := pickFresh; mode <= pickAny; mode++ {
		if t := u.pickIn(s, tr, mode, turn); t != nil {
			if mode >= pickUntried {
				u.m.panics.Inc()
			}
			return t
		}
	}
	return nil
}

func (u *upstream) pickIn(s *targetSet, tr *tried, mode pickMode, turn uint64) *target {
	var now int64
	switch u.cfg.LoadBalancing {
	case config.RoundRobin:
		if t := s.nextInTurn(turn, tr, mode, &now); t != nil {
			return t
		}
		return s.at(s.draw(tr, mode, -1, &now))
	case config.Random:
		return s.at(s.draw(tr, mode, -1, &now))
	}
	// least-request: the power of two choices. Two targets drawn by
	// weight; the one with fewer requests in flight for its weight wins,
	// the first on a tie, so that idle targets share by weight. With equal
	// weights the two are different targets, so that of two targets a
	// slow one is not sent a quarter of the requests by drawing it twice;
	// with unequal weights the second is drawn like the first, as a
	// second draw without the first would shift shares to the light
	// targets.
	i := s.draw(tr, mode, -1, &now)
	if i < 0 {
		return nil
	}
	a := s.targets[i]
	skip := -1
	if s.uniform {
		skip = i
	}
	j := s.draw(tr, mode, skip, &now)
	if j < 0 || j == i {
		return a
	}
	b := s.targets[j]
	wa, wb := a.weight(s.weights[i], &now), b.weight(s.weights[j], &now)
	if b.active.Load()*wa < a.active.Load()*wb {
		return b
	}
	return a
}

// at is the target at index i, nil for -1.
func (s *targetSet) at(i int) *target {
	if i < 0 {
		return nil
	}
	return s.targets[i]
}

// draw picks a usable target other than the one at index skip (-1: none)
// at random by weight and returns its index, or -1 when none is usable.
func (s *targetSet) draw(tr *tried, mode pickMode, skip int, now *int64) int {
	n := len(s.targets)
	if s.uniform && n > 1 {
		// Equal weights: a random index is a fair draw; a target out of
		// the running (or starting slowly) sends this to the scan below.
		for range 2 {
			i := rand.IntN(n)
			if i == skip {
				continue
			}
			if t := s.targets[i]; t.usable(tr, mode) && t.slowFrom.Load() == 0 {
				return i
			}
		}
	}
	var sum int64
	for i, t := range s.targets {
		if i != skip && t.usable(tr, mode) {
			sum += t.weight(s.weights[i], now)
		}
	}
	if sum == 0 {
		return -1
	}
	r := rand.Int64N(sum)
	last := -1
	for i, t := range s.targets {
		if i == skip || !t.usable(tr, mode) {
			continue
		}
		last = i
		if r -= t.weight(s.weights[i], now); r < 0 {
			return i
		}
	}
	// A target left service between the two scans.
	return last
}

// nextInTurn is weighted round robin: the target of the schedule's slot
// turn, when it is usable, or nil. A target starting slowly takes its slot
// with the probability of its share so far. The slots of a target that is
// not usable are drawn by weight among those that are (see pickIn), so
// that they keep their shares among themselves.
func (s *targetSet) nextInTurn(turn uint64, tr *tried, mode pickMode, now *int64) *target {
	n := uint64(len(s.seq))
	if n == 0 {
		return nil
	}
	idx := s.seq[turn%n]
	t := s.targets[idx]
	if !t.usable(tr, mode) {
		return nil
	}
	if t.slowFrom.Load() != 0 {
		w := s.weights[idx]
		if rand.Int64N(w) >= t.weight(w, now) {
			return nil
		}
	}
	return t
}

// upstreamState is an upstream as /config shows it live.
type upstreamState struct {
	Name           string        `json:"name"`
	Routes         []string      `json:"routes"`
	LoadBalancing  string        `json:"loadBalancing"`
	Discovery      string        `json:"discovery"`
	DNSError       string        `json:"dnsError,omitempty"`
	ActiveRequests int64         `json:"activeRequests"`
	Targets        []targetState `json:"targets"`
}

// targetState is a target as /config shows it live.
type targetState struct {
	URL string `json:"url"`
	// Share is the target's part of the requests by weight, in percent,
	// whether in service or not; slow start lowers it for a while.
	Share float64 `json:"share"`
	// State is "healthy", or why the target is out of service:
	// "unhealthy" (its health check fails), "ejected" (its requests
	// failed), or both.
	State          string `json:"state"`
	EjectedFor     string `json:"ejectedFor,omitempty"`
	SlowStart      bool   `json:"slowStart,omitempty"`
	ActiveRequests int64  `json:"activeRequests"`
}

// state is u as /config shows it, for the routes that use it.
func (u *upstream) state(routes []string) upstreamState {
	st := upstreamState{Name: u.name, Routes: routes, LoadBalancing: string(u.cfg.LoadBalancing),
		Discovery: string(u.cfg.Discovery), ActiveRequests: u.active.Load(), Targets: []targetState{}}
	if st.Discovery == "" {
		st.Discovery = string(config.DiscoveryStatic)
	}
	u.mu.Lock()
	st.DNSError = u.dnsErr
	u.mu.Unlock()
	s := u.set.Load()
	if s == nil {
		return st
	}
	var total int64
	for _, w := range s.weights {
		total += w
	}
	now := time.Now()
	for i, t := range s.targets {
		ts := targetState{URL: t.url, ActiveRequests: t.active.Load(), SlowStart: t.slowFrom.Load() != 0,
			Share: float64(int64(float64(s.weights[i])/float64(total)*1000+0.5)) / 10}
		switch d := t.down.Load(); {
		case d == 0:
			ts.State = "healthy"
		case d == downUnhealthy:
			ts.State = "unhealthy"
		case d == downEjected:
			ts.State = "ejected"
		default:
			ts.State = "unhealthy, ejected"
		}
		if t.down.Load()&downEjected != 0 {
			if left := time.Duration(t.ejectedUntil.Load() - now.UnixNano()); left > 0 {
				ts.EjectedFor = left.Round(time.Second).String()
			}
		}
		st.Targets = append(st.Targets, ts)
	}
	return st
}

// upstreamStates is every upstream of p as /config shows it, in the order
// of the routes that first use them.
func (p *plan) upstreamStates() []upstreamState {
	var order []*upstream
	routes := map[*upstream][]string{}
	for _, r := range p.routes {
		if _, ok := routes[r.up]; !ok {
			order = append(order, r.up)
		}
		routes[r.up] = append(routes[r.up], r.id)
	}
	out := make([]upstreamState, 0, len(order))
	for _, u := range order {
		out = append(out, u.state(routes[u]))
	}
	return out
}
