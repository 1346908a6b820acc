package specvalidation

import (
	"bytes"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/policies/validation"
)

// HandleRequest finds the request's operation and validates the request
// against it. Safe for concurrent use; a valid request whose schemas are
// on the fast path costs no allocation.
func (v *Validator) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	rej := v.check(ctx, ex)
	switch {
	case rej == nil:
		v.passed.Inc()
		return nil
	case v.block() || rej == v.tooLarge:
		// A body over the limit was not read whole: it cannot be let
		// through either.
		v.refused.Inc()
		return rej
	}
	v.logged.Inc()
	v.logFailure(ctx.Method(), ctx.Path(), rej, ex.Details)
	ex.Details = ex.Details[:0]
	return nil
}

// ReadsRequestBody reports that the policy reads the body.
func (v *Validator) ReadsRequestBody() bool { return true }

func (v *Validator) check(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	path := ctx.Path()
	if v.BasePath != "" {
		rest, ok := bytes.CutPrefix(path, []byte(v.BasePath))
		if !ok || len(rest) > 0 && rest[0] != '/' {
			return v.unknown
		}
		path = rest
	}
	if len(path) == 1 {
		path = path[:0] // "/" is the root, as ""
	}
	m := matchPool.Get().(*match)
	m.n = 0
	item := v.spec.root.find(path, 0, m)
	var op *operation
	if item != nil {
		if i := methodIndex(ctx.Method()); i >= 0 {
			op = item.ops[i]
			if op == nil && i == 5 { // HEAD is GET without the body
				op = item.ops[0]
			}
		}
	}
	if op == nil {
		matchPool.Put(m)
		return v.unknown
	}
	rep := validation.AcquireReport(ex.Details)
	for i, p := range op.path {
		s := m.spans[i]
		v.value(rep, p, path[s[0]:s[1]])
	}
	matchPool.Put(m)
	v.query(ctx, rep, op)
	h := &ctx.Request.Header
	for _, p := range op.header {
		if s := p.header.Other(h); s != "" {
			rep.Fail("/header", s2b(s), p.other)
		}
		val := h.Peek(p.name)
		if val == nil {
			v.missing(rep, p)
			continue
		}
		if len(h.PeekAll(p.name)) > 1 {
			rep.Fail(p.at, nil, repeated)
			continue
		}
		v.value(rep, p, val)
	}
	if op.cookieNames.Len() > 0 {
		var buf [1024]byte
		for k := range h.Cookies() {
			name, encoded := k, false
			if len(k) <= len(buf) && bytes.ContainsAny(k, "%+") {
				// PHP decodes a cookie's name as a query parameter's:
				// sessi%6Fn is session to it. Longer names decode to
				// more than any declared one.
				name = fasthttp.AppendUnquotedArg(buf[:0], k)
				encoded = !bytes.Equal(name, k)
			}
			if i, exact := op.cookieNames.Find(name); i >= 0 && (!exact || encoded) {
				rep.Fail("/cookie", k, op.cookie[i].other)
			}
		}
	}
	for _, p := range op.cookie {
		val := h.Cookie(p.name)
		if val == nil {
			v.missing(rep, p)
			continue
		}
		if cookieCount(h, p.name) > 1 {
			rep.Fail(p.at, nil, repeated)
			continue
		}
		v.value(rep, p, val)
	}
	rej := v.body(ctx, rep, op)
	if rej == nil && !rep.Valid() {
		rej = v.failed
	}
	if rej == v.failed {
		ex.Details = rep.Finish()
	}
	validation.ReleaseReport(rep)
	return rej
}

// repeated is the violation of a parameter of one value given several
// times: the gateway validates one, and the upstream may read another
// (HTTP parameter pollution).
const repeated = "is given more than once; it takes one value"

func argCount(args *fasthttp.Args, name string) int {
	n := 0
	for k := range args.All() {
		if string(k) == name {
			n++
		}
	}
	return n
}

func cookieCount(h *fasthttp.RequestHeader, name string) int {
	n := 0
	for k := range h.Cookies() {
		if string(k) == name {
			n++
		}
	}
	return n
}

func (v *Validator) missing(rep *validation.Report, p *param) {
	if p.required {
		rep.Fail(p.at, nil, "is required")
	}
}

// value validates one parameter's text.
func (v *Validator) value(rep *validation.Report, p *param, val []byte) {
	switch {
	case p.schema == nil:
	case p.json:
		if validation.CheckJSON(val, v.MaxDepth) != validation.JSONValid {
			rep.Fail(p.at, nil, "is not JSON")
			return
		}
		rep.JSON(p.schema, p.at, val)
	case p.list:
		rep.List(p.schema, p.at, nil, nil, val, p.sep)
	default:
		rep.Text(p.schema, p.at, val)
	}
}

// query validates the query parameters, refuses the ones sent under
// another name an upstream reads as one of them, and with strictParams
// refuses the ones the operation does not describe.
func (v *Validator) query(ctx *fasthttp.RequestCtx, rep *validation.Report, op *operation) {
	args := ctx.QueryArgs()
	for _, p := range op.query {
		val := args.Peek(p.name)
		if val == nil && !args.Has(p.name) {
			v.missing(rep, p)
			continue
		}
		if p.list && p.repeat && !p.json && p.schema != nil {
			rep.List(p.schema, p.at, args, s2b(p.name), nil, 0)
			continue
		}
		if argCount(args, p.name) > 1 {
			rep.Fail(p.at, nil, repeated)
			continue
		}
		v.value(rep, p, val)
	}
	// A parameter sent under another name that many upstreams read as one
	// of the operation's (?LIMIT= for limit), or inside another after a
	// ';' (?x=1;limit=9), reaches them unvalidated.
	if op.queryNames.Len() == 0 && !v.StrictParams {
		return
	}
	for k, hidden := range chain.QueryParams(ctx) {
		i, exact := op.queryNames.Find(k)
		switch {
		case i >= 0 && hidden:
			rep.Fail("/query", k, op.query[i].hidden)
		case hidden:
			// ?q=a;b names no parameter of the operation: b is part
			// of q's value, and strictParams does not refuse it.
		case i >= 0 && !exact:
			rep.Fail("/query", k, op.query[i].other)
		case i < 0 && v.StrictParams:
			rep.Fail("/query", k, "is not a parameter of the operation")
		}
	}
}

// body reads and validates the request body.
func (v *Validator) body(ctx *fasthttp.RequestCtx, rep *validation.Report, op *operation) *chain.Rejection {
	req := &ctx.Request
	if op.body == nil {
		if validation.HasBody(req) {
			return v.unexpectedBody
		}
		return nil
	}
	switch validation.ReadBody(req, v.MaxBodySize) {
	case validation.BodyTooLarge:
		return v.tooLarge
	case validation.BodyBroken:
		return v.invalidJSON
	}
	b := req.Body()
	if len(b) == 0 {
		if op.body.required {
			return v.missingBody
		}
		return nil
	}
	ct := req.Header.ContentType()
	md := op.body.find(ct)
	if md == nil {
		return v.unsupported
	}
	if md.schema == nil || !validation.IsJSONType(ct) {
		return nil
	}
	switch validation.CheckJSON(b, v.MaxDepth) {
	case validation.JSONTooDeep:
		return v.tooDeep
	case validation.JSONInvalid:
		return v.invalidJSON
	}
	rep.JSON(md.schema, "/body", b)
	return nil
}

// find returns the media type of the body's Content-Type: the exact one,
// else type/*, else */* (they are sorted so).
func (b *body) find(ct []byte) *media {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	slash := bytes.IndexByte(ct, '/')
	if slash <= 0 {
		return nil
	}
	typ, sub := ct[:slash], ct[slash+1:]
	for i := range b.media {
		m := &b.media[i]
		if (m.typ == "*" || ascii.EqualLower(typ, m.typ)) && (m.sub == "*" || ascii.EqualLower(sub, m.sub)) {
			return m
		}
	}
	return nil
}

// s2b converts without copying; the bytes must not be modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
