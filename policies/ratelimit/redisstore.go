package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"

	"github.com/flexgate/flexgate/internal/metriclabel"
)

// Fallback is what a clusterizable limit does when its shared store
// cannot answer in time (Redis down, slow, or its breaker open).
type Fallback string

const (
	// FallbackDeny refuses the request with 503
	// rate_limit_store_unavailable: no request passes unaccounted.
	FallbackDeny Fallback = "deny"
	// FallbackAllow lets the request through without counting it.
	FallbackAllow Fallback = "allow"
	// FallbackLocal counts the request in this replica's memory against
	// limit ÷ FLEXGATE_MAX_REPLICAS, so that all replicas together never
	// pass more than the limit.
	FallbackLocal Fallback = "local"
)

// refusedShards × refusedPerShard bound the clients a RedisStore
// remembers as refused; one more is simply asked about in Redis again.
const (
	refusedShards   = 64
	refusedPerShard = 256
)

// RedisStore keeps a policy's buckets in the gateway's shared storage:
// one atomic script call decides on Redis's clock, so every replica spends
// from the same budget. A client's requests that come while a call for it
// is in flight wait together and are decided by one next call, exactly as
// they would be one after another: under load a busy client costs one
// call per round trip to Redis, not one per request. A client it refused
// is refused again from memory, with no call, until its Retry-After: a
// bucket's arrival time only moves forward, so nothing another replica
// does can make the client pass sooner.
//
// A limit so high that a replica's requests could not be told apart from
// a stream (see leaseSize) is spent in leases: a call takes a few tokens
// more than its requests need, and the replica's next requests of the
// client spend them from memory within leaseWindow. Redis counted them
// when they were taken, so replicas together never pass more than the
// limit plus what a lease window lets through early, and lose at most
// what expired leases held: both within half a percent of the limit.
//
// Fixed windows (rate-limiting-flex) are kept alike by fixedWindowScript: a
// client refused is refused from memory until the refusing window ends,
// and so is one that took the last request of a window. Their leases are
// requests of the current windows, spent before the first of them ends.
//
// Memory is bounded (refusedShards × refusedPerShard clients). Safe for
// concurrent use.
type RedisStore struct {
	conn *redisConn
	// prefix is "flexgate:rl:<policy>:{"; the client's digest and "}"
	// follow, so that Cluster places every key by its client.
	prefix string
	sip    sipKey
	// fixed is set when the rules are fixed windows: sc is then
	// windowScript (fixedWindowScript), else script.
	fixed bool
	sc    *rueidis.Lua
	// args are the script's ARGV for one token: the time ("": Redis's),
	// the tokens wanted, then interval and burst in µs per rule (for
	// windows, limit and period).
	args    []string
	rules   []redisRule
	timeout time.Duration
	clock   func() int64
	// lease is the tokens a call takes beyond its requests, and window how
	// long in ns they may be spent (for fixed windows, until the first
	// window ends); 0 when the limit is spent in Redis request by request.
	lease, window int64

	fallback   Fallback
	local      *MemStore
	localRules []Rule

	refused [refusedShards]refusedShard

	fallbacks     *metrics.Counter
	localRefusals *metrics.Counter
	leaseSpends   *metrics.Counter
	// callerClock sends the caller's now instead of using Redis's TIME
	// (tests compare with MemStore on one clock).
	callerClock bool
}

// redisRule is a Rule in the µs Redis works in (a window's needs only its
// limit).
type redisRule struct{ limit, interval, burst int64 }

type refusedShard struct {
	mu sync.Mutex
	m  map[bucketKey]memo
	// calls holds the call in flight for a client; the requests that come
	// meanwhile join its next batch.
	calls map[bucketKey]*batch
	_     [40]byte // a cache line per shard
}

// memo is what a store knows of a client without asking Redis: tokens of
// a lease it may spend until expires, and, once they are spent, that it is
// refused until a time of the local clock (full: when its bucket is full
// again). Times are on the local clock.
type memo struct {
	until, full int64
	rule        int
	// tokens are left of the lease taken at at, which the script's allowed
	// side (see batch) describes as if they were spent; for windows, left
	// are the requests the allowed side's window then had left.
	tokens, expires, at, allowed, left int64
}

// leased reports whether m holds a lease to spend at now.
func (m *memo) leased(now int64) bool { return m.tokens > 0 && now < m.expires }

// batch is one call to Redis for n requests of one client. The first
// request makes the call; the others wait for done.
type batch struct {
	// n grows until the call starts.
	n int64
	// start is when the first request came, on the local clock: the call
	// must be answered within storeTimeout of it, so that no request waits
	// longer, the wait for the previous call included.
	start int64
	// called is when the call was made (set under the shard's lock).
	called int64
	// next is the batch that forms while this one's call is in flight.
	next *batch
	// done is closed when the outcome below is set; it is made when a
	// request first waits for it.
	done chan struct{}

	outcome outcome
	// memo is what the memory held of the client when b's turn came: its
	// first fromLease requests spend the lease in it, and the others are
	// refused by it when b is remembered.
	memo      memo
	fromLease int64
	// asked is the requests the call decides, lease the tokens it takes
	// ahead, want their sum; taken of them were taken, the requests'
	// first: allowed and refused are the script's t*8 + rule of either
	// side; for windows, left and first are fixedWindowScript's.
	asked, lease, want, taken, allowed, refused, left, first int64
}

type outcome uint8

const (
	// decided: Redis answered.
	decided outcome = iota
	// remembered: when the batch's turn came, the memory refused the
	// client: no call.
	remembered
	// unanswered: Redis could not answer in time; onStoreError decides.
	unanswered
)

// redisStoreOptions make a RedisStore.
type redisStoreOptions struct {
	conn *redisConn
	// id names the policy across restarts and replicas: its route, its
	// limits, its identifier and how many rate limits precede it.
	id         string
	rules      []Rule
	timeout    time.Duration
	fallback   Fallback
	local      *MemStore
	localRules []Rule
	set        *metrics.Set
	route      string
	// clock is the local clock (monoClock when nil).
	clock func() int64
	// replicas is FLEXGATE_MAX_REPLICAS, 0 when unset (then no lease).
	replicas int64
	// leaseShare replaces leaseShare (tests).
	leaseShare int64
}

// leaseShare bounds, as a share of a limit, both what leases can let
// through early (a lease window is this share of the shortest period) and
// what expired leases can lose in a period.
const leaseShare = 200

// leaseSize is the tokens a call may take beyond its requests, and the
// window to spend them in, for rules on at most replicas replicas. The
// window is the shortest period ÷ share: tokens are spent at most a window
// after Redis counted them, at most a rule's limit ÷ share early. A
// replica whose lease expired after one token loses at most lease-1
// tokens per window, replicas of them at once, and a rule of period P sees
// P ÷ window windows: lease ≤ limit × window ÷ (P × share × replicas)
// keeps the loss under limit ÷ share per period for every rule. A lease
// under 2 tokens is none: the limit is spent request by request.
func leaseSize(rules []Rule, replicas, share int64) (lease, window int64) {
	if replicas < 1 || len(rules) == 0 {
		return 0, 0
	}
	window = math.MaxInt64
	for _, r := range rules {
		window = min(window, r.Period/share)
	}
	lease = math.MaxInt64
	for _, r := range rules {
		// limit × window ÷ P in floating point: limit × window overflows.
		lease = min(lease, int64(float64(r.Limit)*float64(window)/float64(r.Period)/float64(share*replicas)))
	}
	if lease < 2 {
		return 0, 0
	}
	return lease, window
}

// windowLeaseSize is leaseSize for fixed windows, spent until the first
// window of any rule ends: every lease lives within the windows it was
// counted in, so leases never let through more than the limit, and they
// lose what is unspent when one ends. A window of rule r sees at most
// expiries(r) such ends, replicas of leases each: a lease of at most
// limit ÷ (expiries × share × replicas) keeps the loss under limit ÷ share
// per window for every rule.
func windowLeaseSize(rules []Rule, replicas, share int64) int64 {
	if replicas < 1 || len(rules) == 0 {
		return 0
	}
	lease := int64(math.MaxInt64)
	for i, r := range rules {
		// Its own end, and of every other rule's windows (each at least
		// its period long) as many as fit in r's, and one.
		ends := int64(1)
		for j, q := range rules {
			if j != i {
				ends += r.Period/q.Period + 1
			}
		}
		lease = min(lease, r.Limit/ends/(share*replicas))
	}
	if lease < 2 {
		return 0
	}
	return lease
}

func newRedisStore(o redisStoreOptions) *RedisStore {
	version := "flexgate rate-limiting v1\x00"
	if len(o.rules) > 0 && o.rules[0].Fixed {
		// Another script keeps other values: a policy that changed kind
		// starts afresh rather than read the other's.
		version = "flexgate fixed windows v1\x00"
	}
	sum := sha256.Sum256([]byte(version + o.id))
	s := &RedisStore{conn: o.conn, prefix: "flexgate:rl:" + hex.EncodeToString(sum[:8]) + ":{",
		sip:     sipKey{binary.LittleEndian.Uint64(sum[16:24]), binary.LittleEndian.Uint64(sum[24:32])},
		timeout: o.timeout, clock: o.clock, fallback: o.fallback, local: o.local, localRules: o.localRules}
	if s.clock == nil {
		s.clock = monoClock
	}
	share := o.leaseShare
	if share == 0 {
		share = leaseShare
	}
	s.fixed = len(o.rules) > 0 && o.rules[0].Fixed
	s.sc = script
	if s.fixed {
		s.sc = windowScript
		s.lease = windowLeaseSize(o.rules, o.replicas, share)
	} else {
		s.lease, s.window = leaseSize(o.rules, o.replicas, share)
	}
	s.args = append(s.args, "", "1")
	for _, r := range o.rules {
		if s.fixed {
			s.rules = append(s.rules, redisRule{limit: r.Limit})
			s.args = append(s.args, strconv.FormatInt(r.Limit, 10), strconv.FormatInt(r.Period/1000, 10))
			continue
		}
		iv := redisInterval(r)
		rr := redisRule{limit: r.Limit, interval: iv, burst: iv * r.Limit}
		s.rules = append(s.rules, rr)
		s.args = append(s.args, strconv.FormatInt(rr.interval, 10), strconv.FormatInt(rr.burst, 10))
	}
	for i := range s.refused {
		s.refused[i].m = make(map[bucketKey]memo, 16)
		s.refused[i].calls = make(map[bucketKey]*batch, 4)
	}
	route := metriclabel.Quote(o.route)
	s.fallbacks = o.set.GetOrCreateCounter(fmt.Sprintf(`flexgate_ratelimit_store_fallbacks_total{route=%s,mode="%s"}`, route, o.fallback))
	s.localRefusals = o.set.GetOrCreateCounter(`flexgate_ratelimit_local_refusals_total{route=` + route + `}`)
	s.leaseSpends = o.set.GetOrCreateCounter(`flexgate_ratelimit_lease_spends_total{route=` + route + `}`)
	return s
}

// redisInterval is r's interval in the whole µs Redis counts in: rounded
// down, in the clients' favour (validation keeps it at least 1 µs).
func redisInterval(r Rule) int64 { return max(1, r.Period/1000/r.Limit) }

// redisLimit is the limit per period that r is enforced as in Redis.
func redisLimit(r Rule) int64 { return r.Period / 1000 / redisInterval(r) }

// Take implements Store. now is the local clock, for the memory of
// refused clients, leases and the local fallback; Redis decides on its own
// clock.
func (s *RedisStore) Take(key []byte, now int64, _ []Rule) Decision {
	digest := sip128(s.sip, key)
	sh := &s.refused[digest.a%refusedShards]
	sh.mu.Lock()
	if m, ok := sh.m[digest]; ok {
		switch {
		case m.leased(now):
			m.tokens--
			sh.m[digest] = m
			sh.mu.Unlock()
			return s.spend(&m, now)
		case now < m.until:
			sh.mu.Unlock()
			return s.refuseLocally(&m, now)
		}
		delete(sh.m, digest)
	}
	cur := sh.calls[digest]
	if cur == nil {
		b := &batch{n: 1, start: now}
		sh.calls[digest] = b
		s.prepare(sh, digest, b, now)
		sh.mu.Unlock()
		s.call(sh, digest, key, b, now)
		return s.member(b, 0, key, now)
	}
	// A call for this client is in flight: join the batch that Redis
	// decides next.
	b := cur.next
	if b == nil {
		b = &batch{start: now}
		cur.next = b
		if cur.done == nil {
			cur.done = make(chan struct{})
		}
	}
	pos := b.n
	b.n++
	if pos > 0 && b.done == nil {
		b.done = make(chan struct{})
	}
	sh.mu.Unlock()
	if pos > 0 {
		<-b.done
		return s.member(b, pos, key, now)
	}
	// The first of the batch makes its call once the one in flight is
	// answered, or sooner if waiting longer would leave its own call too
	// little time; the requests that come from now on form the batch after.
	overlaps := s.await(cur, b.start)
	now = s.clock()
	sh.mu.Lock()
	sh.calls[digest] = b
	s.prepare(sh, digest, b, now)
	if overlaps {
		// The call in flight may still take a lease: two would overwrite
		// each other's in the memory, and tokens would be lost.
		b.lease = 0
	}
	sh.mu.Unlock()
	if b.asked == 0 || b.outcome == remembered {
		s.finish(sh, digest, b, memo{}, now)
	} else {
		s.call(sh, digest, key, b, now)
	}
	return s.member(b, 0, key, now)
}

// await waits for cur's answer, for the first request of the batch after
// it, which came at start. A Redis that answers in a fraction of
// storeTimeout is simply waited for. One slow enough that cur's answer and
// then another call would not both come within storeTimeout of start is
// waited for until the batch's own call has just the time it needs (Redis's
// recent latency and half as much again), and at least an eighth of
// storeTimeout, so that a client's concurrent requests still go together:
// calls for one client overlap, at most about eight in flight. It reports
// whether cur was still in flight when it returned.
func (s *RedisStore) await(cur *batch, start int64) (overlaps bool) {
	lat := s.conn.latency.Load()
	timeout := int64(s.timeout)
	callBy := max(start+timeout-lat-lat/2, start+timeout/8)
	if cur.called+lat+lat/2 <= callBy {
		<-cur.done
		return false
	}
	wait := time.Duration(callBy - s.clock())
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-cur.done:
			return false
		case <-t.C:
		}
	}
	select {
	case <-cur.done:
		return false
	default:
		return true
	}
}

// prepare decides, under sh.mu, what b asks Redis for: what the memory
// answers needs no call. b's first requests spend what is left of the
// client's lease; if the memory refuses the others, b is remembered; the
// call takes a lease ahead only if the memory has room to keep it.
func (s *RedisStore) prepare(sh *refusedShard, digest bucketKey, b *batch, now int64) {
	b.called = now
	b.asked = b.n
	m, ok := sh.m[digest]
	if ok {
		b.memo = m
		if m.leased(now) {
			b.fromLease = min(m.tokens, b.n)
			b.asked -= b.fromLease
			m.tokens -= b.fromLease
			sh.m[digest] = m
		}
		if b.asked > 0 && now < m.until {
			b.outcome = remembered
		}
	}
	if b.asked > 0 && b.outcome != remembered && s.lease > 0 && (ok || s.room(sh, now)) {
		b.lease = s.lease
	}
}

// call has Redis decide b, or records that it could not, remembers what
// the answer tells of the client's next requests, and wakes the waiting.
func (s *RedisStore) call(sh *refusedShard, digest bucketKey, key []byte, b *batch, now int64) {
	var next memo
	if s.ask(b, digest, now) {
		last := b.want - 1
		if s.fixed && b.left == 0 {
			// A window has none left: the request after the last taken
			// is refused by the window that ends last of those.
			last = b.taken
		}
		next = s.refusalAfter(s.decision(b, last), now)
		if b.taken > b.asked {
			next.tokens, next.expires, next.at, next.allowed, next.left = b.taken-b.asked, now+s.window, now, b.allowed, b.left
			if s.fixed {
				next.expires = now + b.first*1000
			}
		}
	} else {
		b.outcome = unanswered
	}
	s.finish(sh, digest, b, next, now)
}

// finish remembers next, if it refuses or leases, ends b's turn and wakes
// the requests waiting for it.
func (s *RedisStore) finish(sh *refusedShard, digest bucketKey, b *batch, next memo, now int64) {
	sh.mu.Lock()
	if next.until != 0 || next.tokens != 0 {
		if _, ok := sh.m[digest]; ok || s.room(sh, now) {
			sh.m[digest] = next
		}
	}
	if sh.calls[digest] == b && b.next == nil {
		delete(sh.calls, digest)
	}
	done := b.done
	sh.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// ask has Redis decide b: true when it did, within storeTimeout of b's
// first request.
func (s *RedisStore) ask(b *batch, digest bucketKey, now int64) bool {
	if !s.conn.usable() {
		return false
	}
	wait := time.Duration(b.start + int64(s.timeout) - now)
	if wait <= 0 {
		// The call before took the time there was.
		return false
	}
	b.want = b.asked + b.lease
	m, err := s.conn.take(s.sc, s.key(digest), s.argv(now, b.want), wait)
	if err == nil {
		err = s.read(b, &m)
	}
	if err != nil {
		// A call left less than half its time by the call before says
		// less of Redis than the breaker should hear.
		if wait >= s.timeout/2 || !errors.Is(err, context.DeadlineExceeded) {
			s.conn.failed(err)
		}
		return false
	}
	s.conn.succeeded()
	return true
}

// read sets b's outcome from the script's answer (see gcraScript and
// fixedWindowScript).
func (s *RedisStore) read(b *batch, m *rueidis.RedisMessage) error {
	if s.fixed {
		a, err := m.ToArray()
		if err != nil || len(a) != 5 {
			return fmt.Errorf("the rate-limit script answered %v, which no window explains", m)
		}
		for i, v := range []*int64{&b.taken, &b.allowed, &b.refused, &b.left, &b.first} {
			*v, _ = a[i].AsInt64()
		}
		if b.left < 0 || b.first < 0 {
			return fmt.Errorf("the rate-limit script answered %d left, first window ending in %d µs, which no window explains", b.left, b.first)
		}
	} else if m.IsInt64() {
		v, _ := m.AsInt64()
		if v&1 == 1 {
			b.taken, b.allowed = b.want, v>>1
		} else {
			b.refused = v >> 1
		}
	} else if a, err := m.ToArray(); err == nil && len(a) == 3 {
		b.taken, _ = a[0].AsInt64()
		b.allowed, _ = a[1].AsInt64()
		b.refused, _ = a[2].AsInt64()
	} else {
		return fmt.Errorf("the rate-limit script answered %v, which no rule explains", m)
	}
	if b.taken < 0 || b.taken > b.want || b.allowed < 0 || b.refused < 0 ||
		int(b.allowed&7) >= len(s.rules) || int(b.refused&7) >= len(s.rules) {
		return fmt.Errorf("the rate-limit script answered %d of %d taken, %d, %d, which no rule explains", b.taken, b.want, b.allowed, b.refused)
	}
	return nil
}

// member is the decision for the request at pos of b.
func (s *RedisStore) member(b *batch, pos int64, key []byte, now int64) Decision {
	if pos < b.fromLease {
		m := b.memo
		m.tokens -= pos + 1
		return s.spend(&m, now)
	}
	switch b.outcome {
	case decided:
		return s.decision(b, pos-b.fromLease)
	case remembered:
		return s.refuseLocally(&b.memo, now)
	}
	return s.fallBack(key, now)
}

// decision is what Redis decided for the request at pos of b (a lease's
// tokens come after the requests): the first taken are allowed, each
// seeing the buckets as its token left them, and the others refused.
func (s *RedisStore) decision(b *batch, pos int64) Decision {
	if s.fixed {
		// Every request taken takes one of every window: the rule with the
		// fewest left after the last had the fewest before it too.
		if pos < b.taken {
			i := int(b.allowed & 7)
			return Decision{Allowed: true, Rule: i, Limit: s.rules[i].limit, Reset: b.allowed >> 3 * 1000, Remaining: b.left + b.taken - 1 - pos}
		}
		i := int(b.refused & 7)
		return Decision{Rule: i, Limit: s.rules[i].limit, Reset: b.refused >> 3 * 1000, RetryAfter: b.refused >> 3 * 1000}
	}
	if pos < b.taken {
		i := int(b.allowed & 7)
		r := &s.rules[i]
		t := b.allowed>>3 - (b.taken-1-pos)*r.interval
		return Decision{Allowed: true, Rule: i, Limit: r.limit, Reset: t * 1000, Remaining: (r.burst - t) / r.interval}
	}
	i := int(b.refused & 7)
	r := &s.rules[i]
	t := b.refused >> 3
	return Decision{Rule: i, Limit: r.limit, Reset: t * 1000, RetryAfter: (t + r.interval - r.burst) * 1000}
}

// refusalAfter is what Redis's decision d, asked for at now, tells of the
// client's next requests: a refusal until its Retry-After, or, when d took
// the last token of a policy's only limit, until the next token comes back.
// Arrival times only move forward, so no replica can make it pass sooner;
// nor, for windows, any before the window ends.
func (s *RedisStore) refusalAfter(d Decision, now int64) memo {
	if !d.Allowed {
		return memo{until: now + d.RetryAfter, full: now + d.Reset, rule: d.Rule}
	}
	if s.fixed {
		// A window used up stays so until it ends (call asks for the
		// refusal then).
		return memo{}
	}
	if d.Remaining == 0 && len(s.rules) == 1 {
		r := &s.rules[0]
		if wait := d.Reset - (r.burst-r.interval)*1000; wait > 0 {
			return memo{until: now + wait, full: now + d.Reset}
		}
	}
	return memo{}
}

// spend answers a request that took a token of the lease in m: the
// buckets as Redis left them, the lease's tokens still in them, aged by
// the time since.
func (s *RedisStore) spend(m *memo, now int64) Decision {
	s.leaseSpends.Inc()
	i := int(m.allowed & 7)
	r := &s.rules[i]
	if s.fixed {
		return Decision{Allowed: true, Rule: i, Limit: r.limit, Remaining: m.left + m.tokens, Reset: max(m.allowed>>3*1000-(now-m.at), 0)}
	}
	t := m.allowed>>3 - m.tokens*r.interval
	return Decision{Allowed: true, Rule: i, Limit: r.limit, Remaining: (r.burst - t) / r.interval, Reset: max(t*1000-(now-m.at), 0)}
}

// refuseLocally answers a client remembered as refused.
func (s *RedisStore) refuseLocally(r *memo, now int64) Decision {
	s.localRefusals.Inc()
	return Decision{Rule: r.rule, Limit: s.rules[r.rule].limit, Reset: r.full - now, RetryAfter: r.until - now}
}

// key is the client's key: prefix, digest in hex, "}".
func (s *RedisStore) key(d bucketKey) string {
	var b [128]byte
	n := copy(b[:], s.prefix)
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], d.a)
	binary.BigEndian.PutUint64(raw[8:], d.b)
	n += hex.Encode(b[n:], raw[:])
	b[n] = '}'
	return string(b[:n+1])
}

// argv is the script's ARGV for n tokens at now.
func (s *RedisStore) argv(now, n int64) []string {
	if !s.callerClock && n == 1 {
		return s.args
	}
	args := append([]string(nil), s.args...)
	if s.callerClock {
		args[0] = strconv.FormatInt(now/1000, 10)
	}
	args[1] = strconv.FormatInt(n, 10)
	return args
}

// room reports whether the shard may remember one more client. A full
// shard first forgets the refusals that have run out; if none has, the
// client is not remembered and asks Redis again next time. The caller
// holds sh.mu.
func (s *RedisStore) room(sh *refusedShard, now int64) bool {
	if len(sh.m) < refusedPerShard {
		return true
	}
	for k, r := range sh.m {
		if now >= r.until && !r.leased(now) {
			delete(sh.m, k)
		}
	}
	return len(sh.m) < refusedPerShard
}

// fallBack decides without Redis, by the policy's onStoreError.
func (s *RedisStore) fallBack(key []byte, now int64) Decision {
	s.fallbacks.Inc()
	switch s.fallback {
	case FallbackAllow:
		return Decision{Allowed: true, Unknown: true}
	case FallbackLocal:
		return s.local.Take(key, now, s.localRules)
	}
	return Decision{Unavailable: true}
}

// Close releases the connection and stops the local store.
func (s *RedisStore) Close() error {
	s.conn.release()
	if s.local != nil {
		return s.local.Close()
	}
	return nil
}

var _ Store = (*RedisStore)(nil)
