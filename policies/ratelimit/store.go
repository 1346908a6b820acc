package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Rule is one limit of a policy, in the form the stores use: a token bucket
// of capacity Limit refilled continuously, one token every Interval, or,
// when Fixed, a fixed window (see NewFixedWindow).
type Rule struct {
	// Limit is the bucket's capacity and the number of requests per period.
	Limit int64
	// Period is the window in nanoseconds.
	Period int64
	// Interval is the time one token takes to come back, Period/Limit ns.
	Interval int64
	// Burst is Limit*Interval: how far ahead of now a bucket's theoretical
	// arrival time may run. Using it rather than Period keeps the count
	// exact when Period is not a multiple of Limit.
	Burst int64
	// Fixed makes the rule a fixed window, as Flex Gateway counts: a
	// client's window starts at its first request, lasts Period and admits
	// Limit requests; the first request after it ends starts the next.
	// Interval and Burst are then unused. A RedisStore's rules are all of
	// one kind.
	Fixed bool
}

// NewRule returns the token bucket of limit requests per period.
func NewRule(limit int64, period time.Duration) Rule {
	iv := int64(period) / limit
	return Rule{Limit: limit, Period: int64(period), Interval: iv, Burst: iv * limit}
}

// NewFixedWindow returns the fixed window of limit requests per period.
// limit must be at most period in µs (validation ensures it).
func NewFixedWindow(limit int64, period time.Duration) Rule {
	r := NewRule(limit, period)
	r.Fixed = true
	return r
}

// withLimit is r with another limit, of the same kind and period.
func (r Rule) withLimit(limit int64) Rule {
	n := NewRule(limit, time.Duration(r.Period))
	n.Fixed = r.Fixed
	return n
}

// slots is the int64s of a client's state that rules take in a MemStore: a
// bucket's theoretical arrival time; a window's end and its start plus the
// requests it admitted, which is always before its end (a window admits at
// most a request per µs), so that the latest of a client's slots is when
// its state is the same as none.
func slots(rules []Rule) int {
	n := len(rules)
	for i := range rules {
		if rules[i].Fixed {
			n++
		}
	}
	return n
}

// Decision is a store's answer for one request.
type Decision struct {
	// Allowed is true when the request took a token from every rule's
	// bucket.
	Allowed bool
	// Full is true when the request was refused because the store could
	// not track one more client (see MemStore).
	Full bool
	// Unavailable is true when a shared store could not decide (Redis
	// down, slow or its breaker open) and the policy's onStoreError is
	// deny.
	Unavailable bool
	// Unknown is true when a shared store could not decide and the
	// policy's onStoreError is allow: the request passes uncounted, and
	// nothing is known of its budget.
	Unknown bool
	// Rule is the index of the rule the other fields describe: the one
	// that refused the request, or else the one with the fewest tokens left.
	Rule int
	// Limit is that rule's limit; 0 with Full.
	Limit int64
	// Remaining is the tokens left in that rule's bucket.
	Remaining int64
	// Reset is the time in ns until that bucket is full again, or that
	// window ends.
	Reset int64
	// RetryAfter is the time in ns until the request would pass; 0 when
	// allowed.
	RetryAfter int64
}

// Store holds the token buckets or windows of one policy. The in-process MemStore is
// the default; RedisStore shares them between replicas. Implementations
// must be safe for concurrent use.
type Store interface {
	// Take takes one token for key from the bucket (or window) of every
	// rule at time now (Unix ns), or none if any is empty: a request
	// refused by one rule uses up nothing of the others. key is valid only during the
	// call. rules are the same slice on every call.
	Take(key []byte, now int64, rules []Rule) Decision
	// Close stops background work.
	Close() error
}

// maxRules bounds the limits of one policy; it lets a decision be worked
// out on the stack.
const maxRules = 8

// numShards spreads keys over independent locks, so that contention does
// not grow with the number of cores. A power of two; a small store uses
// fewer (at least keysPerShard keys each), since per-shard caps would
// otherwise refuse clients long before the store holds maxKeys.
const (
	numShards    = 256
	keysPerShard = 1024
)

// bucketKey is a 128-bit digest of an identifier: buckets are keyed by it,
// not by the identifier, so that a long identifier (a header value, up to
// the header limit) costs no more memory than a short one, and no API key
// used as an identifier sits in memory.
type bucketKey struct{ a, b uint64 }

// MemStore is the in-process Store: buckets in numShards shards, each a
// mutex and a map from key to the buckets' theoretical arrival times
// (GCRA, which is a token bucket kept as one number per rule), and the
// windows' ends and counts (see slots).
//
// Memory is bounded by maxKeys. A bucket that has refilled completely is
// indistinguishable from no bucket, so idle buckets are evicted exactly: a
// sweep runs when a shard is full and in the background. If a shard is
// full of buckets that are still refilling, a new key is refused (Full)
// until the first of them is full again: forgetting a refilling bucket
// would let its client exceed its limit, and growing would let a flood of
// identifiers exhaust memory. The clients already tracked are unaffected.
//
// MemStore is safe for concurrent use.
type MemStore struct {
	shards [numShards]shard
	mask   uint64
	seed   maphash.Seed
	seed2  maphash.Seed
	live   atomic.Int64
	clock  func() int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type shard struct {
	mu sync.Mutex
	m  map[bucketKey][]int64
	// max is the shard's share of maxKeys.
	max int
	// nextFull is the earliest time a bucket of the shard can be full
	// again; sweeping before it frees nothing.
	nextFull int64
	_        [64]byte
}

// NewMemStore returns a store for at most maxKeys keys. When sweepEvery > 0
// a goroutine evicts full buckets at that interval until Close; clock gives
// the time in Unix ns.
func NewMemStore(maxKeys int, sweepEvery time.Duration, clock func() int64) *MemStore {
	s := &MemStore{seed: maphash.MakeSeed(), seed2: maphash.MakeSeed(), clock: clock,
		stop: make(chan struct{}), done: make(chan struct{})}
	n := 1
	for n < numShards && n*2*keysPerShard <= maxKeys {
		n *= 2
	}
	s.mask = uint64(n - 1)
	for i := range s.shards[:n] {
		s.shards[i].m = map[bucketKey][]int64{}
		s.shards[i].max = maxKeys / n
		if i < maxKeys%n {
			s.shards[i].max++
		}
	}
	if sweepEvery > 0 {
		go s.janitor(sweepEvery)
	} else {
		close(s.done)
	}
	return s
}

// Take implements Store.
func (s *MemStore) Take(key []byte, now int64, rules []Rule) Decision {
	k := bucketKey{maphash.Bytes(s.seed, key), maphash.Bytes(s.seed2, key)}
	sh := &s.shards[k.a&s.mask]
	sh.mu.Lock()
	tats, ok := sh.m[k]
	if !ok && len(sh.m) >= sh.max {
		if now >= sh.nextFull {
			s.sweep(sh, now)
		}
		if len(sh.m) >= sh.max {
			wait := sh.nextFull - now
			sh.mu.Unlock()
			return Decision{Full: true, Reset: wait, RetryAfter: wait}
		}
	}
	var next [2 * maxRules]int64
	d := decide(tats, now, rules, &next)
	if d.Allowed {
		n := slots(rules)
		if !ok {
			tats = make([]int64, n)
			sh.m[k] = tats
			s.live.Add(1)
			// The shard's earliest refill may now be this new bucket's.
			last := next[0]
			for _, t := range next[1:n] {
				last = max(last, t)
			}
			sh.nextFull = min(sh.nextFull, last)
		}
		copy(tats, next[:n])
	}
	sh.mu.Unlock()
	return d
}

// decide works out the decision for the state at tats (nil: all buckets
// full, no window started; see slots) and the state to store if it is
// allowed.
func decide(tats []int64, now int64, rules []Rule, next *[2 * maxRules]int64) Decision {
	d := Decision{Allowed: true, Remaining: -1}
	j := 0
	for i := range rules {
		r := &rules[i]
		// rem < 0: refused, wait ns until it would pass.
		var rem, reset, wait int64
		if r.Fixed {
			end, used := now+r.Period, int64(0)
			if tats != nil && tats[j] > now {
				end, used = tats[j], tats[j+1]-(tats[j]-r.Period)
			}
			rem, reset, wait = r.Limit-used-1, end-now, end-now
			next[j], next[j+1] = end, end-r.Period+used+1
			j += 2
		} else {
			tat := now
			if tats != nil && tats[j] > now {
				tat = tats[j]
			}
			n := tat + r.Interval
			if n-now > r.Burst {
				rem, reset, wait = -1, tat-now, n-r.Burst-now
			} else {
				rem, reset = (r.Burst-(n-now))/r.Interval, n-now
			}
			next[j] = n
			j++
		}
		if rem < 0 {
			if d.Allowed || wait > d.RetryAfter {
				d = Decision{Rule: i, Limit: r.Limit, Reset: reset, RetryAfter: wait}
			}
			continue
		}
		if !d.Allowed {
			continue
		}
		if d.Remaining < 0 || rem < d.Remaining {
			d.Rule, d.Limit, d.Remaining, d.Reset = i, r.Limit, rem, reset
		}
	}
	return d
}

// sweep evicts the shard's full buckets and notes when the next one will
// be full. The caller holds sh.mu.
func (s *MemStore) sweep(sh *shard, now int64) {
	nextFull := int64(1<<63 - 1)
	for k, tats := range sh.m {
		last := tats[0]
		for _, t := range tats[1:] {
			last = max(last, t)
		}
		if last <= now {
			delete(sh.m, k)
			s.live.Add(-1)
			continue
		}
		nextFull = min(nextFull, last)
	}
	if len(sh.m) == 0 {
		nextFull = now
	}
	sh.nextFull = nextFull
}

// Sweep evicts every full bucket now.
func (s *MemStore) Sweep() {
	for i := range s.shards[:s.mask+1] {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.sweep(sh, s.clock())
		sh.mu.Unlock()
	}
}

func (s *MemStore) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Len returns the number of buckets held in memory.
func (s *MemStore) Len() int { return int(s.live.Load()) }

// Close stops the background sweep and waits for it.
func (s *MemStore) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

var _ Store = (*MemStore)(nil)
