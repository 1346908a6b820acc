package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The fast path covers the keywords most request schemas are made of. A
// schema that uses anything else is validated by the library as a whole:
// mixing the two inside one schema would need the library's annotation
// bookkeeping (unevaluatedProperties, $ref scopes) and is not worth it.

// Type bits of a node's "type" keyword.
const (
	tNull uint8 = 1 << iota
	tBoolean
	tObject
	tArray
	tNumber
	tInteger
	tString
)

var typeNames = map[string]uint8{
	"null": tNull, "boolean": tBoolean, "object": tObject, "array": tArray,
	"number": tNumber, "integer": tInteger, "string": tString,
}

// maxProps bounds the names one object schema knows, declared and
// required-only together: the walker tracks which ones it met in a 64-bit
// mask.
const maxProps = 64

// node is one compiled (sub)schema of the fast path. It is immutable after
// compile and safe for concurrent use.
type node struct {
	// never is the boolean schema false: nothing is valid.
	never bool
	types uint8
	// typeText is the "type" keyword as written, for messages.
	typeText string

	props []prop // declared by "properties"; each has a schema
	// reqOnly are the names "required" lists that "properties" does not
	// declare. They are not declared properties: additionalProperties
	// still applies to them, as JSON Schema says.
	reqOnly []string
	// required indexes the names that must be present: i < len(props) is
	// props[i], otherwise reqOnly[i-len(props)]. Bit i of the walker's
	// mask is the same name.
	required   []int
	additional *node // nil: anything goes
	items      *node

	enum     []scalar
	hasConst bool
	constVal scalar

	pattern     *regexp.Regexp
	patternText string

	min, max       float64
	hasMin, hasMax bool
	exMin, exMax   bool // the bound itself is excluded
	minLen, maxLen int  // -1: no bound
}

type prop struct {
	name   string
	schema *node
}

// scalar is an enum or const value the fast path can compare without
// decoding the instance: a string, number, boolean or null.
type scalar struct {
	kind uint8 // tNull, tBoolean, tNumber or tString
	str  string
	num  float64
	b    bool
}

// errUnsupported marks a schema the fast path does not cover; the reason
// names the keyword.
type errUnsupported struct{ reason string }

func (e *errUnsupported) Error() string { return e.reason }

// keywordError is a schema error found by the fast compiler, with the
// keyword it is about, so that the config error can point at its line.
type keywordError struct {
	keyword string
	at      string // JSON pointer of the schema holding the keyword
	err     error
}

func (e *keywordError) Error() string { return e.err.Error() }

// annotations are keywords with no effect on validation.
var annotations = map[string]bool{
	"title": true, "description": true, "$comment": true, "examples": true,
	"default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	// format is an annotation: the library does not assert it either.
	"format": true,
}

// compileFast compiles a schema document into the fast path's tree. It
// returns *errUnsupported when the schema uses something outside the
// subset, and a plain error when the schema is wrong in a way the subset
// can tell.
func compileFast(doc []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var st compileState
	n, err := st.node(v, "")
	if err != nil {
		return nil, err
	}
	if st.unsupported != nil {
		return nil, st.unsupported
	}
	return n, nil
}

// compileState carries what one compile found: the first keyword outside
// the subset. Compiling goes on past it, so that errors in later keywords
// are still found and reported with their keyword.
type compileState struct {
	unsupported *errUnsupported
}

func (st *compileState) node(v any, at string) (*node, error) {
	n := &node{minLen: -1, maxLen: -1}
	switch s := v.(type) {
	case bool:
		n.never = !s
		return n, nil
	case map[string]any:
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := n.keyword(st, k, s[k], at); err != nil {
				var u *errUnsupported
				if errors.As(err, &u) {
					if st.unsupported == nil {
						st.unsupported = u
					}
					continue
				}
				var kw *keywordError
				if errors.As(err, &kw) {
					return nil, err
				}
				return nil, &keywordError{keyword: k, at: at, err: err}
			}
		}
		n.resolveRequired()
		if len(n.props)+len(n.reqOnly) > maxProps && st.unsupported == nil {
			st.unsupported = &errUnsupported{reason: fmt.Sprintf("properties at %s: more than %d properties and required names", ptr(at), maxProps)}
		}
		return n, nil
	}
	return nil, fmt.Errorf("schema at %q must be an object or a boolean", ptr(at))
}

func ptr(at string) string {
	if at == "" {
		return "/"
	}
	return at
}

func (n *node) keyword(st *compileState, k string, v any, at string) error {
	unsupported := func(why string) error {
		return &errUnsupported{reason: fmt.Sprintf("%s at %s: %s", k, ptr(at), why)}
	}
	switch k {
	case "$schema":
		if s, _ := v.(string); s != "https://json-schema.org/draft/2020-12/schema" {
			return unsupported("a dialect other than draft 2020-12")
		}
	case "type":
		switch t := v.(type) {
		case string:
			bit, ok := typeNames[t]
			if !ok {
				return fmt.Errorf("type at %s: unknown type %q; use one of null, boolean, object, array, number, integer, string", ptr(at), t)
			}
			n.types = bit
			n.typeText = t
		case []any:
			var names []string
			for _, e := range t {
				s, _ := e.(string)
				bit, ok := typeNames[s]
				if !ok {
					return fmt.Errorf("type at %s: unknown type %v; use one of null, boolean, object, array, number, integer, string", ptr(at), e)
				}
				n.types |= bit
				names = append(names, s)
			}
			if len(names) == 0 {
				return unsupported("an empty type list")
			}
			n.typeText = strings.Join(names, " or ")
		default:
			return fmt.Errorf("type at %s must be a string or a list of strings", ptr(at))
		}
	case "properties":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("properties at %s must be an object", ptr(at))
		}
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			sub, err := st.node(m[name], at+"/properties/"+name)
			if err != nil {
				return err
			}
			n.props = append(n.props, prop{name: name, schema: sub})
		}
	case "required":
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("required at %s must be a list of property names", ptr(at))
		}
		for _, e := range list {
			name, ok := e.(string)
			if !ok {
				return fmt.Errorf("required at %s must be a list of property names, not %v", ptr(at), e)
			}
			// Held in reqOnly until every keyword is read; resolveRequired
			// then keeps there only the names "properties" lacks.
			if !slices.Contains(n.reqOnly, name) {
				n.reqOnly = append(n.reqOnly, name)
			}
		}
	case "additionalProperties":
		sub, err := st.node(v, at+"/additionalProperties")
		if err != nil {
			return err
		}
		n.additional = sub
	case "items":
		sub, err := st.node(v, at+"/items")
		if err != nil {
			return err
		}
		n.items = sub
	case "enum":
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("enum at %s must be a list", ptr(at))
		}
		n.enum = make([]scalar, 0, len(list))
		for _, e := range list {
			sc, ok := toScalar(e)
			if !ok {
				return unsupported("an object, array or long number among the values")
			}
			n.enum = append(n.enum, sc)
		}
	case "const":
		sc, ok := toScalar(v)
		if !ok {
			return unsupported("an object, array or long number as the value")
		}
		n.hasConst, n.constVal = true, sc
	case "pattern":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("pattern at %s must be a string", ptr(at))
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("pattern at %s: %q is not a valid regular expression (Go RE2 syntax): %v", ptr(at), s, err)
		}
		n.pattern, n.patternText = re, s
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		num, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s at %s must be a number", k, ptr(at))
		}
		f, ok := exactFloat([]byte(num))
		if !ok {
			return unsupported("a bound with more than 15 significant digits")
		}
		n.bound(k, f)
	case "minLength", "maxLength":
		num, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s at %s must be a non-negative integer", k, ptr(at))
		}
		f, ok := exactFloat([]byte(num))
		if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
			return fmt.Errorf("%s at %s must be a non-negative integer, not %s", k, ptr(at), num)
		}
		if k == "minLength" {
			n.minLen = int(f)
		} else {
			n.maxLen = int(f)
		}
	default:
		if annotations[k] {
			return nil
		}
		return unsupported("keyword outside the fast subset")
	}
	return nil
}

// bound records a numeric bound; of two bounds on one side the tighter one
// wins, which is what the keywords mean together.
func (n *node) bound(k string, f float64) {
	switch k {
	case "minimum", "exclusiveMinimum":
		ex := k == "exclusiveMinimum"
		if !n.hasMin || f > n.min || (f == n.min && ex) {
			n.min, n.exMin, n.hasMin = f, ex, true
		}
	default:
		ex := k == "exclusiveMaximum"
		if !n.hasMax || f < n.max || (f == n.max && ex) {
			n.max, n.exMax, n.hasMax = f, ex, true
		}
	}
}

// resolveRequired turns the names "required" listed (held in reqOnly while
// the keywords are read, in any order) into indexes: into props for a
// declared property, past them for a name only "required" knows.
func (n *node) resolveRequired() {
	names := n.reqOnly
	n.reqOnly = nil
	for _, name := range names {
		i := slices.IndexFunc(n.props, func(p prop) bool { return p.name == name })
		if i < 0 {
			i = len(n.props) + len(n.reqOnly)
			n.reqOnly = append(n.reqOnly, name)
		}
		n.required = append(n.required, i)
	}
}

// requiredName is the name of bit i of the walker's mask.
func (n *node) requiredName(i int) string {
	if i < len(n.props) {
		return n.props[i].name
	}
	return n.reqOnly[i-len(n.props)]
}

func toScalar(v any) (scalar, bool) {
	switch s := v.(type) {
	case nil:
		return scalar{kind: tNull}, true
	case bool:
		return scalar{kind: tBoolean, b: s}, true
	case string:
		return scalar{kind: tString, str: s}, true
	case json.Number:
		f, ok := exactFloat([]byte(s))
		return scalar{kind: tNumber, num: f}, ok
	}
	return scalar{}, false
}

// exactFloat parses a JSON number when float64 holds it without changing
// its order or equality against other such numbers: at most 15 significant
// digits and no overflow or underflow. Longer numbers go to the library,
// which compares them exactly.
func exactFloat(b []byte) (float64, bool) {
	digits, leading := 0, true
	for _, c := range b {
		if c == 'e' || c == 'E' {
			break
		}
		if c < '0' || c > '9' {
			continue
		}
		if leading && c == '0' {
			continue
		}
		leading = false
		digits++
	}
	if digits > 15 {
		return 0, false
	}
	f, err := strconv.ParseFloat(b2s(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	if f == 0 && digits > 0 {
		return 0, false
	}
	return f, true
}
