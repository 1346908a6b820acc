package validation

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/buger/jsonparser"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// maxQueryArgs bounds the arguments the fast path looks at: it finds
// repeated keys by comparing every pair, which must stay cheap. A longer
// query goes to the library.
const maxQueryArgs = 64

// queryTypes says, per top-level property of the schema, what a query
// value is converted to before validation: the types the property's schema
// declares, and for an array property the types its items declare. Only the
// root's "properties" are looked at; a property typed through $ref or
// allOf is taken as a string.
type queryTypes map[string]qtype

type qtype struct {
	types, items uint8
}

// scalarTypes are the types a single query value converts to.
const scalarTypes = tString | tNumber | tInteger | tBoolean

// array reports whether a key's values make an array even when the key
// comes once: its property allows an array and none of the types a single
// value converts to (OpenAPI's form style, explode: ?tag=a is ["a"]).
func (t qtype) array() bool {
	return t.types&tArray != 0 && t.types&scalarTypes == 0
}

func buildQueryTypes(doc []byte) queryTypes {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&root) != nil {
		return nil
	}
	props, _ := root["properties"].(map[string]any)
	qt := queryTypes{}
	for name, sub := range props {
		m, _ := sub.(map[string]any)
		t := qtype{types: declared(m)}
		if items, ok := m["items"].(map[string]any); ok {
			t.items = declared(items)
		}
		qt[name] = t
	}
	return qt
}

// declared is the union of the types a schema declares itself and in the
// branches of its anyOf and oneOf.
func declared(m map[string]any) uint8 {
	bits := typesOf(m["type"])
	for _, k := range []string{"anyOf", "oneOf"} {
		list, _ := m[k].([]any)
		for _, e := range list {
			if sub, ok := e.(map[string]any); ok {
				bits |= declared(sub)
			}
		}
	}
	return bits
}

func typesOf(v any) uint8 {
	switch t := v.(type) {
	case string:
		return typeNames[t]
	case []any:
		var bits uint8
		for _, e := range t {
			s, _ := e.(string)
			bits |= typeNames[s]
		}
		return bits
	}
	return 0
}

// convert says what JSON type a query value becomes under the declared
// types: a number when a number is allowed and the text is a JSON number,
// a boolean for "true" and "false" when a boolean is allowed, else a string.
// A value that does not convert stays a string, so that the schema's type
// check names the problem.
func convert(types uint8, v []byte) jsonparser.ValueType {
	if types&(tNumber|tInteger) != 0 && isJSONNumber(v) {
		return jsonparser.Number
	}
	if types&tBoolean != 0 && (string(v) == "true" || string(v) == "false") {
		return jsonparser.Boolean
	}
	return jsonparser.String
}

// isJSONNumber reports whether b is a number as JSON writes it.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// declares calls add for each member name the schema object m declares:
// the keys of its "properties", "dependentRequired" and "dependentSchemas"
// (sorted, in that order), the names in each "dependentRequired" list and
// in "required"; and sub for the schema of each property (property true)
// and each dependentSchemas entry.
func declares(m map[string]any, add func(string), sub func(schema any, property bool)) {
	addList := func(v any) {
		list, _ := v.([]any)
		for _, e := range list {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	}
	for _, k := range []string{"properties", "dependentRequired", "dependentSchemas"} {
		obj, _ := m[k].(map[string]any)
		keys := make([]string, 0, len(obj))
		for name := range obj {
			keys = append(keys, name)
		}
		slices.Sort(keys)
		for _, name := range keys {
			add(name)
			if k == "dependentRequired" {
				addList(obj[name])
			} else {
				sub(obj[name], k == "properties")
			}
		}
	}
	addList(m["required"])
}

// declaredNames lists the query parameters a schema names: the keys of
// its "properties" and "dependentRequired" and the names in "required",
// at its root and in the schemas that apply to the same object (allOf,
// anyOf, oneOf, if, then, else, dependentSchemas, a $ref inside the
// document), in the order met, each once. Names matched only by
// patternProperties are not known.
func declaredNames(doc []byte) []string {
	var root any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&root) != nil {
		return nil
	}
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	followed := map[string]bool{}
	var visit func(v any, depth int)
	visit = func(v any, depth int) {
		m, ok := v.(map[string]any)
		if !ok || depth > 64 {
			return
		}
		declares(m, add, func(sub any, property bool) {
			// A property's schema is of another object: only
			// dependentSchemas apply to this one.
			if !property {
				visit(sub, depth+1)
			}
		})
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			list, _ := m[k].([]any)
			for _, e := range list {
				visit(e, depth+1)
			}
		}
		for _, k := range []string{"if", "then", "else"} {
			visit(m[k], depth+1)
		}
		if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#") && !followed[ref] {
			followed[ref] = true
			visit(pointer(root, ref[1:]), depth+1)
		}
	}
	visit(root, 0)
	return names
}

// pointer resolves a JSON pointer in v; nil when it leads nowhere.
func pointer(v any, p string) any {
	if p == "" {
		return v
	}
	if !strings.HasPrefix(p, "/") {
		return nil
	}
	for _, seg := range strings.Split(p[1:], "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	return v
}

// variant reports whether an upstream reads the query parameter key as a
// parameter of names that it is not: a declared parameter sent under
// another name. Such a parameter is not validated as part of the query
// (checkQuery refuses it instead). It does not allocate.
func variant(names *chain.QueryNames, key []byte) bool {
	i, exact := names.Find(key)
	return i >= 0 && !exact
}

// query validates the query arguments as an object against the root node n.
// Repeated keys make an array, as does a key whose property is an array.
// A parameter sent under another name of a parameter of names is left
// out (see variant).
func (w *walk) query(n *node, qt queryTypes, args *fasthttp.Args, names *chain.QueryNames) {
	if args.Len() > maxQueryArgs || n.enum != nil || n.hasConst {
		w.bail = true
		return
	}
	if n.never {
		w.fail("is not allowed", nil, false)
		return
	}
	if n.types != 0 && n.types&tObject == 0 {
		w.fail("must be ", s2b(n.typeText), false)
		return
	}
	var seen uint64
	i := 0
	for key, val := range args.All() {
		if w.bail {
			break
		}
		if !variant(names, key) {
			w.queryArg(n, qt, args, key, val, i, &seen)
		}
		i++
	}
	w.missing(n, seen)
}

// queryArg validates the idx-th parameter of the query, key=val, against
// the object schema n, marking in seen the properties it meets. A repeated
// key is validated once, at its first occurrence, as an array.
func (w *walk) queryArg(n *node, qt queryTypes, args *fasthttp.Args, key, val []byte, idx int, seen *uint64) {
	count, first, j := 0, true, 0
	for k := range args.All() {
		if string(k) == string(key) {
			if j < idx {
				first = false
			}
			count++
		}
		j++
	}
	if !first {
		return
	}
	var schema *node
	known := false
	for pi := range n.props {
		if n.props[pi].name == string(key) {
			*seen |= 1 << pi
			schema, known = n.props[pi].schema, true
			break
		}
	}
	if !known {
		*seen |= n.markRequiredOnly(key)
		schema = n.additional
	}
	mark := w.push(key)
	defer w.pop(mark)
	if schema == nil {
		return
	}
	if !known && schema.never {
		w.fail("is not an allowed parameter: ", key, true)
		return
	}
	t := qt[b2s(key)]
	if count == 1 && !t.array() {
		w.value(schema, val, convert(t.types, val))
		return
	}
	w.repeated(schema, t, args, key)
}

// repeated validates the values of a key as an array: a repeated key, or
// one whose property is an array.
func (w *walk) repeated(n *node, t qtype, args *fasthttp.Args, key []byte) {
	if n.never {
		w.fail("is not allowed", nil, false)
		return
	}
	if n.enum != nil || n.hasConst {
		w.bail = true
		return
	}
	if n.types != 0 && n.types&tArray == 0 {
		w.fail("must be ", s2b(n.typeText), false)
		return
	}
	if n.items == nil {
		return
	}
	i := 0
	for k, v := range args.All() {
		if string(k) != string(key) {
			continue
		}
		mark := w.pushIndex(i)
		w.value(n.items, v, convert(t.items, v))
		w.pop(mark)
		i++
	}
}

// queryValue builds the query object for the library, converted as the
// fast path converts it, without the parameters sent under another name
// of a parameter of names.
func queryValue(qt queryTypes, args *fasthttp.Args, names *chain.QueryNames) map[string]any {
	obj := make(map[string]any, args.Len())
	for k, v := range args.All() {
		if variant(names, k) {
			continue
		}
		t := qt[string(k)]
		key := string(k)
		prev, repeated := obj[key]
		if !repeated {
			if t.array() {
				obj[key] = []any{scalarOf(t.items, v)}
			} else {
				obj[key] = scalarOf(t.types, v)
			}
			continue
		}
		list, ok := prev.([]any)
		if !ok {
			// The first value was converted as a single value; as an
			// array item it converts under the items' types.
			first := args.Peek(key)
			list = []any{scalarOf(t.items, first)}
		}
		obj[key] = append(list, scalarOf(t.items, v))
	}
	return obj
}

func scalarOf(types uint8, v []byte) any {
	switch convert(types, v) {
	case jsonparser.Number:
		return json.Number(v)
	case jsonparser.Boolean:
		return v[0] == 't'
	}
	return string(v)
}
