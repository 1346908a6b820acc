// Package digestcache is a bounded map from a SHA-256 digest to an entry,
// sharded so that concurrent requests rarely meet on one lock: the cache
// of verified tokens and of introspection answers, which never hold a token
// itself, only its digest.
package digestcache

import (
	"crypto/sha256"
	"sync"
)

// Digest is the key: the SHA-256 of what is cached.
type Digest = [sha256.Size]byte

// Entry is what a cache holds: a pointer to an immutable value, so that
// readers share it without locks, that says whether it may still be used.
type Entry interface {
	comparable
	// Live reports whether the entry may be used at now (UnixNano).
	Live(now int64) bool
}

// Cache holds at most about maxEntries entries. It is safe for concurrent
// use, and Get does not allocate.
type Cache[E Entry] struct {
	shards   []shard[E]
	mask     byte
	perShard int
}

type shard[E Entry] struct {
	mu sync.RWMutex
	m  map[Digest]E
}

// New makes a cache of at most maxEntries entries (at least one per shard).
func New[E Entry](maxEntries int) *Cache[E] {
	n := 64
	for n > 1 && n > maxEntries {
		n /= 2
	}
	c := &Cache[E]{shards: make([]shard[E], n), mask: byte(n - 1), perShard: max(1, maxEntries/n)}
	for i := range c.shards {
		c.shards[i].m = make(map[Digest]E)
	}
	return c
}

// Get returns the live entry for k, or the zero E (nil).
func (c *Cache[E]) Get(k *Digest, now int64) E {
	s := &c.shards[k[0]&c.mask]
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if !ok || !e.Live(now) {
		var zero E
		return zero
	}
	return e
}

// Put stores e under k. A full shard first drops dead entries among a few
// it looks at, else one arbitrary entry: Go's map iteration starts at a
// random place, which makes this a cheap random eviction.
func (c *Cache[E]) Put(k *Digest, e E, now int64) {
	s := &c.shards[k[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		var victim Digest
		looked := 0
		for old, oe := range s.m {
			if looked == 0 {
				victim = old
			}
			if !oe.Live(now) {
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

// Len reports the number of entries, dead ones included.
func (c *Cache[E]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
