package iplist

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// HandleRequest checks the client address against the list. An address
// that cannot be read refuses the request, on either list: a list cannot
// say anything of a client it cannot name. It does not allocate when the
// addresses parse.
func (l *List) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	switch l.src {
	case fromHeader:
		// Every copy of the header, in every spelling, is one list
		// (RFC 9110 §5.3): a proxy that adds a line of its own puts the
		// address it saw there, a client writes what it likes in another.
		seen := false
		for k, v := range ctx.Request.Header.All() {
			if !sameHeader(k, l.header) {
				continue
			}
			n, r := l.checkList(v)
			if r != nil {
				return r
			}
			seen = seen || n > 0
		}
		if !seen {
			return l.unknown
		}
		return nil
	case fromTemplate:
		if r := l.creds.Check(ctx); r != nil {
			return r
		}
		if r := l.alts.Check(ctx); r != nil {
			return r
		}
		slot := ex.Slot()
		slot.Buf = l.tmpl.Append(slot.Buf[:0], ctx, ex)
		n, r := l.checkList(slot.Buf)
		if r == nil && n == 0 {
			return l.unknown
		}
		return r
	}
	a := ex.RemoteIP
	if !a.IsValid() {
		// Outside the gateway's own request path (tests, tools) the
		// exchange may not carry the address; the peer's is the same.
		a, _ = netip.AddrFromSlice(ctx.RemoteIP())
	}
	if !a.IsValid() {
		return l.unknown
	}
	return l.check(a.WithZone(""))
}

// check judges one address.
func (l *List) check(a netip.Addr) *chain.Rejection {
	if l.set.Contains(a) == l.block {
		return l.denied
	}
	return nil
}

// checkList judges every address of a comma-separated list, empty entries
// aside, and returns how many it read. On an allowlist every address must
// be on it, on a blocklist none may be: of a list that a client can write
// in part, only the strictest reading cannot be forged into a pass.
func (l *List) checkList(list []byte) (int, *chain.Rejection) {
	n := 0
	for len(list) > 0 {
		entry := list
		if i := bytes.IndexByte(list, ','); i >= 0 {
			entry, list = list[:i], list[i+1:]
		} else {
			list = nil
		}
		a, err := ParseAddr(entry)
		if err == errNoAddress {
			continue
		}
		if err != nil {
			return n, l.unknown
		}
		n++
		if r := l.check(a); r != nil {
			return n, r
		}
	}
	return n, nil
}

// sameHeader reports whether name is the header, in any case and with '-'
// and '_' alike.
func sameHeader(name []byte, header string) bool {
	if len(name) != len(header) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != header[i] {
			return false
		}
	}
	return true
}
