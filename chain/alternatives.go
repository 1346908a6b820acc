package chain

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// Reads are the request headers and query parameters a part of a value
// reads by name.
type Reads struct {
	Headers, Query []string
}

// Alternatives are the parts of one value a policy reads in turn, the
// first present winning: `attributes.headers['x-tenant'] default
// attributes.queryParams.tenant`. A request that carries what more than one
// of them reads is refused: the policy reads the first, and an upstream
// that reads another serves what nobody checked (a tenant header checked
// against the token, the query's tenant served). A provisioned
// Alternatives is safe for concurrent use.
type Alternatives struct {
	groups []alternativeGroup
}

type alternativeGroup struct {
	operands []alternative
	both     *Rejection
}

type alternative struct {
	headers []HeaderName
	query   []QueryName
}

// Alternatives declares the groups of alternatives of the policy's values
// (each from expr's Alternatives) and builds their 400
// duplicate_credentials rejections; nil, with no error, when there are
// none. Call it at provision time.
func (e *Env) Alternatives(groups [][]Reads) (*Alternatives, error) {
	a := &Alternatives{}
	for _, g := range groups {
		var grp alternativeGroup
		var names []string
		for _, r := range g {
			var alt alternative
			for _, h := range r.Headers {
				hn, err := NewHeaderName(h)
				if err != nil {
					return nil, err
				}
				alt.headers = append(alt.headers, hn)
				names = append(names, "the "+h+" header")
			}
			for _, q := range r.Query {
				qn, err := ParseQueryName(q)
				if err != nil {
					return nil, err
				}
				alt.query = append(alt.query, qn)
				names = append(names, "the "+q+" query parameter")
			}
			grp.operands = append(grp.operands, alt)
		}
		grp.both = e.duplicate("the request carries " + strings.Join(names, " and ") + ", which " + e.Name +
			" reads as alternatives, the first present winning: an upstream that reads another would get a value nobody checked; send one")
		a.groups = append(a.groups, grp)
	}
	if len(a.groups) == 0 {
		return nil, nil
	}
	return a, nil
}

// Check returns the rejection of the first group of which the request
// carries what more than one alternative reads, or nil; a nil Alternatives
// checks nothing. It does not allocate.
func (a *Alternatives) Check(ctx *fasthttp.RequestCtx) *Rejection {
	if a == nil {
		return nil
	}
	h := &ctx.Request.Header
	hasQuery := len(ctx.URI().QueryString()) > 0
	for i := range a.groups {
		g := &a.groups[i]
		n := 0
		for j := range g.operands {
			if g.operands[j].present(ctx, h, hasQuery) {
				n++
			}
		}
		if n > 1 {
			return g.both
		}
	}
	return nil
}

func (o *alternative) present(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader, hasQuery bool) bool {
	for i := range o.headers {
		if o.headers[i].Count(h) > 0 {
			return true
		}
	}
	if hasQuery {
		for i := range o.query {
			if HasQueryParam(ctx, &o.query[i]) {
				return true
			}
		}
	}
	return false
}
