package introspection

import (
	"github.com/flexgate/flexgate/internal/digestcache"
)

// key is the SHA-256 of a token: the cache never holds a token itself.
type key = digestcache.Digest

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

// cache holds answers by the token's digest, bounded and sharded.
type cache = digestcache.Cache[*entry]

func newCache(maxEntries int) *cache { return digestcache.New[*entry](maxEntries) }

// Live reports whether the answer may still be used at now.
func (e *entry) Live(now int64) bool { return e.expires > now }
