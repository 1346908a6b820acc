package jwt

import (
	"github.com/flexgate/flexgate/internal/digestcache"
)

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

// cache holds verified tokens by their SHA-256 (never a token itself),
// bounded and sharded.
type cache = digestcache.Cache[*entry]

func newCache(maxEntries int) *cache { return digestcache.New[*entry](maxEntries) }

// Live reports whether the token may still be used at now: before its
// expiry, and while the JWK set still holds the key that verified it.
func (e *entry) Live(now int64) bool {
	return e.expires > now && (e.key == nil || !e.key.dropped.Load())
}
