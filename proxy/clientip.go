package proxy

import (
	"bytes"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// trustedSet holds the proxies whose X-Forwarded-For is believed.
type trustedSet []netip.Prefix

func newTrustedSet(p []netip.Prefix) trustedSet { return trustedSet(p) }

func (t trustedSet) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the TCP peer's address.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	ip := ctx.RemoteIP()
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// clientAddr is the address a request came from: the TCP peer, unless the
// peer is a trusted proxy, in which case it is the right-most address of
// X-Forwarded-For that is not itself a trusted proxy. Walking from the right
// means a client cannot forge its way in: whatever it puts at the left is
// behind the first untrusted hop. A header sent as several lines is one
// list, the lines in order (RFC 9110 §5.3): a proxy that adds its own line
// (HAProxy) puts the address it saw in the last one.
func (t trustedSet) clientAddr(ctx *fasthttp.RequestCtx, peer netip.Addr) netip.Addr {
	if len(t) == 0 || !t.contains(peer) {
		return peer
	}
	lines := ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor)
	client := peer
	for i := len(lines) - 1; i >= 0; i-- {
		var done bool
		if client, done = t.walk(lines[i], client); done {
			return client
		}
	}
	return client
}

// walk goes through one line of X-Forwarded-For from the right. It returns
// the last address it believed and whether the walk ends there: at an
// address that is not a trusted proxy, or before a garbled one.
func (t trustedSet) walk(xff []byte, client netip.Addr) (netip.Addr, bool) {
	for len(xff) > 0 {
		var entry []byte
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			entry, xff = xff[i+1:], xff[:i]
		} else {
			entry, xff = xff, nil
		}
		entry = bytes.TrimSpace(entry)
		if len(entry) == 0 {
			continue
		}
		a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(entry), len(entry)))
		if err != nil {
			// A garbled hop ends the chain of trust: the last good address
			// is the best that can be said.
			return client, true
		}
		client = a.Unmap()
		if !t.contains(client) {
			return client, true
		}
	}
	return client, false
}
