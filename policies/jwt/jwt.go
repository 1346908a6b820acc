package jwt

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"time"

	"github.com/buger/jsonparser"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/rfc6750"
)

// runtime is what Provision builds.
type runtime struct {
	keys  *keySet
	cache *cache
	creds *chain.Credentials
	// alts refuses a request that carries more than one of what a value
	// reads in turn (`default`).
	alts *chain.Alternatives
	now  func() time.Time
	m    *policyMetrics

	missing     *chain.Rejection
	invalid     [failCount]*chain.Rejection
	unavailable *chain.Rejection
	twoTokens   *chain.Rejection
	// bearerToo, when from reads the access_token query parameter,
	// refuses a bearer token in Authorization beside it.
	bearerToo *chain.Rejection

	challengeMissing []byte
	challengeInvalid []byte
	challengeRequest []byte
}

// timeNow is the clock; tests replace it before they provision.
var timeNow = time.Now

// maxTries bounds the keys one token's signature is checked with, when
// several fit its kid and alg.
const maxTries = 4

// queryToken is the query parameter RFC 6750 §2.3 carries a token in, and
// the form body parameter of §2.2.
var queryToken = chain.NewQueryName("access_token")

// formTokenMessage refuses a form body with a token beside Authorization's.
const formTokenMessage = "the request carries a token in Authorization and an access_token in the form body; send it only in Authorization"

func (v *Validator) provision(env *chain.Env, s *settings) error {
	rt := &v.rt
	rt.now = timeNow
	rt.m = newPolicyMetrics(env.Metrics, env.Owner())
	rt.cache = newCache(s.maxEntries)
	var headers, query []string
	if s.from == nil {
		headers = []string{fasthttp.HeaderAuthorization}
	} else {
		headers, query = s.from.Reads()
	}
	// The client's name, and what the claims' conditions compare with
	// the token (a tenant header), are checked as the token is: the
	// gateway would check one copy, the upstream serve another.
	checked, checkedQuery := slices.Clone(headers), slices.Clone(query)
	if s.clientExpr != nil {
		h, q := s.clientExpr.Reads()
		checked, checkedQuery = append(checked, h...), append(checkedQuery, q...)
	}
	for i := range s.conds {
		h, q := s.conds[i].cond.Reads()
		checked, checkedQuery = append(checked, h...), append(checkedQuery, q...)
	}
	var err error
	if rt.creds, err = env.Credentials(checked, checkedQuery); err != nil {
		return err
	}
	var alts [][]chain.Reads
	if s.from != nil {
		alts = append(alts, s.from.Alternatives()...)
	}
	if s.clientExpr != nil {
		alts = append(alts, s.clientExpr.Alternatives()...)
	}
	for i := range s.conds {
		alts = append(alts, s.conds[i].cond.Alternatives()...)
	}
	if rt.alts, err = env.Alternatives(alts); err != nil {
		return err
	}
	for _, sp := range s.jwks {
		if u := sp.url; strings.HasPrefix(u, "http://") && !isLocal(u) {
			env.Logger.Warn("JWKS over plain http can be changed on the way, and with it the keys that verify tokens: use https outside local development", "url", u)
		}
	}
	if rt.keys, err = newKeySet(s.static, s.jwks, s.allowed, env.Logger, rt.m); err != nil {
		return err
	}
	rt.keys.start()

	rt.challengeMissing = []byte(`Bearer realm="flexgate"`)
	rt.challengeInvalid = []byte(`Bearer realm="flexgate", error="invalid_token"`)
	rt.challengeRequest = []byte(`Bearer realm="flexgate", error="invalid_request"`)
	rt.creds.SetChallenge(rt.challengeRequest)
	if s.from == nil {
		// RFC 6750 §2.2: an upstream may take the token from a form
		// body, where no one checked it.
		rt.creds.RefuseInForm(env, queryToken.String(), formTokenMessage)
	}
	missing := "a JWT is required: send Authorization: Bearer <token>"
	if s.from != nil {
		missing = "a JWT is required in " + s.from.String()
	}
	if s.flex {
		missing = FlexTokenRequired
	}
	rt.missing = env.Reject(fasthttp.StatusBadRequest, "missing_token", missing)
	for f := failMalformed; f < failUnavailable; f++ {
		msg := failureMessages[f]
		if s.flex {
			msg = FlexInvalidToken
		}
		rt.invalid[f] = env.Reject(fasthttp.StatusUnauthorized, "invalid_token", msg)
	}
	rt.unavailable = env.Reject(fasthttp.StatusServiceUnavailable, "jwks_unavailable",
		"the keys that verify the token could not be fetched from the identity provider (JWKS); retry later")
	rt.twoTokens = env.Reject(fasthttp.StatusBadRequest, "duplicate_credentials",
		"the request carries a token in Authorization and in the access_token query parameter; send it only in Authorization")
	for _, q := range query {
		if queryToken.Matches([]byte(q)) {
			// RFC 6750 §2.1: an upstream may take the token from
			// Authorization, where no one checked it.
			rt.bearerToo = env.Reject(fasthttp.StatusBadRequest, "duplicate_credentials",
				"the request carries a token in the "+q+" query parameter and in Authorization; send it only in "+q)
		}
	}
	return nil
}

func isLocal(u string) bool {
	h := strings.TrimPrefix(u, "http://")
	return strings.HasPrefix(h, "localhost") || strings.HasPrefix(h, "127.") || strings.HasPrefix(h, "[::1]")
}

// HandleRequest verifies the request's token, from the cache when it can,
// and hands its claims to later steps. A cached token costs no allocation.
func (v *Validator) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	rt, s := &v.rt, &v.s
	if r := rt.creds.Check(ctx); r != nil {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, rt.challengeRequest)
		return r
	}
	if r := rt.alts.Check(ctx); r != nil {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, rt.challengeRequest)
		return r
	}
	var tok []byte
	if s.from == nil {
		var ok bool
		tok, ok = bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
		if ok && tok != nil && chain.HasQueryParam(ctx, &queryToken) {
			// RFC 6750 §2.3 lets an upstream take the token from the
			// query too, where no one checked it.
			ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, rt.challengeRequest)
			return rt.twoTokens
		}
		if !ok {
			return v.refuse(ctx, failMalformed)
		}
	} else {
		if rt.bearerToo != nil {
			if t, _ := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)); t != nil {
				ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, rt.challengeRequest)
				return rt.bearerToo
			}
		}
		slot := ex.Slot()
		slot.Buf = s.from.Append(slot.Buf[:0], ctx, ex)
		tok = bytes.TrimSpace(slot.Buf)
	}
	if len(tok) == 0 {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, rt.challengeMissing)
		return rt.missing
	}
	if len(tok) > MaxTokenSize {
		return v.refuse(ctx, failTooLarge)
	}
	k := sha256.Sum256(tok)
	now := rt.now()
	e := rt.cache.Get(&k, now.UnixNano())
	if e != nil {
		rt.m.hit.Inc()
	} else {
		rt.m.miss.Inc()
		var f failure
		if e, f = v.verify(tok, now); f != failNone {
			return v.refuse(ctx, f)
		}
		rt.m.results[failNone].Inc()
		if e.expires > now.UnixNano() {
			rt.cache.Put(&k, e, now.UnixNano())
		}
	}
	ex.SetValue(subValue, e.sub)
	ex.SetValue(clientIDValue, e.tokenClientID)
	ex.SetValue(scopeValue, e.scope)
	ex.SetValue(claimsValue, e.claims)
	if s.clientExpr == nil {
		ex.SetValue(clientValue, e.clientID)
	} else {
		// The expression reads the claims set above.
		slot := ex.Slot()
		slot.Buf = s.clientExpr.Append(slot.Buf[:0], ctx, ex)
		ex.SetValue(clientValue, slot.Buf)
	}
	for i := range s.conds {
		r := &s.conds[i]
		if _, _, _, err := jsonparser.Get(e.claims, r.name); err == nil && !r.cond.Eval(ctx, ex) {
			for _, val := range []chain.Value{subValue, clientIDValue, scopeValue, claimsValue, clientValue} {
				ex.SetValue(val, nil)
			}
			return v.refuse(ctx, failClaim)
		}
	}
	return nil
}

// refuse counts a refused token and answers 401, or 503 when no key could
// be had.
func (v *Validator) refuse(ctx *fasthttp.RequestCtx, f failure) *chain.Rejection {
	v.rt.m.results[f].Inc()
	if f == failUnavailable {
		return v.rt.unavailable
	}
	ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, v.rt.challengeInvalid)
	return v.rt.invalid[f]
}

// verify checks a token the cache does not hold. It returns the entry to
// cache, or why the token is refused.
func (v *Validator) verify(tok []byte, now time.Time) (*entry, failure) {
	s := &v.s
	t, f := parseToken(tok)
	if f != failNone {
		return nil, f
	}
	// The claims first: a token refused for them costs no signature
	// check. Nothing of it is trusted until the signature is checked.
	if f := s.checkClaims(t, now); f != failNone {
		return nil, f
	}
	if s.allowed != nil && !s.allowed[t.alg] {
		return nil, failAlgorithm
	}
	ks := v.rt.keys
	key, known, f := verifySignature(tok, t, ks.keys())
	if f != failNone && !known && len(ks.sources) > 0 {
		// A key the identity provider has added since the last fetch;
		// at most one fetch per MinRefreshInterval, however many tokens
		// ask.
		if ks.refresh() {
			key, _, f = verifySignature(tok, t, ks.keys())
		}
	}
	if f == failUnknownKey && !ks.usable() {
		return nil, failUnavailable
	}
	if f != failNone {
		return nil, f
	}
	// Keys written in the config are never dropped.
	e := &entry{key: key, claims: t.claims, sub: []byte(t.sub), tokenClientID: []byte(t.clientID), scope: []byte(t.scope)}
	for _, c := range s.clientClaim {
		if id := claimText(t.claims, c); len(id) > 0 {
			e.clientID = id
			break
		}
	}
	// Cached until exp, never after it; a token without exp (allowed
	// with requireExp: false) for a while, so that the cache turns over.
	e.expires = t.exp
	if !t.hasExp {
		e.expires = now.Add(maxUnexpiring).UnixNano()
	}
	return e, failNone
}

// verifySignature checks the signature with the keys that fit the token's
// kid and alg: a key with the token's kid first, then keys without a kid
// (which fit any), at most maxTries of them. known reports that a key has
// the token's kid (or, for a token without one, that some key fits it), so
// that fetching the JWK sets again cannot help.
func verifySignature(tok []byte, t *token, keys []*vkey) (key *vkey, known bool, f failure) {
	tries := 0
	seen := false // a key fits the kid, whatever its alg
	for pass := 0; pass < 2 && tries < maxTries; pass++ {
		for _, k := range keys {
			match := pass == 0 && t.kid != "" && k.kid == t.kid || pass == 1 && (k.kid == "" || t.kid == "")
			if !match {
				continue
			}
			seen = true
			if pass == 0 || t.kid == "" {
				known = true
			}
			alg, ok := k.verifies(t.alg)
			if !ok {
				continue
			}
			if tries++; tries > maxTries {
				break
			}
			if _, err := jws.Verify(tok, jws.WithKey(alg, k.raw), jws.WithAlgorithmMatch(true)); err == nil {
				return k, true, failNone
			}
		}
	}
	switch {
	case tries > 0:
		return nil, known, failSignature
	case seen:
		// Keys fit the kid but none verifies the token's alg: an RSA
		// key asked for HS256 is algorithm confusion, not a new key.
		return nil, known, failAlgorithm
	}
	return nil, false, failUnknownKey
}

// checkClaims checks the time, issuer, audience and configured claims.
func (s *settings) checkClaims(t *token, now time.Time) failure {
	n, leeway := now.UnixNano(), s.leeway.Nanoseconds()
	switch {
	case t.hasExp && n >= satAdd(t.exp, leeway):
		return failExpired
	case !t.hasExp && s.requireExp:
		return failMissingExp
	case t.hasNbf && n < t.nbf-leeway:
		return failNotYetValid
	case !t.hasNbf && s.requireNbf:
		return failMissingNbf
	}
	if len(s.issuers) > 0 && (!t.hasIss || !contains(s.issuers, t.iss)) {
		return failIssuer
	}
	if s.requireAud && len(t.aud) == 0 {
		return failAudience
	}
	if len(s.audiences) > 0 && len(t.aud) > 0 {
		ok := false
		for _, a := range t.aud {
			if contains(s.audiences, a) {
				ok = true
				break
			}
		}
		if !ok {
			return failAudience
		}
	}
	for i := range s.rules {
		if !s.rules[i].check(t.claims) {
			return failClaim
		}
	}
	return failNone
}

func satAdd(a, b int64) int64 {
	if a > 0 && b > 0 && a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// check applies one claim rule to the claims.
func (r *claimRule) check(claims []byte) bool {
	v, typ, _, err := jsonparser.Get(claims, r.name)
	if err != nil || typ == jsonparser.Null {
		return !r.required
	}
	if r.present && !hasValue(v, typ) {
		return false
	}
	var values []string // the claim's values as text: one, or an array's
	switch typ {
	case jsonparser.String:
		s, err := jsonparser.ParseString(v)
		if err != nil {
			return false
		}
		values = []string{s}
	case jsonparser.Array:
		_, err := jsonparser.ArrayEach(v, func(e []byte, et jsonparser.ValueType, _ int, _ error) {
			if et == jsonparser.String {
				if s, err := jsonparser.ParseString(e); err == nil {
					values = append(values, s)
				}
				return
			}
			values = append(values, string(e))
		})
		if err != nil {
			return false
		}
	case jsonparser.Object:
		return len(r.equals) == 0 && len(r.contains) == 0
	default:
		values = []string{string(v)}
	}
	if len(r.equals) > 0 {
		ok := false
		for _, want := range r.equals {
			if contains(values, want) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.contains) > 0 {
		words := values
		if typ == jsonparser.String {
			words = strings.Fields(values[0])
		}
		for _, want := range r.contains {
			if !contains(words, want) {
				return false
			}
		}
	}
	return true
}

// hasValue reports whether a claim holds something: not false, empty text,
// an empty array or an empty object (null is taken for absent).
func hasValue(v []byte, typ jsonparser.ValueType) bool {
	switch typ {
	case jsonparser.Boolean:
		return string(v) == "true"
	case jsonparser.String:
		return len(v) > 0
	case jsonparser.Array, jsonparser.Object:
		return len(bytes.TrimSpace(v[1:len(v)-1])) > 0
	}
	return true
}

// claimText returns a string claim's text, a number's or boolean's as
// written; nil for other types and absent claims.
func claimText(claims []byte, name string) []byte {
	v, typ, _, err := jsonparser.Get(claims, name)
	if err != nil {
		return nil
	}
	switch typ {
	case jsonparser.String:
		s, err := jsonparser.ParseString(v)
		if err != nil {
			return nil
		}
		return []byte(s)
	case jsonparser.Number, jsonparser.Boolean:
		return bytes.Clone(v)
	}
	return nil
}

// bearer extracts the token of an `Authorization: Bearer <token>` header
// (RFC 6750 §2.1). It returns ok true and a nil token when there is no
// bearer token at all (no header, or another scheme), and ok false when a
// bearer token is malformed.
func bearer(v []byte) (tok []byte, ok bool) {
	if len(v) == 0 {
		return nil, true
	}
	sp := bytes.IndexByte(v, ' ')
	if sp < 0 {
		if bytes.EqualFold(v, []byte("bearer")) {
			return nil, false
		}
		return nil, true
	}
	if !bytes.EqualFold(v[:sp], []byte("bearer")) {
		return nil, true
	}
	tok = bytes.Trim(v[sp+1:], " ")
	if !rfc6750.IsB64Token(tok) {
		return nil, false
	}
	return tok, true
}
