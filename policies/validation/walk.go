package validation

import (
	"bytes"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/buger/jsonparser"
)

// walk is the state of one fast-path validation: the violations written so
// far and the JSON pointer of the value being looked at. It comes from a
// pool, so that a validation allocates nothing once the buffers have grown.
type walk struct {
	out   violations
	path  []byte
	bail  bool // the fast path cannot decide this instance; ask the library
	valid bool
	// seen, fold, key and norm are scratch space of the member name
	// check (members), kept with the walk so that they grow once.
	seen            []member
	frames          []frame
	fold, key, norm []byte
}

var walkPool = sync.Pool{New: func() any { return &walk{path: make([]byte, 0, 128)} }}

func acquireWalk(out []byte) *walk {
	w := walkPool.Get().(*walk)
	w.out.reset(out)
	w.path = w.path[:0]
	w.bail = false
	w.valid = true
	return w
}

func releaseWalk(w *walk) {
	w.out.buf = nil
	w.trim()
	walkPool.Put(w)
}

// maxKeptMembers bounds the member names a pooled walk keeps room for: a
// body of an object with 100,000 members must not keep megabytes alive.
const maxKeptMembers = 4096

func (w *walk) trim() {
	if cap(w.seen) > maxKeptMembers {
		w.seen = nil
	}
}

// fail records a violation at the current path.
func (w *walk) fail(msg string, arg []byte, quote bool) {
	w.valid = false
	w.out.add(w.path, msg, arg, quote)
}

// push appends a property name or index to the path and returns the length
// to restore with pop.
func (w *walk) push(seg []byte) int {
	n := len(w.path)
	w.path = append(w.path, '/')
	for _, c := range seg {
		switch c {
		case '~':
			w.path = append(w.path, '~', '0')
		case '/':
			w.path = append(w.path, '~', '1')
		default:
			w.path = append(w.path, c)
		}
	}
	return n
}

func (w *walk) pushIndex(i int) int {
	n := len(w.path)
	w.path = append(w.path, '/')
	w.path = strconv.AppendInt(w.path, int64(i), 10)
	return n
}

func (w *walk) pop(n int) { w.path = w.path[:n] }

// value validates one JSON value v of type t against n. Strings arrive
// without their quotes and still escaped, as jsonparser hands them out.
func (w *walk) value(n *node, v []byte, t jsonparser.ValueType) {
	if n.never {
		w.fail("is not allowed", nil, false)
		return
	}
	var bits uint8
	var num float64
	numOK := false
	switch t {
	case jsonparser.String:
		bits = tString
	case jsonparser.Number:
		bits = tNumber
		num, numOK = exactFloat(v)
		if numOK && num == math.Trunc(num) {
			bits |= tInteger
		}
		if !numOK && (n.types&tInteger != 0 || n.hasMin || n.hasMax || n.enum != nil || n.hasConst) {
			w.bail = true
			return
		}
	case jsonparser.Object:
		bits = tObject
	case jsonparser.Array:
		bits = tArray
	case jsonparser.Boolean:
		bits = tBoolean
	case jsonparser.Null:
		bits = tNull
	}
	if n.types != 0 && bits&n.types == 0 {
		w.fail("must be ", s2b(n.typeText), false)
		return
	}
	if n.enum != nil || n.hasConst {
		if bits == tString && bytes.IndexByte(v, '\\') >= 0 {
			w.bail = true
			return
		}
		if n.hasConst && !n.constVal.equal(bits, v, num) {
			w.fail("must equal the constant value", nil, false)
		}
		if n.enum != nil {
			in := false
			for i := range n.enum {
				if n.enum[i].equal(bits, v, num) {
					in = true
					break
				}
			}
			if !in {
				w.fail("must be one of the allowed values", nil, false)
			}
		}
	}
	switch t {
	case jsonparser.String:
		w.str(n, v)
	case jsonparser.Number:
		w.number(n, num)
	case jsonparser.Object:
		w.object(n, v)
	case jsonparser.Array:
		w.array(n, v)
	}
}

func (sc *scalar) equal(bits uint8, v []byte, num float64) bool {
	switch sc.kind {
	case tString:
		return bits == tString && string(v) == sc.str
	case tNumber:
		return bits&tNumber != 0 && num == sc.num
	case tBoolean:
		return bits == tBoolean && (v[0] == 't') == sc.b
	}
	return bits == tNull
}

func (w *walk) str(n *node, v []byte) {
	if n.pattern == nil && n.minLen < 0 && n.maxLen < 0 {
		return
	}
	if bytes.IndexByte(v, '\\') >= 0 {
		w.bail = true
		return
	}
	w.text(n, v)
}

// text checks the string keywords on an unescaped string.
func (w *walk) text(n *node, v []byte) {
	if n.minLen >= 0 || n.maxLen >= 0 {
		l := utf8.RuneCount(v)
		if n.minLen >= 0 && l < n.minLen {
			w.fail("must be at least this many characters long: ", strconv.AppendInt(w.out.scratch[:0], int64(n.minLen), 10), false)
		}
		if n.maxLen >= 0 && l > n.maxLen {
			w.fail("must be at most this many characters long: ", strconv.AppendInt(w.out.scratch[:0], int64(n.maxLen), 10), false)
		}
	}
	if n.pattern != nil && !n.pattern.Match(v) {
		w.fail("must match the pattern ", s2b(n.patternText), false)
	}
}

func (w *walk) number(n *node, f float64) {
	if n.hasMin && (f < n.min || (n.exMin && f == n.min)) {
		msg := "must be >= "
		if n.exMin {
			msg = "must be > "
		}
		w.fail(msg, strconv.AppendFloat(w.out.scratch[:0], n.min, 'g', -1, 64), false)
	}
	if n.hasMax && (f > n.max || (n.exMax && f == n.max)) {
		msg := "must be <= "
		if n.exMax {
			msg = "must be < "
		}
		w.fail(msg, strconv.AppendFloat(w.out.scratch[:0], n.max, 'g', -1, 64), false)
	}
}

func (w *walk) object(n *node, v []byte) {
	if n.props == nil && n.additional == nil && n.required == nil {
		return
	}
	var seen uint64
	_ = jsonparser.ObjectEach(v, func(key, val []byte, t jsonparser.ValueType, _ int) error {
		if w.bail {
			return errStop
		}
		if bytes.IndexByte(key, '\\') >= 0 {
			w.bail = true
			return errStop
		}
		mark := w.push(key)
		defer w.pop(mark)
		for i := range n.props {
			p := &n.props[i]
			if p.name == string(key) {
				seen |= 1 << i
				w.value(p.schema, val, t)
				return nil
			}
		}
		seen |= n.markRequiredOnly(key)
		if n.additional != nil {
			if n.additional.never {
				w.fail("is not an allowed property: ", key, true)
				return nil
			}
			w.value(n.additional, val, t)
		}
		return nil
	})
	w.missing(n, seen)
}

// markRequiredOnly returns the mask bit of key when it is a name only
// "required" knows, else 0. Such a name is still an additional property.
func (n *node) markRequiredOnly(key []byte) uint64 {
	for j, name := range n.reqOnly {
		if name == string(key) {
			return 1 << (len(n.props) + j)
		}
	}
	return 0
}

// missing reports every required name whose bit is not in seen.
func (w *walk) missing(n *node, seen uint64) {
	for _, i := range n.required {
		if seen&(1<<i) == 0 {
			mark := w.push(s2b(n.requiredName(i)))
			w.fail("is required", nil, false)
			w.pop(mark)
		}
	}
}

func (w *walk) array(n *node, v []byte) {
	if n.items == nil {
		return
	}
	i := 0
	_, _ = jsonparser.ArrayEachErr(v, func(val []byte, t jsonparser.ValueType, _ int, _ error) error {
		if w.bail {
			return errStop
		}
		mark := w.pushIndex(i)
		w.value(n.items, val, t)
		w.pop(mark)
		i++
		return nil
	})
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}

// s2b and b2s convert without copying. The bytes must not be modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
