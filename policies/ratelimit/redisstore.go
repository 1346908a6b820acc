package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
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
// one atomic script call per request decides on Redis's clock, so every
// replica spends from the same budget. A client it refused is refused
// again from memory, with no call, until its Retry-After: a bucket's
// arrival time only moves forward, so nothing another replica does can
// make the client pass sooner. When that time comes, one request asks
// Redis and the client's others wait for its answer. Memory is bounded
// (refusedShards × refusedPerShard clients). Safe for concurrent use.
type RedisStore struct {
	conn *redisConn
	// prefix is "flexgate:rl:<policy>:{"; the client's digest and "}"
	// follow, so that Cluster places every key by its client.
	prefix string
	sip    sipKey
	// args are the script's ARGV: the time ("": Redis's), then interval
	// and burst in µs per rule.
	args    []string
	rules   []redisRule
	timeout time.Duration

	fallback   Fallback
	local      *MemStore
	localRules []Rule

	refused [refusedShards]refusedShard

	fallbacks     *metrics.Counter
	localRefusals *metrics.Counter
	// callerClock sends the caller's now instead of using Redis's TIME
	// (tests compare with MemStore on one clock).
	callerClock bool
}

// redisRule is a Rule in the µs Redis works in.
type redisRule struct{ limit, interval, burst int64 }

type refusedShard struct {
	mu sync.Mutex
	m  map[bucketKey]refusal
	_  [48]byte // a cache line per shard
}

// refusal is what a store knows of a client without asking Redis: it is
// refused until a time of the local clock (full: when its bucket is full
// again), or a call for it is in flight.
type refusal struct {
	until, full int64
	rule        int
	flight      *flight
}

// flight is a call to Redis that other requests of the same client wait
// for; next and failed are set before done is closed.
type flight struct {
	done   chan struct{}
	next   refusal
	failed bool
}

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
}

func newRedisStore(o redisStoreOptions) *RedisStore {
	sum := sha256.Sum256([]byte("flexgate rate-limiting v1\x00" + o.id))
	s := &RedisStore{conn: o.conn, prefix: "flexgate:rl:" + hex.EncodeToString(sum[:8]) + ":{",
		sip:     sipKey{binary.LittleEndian.Uint64(sum[16:24]), binary.LittleEndian.Uint64(sum[24:32])},
		timeout: o.timeout, fallback: o.fallback, local: o.local, localRules: o.localRules}
	s.args = append(s.args, "")
	for _, r := range o.rules {
		iv := r.Period / 1000 / r.Limit
		rr := redisRule{limit: r.Limit, interval: iv, burst: iv * r.Limit}
		s.rules = append(s.rules, rr)
		s.args = append(s.args, strconv.FormatInt(rr.interval, 10), strconv.FormatInt(rr.burst, 10))
	}
	for i := range s.refused {
		s.refused[i].m = make(map[bucketKey]refusal, 16)
	}
	route := strconv.Quote(o.route)
	s.fallbacks = o.set.GetOrCreateCounter(fmt.Sprintf(`flexgate_ratelimit_store_fallbacks_total{route=%s,mode="%s"}`, route, o.fallback))
	s.localRefusals = o.set.GetOrCreateCounter(`flexgate_ratelimit_local_refusals_total{route=` + route + `}`)
	return s
}

// Take implements Store. now is the local clock, for the memory of
// refused clients and the local fallback; Redis decides on its own clock.
func (s *RedisStore) Take(key []byte, now int64, _ []Rule) Decision {
	digest := sip128(s.sip, key)
	sh := &s.refused[digest.a%refusedShards]
	sh.mu.Lock()
	r, known := sh.m[digest]
	var f *flight
	switch {
	case known && now < r.until:
		sh.mu.Unlock()
		return s.refuseLocally(r, now)
	case known && r.flight != nil:
		// Another request is asking Redis for this client; its answer
		// comes within storeTimeout, as this request's own would.
		sh.mu.Unlock()
		<-r.flight.done
		if r.flight.failed {
			return s.fallBack(key, now)
		}
		if now < r.flight.next.until {
			return s.refuseLocally(r.flight.next, now)
		}
	case known:
		// The client's refusal ran out: this request asks Redis, and the
		// ones that come meanwhile wait for its answer instead of all
		// racing for the one token that came back.
		f = &flight{done: make(chan struct{})}
		sh.m[digest] = refusal{flight: f}
		sh.mu.Unlock()
	default:
		sh.mu.Unlock()
	}
	d, decided := s.ask(key, digest, now)
	var next refusal
	if decided {
		next = s.refusalAfter(d, now)
	}
	if f == nil && next.until == 0 {
		return d
	}
	sh.mu.Lock()
	if cur, ok := sh.m[digest]; ok && (cur.flight == f || cur.flight == nil) {
		if next.until == 0 {
			delete(sh.m, digest)
		} else {
			sh.m[digest] = next
		}
	} else if !ok && next.until != 0 && s.room(sh, now) {
		sh.m[digest] = next
	}
	sh.mu.Unlock()
	if f != nil {
		f.next, f.failed = next, !decided
		close(f.done)
	}
	return d
}

// ask has Redis decide, or the fallback when it cannot; decided is true
// when Redis did.
func (s *RedisStore) ask(key []byte, digest bucketKey, now int64) (d Decision, decided bool) {
	if !s.conn.usable() {
		return s.fallBack(key, now), false
	}
	v, err := s.conn.take(s.key(digest), s.argv(now), s.timeout)
	if err == nil && (v < 0 || int(v>>1&7) >= len(s.rules)) {
		err = fmt.Errorf("the rate-limit script answered %d, which no rule explains", v)
	}
	if err != nil {
		s.conn.failed(err)
		return s.fallBack(key, now), false
	}
	s.conn.succeeded()
	return s.decode(v), true
}

// refusalAfter is what Redis's decision d, asked for at now, tells of the
// client's next requests: a refusal until its Retry-After, or, when d took
// the last token of a policy's only limit, until the next token comes back.
// Arrival times only move forward, so no replica can make it pass sooner.
func (s *RedisStore) refusalAfter(d Decision, now int64) refusal {
	if !d.Allowed {
		return refusal{until: now + d.RetryAfter, full: now + d.Reset, rule: d.Rule}
	}
	if d.Remaining == 0 && len(s.rules) == 1 {
		r := &s.rules[0]
		if wait := d.Reset - (r.burst-r.interval)*1000; wait > 0 {
			return refusal{until: now + wait, full: now + d.Reset}
		}
	}
	return refusal{}
}

// refuseLocally answers a client remembered as refused.
func (s *RedisStore) refuseLocally(r refusal, now int64) Decision {
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

func (s *RedisStore) argv(now int64) []string {
	if !s.callerClock {
		return s.args
	}
	args := append([]string(nil), s.args...)
	args[0] = strconv.FormatInt(now/1000, 10)
	return args
}

// decode reads the script's answer (see gcraScript) into a Decision in ns.
func (s *RedisStore) decode(v int64) Decision {
	i := int(v >> 1 & 7)
	r := &s.rules[i]
	t := v >> 4
	d := Decision{Allowed: v&1 == 1, Rule: i, Limit: r.limit, Reset: t * 1000}
	if d.Allowed {
		d.Remaining = (r.burst - t) / r.interval
	} else {
		d.RetryAfter = (t + r.interval - r.burst) * 1000
	}
	return d
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
		if now >= r.until && r.flight == nil {
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
