package introspection

import (
	"crypto/sha256"
	"sync"
)

// key is the SHA-256 of a token: the cache never holds a token itself.
type key = [sha256.Size]byte

// entry is one introspection answer. It is immutable once built, so
// readers share it without locks.
type entry struct {
	// expires is the UnixNano after which the entry is not used.
	expires int64
	// exp and nbf are the token's claims in UnixNano, 0 when absent; an
	// entry is cached only while they hold.
	exp, nbf int64
	active   bool
	// scopeOK says the token carries every scope the policy requires.
	scopeOK  bool
	sub      []byte
	clientID []byte
	username []byte
	scope    []byte
	// claims is the whole answer, a JSON object, for $token.claims.
	claims []byte
}

// cache is a bounded map of answers, sharded so that concurrent requests
// rarely meet on one lock. It is safe for concurrent use.
type cache struct {
	shards   []shard
	mask     byte
	perShard int
}

type shard struct {
	mu sync.RWMutex
	m  map[key]*entry
}

func newCache(maxEntries int) *cache {
	n := 64
	for n > 1 && n > maxEntries {
		n /= 2
	}
	c := &cache{shards: make([]shard, n), mask: byte(n - 1), perShard: maxEntries / n}
	for i := range c.shards {
		c.shards[i].m = make(map[key]*entry)
	}
	return c
}

// get returns the live entry for k, or nil.
func (c *cache) get(k *key, now int64) *entry {
	s := &c.shards[k[0]&c.mask]
	s.mu.RLock()
	e := s.m[*k]
	s.mu.RUnlock()
	if e == nil || e.expires <= now {
		return nil
	}
	return e
}

// put stores e under k. A full shard first drops expired entries among a
// few it looks at, else one arbitrary entry: Go's map iteration starts at a
// random place, which makes this a cheap random eviction.
func (c *cache) put(k *key, e *entry, now int64) {
	s := &c.shards[k[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		var victim key
		looked := 0
		for old, oe := range s.m {
			if looked == 0 {
				victim = old
			}
			if oe.expires <= now {
				delete(s.m, old)
			}
			if looked++; looked == 8 {
				break
			}
		}
		if len(s.m) >= c.perShard {
			delete(s.m, victim)
		}
	}
	s.m[*k] = e
}

// len reports the number of entries, expired ones included.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
