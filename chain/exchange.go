package chain

import (
	"net/netip"
	"sync"
	"time"
)

// Exchange is the per-request state the gateway and the policies share. It
// comes from a pool, is used by one request at a time and is reset before it
// goes back; it is not safe for concurrent use.
type Exchange struct {
	// RouteID of the matched route.
	RouteID string
	// RequestID is the X-Request-Id sent back to the client and upstream.
	RequestID []byte
	// RemoteIP is the client's address: the TCP peer, or the right-most
	// untrusted X-Forwarded-For entry when the peer is a trusted proxy.
	RemoteIP netip.Addr
	// RemoteAddr is RemoteIP rendered as text (no port).
	RemoteAddr []byte
	// ClientID is the caller authenticated by client-id-enforcement.
	ClientID []byte
	// Token holds claims of an introspected OAuth 2.0 token.
	Token Claims
	// Details is raw JSON that the error renderer adds to a rejection's
	// body under the rejection's DetailKey (validation violations).
	Details []byte
	// Rejected is the rejection that stopped the chain, if any.
	Rejected *Rejection
	// ResponseTimeout and StreamIdleTimeout, when positive, replace the
	// route's upstream responseTimeout for this request: the first bounds
	// each wait while the request is sent and for the answer's head, the
	// second each wait for the next bytes of the answer's body. Request
	// policies set them (response-timeout, stream-idle-timeout); the
	// gateway reads them when it forwards.
	ResponseTimeout   time.Duration
	StreamIdleTimeout time.Duration

	slots []Slot
	cur   int
}

// Claims are the claims of an introspected token that later steps can use.
type Claims struct {
	Active   bool
	Sub      []byte
	ClientID []byte
	Scope    []byte
}

// Slot is per-request scratch space of one policy, for state that its
// request phase hands to its response phase.
type Slot struct {
	N   [4]int64
	Buf []byte
	Set bool
}

// Slot returns the calling policy's own slot: each policy of a chain has
// one, at its position, whichever phase it runs in.
func (ex *Exchange) Slot() *Slot { return &ex.slots[ex.cur] }

// Prepare sizes the exchange's slots for a chain; call it once per request
// before the chain runs.
func (ex *Exchange) Prepare(c *Chain) {
	n := 0
	if c != nil {
		n = len(c.Policies)
	}
	if cap(ex.slots) < n {
		ex.slots = make([]Slot, n)
	}
	ex.slots = ex.slots[:n]
}

// Reset clears the exchange for reuse, keeping its buffers.
func (ex *Exchange) Reset() {
	ex.RouteID = ""
	ex.RequestID = ex.RequestID[:0]
	ex.RemoteIP = netip.Addr{}
	ex.RemoteAddr = ex.RemoteAddr[:0]
	ex.ClientID = ex.ClientID[:0]
	ex.Token.Active = false
	ex.Token.Sub = ex.Token.Sub[:0]
	ex.Token.ClientID = ex.Token.ClientID[:0]
	ex.Token.Scope = ex.Token.Scope[:0]
	ex.Details = ex.Details[:0]
	ex.Rejected = nil
	ex.ResponseTimeout, ex.StreamIdleTimeout = 0, 0
	for i := range ex.slots {
		s := &ex.slots[i]
		s.N = [4]int64{}
		s.Buf = s.Buf[:0]
		s.Set = false
	}
	ex.slots = ex.slots[:0]
	ex.cur = 0
}

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

// AcquireExchange returns an empty Exchange from the pool.
func AcquireExchange() *Exchange { return exchangePool.Get().(*Exchange) }

// ReleaseExchange resets ex and returns it to the pool; ex must not be used
// afterwards.
func ReleaseExchange(ex *Exchange) {
	ex.Reset()
	exchangePool.Put(ex)
}
