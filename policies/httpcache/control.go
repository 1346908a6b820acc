package httpcache

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/ascii"
)

// control is what the Cache-Control directives of a request or a
// response say to a shared cache (RFC 9111 §5.2).
type control struct {
	noStore, noCache, private, public, onlyIfCached, mustRevalidate bool
	// maxAge and sMaxAge are in seconds; -1 when not given.
	maxAge, sMaxAge int64
}

// parseControl reads the directives of every value. A directive with an
// argument it does not expect (no-cache="Set-Cookie") counts as the
// directive alone: stricter, never looser. A malformed max-age counts as
// 0 (RFC 9111 §4.2.1: treat as stale).
func parseControl(values ...[]byte) control {
	c := control{maxAge: -1, sMaxAge: -1}
	for _, v := range values {
		for len(v) > 0 {
			var d []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				d, v = v[:i], v[i+1:]
			} else {
				d, v = v, nil
			}
			d = bytes.TrimSpace(d)
			name, arg := d, []byte(nil)
			if i := bytes.IndexByte(d, '='); i >= 0 {
				name, arg = bytes.TrimSpace(d[:i]), bytes.Trim(bytes.TrimSpace(d[i+1:]), `"`)
			}
			switch {
			case ascii.EqualLower(name, "no-store"):
				c.noStore = true
			case ascii.EqualLower(name, "no-cache"):
				c.noCache = true
			case ascii.EqualLower(name, "private"):
				c.private = true
			case ascii.EqualLower(name, "public"):
				c.public = true
			case ascii.EqualLower(name, "only-if-cached"):
				c.onlyIfCached = true
			case ascii.EqualLower(name, "must-revalidate"), ascii.EqualLower(name, "proxy-revalidate"):
				c.mustRevalidate = true
			case ascii.EqualLower(name, "max-age"):
				c.maxAge = seconds(arg)
			case ascii.EqualLower(name, "s-maxage"):
				c.sMaxAge = seconds(arg)
			}
		}
	}
	return c
}

// seconds parses delta-seconds; anything else is 0.
func seconds(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
		if n > 1<<31 {
			// RFC 9111 §1.2.2: a value too large is 2^31.
			return 1 << 31
		}
	}
	return n
}

// freshness is how long a response may be served from the cache, from
// when it was received, following its Cache-Control, Expires, Date and
// Age, never longer than max: s-maxage, else max-age, else Expires − Date.
// ok is false when the response forbids a shared cache to store it.
func freshness(h *fasthttp.ResponseHeader, c control, max time.Duration, now time.Time) (ttl time.Duration, ok bool) {
	if c.noStore || c.noCache || c.private {
		return 0, false
	}
	ttl = max
	switch {
	case c.sMaxAge >= 0:
		ttl = min(ttl, time.Duration(c.sMaxAge)*time.Second)
	case c.maxAge >= 0:
		ttl = min(ttl, time.Duration(c.maxAge)*time.Second)
	default:
		if exp := h.Peek("Expires"); exp != nil {
			t, err := fasthttp.ParseHTTPDate(exp)
			if err != nil {
				// An invalid date, "0" among them, is in the past.
				return 0, false
			}
			date := now
			if d, err := fasthttp.ParseHTTPDate(h.Peek("Date")); err == nil {
				date = d
			}
			ttl = min(ttl, t.Sub(date))
		}
	}
	if age := h.Peek("Age"); age != nil {
		ttl -= time.Duration(seconds(age)) * time.Second
	}
	return ttl, ttl > 0
}
