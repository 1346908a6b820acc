package httpcache

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

var (
	headerAge           = []byte("Age")
	headerAuthorization = []byte("Authorization")
	headerCacheControl  = []byte("Cache-Control")
	headerSetCookie     = []byte("Set-Cookie")
	headerError         = []byte("X-Flexgate-Error")
)

// Slot layout: what the request phase hands to the response phase. The
// slot's Buf holds the entry's key, slot.N[slotKeyLen] long.
const (
	slotKeyLen = iota
	slotFlight // the flight the request leads, 0: none
	slotFlags
)

const (
	// flagNoStore: the answer is not stored (a request's no-store, a
	// HEAD request).
	flagNoStore = 1 << iota
)

// now is the store's clock in nanoseconds.
func (c *Cache) now() int64 {
	if c.clock != nil {
		return c.clock.NowNano()
	}
	return time.Now().UnixNano()
}

// HandleRequest answers the request from the cache when it can
// (chain.Answered); otherwise it lets the request go upstream, and notes
// in the slot what the response phase is to store. Of concurrent misses
// of one key the first goes upstream and the others wait for its answer
// (up to the upstream's responseTimeout). A hit allocates nothing.
func (c *Cache) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	h := &ctx.Request.Header
	if cl := h.ContentLength(); cl > 0 || cl == -1 || !c.p.authorized && h.PeekBytes(headerAuthorization) != nil || !c.p.request.Eval(ctx, ex) {
		// A body may change the answer, and the key cannot read it; an
		// answer to an authorized request may be one user's.
		c.series.bypass.Inc()
		return nil
	}
	if !c.p.unambiguous(ctx) {
		c.series.ambiguous.Inc()
		return nil
	}
	slot := ex.Slot()
	key := c.appendKey(slot.Buf[:0], ctx, ex)
	slot.Buf = key
	lookup, flags := true, 0
	var rc control
	if c.p.headers {
		rc = parseControl(h.PeekBytes(headerCacheControl))
		// no-cache: the answer comes from the upstream, and is stored;
		// no-store: a stored answer may answer, but this one is not stored.
		lookup = !rc.noCache
		if rc.noStore {
			flags |= flagNoStore
		}
	}
	if c.p.invalidation != "" {
		switch string(h.Peek(c.p.invalidation)) {
		case invalidateOne:
			c.st.drop(key)
			lookup = false
		case invalidateAll:
			c.st.dropAll()
			lookup = false
		}
	}
	head := h.IsHead()
	if head {
		// An answer to HEAD has no body to store.
		flags |= flagNoStore
	}
	now := c.now()
	pass := false
	if lookup {
		e, ambiguous := c.lookup(ctx, slot, len(key))
		if ambiguous {
			c.series.ambiguous.Inc()
			return nil
		}
		if e != nil && e.kind == kindResponse && (rc.maxAge < 0 || ageOf(e, now) <= rc.maxAge) {
			c.answer(ctx, e, now, slot, len(key))
			c.series.hit.Inc()
			return chain.Answered
		}
		pass = e != nil && e.kind == kindPass
	}
	if rc.onlyIfCached {
		return c.onlyMiss
	}
	slot.Buf = slot.Buf[:len(key)]
	slot.N[slotKeyLen], slot.N[slotFlags], slot.Set = int64(len(key)), int64(flags), true
	if flags&flagNoStore != 0 || pass {
		c.series.miss.Inc()
		return nil
	}
	f, leader := c.fl.join(key, now, c.wait)
	switch {
	case f == nil:
		c.series.miss.Inc()
		return nil
	case leader:
		slot.N[slotFlight] = f.id
		c.series.miss.Inc()
		return nil
	}
	// Another request of the key is being fetched: wait for its answer.
	t := time.NewTimer(time.Duration(f.deadline - now))
	select {
	case <-f.done:
	case <-t.C:
	}
	t.Stop()
	// An ambiguous request finds nothing here either, and store does not
	// store its answer.
	if e, _ := c.lookup(ctx, slot, len(key)); e != nil && e.kind == kindResponse {
		c.answer(ctx, e, c.now(), slot, len(key))
		c.series.coalesced.Inc()
		return chain.Answered
	}
	// The leader's answer was not stored: this one goes upstream too.
	slot.Buf = slot.Buf[:len(key)]
	c.series.miss.Inc()
	return nil
}

// appendKey appends the request's key: 'k', the route's id after its
// length, the method, NUL, then the key expression's value. The routes of
// a Flex API instance share one cache (and may send one path to different
// upstreams): the route keeps their entries apart. GET and HEAD share
// entries; other methods (a requestExpression may admit them) have their
// own. Variant keys start with 'v' (appendVariant), so that no key a
// client can make up (the expression's value may hold any byte) is
// another key's variant.
func (c *Cache) appendKey(dst []byte, ctx *fasthttp.RequestCtx, ex *chain.Exchange) []byte {
	dst = append(dst, 'k')
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ex.RouteID)))
	dst = append(dst, ex.RouteID...)
	if m := ctx.Method(); string(m) == fasthttp.MethodHead {
		dst = append(dst, fasthttp.MethodGet...)
	} else {
		dst = append(dst, m...)
	}
	dst = append(dst, 0)
	return c.p.keyT.Append(dst, ctx, ex)
}

// unambiguous reports whether the request carries each header and query
// parameter that chooses its entry (see params.keyHeaders) at most once,
// under the name the key reads. A copy under another name an upstream
// reads as it (?LANG= for lang, as ASP.NET reads it; ?l.ang= for l_ang,
// as PHP does; X_Lang for X-Lang, as CGI does), a copy inside another
// parameter after a ';' (?utm=1;lang=fr, as Rack reads it), or a second
// copy, may
// reach the upstream while the key reads nothing, or the other copy: its
// answer, stored, would be served to every plain request of that key.
// Keying by what the upstream reads is no way out: upstreams read the
// first copy, the last or all, under their own set of names. So such a
// request goes upstream, and its answer is not stored. It does not
// allocate.
func (p *params) unambiguous(ctx *fasthttp.RequestCtx) bool {
	if p.keyAlts.Check(ctx) != nil {
		// Two of what the key reads in turn (`default`): the key reads
		// the first, an upstream may read another.
		return false
	}
	for i := range p.keyHeaders {
		if !p.keyHeaders[i].Unambiguous(&ctx.Request.Header) {
			return false
		}
	}
	for i := range p.keyQuery {
		if !p.keyQuery[i].Unambiguous(ctx) {
			return false
		}
	}
	return true
}

// lookup finds the request's entry, following a Vary marker to the
// variant of the request's headers (built in slot.Buf after the key).
// ambiguous is true, and e nil, when the request carries a header the
// marker names in another spelling or more than once (see
// unambiguousVary).
func (c *Cache) lookup(ctx *fasthttp.RequestCtx, slot *chain.Slot, keyLen int) (e *entry, ambiguous bool) {
	e = c.st.get(slot.Buf[:keyLen])
	if e == nil || e.kind != kindVary {
		return e, false
	}
	if !unambiguousVary(e.varyNames, &ctx.Request.Header) {
		return nil, true
	}
	slot.Buf = appendVariant(slot.Buf[:keyLen], slot.Buf[:keyLen], e.gen, e.vary, &ctx.Request.Header)
	return c.st.get(slot.Buf[keyLen:]), false
}

// unambiguousVary reports whether the request carries each header of
// names at most once, in the spelling Vary names: a variant is chosen by
// the one copy, which is what the upstream read. X_Lang beside or instead
// of X-Lang is one header to a CGI-style upstream and none to the
// variant's key; of two copies the key reads the first, an upstream may
// read the last. It does not allocate.
func unambiguousVary(names []chain.HeaderName, h *fasthttp.RequestHeader) bool {
	for i := range names {
		if !names[i].Unambiguous(h) {
			return false
		}
	}
	return true
}

// varyNames returns the request headers vary names (lower case, as a
// response's Vary is read), each in every spelling an upstream reads as
// it; ok is false when one has more '-' and '_' than chain.HeaderName
// looks for, so that an answer varying on it cannot be told apart.
func varyNames(vary [][]byte) (names []chain.HeaderName, ok bool) {
	for _, v := range vary {
		h, err := chain.NewHeaderName(string(v))
		if err != nil {
			return nil, false
		}
		names = append(names, h)
	}
	return names, true
}

// appendVariant appends the key of the variant of key, under the Vary
// marker of generation gen, that the request headers an answer varies on
// select: 'v', then key after its length, gen, and each header's value
// after its length, so that no two variants, and no variant and key, are
// written alike.
func appendVariant(dst, key []byte, gen uint64, names [][]byte, h *fasthttp.RequestHeader) []byte {
	dst = append(dst, 'v')
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, gen)
	for _, n := range names {
		v := h.PeekBytes(n)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// ageOf is the entry's age in seconds at now.
func ageOf(e *entry, now int64) int64 {
	return e.age + max(now-e.stored, 0)/int64(time.Second)
}

// answer writes the entry as the request's answer, with its Age. The body
// is the entry's own bytes, sent without copying: entries never change.
func (c *Cache) answer(ctx *fasthttp.RequestCtx, e *entry, now int64, slot *chain.Slot, keyLen int) {
	resp := &ctx.Response
	resp.SetStatusCode(e.status)
	for i := range e.headers {
		f := &e.headers[i]
		resp.Header.AddBytesKV(f.name, f.value)
	}
	resp.SetBodyRaw(e.body)
	slot.Buf = strconv.AppendInt(slot.Buf[:keyLen], ageOf(e, now), 10)
	resp.Header.SetBytesKV(headerAge, slot.Buf[keyLen:])
	slot.Buf = slot.Buf[:keyLen]
}

// HandleResponse stores the answer when it may be: a body of known small
// size at once, a streamed one through a tap once it has streamed whole.
// It always ends the flight the request led, waking the waiters.
func (c *Cache) HandleResponse(ctx *fasthttp.RequestCtx, ex *chain.Exchange) {
	slot := ex.Slot()
	if !slot.Set {
		return
	}
	key := slot.Buf[:slot.N[slotKeyLen]]
	id := slot.N[slotFlight]
	if !c.store(ctx, ex, key, id, int(slot.N[slotFlags])) && id != 0 {
		c.fl.end(key, id)
	}
}

// store stores the answer, or hands it to a tap; it reports whether the
// tap now ends the flight.
func (c *Cache) store(ctx *fasthttp.RequestCtx, ex *chain.Exchange, key []byte, id int64, flags int) (tapped bool) {
	resp := &ctx.Response
	rh := &resp.Header
	if flags&flagNoStore != 0 || ex.Rejected != nil || rh.PeekBytes(headerError) != nil {
		// The gateway's own answers (a refusal, an upstream that failed)
		// are not the upstream's.
		return false
	}
	now := c.now()
	if resp.StatusCode() == fasthttp.StatusPartialContent || !c.p.respond.Eval(ctx, ex) ||
		!c.p.setCookie && rh.PeekBytes(headerSetCookie) != nil {
		// A 206 is part of a representation, not one.
		c.pass(key, c.p.ttl)
		return false
	}
	ttl := c.p.ttl
	var vary [][]byte
	if c.p.headers {
		var ok bool
		if ttl, ok = freshness(rh, parseControl(rh.PeekAll("Cache-Control")...), ttl, time.Unix(0, now)); !ok {
			c.pass(key, c.p.ttl)
			return false
		}
	}
	for _, v := range rh.PeekAll("Vary") {
		for _, n := range bytes.Split(v, []byte(",")) {
			n = bytes.ToLower(bytes.TrimSpace(n))
			switch {
			case len(n) == 0:
			case string(n) == "*":
				c.pass(key, c.p.ttl)
				return false
			default:
				vary = append(vary, n)
			}
		}
	}
	e := &entry{kind: kindResponse, status: resp.StatusCode(), stored: now, ttl: ttl, size: 256}
	if c.p.headers {
		e.age = seconds(rh.Peek("Age"))
	}
	for k, v := range rh.All() {
		if skipHeader(k) {
			continue
		}
		e.headers = append(e.headers, field{append([]byte(nil), k...), append([]byte(nil), v...)})
		e.size += len(k) + len(v) + 48
	}
	w := &write{c: c, key: string(key), id: id, e: e, vary: vary}
	if len(vary) > 0 {
		var ok bool
		if w.varyNames, ok = varyNames(vary); !ok {
			c.pass(key, c.p.ttl)
			return false
		}
		if !unambiguousVary(w.varyNames, &ctx.Request.Header) {
			// This request's answer is not its variant's; the next
			// request of the key may store one.
			c.series.passed.Inc()
			return false
		}
		w.gen = c.markerGen(key, vary)
		w.variant = string(appendVariant(nil, key, w.gen, vary, &ctx.Request.Header))
	}
	if !ex.BodyStreams {
		body := resp.Body()
		if len(body) > MaxEntryBytes {
			c.pass(key, c.p.ttl)
			return false
		}
		e.body = append([]byte(nil), body...)
		w.put()
		return false
	}
	if cl := rh.ContentLength(); cl > MaxEntryBytes || ex.BodyTap != nil {
		c.pass(key, c.p.ttl)
		return false
	}
	ex.BodyTap = acquireTap(w)
	return true
}

// markerGen returns the generation of key's Vary marker when it names
// the headers vary names, else a new one: a new marker's variants are
// apart from those of the one before (an invalidated key's variants are
// no longer reached), and an answer of another variant under the same
// marker keeps the others.
func (c *Cache) markerGen(key []byte, vary [][]byte) uint64 {
	if m := c.st.get(key); m != nil && m.kind == kindVary && len(m.vary) == len(vary) {
		same := true
		for i := range vary {
			same = same && bytes.Equal(m.vary[i], vary[i])
		}
		if same {
			return m.gen
		}
	}
	return rand.Uint64()
}

// pass marks key, when it holds nothing, as one whose misses go upstream
// without waiting for one another: its last answer could not be stored.
func (c *Cache) pass(key []byte, ttl time.Duration) {
	if c.st.get(key) == nil {
		c.st.set(string(key), &entry{kind: kindPass, ttl: min(passTTL, ttl), size: len(key) + 64})
	}
	c.series.passed.Inc()
}

// skipHeader reports the headers an entry does not keep: framing, the
// request's own, and Age (computed on each hit).
func skipHeader(k []byte) bool {
	for _, s := range skipped {
		if bytes.EqualFold(k, s) {
			return true
		}
	}
	return false
}

var skipped = [][]byte{[]byte("Content-Length"), []byte("Transfer-Encoding"), []byte("Connection"), []byte("Keep-Alive"),
	[]byte("Age"), []byte("X-Request-Id")}

// write is an answer on its way into the store.
type write struct {
	c       *Cache
	key     string
	variant string // the key of the answer's variant; "": no Vary
	gen     uint64 // the generation of its Vary marker
	id      int64  // the flight it ends; 0: none
	e       *entry
	vary    [][]byte
	// varyNames are vary in every spelling, for the marker.
	varyNames []chain.HeaderName
}

// put stores the entry (and its Vary marker).
func (w *write) put() {
	c, e := w.c, w.e
	e.size += len(e.body) + len(w.key) + len(w.variant)
	if w.variant == "" {
		c.st.set(w.key, e)
	} else {
		// The marker names the headers the newest answer varies on; an
		// answer of other variants stays until it expires or is evicted,
		// reached while the marker is of its generation.
		c.st.set(w.key, &entry{kind: kindVary, vary: w.vary, varyNames: w.varyNames, gen: w.gen, stored: e.stored, ttl: max(e.ttl, c.p.ttl), size: len(w.key) + 64})
		c.st.set(w.variant, e)
	}
	c.series.stored.Inc()
}

var (
	_ chain.RequestHandler  = (*Cache)(nil)
	_ chain.ResponseHandler = (*Cache)(nil)
)
