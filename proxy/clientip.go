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
// behind the first untrusted hop.
func (t trustedSet) clientAddr(ctx *fasthttp.RequestCtx, peer netip.Addr) netip.Addr {
	if len(t) == 0 || !t.contains(peer) {
		return peer
	}
	xff := ctx.Request.Header.Peek(fasthttp.HeaderXForwardedFor)
	client := peer
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
			return client
		}
		client = a.Unmap()
		if !t.contains(client) {
			return client
		}
	}
	return client
}
