package expr

import (
	"bytes"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/buger/jsonparser"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// This file is the one evaluator behind both forms of expression: a
// $-template ("v1-$request.method") and a Flex expression
// ("#[attributes.method]") compile to the same tree of nodes.

// types is the set of kinds a node's value may have, known at load time;
// the type checks refuse an operation none of whose kinds fit.
type types uint8

const (
	tNull types = 1 << iota
	tBool
	tNum
	tStr
	tArr
	tObj
	tAny = tNull | tBool | tNum | tStr | tArr | tObj
)

// String names the kinds for error messages: "text or null".
func (t types) String() string {
	if t == tAny {
		return "a value of any type"
	}
	var names []string
	for _, k := range []struct {
		t    types
		name string
	}{{tStr, "text"}, {tNum, "a number"}, {tBool, "true or false"}, {tArr, "an array"}, {tObj, "an object"}, {tNull, "null"}} {
		if t&k.t != 0 {
			names = append(names, k.name)
		}
	}
	return orList(names)
}

type vkind uint8

const (
	kNull vkind = iota
	kBool
	kNum
	kStr
	kArr
	kObj
)

// source says where an array's elements or an object's members are.
type source uint8

const (
	inList        source = iota // val.list
	inJSON                      // val.s holds the JSON text
	inReqHeaders                // the request's headers
	inRespHeaders               // the response's headers
	inQuery                     // the request's query parameters
)

// val is one value while an expression is evaluated. Its bytes belong to
// the request, the compiled expression or the run's scratch space; none of
// them outlive the evaluation.
type val struct {
	k   vkind
	src source
	b   bool
	n   float64
	// s is the text of a string; of a number read from JSON, the number
	// as written; of an array or object inJSON, its JSON text.
	s    []byte
	list []val
}

var null = val{}

// textOrNull is the value of a binding that may be absent: a header, a
// query parameter, a value a policy provides. Absent and empty are alike.
func textOrNull(b []byte) val {
	if len(b) == 0 {
		return null
	}
	return val{k: kStr, s: b}
}

type op uint8

const (
	opConst op = iota
	opConcat
	// The request's and the response's own values.
	opRemoteAddr
	opLocalAddr
	opMethod
	opPath
	opRequestURI
	opQueryString
	opScheme
	opVersion
	opHeader
	opHeaders
	opQuery
	opQueryParams
	opRespHeader
	opRespHeaders
	opStatus
	opDatetime
	opRequestID
	// Values that policies provide.
	opValue
	opMember
	// Operators.
	opArray
	opSelect
	opEq
	opNe
	opGe
	opLe
	opGt
	opLt
	opAnd
	opOr
	opNot
	opJoin
	opDefault
	opIf
	// Functions.
	opContains
	opLower
	opUpper
	opTrim
	opSplitBy
	opSizeOf
	opUUID
	opSubAfter
	opSubAfterLast
	opSubBefore
	opSubBeforeLast
	opFromBase64
)

// node is one compiled piece of an expression. A tree of nodes is built
// once, when the config loads, and is immutable after.
type node struct {
	op op
	// at is the byte offset of the node in the value as written.
	at   int
	t    types
	kids []*node
	// c is a constant's value, text its text.
	c    val
	text []byte
	// name is a header's or query parameter's name as written.
	name []byte
	// header and query, set in a template compiled by CompileCredential,
	// read the header or query parameter under every name an upstream
	// reads as it, as chain.Credentials counts them.
	header *chain.HeaderName
	query  *chain.QueryName
	// v is the value a policy provides (opValue, opMember); path the
	// member's keys, outermost first, "[N]" for element N.
	v    chain.Value
	path []string
	// flat holds an opConcat's kids by value, for appendText.
	flat []node
}

func constNode(at int, v val) *node {
	n := &node{op: opConst, at: at, c: v}
	switch v.k {
	case kNull:
		n.t = tNull
	case kBool:
		n.t = tBool
	case kNum:
		n.t = tNum
	case kStr:
		n.t = tStr
	case kArr:
		n.t = tArr
	case kObj:
		n.t = tObj
	}
	// Never nil: Literal tells a constant by it.
	n.text = appendValue([]byte{}, v, nil)
	return n
}

// direct reports whether n appends its text without scratch space, so that
// a template of such nodes expands with no evaluation state at all.
func (n *node) direct() bool {
	switch n.op {
	case opConst, opRemoteAddr, opLocalAddr, opMethod, opPath, opRequestURI, opQueryString, opScheme,
		opVersion, opHeader, opQuery, opRespHeader, opStatus, opDatetime, opRequestID, opValue, opMember:
		return true
	case opConcat:
		for _, k := range n.kids {
			if !k.direct() {
				return false
			}
		}
		return true
	}
	return false
}

// pure reports whether n's value depends on nothing but its kids.
func (n *node) pure() bool {
	switch n.op {
	case opConst, opArray, opSelect, opEq, opNe, opGe, opLe, opGt, opLt, opAnd, opOr, opNot, opJoin,
		opDefault, opIf, opContains, opLower, opUpper, opTrim, opSplitBy, opSizeOf,
		opSubAfter, opSubAfterLast, opSubBefore, opSubBeforeLast, opFromBase64:
		return true
	}
	return false
}

var (
	textHTTP  = []byte("http")
	textHTTPS = []byte("https")
)

// appendText appends the text of direct nodes (see direct), one after the
// other: a $-template's parts, in a loop rather than a call per part.
func appendText(dst []byte, parts []node, ctx *fasthttp.RequestCtx, ex *chain.Exchange) []byte {
	for i := range parts {
		n := &parts[i]
		switch n.op {
		case opConst:
			dst = append(dst, n.text...)
		case opConcat:
			dst = appendText(dst, n.flat, ctx, ex)
		case opRemoteAddr:
			dst = AppendRemoteAddress(dst, ctx, ex)
		case opLocalAddr:
			dst = appendLocalAddress(dst, ctx)
		case opMethod:
			dst = append(dst, ctx.Method()...)
		case opPath:
			dst = append(dst, ctx.Path()...)
		case opRequestURI:
			dst = appendRequestURI(dst, ctx)
		case opQueryString:
			dst = append(dst, ctx.URI().QueryString()...)
		case opScheme:
			if ctx.IsTLS() {
				dst = append(dst, textHTTPS...)
			} else {
				dst = append(dst, textHTTP...)
			}
		case opVersion:
			dst = append(dst, ctx.Request.Header.Protocol()...)
		case opHeader, opQuery:
			dst = append(dst, n.read(ctx)...)
		case opRespHeader:
			dst = append(dst, ctx.Response.Header.PeekBytes(n.name)...)
		case opStatus:
			dst = strconv.AppendInt(dst, int64(ctx.Response.StatusCode()), 10)
		case opDatetime:
			dst = AppendDatetime(dst)
		case opRequestID:
			if ex != nil {
				dst = append(dst, ex.RequestID...)
			}
		case opValue:
			if ex != nil {
				dst = append(dst, ex.Value(n.v)...)
			}
		case opMember:
			if ex != nil {
				dst = appendMember(dst, ex.Value(n.v), n.path)
			}
		default:
			panic("expr: appendText on a node that needs evaluation")
		}
	}
	return dst
}

// read returns the value of an opHeader or opQuery node.
func (n *node) read(ctx *fasthttp.RequestCtx) []byte {
	switch {
	case n.header != nil:
		return n.header.Peek(&ctx.Request.Header)
	case n.query != nil:
		return n.query.Peek(ctx.QueryArgs())
	case n.op == opHeader:
		return ctx.Request.Header.PeekBytes(n.name)
	}
	return ctx.QueryArgs().PeekBytes(n.name)
}

// appendRequestURI appends the path as routed and, after a `?`, the query.
func appendRequestURI(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	dst = append(dst, ctx.Path()...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		dst = append(append(dst, '?'), q...)
	}
	return dst
}

// run is the state of one evaluation: the request, and scratch space for
// the values it computes. Runs are pooled; their space is reused, so an
// evaluation allocates nothing once the space has grown to size.
type run struct {
	ctx *fasthttp.RequestCtx
	ex  *chain.Exchange
	// buf holds computed text and vals computed arrays. Both only grow
	// during an evaluation: a value written there is never overwritten,
	// and a node writes its own value only after its kids are evaluated,
	// so that its bytes are contiguous.
	buf  []byte
	vals []val
}

var runs = sync.Pool{New: func() any { return new(run) }}

// Scratch space larger than this is not kept for the next evaluation.
const (
	maxKeptBuf  = 64 << 10
	maxKeptVals = 1024
)

func acquireRun(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *run {
	r := runs.Get().(*run)
	r.ctx, r.ex = ctx, ex
	return r
}

func releaseRun(r *run) {
	r.ctx, r.ex = nil, nil
	clear(r.vals)
	r.buf, r.vals = r.buf[:0], r.vals[:0]
	if cap(r.buf) > maxKeptBuf {
		r.buf = nil
	}
	if cap(r.vals) > maxKeptVals {
		r.vals = nil
	}
	runs.Put(r)
}

// from returns what was appended to r.buf since start, capped so that
// appending to it cannot write into later values.
func (r *run) from(start int) []byte { return r.buf[start:len(r.buf):len(r.buf)] }

// eval computes n's value for the run's request.
func (n *node) eval(r *run) val {
	ctx, ex := r.ctx, r.ex
	switch n.op {
	case opConst:
		return n.c
	case opConcat, opRemoteAddr, opLocalAddr, opDatetime, opRequestURI:
		if n.op == opRemoteAddr && ex != nil && len(ex.RemoteAddr) > 0 {
			return val{k: kStr, s: ex.RemoteAddr}
		}
		start := len(r.buf)
		switch n.op {
		case opConcat:
			r.buf = appendText(r.buf, n.flat, ctx, ex)
		case opRemoteAddr:
			r.buf = AppendRemoteAddress(r.buf, ctx, ex)
		case opLocalAddr:
			r.buf = appendLocalAddress(r.buf, ctx)
		case opDatetime:
			r.buf = AppendDatetime(r.buf)
		default:
			r.buf = appendRequestURI(r.buf, ctx)
		}
		return val{k: kStr, s: r.from(start)}
	case opMethod:
		return val{k: kStr, s: ctx.Method()}
	case opPath:
		return val{k: kStr, s: ctx.Path()}
	case opQueryString:
		return val{k: kStr, s: ctx.URI().QueryString()}
	case opScheme:
		if ctx.IsTLS() {
			return val{k: kStr, s: textHTTPS}
		}
		return val{k: kStr, s: textHTTP}
	case opVersion:
		return val{k: kStr, s: ctx.Request.Header.Protocol()}
	case opHeader, opQuery:
		return textOrNull(n.read(ctx))
	case opHeaders:
		return val{k: kObj, src: inReqHeaders}
	case opQueryParams:
		return val{k: kObj, src: inQuery}
	case opRespHeader:
		return textOrNull(ctx.Response.Header.PeekBytes(n.name))
	case opRespHeaders:
		return val{k: kObj, src: inRespHeaders}
	case opStatus:
		return val{k: kNum, n: float64(ctx.Response.StatusCode())}
	case opRequestID:
		if ex == nil {
			return null
		}
		return textOrNull(ex.RequestID)
	case opValue:
		if ex == nil {
			return null
		}
		b := ex.Value(n.v)
		if len(b) > 0 && n.t&tObj != 0 {
			return val{k: kObj, src: inJSON, s: b}
		}
		return textOrNull(b)
	case opMember:
		if ex == nil {
			return null
		}
		v, t, _, err := jsonparser.Get(ex.Value(n.v), n.path...)
		if err != nil {
			return null
		}
		return r.fromJSON(v, t)
	case opArray:
		start := len(r.vals)
		end := start + len(n.kids)
		r.vals = slices.Grow(r.vals, len(n.kids))[:end]
		for i, k := range n.kids {
			// r.vals may move while k is evaluated: index it afresh.
			v := k.eval(r)
			r.vals[start+i] = v
		}
		return val{k: kArr, list: r.vals[start:end:end]}
	case opSelect:
		return r.selectVal(n.kids[0].eval(r), n.kids[1].eval(r))
	case opEq:
		return boolVal(r.equal(n.kids[0].eval(r), n.kids[1].eval(r)))
	case opNe:
		return boolVal(!r.equal(n.kids[0].eval(r), n.kids[1].eval(r)))
	case opGe, opLe, opGt, opLt:
		c, ok := compare(n.kids[0].eval(r), n.kids[1].eval(r))
		if !ok {
			return boolVal(false)
		}
		switch n.op {
		case opGe:
			return boolVal(c >= 0)
		case opLe:
			return boolVal(c <= 0)
		case opGt:
			return boolVal(c > 0)
		}
		return boolVal(c < 0)
	case opAnd:
		return boolVal(isTrue(n.kids[0].eval(r)) && isTrue(n.kids[1].eval(r)))
	case opOr:
		return boolVal(isTrue(n.kids[0].eval(r)) || isTrue(n.kids[1].eval(r)))
	case opNot:
		return boolVal(!isTrue(n.kids[0].eval(r)))
	case opDefault:
		if v := n.kids[0].eval(r); v.k != kNull {
			return v
		}
		return n.kids[1].eval(r)
	case opIf:
		if isTrue(n.kids[0].eval(r)) {
			return n.kids[1].eval(r)
		}
		return n.kids[2].eval(r)
	case opJoin:
		return r.join(n.kids[0].eval(r), n.kids[1].eval(r))
	case opContains:
		return boolVal(r.contains(n.kids[0].eval(r), n.kids[1].eval(r)))
	case opLower, opUpper:
		v := n.kids[0].eval(r)
		if v.k != kStr {
			return null
		}
		return val{k: kStr, s: r.mapCase(v.s, n.op == opUpper)}
	case opTrim:
		v := n.kids[0].eval(r)
		if v.k != kStr {
			return null
		}
		return val{k: kStr, s: trim(v.s)}
	case opSplitBy:
		v, sep := n.kids[0].eval(r), n.kids[1].eval(r)
		if v.k != kStr || sep.k != kStr {
			return null
		}
		return r.split(v.s, sep.s)
	case opSizeOf:
		return val{k: kNum, n: float64(r.size(n.kids[0].eval(r)))}
	case opUUID:
		start := len(r.buf)
		r.buf = appendUUID(r.buf)
		return val{k: kStr, s: r.from(start)}
	case opSubAfter, opSubAfterLast, opSubBefore, opSubBeforeLast:
		v, sep := n.kids[0].eval(r), n.kids[1].eval(r)
		if v.k != kStr || sep.k != kStr {
			return null
		}
		return substring(n.op, v.s, sep.s)
	case opFromBase64:
		v := n.kids[0].eval(r)
		if v.k != kStr {
			return null
		}
		return r.fromBase64(v.s)
	}
	panic("expr: unknown operation")
}

var (
	valTrue  = val{k: kBool, b: true}
	valFalse = val{k: kBool}
)

func boolVal(b bool) val {
	if b {
		return valTrue
	}
	return valFalse
}

// isTrue is the truth of a condition: true, and nothing else.
func isTrue(v val) bool { return v.k == kBool && v.b }

// b2s views b as a string for the duration of a call that keeps nothing.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// fromJSON turns one JSON value, as jsonparser returns it, into a val.
func (r *run) fromJSON(v []byte, t jsonparser.ValueType) val {
	switch t {
	case jsonparser.String:
		if bytes.IndexByte(v, '\\') < 0 {
			return val{k: kStr, s: v}
		}
		// Unescaped text is never longer than escaped.
		start := len(r.buf)
		r.buf = slices.Grow(r.buf, len(v))[:start+len(v)]
		u, err := jsonparser.Unescape(v, r.buf[start:])
		if err != nil {
			r.buf = r.buf[:start]
			return null
		}
		r.buf = r.buf[:start+len(u)]
		return val{k: kStr, s: r.from(start)}
	case jsonparser.Number:
		f, err := strconv.ParseFloat(b2s(v), 64)
		if err != nil {
			return null
		}
		return val{k: kNum, n: f, s: v}
	case jsonparser.Boolean:
		return boolVal(len(v) > 0 && v[0] == 't')
	case jsonparser.Array:
		return val{k: kArr, src: inJSON, s: v}
	case jsonparser.Object:
		return val{k: kObj, src: inJSON, s: v}
	}
	return null
}

// maxList bounds the arrays an evaluation builds (splitBy, ++, an array
// read whole from JSON to compare it): a request cannot make one
// evaluation take more than this many elements of scratch space. A
// larger array is null.
const maxList = 1000

// list returns the elements of the array v; ok is false when there are more
// than maxList.
func (r *run) list(v val) (l []val, ok bool) {
	if v.src == inList {
		return v.list, true
	}
	start := len(r.vals)
	_, _ = jsonparser.ArrayEach(v.s, func(e []byte, t jsonparser.ValueType, _ int, err error) {
		if err == nil && len(r.vals)-start <= maxList {
			ev := r.fromJSON(e, t)
			r.vals = append(r.vals, ev)
		}
	})
	if len(r.vals)-start > maxList {
		r.vals = r.vals[:start]
		return nil, false
	}
	return r.vals[start:len(r.vals):len(r.vals)], true
}

// element returns element i of the array v, counted from the end when
// negative, reading a JSON array without copying its elements.
func (r *run) element(v val, key val) val {
	if v.src == inList {
		if i, ok := index(key, len(v.list)); ok {
			return v.list[i]
		}
		return null
	}
	n := 1 << 31
	if key.k == kNum && key.n < 0 {
		n = r.size(v)
	}
	i, ok := index(key, n)
	if !ok {
		return null
	}
	var b [24]byte
	k := append(strconv.AppendInt(append(b[:0], '['), int64(i), 10), ']')
	e, t, _, err := jsonparser.Get(v.s, b2s(k))
	if err != nil {
		return null
	}
	return r.fromJSON(e, t)
}

// index reads an array or string index: a whole number, counted from the
// end when negative.
func index(key val, n int) (int, bool) {
	if key.k != kNum || key.n != math.Trunc(key.n) || math.Abs(key.n) > 1<<31 {
		return 0, false
	}
	i := int(key.n)
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// selectVal is base[key]: an object's member by name, an array's element
// or a string's character by index. Anything else is null.
func (r *run) selectVal(base, key val) val {
	switch base.k {
	case kObj:
		if key.k != kStr {
			return null
		}
		switch base.src {
		case inJSON:
			if len(key.s) > 0 && key.s[0] == '[' {
				// jsonparser would read it as an array index.
				return null
			}
			v, t, _, err := jsonparser.Get(base.s, b2s(key.s))
			if err != nil {
				return null
			}
			return r.fromJSON(v, t)
		case inReqHeaders:
			return textOrNull(r.ctx.Request.Header.PeekBytes(key.s))
		case inRespHeaders:
			return textOrNull(r.ctx.Response.Header.PeekBytes(key.s))
		case inQuery:
			return textOrNull(r.ctx.QueryArgs().PeekBytes(key.s))
		}
	case kArr:
		return r.element(base, key)
	case kStr:
		s := base.s
		i, ok := index(key, utf8.RuneCount(s))
		if !ok {
			return null
		}
		for ; i > 0; i-- {
			_, size := utf8.DecodeRune(s)
			s = s[size:]
		}
		_, size := utf8.DecodeRune(s)
		return val{k: kStr, s: s[:size:size]}
	}
	return null
}

// equal is DataWeave's ==: values of different types are never equal.
func (r *run) equal(a, b val) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kNull:
		return true
	case kBool:
		return a.b == b.b
	case kNum:
		return a.n == b.n
	case kStr:
		return bytes.Equal(a.s, b.s)
	case kArr:
		la, oka := r.list(a)
		lb, okb := r.list(b)
		if !oka || !okb || len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !r.equal(la[i], lb[i]) {
				return false
			}
		}
		return true
	case kObj:
		return a.src == inJSON && b.src == inJSON && bytes.Equal(a.s, b.s)
	}
	return false
}

// compare orders two numbers or two texts; ok is false for anything else.
func compare(a, b val) (c int, ok bool) {
	switch {
	case a.k == kNum && b.k == kNum:
		switch {
		case a.n < b.n:
			return -1, true
		case a.n > b.n:
			return 1, true
		}
		return 0, true
	case a.k == kStr && b.k == kStr:
		return bytes.Compare(a.s, b.s), true
	}
	return 0, false
}

// join is ++: two arrays make one array; anything else is joined as text,
// a null as nothing.
func (r *run) join(a, b val) val {
	if a.k == kArr && b.k == kArr {
		la, oka := r.list(a)
		lb, okb := r.list(b)
		if !oka || !okb || len(la)+len(lb) > maxList {
			return null
		}
		start := len(r.vals)
		r.vals = append(r.vals, la...)
		r.vals = append(r.vals, lb...)
		return val{k: kArr, list: r.vals[start:len(r.vals):len(r.vals)]}
	}
	start := len(r.buf)
	r.buf = appendValue(r.buf, a, r)
	r.buf = appendValue(r.buf, b, r)
	return val{k: kStr, s: r.from(start)}
}

// contains is true when the array a has an element equal to b, or the
// text a holds the text b.
func (r *run) contains(a, b val) bool {
	switch a.k {
	case kArr:
		if a.src == inList {
			for _, e := range a.list {
				if r.equal(e, b) {
					return true
				}
			}
			return false
		}
		found := false
		_, _ = jsonparser.ArrayEach(a.s, func(e []byte, t jsonparser.ValueType, _ int, err error) {
			if err != nil || found {
				return
			}
			// Each element's scratch space is reused for the next.
			mark, marks := len(r.buf), len(r.vals)
			found = r.equal(r.fromJSON(e, t), b)
			r.buf, r.vals = r.buf[:mark], r.vals[:marks]
		})
		return found
	case kStr:
		return b.k == kStr && bytes.Contains(a.s, b.s)
	}
	return false
}

// size is sizeOf: the elements of an array, the characters of a text, the
// members of an object; 0 for null.
func (r *run) size(v val) int {
	switch v.k {
	case kArr:
		if v.src == inList {
			return len(v.list)
		}
		n := 0
		_, _ = jsonparser.ArrayEach(v.s, func([]byte, jsonparser.ValueType, int, error) { n++ })
		return n
	case kStr:
		return utf8.RuneCount(v.s)
	case kObj:
		switch v.src {
		case inJSON:
			n := 0
			_ = jsonparser.ObjectEach(v.s, func([]byte, []byte, jsonparser.ValueType, int) error { n++; return nil })
			return n
		case inReqHeaders:
			return r.ctx.Request.Header.Len()
		case inRespHeaders:
			return r.ctx.Response.Header.Len()
		case inQuery:
			return r.ctx.QueryArgs().Len()
		}
	}
	return 0
}

// appendValue appends v as text: a string as it is, a number or boolean as
// written, null as nothing, an array or object as JSON.
func appendValue(dst []byte, v val, r *run) []byte {
	switch v.k {
	case kBool:
		return strconv.AppendBool(dst, v.b)
	case kNum:
		if v.s != nil {
			return append(dst, v.s...)
		}
		return appendNumber(dst, v.n)
	case kStr:
		return append(dst, v.s...)
	case kArr, kObj:
		return appendJSON(dst, v, r)
	}
	return dst
}

// appendNumber writes a whole number without a fraction, as DataWeave does.
func appendNumber(dst []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func appendJSON(dst []byte, v val, r *run) []byte {
	switch v.k {
	case kNull:
		return append(dst, "null"...)
	case kStr:
		return appendJSONString(dst, v.s)
	case kArr:
		if v.src == inJSON {
			return append(dst, v.s...)
		}
		dst = append(dst, '[')
		for i, e := range v.list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e, r)
		}
		return append(dst, ']')
	case kObj:
		if v.src == inJSON {
			return append(dst, v.s...)
		}
		if r == nil || r.ctx == nil {
			return append(dst, "{}"...)
		}
		dst = append(dst, '{')
		first := true
		member := func(k, text []byte) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, text)
		}
		switch v.src {
		case inReqHeaders:
			for k, text := range r.ctx.Request.Header.All() {
				member(k, text)
			}
		case inRespHeaders:
			for k, text := range r.ctx.Response.Header.All() {
				member(k, text)
			}
		case inQuery:
			for k, text := range r.ctx.QueryArgs().All() {
				member(k, text)
			}
		}
		return append(dst, '}')
	}
	return appendValue(dst, v, r)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendLocalAddress appends the address and port the request came in on.
func appendLocalAddress(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if a, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)).AppendTo(dst)
		}
	}
	return dst
}
