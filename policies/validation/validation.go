// Package validation is the request-validation policy: requests are checked
// against a JSON Schema (draft 2020-12) before they reach the upstream.
//
// What is validated is decided per route at load time (the "in"
// parameter): the query parameters, as an object, or the JSON body; by
// default the query on a route whose methods carry no body, and elsewhere
// the body when there is one and the query when there is none. Schemas
// made of the common
// keywords are compiled into a validator that walks the body in place
// without allocating; any other schema is validated by kaptinlin/jsonschema.
package validation

import (
	"bytes"
	"io"

	"github.com/buger/jsonparser"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// HandleRequest validates the request and rejects it when it does not
// match. Safe for concurrent use.
func (v *Validator) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	req := &ctx.Request
	if v.in == fromQuery {
		// Checked before anything is read: a body here is never
		// validated, so it must not reach the upstream either.
		if hasBody(req) {
			return v.unexpectedBody
		}
		return v.checkQuery(ctx, ex)
	}
	if req.Header.ContentLength() > 0 && int64(req.Header.ContentLength()) > v.MaxBodySize {
		return v.tooLarge
	}
	if req.IsBodyStream() {
		if r := v.readStream(req); r != nil {
			return r
		}
	}
	body := req.Body()
	if len(body) == 0 {
		if v.in == fromBody {
			return v.missingBody
		}
		return v.checkQuery(ctx, ex)
	}
	if int64(len(body)) > v.MaxBodySize {
		return v.tooLarge
	}
	if !isJSONType(req.Header.ContentType()) {
		return v.unsupported
	}
	switch depth(body, v.MaxDepth) {
	case depthTooDeep:
		return v.tooDeep
	case depthBroken:
		return v.invalidJSON
	}
	// The library's decoder refuses invalid UTF-8 and repeated member
	// names; checking the same here keeps both paths' verdicts equal.
	if !jsontext.Value(body).IsValid() {
		return v.invalidJSON
	}
	if v.checkBody(body, ex) {
		return nil
	}
	return v.failed
}

// ReadsRequestBody reports that the policy reads the body, so that it runs
// only once a client waiting for 100 Continue has sent it. Also with
// in: query: a chunked body is read to tell whether there is one.
func (v *Validator) ReadsRequestBody() bool { return true }

var (
	_ chain.RequestHandler = (*Validator)(nil)
	_ chain.BodyReader     = (*Validator)(nil)
)

// checkBody validates a body known to be valid JSON; on failure the
// violations are in ex.Details.
func (v *Validator) checkBody(body []byte, ex *chain.Exchange) bool {
	w := acquireWalk(ex.Details)
	defer releaseWalk(w)
	valid, decided := false, false
	if v.fast != nil {
		val, t, _, err := jsonparser.Get(body)
		if err == nil {
			w.value(v.fast, val, t)
			if decided = !w.bail; !decided {
				w.out.reset(ex.Details)
			}
			valid = w.valid
		}
	}
	if !decided {
		valid = v.lib.validateJSON(body, &w.out)
	}
	w.path = w.path[:0]
	if w.members(v.members, body) && valid {
		return true
	}
	ex.Details = w.out.finish()
	return false
}

// checkQuery validates the query arguments of a request without a body.
func (v *Validator) checkQuery(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	args := ctx.QueryArgs()
	w := acquireWalk(ex.Details)
	defer releaseWalk(w)
	valid, decided := false, false
	if v.fast != nil {
		w.query(v.fast, v.qtypes, args, v.names)
		if decided = !w.bail; !decided {
			w.out.reset(ex.Details)
		}
		valid = w.valid
	}
	if !decided {
		valid = v.lib.validateValue(queryValue(v.qtypes, args, v.names), &w.out)
	}
	if v.otherNames(w, ctx) && valid {
		return nil
	}
	ex.Details = w.out.finish()
	return v.failed
}

// otherNames records a violation for each query parameter that many
// upstreams read as a parameter the schema declares, under another name
// than the schema's (?LIMIT= for limit, ?page.size= for page_size), or
// inside another parameter after a ';' (?x=1;limit=9, see
// chain.QueryParams): the schema never sees it, the upstream reads it. It
// returns false when there is one.
func (v *Validator) otherNames(w *walk, ctx *fasthttp.RequestCtx) bool {
	ok := true
	w.path = w.path[:0]
	for k, hidden := range chain.QueryParams(ctx) {
		i, exact := v.names.Find(k)
		if i < 0 || exact && !hidden {
			continue
		}
		mark := w.push(k)
		if hidden {
			w.fail(v.hiddenName[i], nil, false)
		} else {
			w.fail(v.otherName[i], nil, false)
		}
		w.pop(mark)
		ok = false
	}
	return ok
}

// hasBody reports whether a request carries a non-empty body. Of a
// streamed body (chunked, or larger than the server reads ahead) it reads
// at most one byte; an empty one is replaced by no body, so that the
// request still forwards.
func hasBody(req *fasthttp.Request) bool {
	if req.Header.ContentLength() > 0 {
		return true
	}
	if !req.IsBodyStream() {
		return len(req.Body()) > 0
	}
	var b [1]byte
	if n, err := io.ReadFull(req.BodyStream(), b[:]); n > 0 || err != io.EOF {
		return true
	}
	req.SetBody(nil)
	return false
}

// readStream reads a streamed body, up to one byte past the limit, and
// puts it back as the request's body so that the proxy forwards it.
func (v *Validator) readStream(req *fasthttp.Request) *chain.Rejection {
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	_, err := io.Copy(buf, io.LimitReader(req.BodyStream(), v.MaxBodySize+1))
	if br, ok := err.(chain.BodyRejection); ok {
		// A policy before this one refused what it passed on.
		return br.Rejection()
	}
	if err != nil {
		return v.invalidJSON
	}
	if int64(len(buf.B)) > v.MaxBodySize {
		return v.tooLarge
	}
	req.SetBody(buf.B)
	return nil
}

// isJSONType reports whether a Content-Type is application/json or a
// +json type, with any parameters.
func isJSONType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	if len(ct) == len("application/json") && bytes.EqualFold(ct, []byte("application/json")) {
		return true
	}
	const suffix = "+json"
	return len(ct) > len(suffix) && bytes.EqualFold(ct[len(ct)-len(suffix):], []byte(suffix)) &&
		bytes.IndexByte(ct, '/') > 0
}

const (
	depthOK = iota
	depthTooDeep
	depthBroken
)

// depth measures how deeply a body nests, without parsing it, and stops at
// the first level past limit; brackets that do not pair up are reported as
// broken JSON.
func depth(b []byte, limit int) int {
	d := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			d++
			if d > limit {
				return depthTooDeep
			}
		case '}', ']':
			d--
			if d < 0 {
				return depthBroken
			}
		}
	}
	return depthOK
}
