package chain

import (
	"net/netip"
	"sync"
	"time"
)

// Exchange is the per-request state the gateway and the policies share. It
// comes from a pool, is used by one request at a time and is reset before it
// goes back; it is not safe for concurrent use. Besides its fields it holds
// the values policies provide to later steps (SetValue, Value).
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
	// BodyStreams is set by the gateway before the response steps run
	// when the answer's body streams from the upstream to the client: it
	// is not in ctx.Response.Body(). A response step that needs the bytes
	// (a cache storing the answer) sets BodyTap.
	BodyStreams bool
	// BodyTap, when a response step sets it on an answer whose body
	// streams, is given the body's bytes as they go to the client, then
	// closed. One tap per request: a step that finds one set leaves it.
	// A tap the gateway does not use is closed, incomplete, when the
	// exchange is reset.
	BodyTap BodyTap

	slots []Slot
	cur   int
	// conds[i] says whether the request meets the chain's Conds[i].
	conds []bool
	// vals holds the registered values, indexed by Value.slot-1; it
	// grows to the registry's size once and is reused from then on.
	vals [][]byte
}

// BodyTap sees an answer's body as it streams to the client. Its methods
// run on the goroutine that writes the answer, after the response steps,
// possibly after the Exchange has been released: a tap keeps what it
// needs itself.
type BodyTap interface {
	// TapWrite is given each piece of the body, in order. It must not keep
	// p.
	TapWrite(p []byte)
	// TapClose is called once, when the body has ended (complete: all of
	// it came from the upstream and went to the client) or was cut short.
	TapClose(complete bool)
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

// SetValue sets the request's value v to a copy of b, replacing what an
// earlier provider set. It does not allocate once the exchange's buffer for
// v has grown to size.
func (ex *Exchange) SetValue(v Value, b []byte) {
	i := int(v.slot) - 1
	if i < 0 {
		return
	}
	if i >= len(ex.vals) {
		n := max(int(valueCount.Load()), i+1)
		ex.vals = append(ex.vals, make([][]byte, n-len(ex.vals))...)
	}
	ex.vals[i] = append(ex.vals[i][:0], b...)
}

// Value returns the request's value v, empty when no step has set it (an
// empty value and an unset one are the same). The bytes are valid until
// the value is set again or the exchange is reset; the caller must not
// modify them.
func (ex *Exchange) Value(v Value) []byte {
	i := int(v.slot) - 1
	if i < 0 || i >= len(ex.vals) {
		return nil
	}
	return ex.vals[i]
}

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
	nc := 0
	if c != nil {
		nc = len(c.Conds)
	}
	if cap(ex.conds) < nc {
		ex.conds = make([]bool, nc)
	}
	ex.conds = ex.conds[:nc]
	// Until Select says otherwise, every policy applies: a policy that
	// runs on more requests than it should fails closed.
	for i := range ex.conds {
		ex.conds[i] = true
	}
}

// Reset clears the exchange for reuse, keeping its buffers.
func (ex *Exchange) Reset() {
	ex.RouteID = ""
	ex.RequestID = ex.RequestID[:0]
	ex.RemoteIP = netip.Addr{}
	ex.RemoteAddr = ex.RemoteAddr[:0]
	for i := range ex.vals {
		ex.vals[i] = ex.vals[i][:0]
	}
	ex.Details = ex.Details[:0]
	ex.Rejected = nil
	ex.ResponseTimeout, ex.StreamIdleTimeout = 0, 0
	ex.BodyStreams = false
	if ex.BodyTap != nil {
		ex.BodyTap.TapClose(false)
		ex.BodyTap = nil
	}
	for i := range ex.slots {
		s := &ex.slots[i]
		s.N = [4]int64{}
		s.Buf = s.Buf[:0]
		s.Set = false
	}
	ex.slots = ex.slots[:0]
	ex.conds = ex.conds[:0]
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
