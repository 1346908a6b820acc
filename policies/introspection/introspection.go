package introspection

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/buger/jsonparser"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/rfc6750"
)

// HandleRequest checks the request's bearer token, from the cache when it
// can, and hands the token's claims to later steps ($token.sub, …). A
// cached answer costs no allocation.
func (in *Introspector) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	if r := in.creds.Check(ctx); r != nil {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeRequest)
		return r
	}
	tok, ok := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	if tok == nil {
		if ok {
			ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeNoToken)
			return in.noToken
		}
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeInvalid)
		return in.invalidToken
	}
	if chain.HasQueryParam(ctx, &queryToken) {
		// RFC 6750 §2.3 lets an upstream take the token from the
		// query too, where no one checked it (§3.1: more than one
		// method is an invalid_request).
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeRequest)
		return in.twoTokens
	}
	k := sha256.Sum256(tok)
	e := in.cache.Get(&k, in.now().UnixNano())
	if e != nil {
		in.m.hit.Inc()
	} else {
		in.m.miss.Inc()
		var err error
		if e, err = in.lookup(tok, &k); err != nil {
			in.logs.failure(err)
			return in.unavailable
		}
	}
	if !e.active {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeInvalid)
		return in.invalidToken
	}
	ex.SetValue(subValue, e.sub)
	ex.SetValue(clientIDValue, e.clientID)
	if in.consumerByUsername {
		ex.SetValue(clientValue, e.username)
	} else {
		ex.SetValue(clientValue, e.clientID)
	}
	ex.SetValue(scopeValue, e.scope)
	ex.SetValue(claimsValue, e.claims)
	if !e.scopeOK {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderWWWAuthenticate, in.challengeScope)
		return in.insufficient
	}
	return nil
}

// queryToken is the query parameter RFC 6750 §2.3 carries a token in.
var queryToken = chain.NewQueryName("access_token")

// lookup asks the server about tok, sharing the call with concurrent
// requests for the same token, and caches what the answer allows.
func (in *Introspector) lookup(tok []byte, k *key) (*entry, error) {
	return in.flight.do(k, func() (*entry, error) {
		// A request that missed the cache just before the previous call
		// stored its answer finds it here instead of calling again.
		if e := in.cache.Get(k, in.now().UnixNano()); e != nil {
			return e, nil
		}
		e, err := in.introspect(tok)
		if err != nil {
			in.m.failed.Inc()
			return nil, err
		}
		now := in.now()
		ttl := in.cacheTTL
		var until int64 // when the answer stops being true, 0: not known
		switch {
		case e.active && e.exp != 0 && e.exp <= now.UnixNano():
			// RFC 7662 §2.2: exp is when the token expires; a server
			// may still say active for it (a stale cache of its own, or
			// the gateway's clock ahead of the server's). It is not valid
			// any more.
			e = &entry{}
		case e.active && e.nbf > now.UnixNano():
			// Not valid yet; it may become valid at nbf.
			until = e.nbf
			e = &entry{}
		case e.active:
			until = e.exp
		}
		if e.active {
			in.m.active.Inc()
		} else {
			in.m.inactive.Inc()
			ttl = in.deadTTL
		}
		expires := now.Add(ttl).UnixNano()
		if until != 0 && until < expires {
			expires = until
		}
		if expires > now.UnixNano() {
			e.expires = expires
			in.cache.Put(k, e, now.UnixNano())
		}
		return e, nil
	})
}

// introspect makes one RFC 7662 call. Errors name the server and what went
// wrong, never the token.
func (in *Introspector) introspect(tok []byte) (*entry, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(in.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set(fasthttp.HeaderAccept, "application/json")
	req.Header.Set(fasthttp.HeaderAuthorization, in.basicAuth)
	body := append(req.Body()[:0], "token="...)
	body = fasthttp.AppendQuotedArg(body, tok)
	body = append(body, "&token_type_hint=access_token"...)
	req.SetBodyRaw(body)

	start := time.Now()
	err := in.hc.DoTimeout(req, resp, in.timeout)
	in.m.duration.UpdateDuration(start)
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return nil, fmt.Errorf("introspection server %s did not answer within %s", in.hc.Addr, in.timeout)
	case err != nil && isDial(err):
		return nil, fmt.Errorf("cannot reach introspection server %s: %w", in.hc.Addr, err)
	case errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF):
		return nil, fmt.Errorf("introspection server %s closed the connection without answering: %w", in.hc.Addr, err)
	case err != nil:
		return nil, fmt.Errorf("introspection server %s sent no valid answer: %w", in.hc.Addr, err)
	case resp.StatusCode() != fasthttp.StatusOK:
		hint := ""
		if s := resp.StatusCode(); s == fasthttp.StatusUnauthorized || s == fasthttp.StatusForbidden {
			hint = ": check the gateway's credentials (clientId and clientSecret, or authorizationValue)"
		}
		return nil, fmt.Errorf("introspection server %s answered status %d%s", in.hc.Addr, resp.StatusCode(), hint)
	}
	e, err := parseResponse(resp.Body())
	if err != nil {
		return nil, fmt.Errorf("introspection server %s: %w", in.hc.Addr, err)
	}
	if e.active {
		e.scopeOK = hasScopes(string(e.scope), in.Scopes, in.anyScope)
	}
	return e, nil
}

// parseResponse reads an RFC 7662 answer. Only "active" is required; exp
// becomes entry.expires, the other claims are kept for later steps, and an
// active answer is kept whole for $token.claims.
func parseResponse(body []byte) (*entry, error) {
	body = bytes.TrimSpace(body)
	// jsonparser skims rather than validates; a broken answer must not
	// pass for an active token.
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, errors.New("the answer is not a JSON object")
	}
	e := new(entry)
	sawActive := false
	err := jsonparser.ObjectEach(body, func(k, v []byte, t jsonparser.ValueType, _ int) error {
		var err error
		switch string(k) {
		case "active":
			if t != jsonparser.Boolean {
				return errors.New(`"active" is not a boolean`)
			}
			e.active, err = jsonparser.ParseBoolean(v)
			sawActive = true
		case "sub":
			e.sub, err = claim(v, t)
		case "client_id":
			e.clientID, err = claim(v, t)
		case "username":
			e.username, err = claim(v, t)
		case "scope":
			e.scope, err = claim(v, t)
		case "exp":
			e.exp, err = numericDate(k, v, t)
		case "nbf":
			e.nbf, err = numericDate(k, v, t)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("the answer is not RFC 7662 JSON: %w", err)
	}
	if !sawActive {
		return nil, errors.New(`the answer has no "active" member: is url the introspection endpoint?`)
	}
	if !e.active {
		return &entry{}, nil
	}
	e.claims = bytes.Clone(body)
	return e, nil
}

// numericDate reads an exp or nbf claim (seconds since 1970, RFC 7519
// NumericDate) as UnixNano; null is the claim left out. One that is not a
// number fails the answer, so that a token is never taken as valid for want
// of reading its dates. A date at or before 1970 is the earliest instant;
// one too far ahead to hold in nanoseconds is no limit for exp and never
// for nbf.
func numericDate(name, v []byte, t jsonparser.ValueType) (int64, error) {
	if t == jsonparser.Null {
		return 0, nil // the same as leaving it out
	}
	if t != jsonparser.Number {
		return 0, fmt.Errorf("%q is not a number of seconds", name)
	}
	f, err := jsonparser.ParseFloat(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of seconds: %w", name, err)
	}
	switch {
	case f <= 0:
		return 1, nil
	case f >= 1<<33:
		if string(name) == "nbf" {
			return math.MaxInt64, nil
		}
		return 0, nil
	}
	return int64(f * float64(time.Second)), nil
}

// claim decodes a string claim; a claim of another type is ignored.
func claim(v []byte, t jsonparser.ValueType) ([]byte, error) {
	if t != jsonparser.String {
		return nil, nil
	}
	s, err := jsonparser.ParseString(v)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// hasScopes reports whether the space-separated scope list has every
// required scope, or with any one of them (none required: true).
func hasScopes(scope string, required []string, any bool) bool {
	if len(required) == 0 {
		return true
	}
	have := strings.Fields(scope)
	for _, r := range required {
		found := false
		for _, h := range have {
			if h == r {
				found = true
				break
			}
		}
		if found && any {
			return true
		}
		if !found && !any {
			return false
		}
	}
	return !any
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
		return nil, false
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

// logThrottle logs introspection failures at most once every ten seconds:
// an authorization server that is down would otherwise flood the log with
// one line per request.
type logThrottle struct {
	logger *slog.Logger
	last   atomic.Int64
}

func (l *logThrottle) failure(err error) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(10*time.Second) || !l.last.CompareAndSwap(last, now) {
		return
	}
	l.logger.Error("token introspection failed; requests are refused with 503 until the server answers", "error", err)
}

// isDial reports whether err is a failure to connect, rather than a
// connection that broke or carried an answer that does not parse.
func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
