package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"

	"github.com/buger/jsonparser"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// This file is the package's validation for other policies (the OpenAPI
// spec-validation policy): a compiled Schema, validated into a Report
// that collects one request's violations across several values, and the
// checks a JSON body meets before it is validated.

// Schema is a JSON Schema (draft 2020-12) compiled for the request path:
// into the fast path when it stays in its subset, and for the library.
// It is immutable and safe for concurrent use.
type Schema struct {
	fast *node
	lib  *library
	// types and items are what a text value converts to (see
	// queryTypes): the types the root declares, and its items'.
	t qtype
	// members are the property names the schema declares (see members).
	members *memberNames
	// slow says why the fast path does not cover the schema; "" when it
	// does.
	slow string
}

// CompileSchema compiles a JSON Schema document (JSON without comments).
// A $ref must point inside the document; nothing is fetched.
func CompileSchema(doc []byte) (*Schema, error) {
	s := &Schema{}
	fast, err := compileFast(doc)
	var u *errUnsupported
	switch {
	case errors.As(err, &u):
		s.slow = u.reason
	case err != nil:
		return nil, err
	default:
		s.fast = fast
	}
	if err := checkSchema(doc); err != nil {
		return nil, err
	}
	if s.lib, err = compileLibrary(doc, libraryCopies()); err != nil {
		return nil, err
	}
	s.members = declaredMembers(doc)
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&root) == nil {
		s.t = qtype{types: declared(root)}
		if items, ok := root["items"].(map[string]any); ok {
			s.t.items = declared(items)
		}
	}
	return s, nil
}

// Slow says why the fast path does not cover the schema (the keyword and
// where), or "" when it does.
func (s *Schema) Slow() string { return s.slow }

// IsArray reports whether a text value of this schema is a list: the
// schema allows an array and none of the types a single value converts to.
func (s *Schema) IsArray() bool { return s.t.array() }

// Report collects the violations of one request, across every value
// validated for it, as the JSON array the error renderer puts under
// "violations". It comes from a pool and serves one request at a time.
type Report struct {
	w    walk
	list [][]byte
	vals []any
}

var reportPool = sync.Pool{New: func() any { return &Report{w: walk{path: make([]byte, 0, 128)}} }}

// AcquireReport returns an empty report that writes into buf's storage
// (pass ex.Details[:0], so that its buffer is reused).
func AcquireReport(buf []byte) *Report {
	r := reportPool.Get().(*Report)
	r.w.out.reset(buf)
	r.w.path = r.w.path[:0]
	r.w.bail = false
	r.w.valid = true
	return r
}

// ReleaseReport returns r to the pool; the bytes Finish returned stay the
// caller's.
func ReleaseReport(r *Report) {
	r.w.out.buf = nil
	r.w.trim()
	clear(r.list)
	r.list = r.list[:0]
	clear(r.vals)
	r.vals = r.vals[:0]
	reportPool.Put(r)
}

// Valid reports whether no violation was found so far.
func (r *Report) Valid() bool { return r.w.out.count == 0 }

// Finish closes the array of violations and returns it.
func (r *Report) Finish() []byte { return r.w.out.finish() }

// Fail records a violation at the path at (a JSON pointer such as
// "/query"), followed by name as one more segment when it is not nil.
func (r *Report) Fail(at string, name []byte, msg string) {
	r.w.path = append(r.w.path[:0], at...)
	if name != nil {
		r.w.push(name)
	}
	r.w.out.add(r.w.path, msg, nil, false)
}

// JSON validates doc, a JSON document known to be valid (see CheckJSON),
// against s, with the violations' paths under at.
func (r *Report) JSON(s *Schema, at string, doc []byte) {
	if s.fast == nil || !r.fastJSON(s, at, doc) {
		s.lib.validateJSONAt(doc, &r.w.out, at)
	}
	r.w.path = append(r.w.path[:0], at...)
	r.w.members(s.members, doc)
}

func (r *Report) fastJSON(s *Schema, at string, doc []byte) bool {
	val, t, _, err := jsonparser.Get(doc)
	return err == nil && r.fastValue(s, at, val, t)
}

// Text validates one text value (a path, query, header or cookie
// parameter) against s, converted to the type s declares: a number when
// s allows one and the text is a JSON number, a boolean for true and false
// when s allows one, else a string.
func (r *Report) Text(s *Schema, at string, v []byte) {
	if s.fast != nil && r.fastValue(s, at, v, convert(s.t.types, v)) {
		return
	}
	s.lib.validateAny(scalarOf(s.t.types, v), &r.w.out, at)
}

// fastValue validates v on the fast path; false when the fast path
// cannot decide it, with nothing recorded.
func (r *Report) fastValue(s *Schema, at string, v []byte, t jsonparser.ValueType) bool {
	w := &r.w
	mark := w.out.mark()
	w.path = append(w.path[:0], at...)
	w.bail, w.valid = false, true
	w.value(s.fast, v, t)
	if w.bail {
		w.out.undo(mark)
		return false
	}
	return true
}

// List validates a list of text values, each converted to the type of
// s's items, as an array against s: the values of a query parameter
// repeated (args and key: ?tag=a&tag=b), or, when args is nil, the parts
// of v split at sep (a header's "a,b", a query value's "a|b").
func (r *Report) List(s *Schema, at string, args *fasthttp.Args, key []byte, v []byte, sep byte) {
	r.list = r.list[:0]
	if args != nil {
		for k, val := range args.All() {
			if string(k) == string(key) {
				r.list = append(r.list, val)
			}
		}
	} else {
		for {
			i := bytes.IndexByte(v, sep)
			if i < 0 {
				r.list = append(r.list, v)
				break
			}
			r.list = append(r.list, v[:i])
			v = v[i+1:]
		}
	}
	if s.fast != nil && r.fastList(s, at) {
		return
	}
	r.vals = r.vals[:0]
	for _, e := range r.list {
		r.vals = append(r.vals, scalarOf(s.t.items, e))
	}
	s.lib.validateAny(r.vals, &r.w.out, at)
}

func (r *Report) fastList(s *Schema, at string) bool {
	w := &r.w
	n := s.fast
	mark := w.out.mark()
	w.path = append(w.path[:0], at...)
	w.bail, w.valid = false, true
	switch {
	case n.never:
		w.fail("is not allowed", nil, false)
		return true
	case n.enum != nil || n.hasConst:
		return false
	case n.types != 0 && n.types&tArray == 0:
		w.fail("must be ", s2b(n.typeText), false)
		return true
	case n.items == nil:
		return true
	}
	for i, e := range r.list {
		m := w.pushIndex(i)
		w.value(n.items, e, convert(s.t.items, e))
		w.pop(m)
		if w.bail {
			w.out.undo(mark)
			return false
		}
	}
	return true
}

// BodyResult is what ReadBody found.
type BodyResult uint8

const (
	// BodyRead: the body is in memory (Request.Body).
	BodyRead BodyResult = iota
	// BodyTooLarge: the body is larger than the limit.
	BodyTooLarge
	// BodyBroken: the client's stream failed.
	BodyBroken
)

// ReadBody reads a streamed request body into memory, at most limit bytes
// (one more tells it is larger), and sets it as the request's body so that
// the gateway forwards it.
func ReadBody(req *fasthttp.Request, limit int64) BodyResult {
	if cl := req.Header.ContentLength(); cl > 0 && int64(cl) > limit {
		return BodyTooLarge
	}
	if !req.IsBodyStream() {
		if int64(len(req.Body())) > limit {
			return BodyTooLarge
		}
		return BodyRead
	}
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	if _, err := io.Copy(buf, io.LimitReader(req.BodyStream(), limit+1)); err != nil {
		return BodyBroken
	}
	if int64(len(buf.B)) > limit {
		return BodyTooLarge
	}
	req.SetBody(buf.B)
	return BodyRead
}

// HasBody reports whether a request carries a non-empty body, reading at
// most one byte of a streamed one (see hasBody).
func HasBody(req *fasthttp.Request) bool { return hasBody(req) }

// IsJSONType reports whether a Content-Type is application/json or a +json
// type, with any parameters.
func IsJSONType(ct []byte) bool { return isJSONType(ct) }

// JSONResult is what CheckJSON found.
type JSONResult uint8

const (
	// JSONValid: one JSON value, UTF-8, no object naming a member twice.
	JSONValid JSONResult = iota
	// JSONTooDeep: arrays and objects nest deeper than the limit.
	JSONTooDeep
	// JSONInvalid: not such a JSON value.
	JSONInvalid
)

// CheckJSON checks a body before it is validated: its nesting against
// maxDepth (without parsing it), then that it is valid JSON as the library
// reads it.
func CheckJSON(body []byte, maxDepth int) JSONResult {
	switch depth(body, maxDepth) {
	case depthTooDeep:
		return JSONTooDeep
	case depthBroken:
		return JSONInvalid
	}
	if !jsontext.Value(body).IsValid() {
		return JSONInvalid
	}
	return JSONValid
}
