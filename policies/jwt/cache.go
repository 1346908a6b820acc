package jwt

import (
	"crypto/sha256"
	"sync"
)

// digest is the SHA-256 of a token: the cache never holds a token itself.
type digest = [sha256.Size]byte

// entry is a verified token. It is immutable once built, so readers share
// it without locks.
type entry struct {
	// expires is the UnixNano after which the entry is not used: the
	// token's exp, or when it has none, maxUnexpiring after it was
	// verified.
	expires int64
	// key verified the signature; the entry is not used once a JWKS
	// fetch drops the key.
	key      *vkey
	sub      []byte
	clientID []byte
	// tokenClientID is the client_id claim ($token.client_id).
	tokenClientID []byte
	scope         []byte
	// claims is the token's payload, a JSON object, for $token.claims.
	claims []byte
}

// cache holds verified tokens by digest, bounded and sharded so that
// concurrent requests rarely meet on one lock. Safe for concurrent use.
type cache struct {
	shards   []shard
	mask     byte
	perShard int
}

type shard struct {
	mu sync.RWMutex
	m  map[digest]*entry
}

func newCache(maxEntries int) *cache {
	n := 64
	for n > 1 && n > maxEntries {
		n /= 2
	}
	c := &cache{shards: make([]shard, n), mask: byte(n - 1), perShard: max(1, maxEntries/n)}
	for i := range c.shards {
		c.shards[i].m = make(map[digest]*entry)
	}
	return c
}

// get returns the live entry for k, or nil. It does not allocate.
func (c *cache) get(k *digest, now int64) *entry {
	s := &c.shards[k[0]&c.mask]
	s.mu.RLock()
	e := s.m[*k]
	s.mu.RUnlock()
	if e == nil || e.expires <= now || e.key != nil && e.key.dropped.Load() {
		return nil
	}
	return e
}

// put stores e under k. A full shard first drops expired entries among a
// few it looks at, else one arbitrary entry (Go's map iteration starts at
// a random place).
func (c *cache) put(k *digest, e *entry, now int64) {
	s := &c.shards[k[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		var victim digest
		looked := 0
		for old, oe := range s.m {
			if looked == 0 {
				victim = old
			}
			if oe.expires <= now || oe.key != nil && oe.key.dropped.Load() {
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

// len reports the number of entries, stale ones included.
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
