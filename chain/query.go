package chain

import (
	"bytes"
	"fmt"
	"iter"

	"github.com/valyala/fasthttp"
)

// QueryParams yields the name of every parameter an upstream may see in the
// request's query, and hidden: false for each of fasthttp's arguments (its
// decoded name), true for a name found only inside one. fasthttp splits a
// query at '&' alone; Rack 2 (Rails up to 7.0), Python's parse_qs before
// 3.9.2 and other older frameworks split it at ';' too, so to them
// ?x=1;limit=9 and ?x;limit=9 carry limit, which fasthttp reads as part of
// x's value or name. Each ';'-separated segment after the first, in an
// argument's name and in its value, yields its name (what precedes its
// '='), decoded as fasthttp decoded the argument (so that, in a query
// with a ';', a "%3B" splits too: a check refuses rather than misses). A
// check that asks whether the request carries a parameter an upstream
// reads as N must count a hidden one as a form of N that a reader of the
// arguments does not see. A query without ';' costs one IndexByte over
// it. It does not allocate; the names are valid as long as the request's
// arguments. Safe for concurrent use on distinct requests.
func QueryParams(ctx *fasthttp.RequestCtx) iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		for k, hidden := range params(ctx.QueryArgs(), ctx.URI().QueryString()) {
			if !yield(k, hidden) {
				return
			}
		}
	}
}

// params is QueryParams for args parsed from raw: a query, or a form body,
// which Python's parse_qs before 3.9.2 split at ';' too.
func params(args *fasthttp.Args, raw []byte) iter.Seq2[[]byte, bool] {
	return func(yield func([]byte, bool) bool) {
		split := bytes.IndexByte(raw, ';') >= 0
		for k, v := range args.All() {
			if !yield(k, false) {
				return
			}
			if split && (!semicolonNames(k, yield) || !semicolonNames(v, yield)) {
				return
			}
		}
	}
}

// semicolonNames yields, hidden, the name of each ';'-separated segment
// of s after the first, empty ones left out; false when yield asked to
// stop.
func semicolonNames(s []byte, yield func([]byte, bool) bool) bool {
	for {
		i := bytes.IndexByte(s, ';')
		if i < 0 {
			return true
		}
		s = s[i+1:]
		seg := s
		if j := bytes.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		if j := bytes.IndexByte(seg, '='); j >= 0 {
			seg = seg[:j]
		}
		if len(seg) > 0 && !yield(seg, true) {
			return false
		}
	}
}

// semicolonHint ends a refusal of a credential that QueryParams found
// hidden inside another parameter.
const semicolonHint = "';' separates parameters for some upstreams (Rack 2, Python before 3.9.2), so it reaches them " +
	"as a parameter of its own, which nobody checked; send it with '&'"

// HiddenParam is the violation, for a validator, of a parameter that
// QueryParams found hidden inside another and that an upstream reads as
// the declared parameter name. It fits the 200 bytes a violation's
// message keeps for names of up to 60. Safe for concurrent use.
func HiddenParam(name string) string {
	return fmt.Sprintf("is the query parameter %q to upstreams for which ';' separates parameters (Rack 2, Python before 3.9.2), "+
		"and was not validated: send it with '&'", name)
}
