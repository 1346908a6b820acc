package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/hopbyhop"
)

type peekDeleter interface {
	PeekAll(key string) [][]byte
	Del(key string)
	DelBytes(key []byte)
}

// removeConnectionTokens deletes every header named in any Connection
// header, then Connection itself. It never deletes the headers that frame
// the message or route it: a Connection header naming them is a trick, not
// a hop-by-hop declaration.
func removeConnectionTokens(h peekDeleter) {
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		removeTokens(h, v)
	}
	h.Del(fasthttp.HeaderConnection)
}

func removeTokens(h peekDeleter, v []byte) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 || asciiEqualFold(tok, "close") || asciiEqualFold(tok, "keep-alive") ||
			asciiEqualFold(tok, "content-length") || asciiEqualFold(tok, "transfer-encoding") ||
			asciiEqualFold(tok, "host") {
			continue
		}
		h.DelBytes(tok)
	}
}

// removeHopHeaders readies an upstream's answer for the client. Besides the
// hop-by-hop headers it drops the gateway's own X-Flexgate-* headers: a
// client must be able to trust that X-Flexgate-Error says the gateway
// answered, not an upstream pretending to be it.
// The gateway then sets its own X-Request-Id; deleting the upstream's
// first keeps a second line of it from going out beside the gateway's.
func removeHopHeaders(h *fasthttp.ResponseHeader) {
	removeConnectionTokens(h)
	// One pass finds which are there; most answers carry none but
	// X-Request-Id.
	var found uint32
	for k := range h.All() {
		for i, name := range droppedResponseHeaders {
			if asciiEqualFold(k, name) {
				found |= 1 << i
			}
		}
	}
	for i, name := range droppedResponseHeaders {
		if found&(1<<i) != 0 {
			h.Del(name)
		}
	}
}

// droppedResponseHeaders are removed from every upstream answer.
var droppedResponseHeaders = append(hopbyhop.Headers[:len(hopbyhop.Headers):len(hopbyhop.Headers)], HeaderError, HeaderPolicy, headerRequestID)

func removeRequestHopHeaders(h *fasthttp.RequestHeader) {
	removeConnectionTokens(h)
	// The raw header block, not h.All(): iterating a request's headers
	// makes fasthttp parse and rewrite its Cookie header.
	if hasHopHeaderLine(h.RawHeaders()) {
		for _, name := range hopbyhop.Headers {
			h.Del(name)
		}
	}
	// The gateway answers any 100-continue itself; the upstream gets the
	// body without being asked.
	h.Del(fasthttp.HeaderExpect)
}

// gatewaySet are the request headers the gateway sets for the upstream.
var gatewaySet = []string{headerXFF, headerXFProto, headerXFHost, headerXFPort, headerXRealIP, headerRequestID}

// removeUnderscoreAliases deletes every request header whose name is one
// the gateway sets but with '_' for '-', such as X_Forwarded_For: CGI,
// WSGI, Rack and PHP read both spellings as HTTP_X_FORWARDED_FOR, so a
// client's alias could stand in for the gateway's header.
func removeUnderscoreAliases(h *fasthttp.RequestHeader) {
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || bytes.IndexByte(line[:i], '_') < 0 {
			continue
		}
		for _, name := range gatewaySet {
			if equalFoldDash(line[:i], name) {
				h.DelBytes(line[:i])
				break
			}
		}
	}
}

// equalFoldDash is asciiEqualFold with '_' in b matching '-' in s.
func equalFoldDash(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '_' {
			c = '-'
		}
		if lower(c) != lower(s[i]) {
			return false
		}
	}
	return true
}

// hasHopHeaderLine reports whether any line of a raw header block is a
// hop-by-hop header: one pass, where deleting each name would take one
// pass per name, and most messages carry none.
func hasHopHeaderLine(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			for _, name := range hopbyhop.Headers {
				if asciiEqualFold(line[:i], name) {
					return true
				}
			}
		}
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
