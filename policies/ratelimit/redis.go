package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/rediserr"
	"github.com/flexgate/flexgate/internal/redisopt"
)

// The circuit breaker of a connection to Redis.
const (
	breakerClosed int32 = iota
	// breakerHalfOpen: a probe went through; calls are made again and the
	// first that fails opens the breaker, the first that succeeds closes it.
	breakerHalfOpen
	// breakerOpen: no call is made; the policies answer by their
	// onStoreError and a background probe asks Redis until it answers
	// and takes a write.
	breakerOpen
)

var breakerStates = [...]string{"closed", "half_open", "open"}

const (
	// openAfter consecutive failed calls open the breaker.
	openAfter = 3
	// probeEvery is how often an open breaker, or a client that could not
	// connect, asks Redis again.
	probeEvery = 250 * time.Millisecond
)

// scriptArgs begins both scripts: now is ARGV[1], the time in µs, or
// Redis's TIME when it is "" (tests pass their clock); want is ARGV[2];
// n is the number of rules, whose two values each follow.
const scriptArgs = `
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local want = tonumber(ARGV[2])
local n = (#ARGV - 2) / 2
`

// gcraScript takes ARGV[2] tokens from every rule's bucket of KEYS[1], or
// as many as every bucket holds, atomically, on Redis's own clock: replicas
// whose clocks differ agree. Taking n at once decides n requests exactly as
// n calls in a row would. The key holds the rules' theoretical arrival
// times in µs (GCRA), and expires when every bucket is full again.
//
// ARGV[1] is the time in µs, or "" for Redis's TIME (tests pass their
// clock); ARGV[2] the tokens wanted; then an interval and a burst in µs per
// rule. Either side of the answer is t*8 + rule: allowed, t is the time
// until the bucket of the rule with the fewest tokens left is full, after
// the last token taken; refused, the time until the refusing bucket is
// full (its arrival time); rule is that rule's index. When every token
// wanted was taken, or none, the answer is one integer, side*2 + 1 or
// side*2; otherwise {taken, allowed side, refused side}. Lua's numbers are
// doubles: t < 2^45 µs (a year is 2^45 µs) keeps the integers exact.
//
// With no rules it is the breaker's probe: it writes KEYS[1] for a second
// and answers 1. A probe must write, as a call that takes a token does: a
// Redis that answers but refuses writes (a read-only replica, out of
// memory, short of replicas) would otherwise pass the probe, and the
// breaker would close and open again on every call. A CLIENT PAUSE holds
// it like any call.
const gcraScript = scriptArgs + `
if n < 1 then
  redis.call('SET', KEYS[1], '1', 'PX', 1000)
  return 1
end
local tats, ivs, bursts = {}, {}, {}
local v = redis.call('GET', KEYS[1])
if v then
  for s in string.gmatch(v, '%d+') do tats[#tats + 1] = tonumber(s) end
end
local taken = want
for i = 1, n do
  ivs[i], bursts[i] = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if not tats[i] or tats[i] < now then tats[i] = now end
  local k = math.floor((bursts[i] - (tats[i] - now)) / ivs[i])
  if k < taken then taken = k end
end
if taken < 0 then taken = 0 end
local arule, at, rem, rrule, rt, wait = 0, 0, -1, 0, 0, 0
local last, parts = 0, {}
for i = 1, n do
  local tat = tats[i] + taken * ivs[i]
  local left = math.floor((bursts[i] - (tat - now)) / ivs[i])
  if rem < 0 or left < rem then arule, at, rem = i - 1, tat - now, left end
  if left < 1 then
    local w = tat + ivs[i] - bursts[i] - now
    if w > wait then rrule, rt, wait = i - 1, tat - now, w end
  end
  parts[i] = string.format('%d', tat)
  if tat > last then last = tat end
end
if taken > 0 then
  redis.call('SET', KEYS[1], table.concat(parts, ' '), 'PX', math.ceil((last - now) / 1000))
end
if taken == want then return (at * 8 + arule) * 2 + 1 end
if taken == 0 then return (rt * 8 + rrule) * 2 end
return {taken, at * 8 + arule, rt * 8 + rrule}
`

// fixedWindowScript is gcraScript for fixed windows: it takes ARGV[2] requests
// from every rule's window of KEYS[1], or as many as every window has
// left, atomically, on Redis's clock. A rule's window starts at the first
// request taken after the last one ended and lasts its period; a call that
// takes nothing writes nothing, so a refused request starts no window. The
// key holds each rule's window end and count, in µs, and expires when the
// last window ends.
//
// ARGV[1] is the time in µs, or "" for Redis's TIME; ARGV[2] the requests
// wanted; then a limit and a period in µs per rule. The answer is {taken,
// allowed side, refused side, left, first}: the allowed side is t*8 + rule,
// rule the one with the fewest requests left after the last taken, left
// of them, and t the µs until its window ends; the refused side is the
// same for the rule that refuses the request after the last taken, the
// one whose window ends last of those with none left; first is the µs
// until the first window of any rule ends (a lease is spent before it).
const fixedWindowScript = scriptArgs + `
local ends, used, limits = {}, {}, {}
local v = redis.call('GET', KEYS[1])
if v then
  local i = 0
  for s in string.gmatch(v, '%d+') do
    if i % 2 == 0 then ends[i / 2 + 1] = tonumber(s) else used[(i - 1) / 2 + 1] = tonumber(s) end
    i = i + 1
  end
end
local taken = want
for i = 1, n do
  limits[i] = tonumber(ARGV[2 * i + 1])
  if not ends[i] or not used[i] or ends[i] <= now then
    ends[i], used[i] = now + tonumber(ARGV[2 * i + 2]), 0
  end
  if limits[i] - used[i] < taken then taken = limits[i] - used[i] end
end
if taken < 0 then taken = 0 end
local arule, at, rem, rrule, rt, first, last, parts = 0, 0, -1, 0, 0, -1, 0, {}
for i = 1, n do
  local left, t = limits[i] - used[i] - taken, ends[i] - now
  if rem < 0 or left < rem then arule, at, rem = i - 1, t, left end
  if left < 1 and t > rt then rrule, rt = i - 1, t end
  if first < 0 or t < first then first = t end
  if t > last then last = t end
  parts[i] = string.format('%d %d', ends[i], used[i] + taken)
end
if taken > 0 then
  redis.call('SET', KEYS[1], table.concat(parts, ' '), 'PX', math.ceil(last / 1000))
end
return {taken, at * 8 + arule, rt * 8 + rrule, rem, first}
`

var (
	script       = rueidis.NewLuaScript(gcraScript)
	windowScript = rueidis.NewLuaScript(fixedWindowScript)
)

// probeKey and probeArgs call the script as the probe: probeKey is under
// the prefix of the policies' keys, which the ACL the README documents
// allows.
var (
	probeKey  = []string{"flexgate:rl:probe"}
	probeArgs = []string{"", "0"}
)

// redisConn is one gateway's client of its shared storage, shared by
// every clusterizable rate limit of the gateway and kept across reloads
// that leave spec.sharedStorage as it is. It counts its users; the last to
// release it closes it. Safe for concurrent use.
type redisConn struct {
	key    connKey
	redis  *config.Redis
	opt    rueidis.ClientOption
	log    *slog.Logger
	client atomic.Pointer[rueidis.Client]
	// state is the breaker; fails counts consecutive failed calls.
	state atomic.Int32
	fails atomic.Int32
	// probeTimeout is the longest storeTimeout of the users, in ns.
	probeTimeout atomic.Int64
	// calls counts calls made to Redis, probes excluded.
	calls atomic.Int64
	// latency is how long calls take to be answered, in ns: a moving
	// average, a timed-out call counting as its time.
	latency atomic.Int64
	// wasUp is set once Redis has answered a probe.
	wasUp atomic.Bool
	refs  int // under connsMu

	duration *metrics.PrometheusHistogram
	errTimeout,
	errConn,
	errServer *metrics.Counter

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// connKey names a connection: one per gateway (its metrics set) and
// shared-storage settings.
type connKey struct {
	set *metrics.Set
	cfg string
}

var (
	connsMu sync.Mutex
	conns   = map[connKey]*redisConn{}
	// current is each gateway's newest connection, which its gauges
	// describe: a gauge keeps the callback it was created with.
	current = map[*metrics.Set]*redisConn{}
)

// acquireConn returns the gateway's connection for s, made and connected
// if it is the first user. A Redis that cannot be reached now is no error:
// the connection starts down, with its breaker open, and keeps trying.
func acquireConn(set *metrics.Set, s *config.SharedStorage, timeout time.Duration) (*redisConn, error) {
	key := connKey{set: set, cfg: redisopt.SettingsKey(s.Redis)}
	connsMu.Lock()
	defer connsMu.Unlock()
	c := conns[key]
	if c == nil {
		var err error
		if c, err = newRedisConn(key, s.Redis); err != nil {
			return nil, err
		}
		conns[key] = c
	}
	c.refs++
	if int64(timeout) > c.probeTimeout.Load() {
		c.probeTimeout.Store(int64(timeout))
	}
	current[set] = c
	c.register(set)
	return c, nil
}

// release drops one user; the last closes the client.
func (c *redisConn) release() {
	connsMu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(conns, c.key)
		if current[c.key.set] == c {
			delete(current, c.key.set)
			for k, o := range conns {
				if k.set == c.key.set {
					current[k.set] = o
				}
			}
		}
	}
	connsMu.Unlock()
	if !last {
		return
	}
	close(c.stop)
	<-c.done
	if cl := c.client.Load(); cl != nil {
		(*cl).Close()
	}
}

// newRedisConn makes a connection. It logs to the default logger: it serves
// every route of the gateway, not the one whose policy made it.
func newRedisConn(key connKey, r *config.Redis) (*redisConn, error) {
	opt, err := redisopt.Options(r)
	if err != nil {
		return nil, err
	}
	// A write that timed out may have counted; sending it again could
	// count it twice.
	opt.DisableRetry = true
	opt.ReadBufferEachConn, opt.WriteBufferEachConn = 64<<10, 64<<10
	c := &redisConn{key: key, redis: r, opt: opt, log: slog.Default().With("sharedStorage", "redis", "mode", r.Mode(), "addresses", r.Addresses()),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c.state.Store(breakerOpen)
	// At start Redis gets longer to answer than a probe while serving: a
	// gateway starting beside a busy Redis should not answer its first
	// requests by the fallback.
	if err := c.connect(startProbeTimeout); err != nil {
		if advice := rediserr.WriteRefused(err); advice != "" {
			c.log.Warn("shared storage refuses writes; clusterizable rate limits answer by their onStoreError until it takes them",
				"error", err.Error(), "advice", advice)
		} else {
			c.log.Warn("shared storage unreachable; clusterizable rate limits answer by their onStoreError until it is back", "error", err.Error())
		}
	}
	go c.run()
	return c, nil
}

// startProbeTimeout bounds the first probe, made while the gateway starts.
const startProbeTimeout = 2 * time.Second

// connect makes the client if there is none yet and probes Redis, waiting
// at least wait for its answer.
func (c *redisConn) connect(wait time.Duration) error {
	if c.client.Load() == nil {
		cl, err := rueidis.NewClient(c.opt)
		if err != nil {
			return err
		}
		c.client.Store(&cl)
	}
	return c.probe(wait)
}

// probe runs the script with no rules, which writes as calls do; on
// success the breaker lets calls through again.
func (c *redisConn) probe(wait time.Duration) error {
	timeout := max(time.Duration(c.probeTimeout.Load()), wait)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The fixed windows' script too (it writes nothing without rules):
	// so that Redis holds both scripts before a request calls one, and no
	// first call pays for loading it within storeTimeout. At once, on one
	// pipeline: one after the other, a slow Redis's round trips (a
	// NOSCRIPT and a load for each) could outlast the timeout.
	cl := *c.client.Load()
	windows := make(chan error, 1)
	go func() { windows <- windowScript.Exec(ctx, cl, probeKey, probeArgs).Error() }()
	err := script.Exec(ctx, cl, probeKey, probeArgs).Error()
	if werr := <-windows; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if c.state.CompareAndSwap(breakerOpen, breakerHalfOpen) {
		c.fails.Store(0)
		// The calls that failed while the breaker opened say nothing of
		// how fast Redis answers now.
		c.latency.Store(0)
		if c.wasUp.Swap(true) {
			c.log.Info("shared storage answers again; clusterizable rate limits use it")
		} else {
			c.log.Info("shared storage connected")
		}
	}
	return nil
}

// run probes while the breaker is open, until the connection is released.
func (c *redisConn) run() {
	defer close(c.done)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.wake:
		}
		if c.state.Load() == breakerOpen {
			_ = c.connect(100 * time.Millisecond)
		}
	}
}

// usable reports whether calls may be made.
func (c *redisConn) usable() bool { return c.state.Load() != breakerOpen }

// succeeded records a call that Redis answered.
func (c *redisConn) succeeded() {
	if c.fails.Load() != 0 {
		c.fails.Store(0)
	}
	if c.state.Load() == breakerHalfOpen {
		c.state.CompareAndSwap(breakerHalfOpen, breakerClosed)
	}
}

// failed records a failed call, counts it by reason and opens the breaker
// after openAfter in a row (at once when half open).
func (c *redisConn) failed(err error) {
	var reason string
	switch _, isRedis := rueidis.IsRedisErr(err); {
	case errors.Is(err, context.DeadlineExceeded):
		c.errTimeout.Inc()
		reason = "timeout"
	case isRedis:
		c.errServer.Inc()
		reason = "server"
	default:
		c.errConn.Inc()
		reason = "connection"
	}
	n := c.fails.Add(1)
	st := c.state.Load()
	if (st == breakerHalfOpen || n >= openAfter) && st != breakerOpen && c.state.CompareAndSwap(st, breakerOpen) {
		if advice := rediserr.WriteRefused(err); advice != "" {
			c.log.Warn("shared storage refuses writes; breaker open: clusterizable rate limits answer by their onStoreError until a probe's write succeeds",
				"reason", reason, "error", err.Error(), "advice", advice)
		} else {
			c.log.Warn("shared storage failing; breaker open: clusterizable rate limits answer by their onStoreError until a probe succeeds",
				"reason", reason, "error", err.Error())
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// take runs sc (script or windowScript) for key within timeout.
func (c *redisConn) take(sc *rueidis.Lua, key string, args []string, timeout time.Duration) (rueidis.RedisMessage, error) {
	cl := c.client.Load()
	if cl == nil {
		return rueidis.RedisMessage{}, rueidis.ErrClosing
	}
	c.calls.Add(1)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	v, err := sc.Exec(ctx, *cl, []string{key}, args).ToMessage()
	cancel()
	c.duration.UpdateDuration(start)
	took := int64(time.Since(start))
	// Concurrent updates may lose one another's sample; an average is
	// all the callers need.
	if old := c.latency.Load(); old != 0 {
		took = old + (took-old)/4
	}
	c.latency.Store(took)
	return v, err
}

// register creates the connection's series in the gateway's set.
func (c *redisConn) register(set *metrics.Set) {
	if c.duration != nil {
		return
	}
	c.duration = set.GetOrCreatePrometheusHistogramExt(`flexgate_ratelimit_store_call_duration_seconds`,
		[]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})
	c.errTimeout = set.GetOrCreateCounter(`flexgate_ratelimit_store_errors_total{reason="timeout"}`)
	c.errConn = set.GetOrCreateCounter(`flexgate_ratelimit_store_errors_total{reason="connection"}`)
	c.errServer = set.GetOrCreateCounter(`flexgate_ratelimit_store_errors_total{reason="server"}`)
	set.GetOrCreateGauge(`flexgate_ratelimit_store_up`, func() float64 {
		if c := currentConn(set); c != nil && c.usable() {
			return 1
		}
		return 0
	})
	for i, name := range breakerStates {
		state := int32(i)
		set.GetOrCreateGauge(`flexgate_ratelimit_store_breaker{state="`+name+`"}`, func() float64 {
			if c := currentConn(set); c != nil && c.state.Load() == state {
				return 1
			}
			return 0
		})
	}
}

func currentConn(set *metrics.Set) *redisConn {
	connsMu.Lock()
	defer connsMu.Unlock()
	return current[set]
}

// connState is what /config shows of a connection.
type connState struct {
	// Connected: a clusterizable limit uses the storage, so the gateway
	// holds a connection to it.
	Connected bool   `json:"connected"`
	Up        bool   `json:"up"`
	Breaker   string `json:"breaker,omitempty"`
	Calls     int64  `json:"calls"`
}

func init() {
	config.SharedStorageState = func(s *config.SharedStorage) any {
		key := redisopt.SettingsKey(s.Redis)
		connsMu.Lock()
		defer connsMu.Unlock()
		for k, c := range conns {
			if k.cfg == key {
				return connState{Connected: true, Up: c.usable(), Breaker: breakerStates[c.state.Load()], Calls: c.calls.Load()}
			}
		}
		return connState{}
	}
}
