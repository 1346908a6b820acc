package clientid

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// maxBasic bounds decoded Basic credentials kept on the stack; longer ones
// are not credentials any registry holds.
const maxBasic = 512

var authorization = []byte(fasthttp.HeaderAuthorization)

// HandleRequest authenticates the caller against the registry, records the
// client id as $client.id and removes the secret before the request goes
// upstream. It does not allocate.
func (e *Enforcer) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	h := &ctx.Request.Header
	if r := e.creds.Check(ctx); r != nil {
		return r
	}
	id := e.idHeader.Peek(h)
	secret := e.secretHeader.Peek(h)
	fromBasic := false
	var buf [maxBasic]byte
	if e.BasicAuth {
		auth := h.PeekBytes(authorization)
		if len(id) == 0 && len(secret) == 0 {
			id, secret, fromBasic = parseBasic(auth, buf[:])
		} else if isBasic(auth) {
			// Only one pair would be checked; an upstream may read the
			// other.
			return e.twice
		}
	}
	if len(id) == 0 || len(secret) == 0 {
		return e.reject(ctx, e.missing)
	}
	c := e.clients[string(id)]
	want := &e.decoy
	if c != nil {
		want = &c.hash
	}
	// Hash, then compare in constant time: the time taken says nothing
	// about how much of the secret was right, or whether the id exists.
	got := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || c == nil {
		return e.reject(ctx, e.invalid)
	}
	ex.SetValue(clientIDValue, c.id)
	c.requests.Inc()
	if fromBasic {
		h.DelBytes(authorization)
	} else {
		e.secretHeader.Del(h)
	}
	return nil
}

func (e *Enforcer) reject(ctx *fasthttp.RequestCtx, r *chain.Rejection) *chain.Rejection {
	if e.challenge != nil {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, e.challenge)
	}
	return r
}

// isBasic reports whether an Authorization value uses the Basic scheme.
func isBasic(v []byte) bool {
	const scheme = "basic"
	return len(v) >= len(scheme) && bytes.EqualFold(v[:len(scheme)], []byte(scheme)) &&
		(len(v) == len(scheme) || v[len(scheme)] == ' ')
}

// parseBasic splits `Basic base64(id:secret)` into id and secret, decoding
// into buf. The scheme is case-insensitive (RFC 9110 §11.1); anything
// malformed yields ok false.
func parseBasic(v, buf []byte) (id, secret []byte, ok bool) {
	const prefix = "basic "
	if len(v) < len(prefix) || !bytes.EqualFold(v[:len(prefix)], []byte(prefix)) {
		return nil, nil, false
	}
	enc := v[len(prefix):]
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return nil, nil, false
	}
	// encoding/base64 skips '\r' and '\n' anywhere; credentials are one
	// token68 (RFC 9110 §11.2), so nothing but the alphabet is read.
	for _, c := range enc {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, nil, false
		}
	}
	n, err := base64.StdEncoding.Decode(buf, enc)
	if err != nil {
		return nil, nil, false
	}
	i := bytes.IndexByte(buf[:n], ':')
	if i < 0 {
		return nil, nil, false
	}
	return buf[:i], buf[i+1 : n], true
}
