package basicauth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/flexgate/flexgate/chain"
)

var authorization = []byte(fasthttp.HeaderAuthorization)

// HandleRequest authenticates the caller's Basic credentials, provides the
// user name as $client.id and $token.sub (Flex Gateway's
// authentication.clientId and authentication.principal), and removes the
// credentials before the request goes upstream. It does not allocate once a
// user's password is known (plain and SHA-256 users always; bcrypt users
// after the first request, for verifiedTTL).
func (c *core) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	if r := c.creds.Check(ctx); r != nil {
		return r
	}
	h := &ctx.Request.Header
	v := h.PeekBytes(authorization)
	if !isBasic(v) {
		return c.reject(ctx, c.missing)
	}
	// Decoded into the exchange's buffer, which the request's next
	// exchange reuses: the Unicode check below keeps what it reads.
	slot := ex.Slot()
	slot.Buf = slices.Grow(slot.Buf[:0], maxDecoded)[:maxDecoded]
	name, pass, ok := parseBasic(v, slot.Buf)
	if !ok || len(name) == 0 {
		return c.reject(ctx, c.malformed)
	}
	// Compared in Unicode NFC (RFC 7617 §2.1, RFC 8265), as the users
	// were when the config loaded: é typed as e and a combining accent
	// is é. Text already in NFC, as most is, is not copied.
	name, pass = toNFC(name), toNFC(pass)
	if len(pass) > maxDecoded {
		return c.reject(ctx, c.malformed)
	}
	u := c.users[string(name)]
	if u == nil {
		c.decoy(pass)
		return c.reject(ctx, c.invalid)
	}
	if !c.verify(u, pass) {
		return c.reject(ctx, c.invalid)
	}
	ex.SetValue(clientIDValue, u.name)
	ex.SetValue(principalValue, u.name)
	h.DelBytes(authorization)
	return nil
}

func (c *core) reject(ctx *fasthttp.RequestCtx, r *chain.Rejection) *chain.Rejection {
	ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, c.challenge)
	return r
}

// verify checks pass against u's password in constant time; a wrong one
// costs what a decoy check costs.
func (c *core) verify(u *user, pass []byte) bool {
	switch u.cred.kind {
	case kindPlain:
		d := c.keyed(pass)
		if subtle.ConstantTimeCompare(d[:], u.digest[:]) == 1 {
			return true
		}
	case kindSHA256:
		d := sha256.Sum256(pass)
		if subtle.ConstantTimeCompare(d[:], u.cred.sha[:]) == 1 {
			return true
		}
	case kindBcrypt, kindSHACrypt:
		d := c.keyed(pass)
		now := c.now().UnixNano()
		if v := u.verified.Load(); v != nil && now < v.expires && subtle.ConstantTimeCompare(d[:], v.digest[:]) == 1 {
			return true
		}
		// Only a password the slow hash accepts is remembered, by its
		// keyed digest: a wrong one never reaches the cache.
		if c.slow(&u.cred, pass) {
			u.verified.Store(&verified{digest: d, expires: now + int64(verifiedTTL)})
			return true
		}
		return false
	}
	if c.dummy.kind != kindPlain {
		c.slow(&c.dummy, pass)
	}
	return false
}

// decoy spends on an unknown user what a known user's wrong password costs.
func (c *core) decoy(pass []byte) {
	if c.dummy.kind != kindPlain {
		c.slow(&c.dummy, pass)
		return
	}
	d := c.keyed(pass)
	subtle.ConstantTimeCompare(d[:], c.dummyDigest[:])
}

// slow checks a bcrypt or SHA-crypt credential in one of the process's
// slots for slow hashes.
func (c *core) slow(cred *credential, pass []byte) bool {
	slowSlots <- struct{}{}
	var ok bool
	if cred.kind == kindBcrypt {
		ok = bcrypt.CompareHashAndPassword(cred.bcrypt, pass) == nil
	} else {
		ok = cred.crypt.verify(pass)
	}
	<-slowSlots
	if !ok {
		c.m.fail.Inc()
		return false
	}
	c.m.pass.Inc()
	return true
}

// keyed is the SHA-256 of the policy's key and b.
func (c *core) keyed(b []byte) [sha256.Size]byte {
	var in [32 + maxDecoded]byte
	n := copy(in[:], c.key[:])
	// Passwords are bounded by maxDecoded (a request's) and maxPassword
	// (the config's): nothing is cut off.
	n += copy(in[n:], b)
	return sha256.Sum256(in[:n])
}

// toNFC returns b in Unicode NFC: b itself when it is (ASCII, and most
// text, is), else a copy normalised, which allocates.
func toNFC(b []byte) []byte {
	if isNFC(b) {
		return b
	}
	return norm.NFC.Bytes(bytes.Clone(b))
}

// isNFC reports whether b is in NFC; ASCII is, without asking norm.
func isNFC(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return norm.NFC.QuickSpan(b) == len(b)
		}
	}
	return true
}

// isBasic reports whether an Authorization value names the Basic scheme,
// in any case (RFC 9110 §11.1).
func isBasic(v []byte) bool {
	const scheme = "basic"
	return len(v) >= len(scheme) && bytes.EqualFold(v[:len(scheme)], []byte(scheme)) &&
		(len(v) == len(scheme) || v[len(scheme)] == ' ')
}

// parseBasic splits `Basic base64(user:password)` (the scheme in any case,
// one or more spaces after it) into the user and password, decoding into
// buf; ok is false for anything else, and for credentials longer than buf.
func parseBasic(v, buf []byte) (name, pass []byte, ok bool) {
	if !isBasic(v) {
		return nil, nil, false
	}
	enc := bytes.TrimLeft(v[len("basic"):], " ")
	if len(enc) == 0 || base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return nil, nil, false
	}
	// encoding/base64 skips '\r' and '\n' anywhere; credentials are one
	// token68 (RFC 9110 §11.2), so nothing but the alphabet is read.
	for _, c := range enc {
		if !isBase64(c) {
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

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
