package validation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/buger/jsonparser"

	"github.com/flexgate/flexgate/internal/namefold"
)

// Many upstreams bind JSON members to their fields ignoring case: Go's
// encoding/json, ASP.NET Core (System.Text.Json with its web defaults),
// Json.NET, Jackson with ACCEPT_CASE_INSENSITIVE_PROPERTIES. With "limit"
// at "maximum": 100, the schema lets {"LIMIT": 99999} through (LIMIT is
// another member, allowed as an additional one) and {"limit": 5, "Limit":
// 99999} too (it checks limit), while such an upstream acts on 99999.
//
// So a body is refused when, at any depth, a member's name equals a
// property name the schema declares, ignoring ASCII case, without being
// spelled as declared; or when an object has two members whose names are
// equal ignoring ASCII case, declared or not (the upstream reads one of
// them, nobody knows which). Some of these readers take a few non-ASCII
// letters for ASCII ones (namefold): Go's encoding/json reads the long s
// ſ (U+017F) as s and the Kelvin sign K (U+212A) as k ("ſize" binds to a
// field Size), Java's equalsIgnoreCase those and the dotless ı (U+0131)
// and dotted İ (U+0130) as i; System.Text.Json and Json.NET, comparing
// with OrdinalIgnoreCase, none. Names are compared with all four read as
// the ASCII letters ("lımit" is another spelling of limit).
//
// "Declared" is the set of property names declared anywhere in the schema,
// not the ones declared where the member is: which declarations apply to
// an object is known only by evaluating the schema on the instance ($ref,
// allOf, anyOf, oneOf, if/then/else, patternProperties, unevaluated*), and
// one rule for both the fast path and the library keeps their verdicts
// equal. The set is sound, not exact: a member spelled as declared where
// it is, but in another case than a property of the same name declared
// elsewhere ("ID" inside owner, "id" at the root), is refused too.

// memberNames is the set of property names a schema declares. It is
// immutable after load and safe for concurrent use.
type memberNames struct {
	// byFold maps the foldHash of a name (folded) to the indexes of its
	// spellings.
	byFold map[uint64][]int
	names  []string
	// folded is, per spelling, the name with the letters namefold reads
	// written as theirs.
	folded []string
	// other is, per spelling, the violation of a member that is another
	// spelling of it.
	other []string
	// lens has bit n set when a name is n bytes long (n < 63), bit 63
	// for the longer ones: most members are ruled out without a look-up.
	lens uint64
}

// notSchema are keywords whose values are data, not subschemas: a
// "properties" inside them declares nothing.
var notSchema = map[string]bool{
	"const": true, "enum": true, "default": true, "examples": true, "example": true,
}

// declaredMembers collects the property names a schema document declares
// anywhere: the keys of every "properties", "dependentRequired" and
// "dependentSchemas", and the names of every "required" and
// "dependentRequired" list.
func declaredMembers(doc []byte) *memberNames {
	m := &memberNames{byFold: map[uint64][]int{}}
	var root any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&root) != nil {
		return m
	}
	add := func(name string) {
		folded := string(appendFolded(nil, []byte(name)))
		h := foldHash([]byte(folded))
		for _, i := range m.byFold[h] {
			if m.names[i] == name {
				return
			}
		}
		m.byFold[h] = append(m.byFold[h], len(m.names))
		m.names = append(m.names, name)
		m.folded = append(m.folded, folded)
		m.other = append(m.other, fmt.Sprintf("is read by many upstreams as %q; send it as %q", name, name))
		m.lens |= lenBit(len(folded))
	}
	var visit func(v any, depth int)
	visit = func(v any, depth int) {
		if depth > 256 {
			return
		}
		switch s := v.(type) {
		case []any:
			for _, e := range s {
				visit(e, depth+1)
			}
		case map[string]any:
			declares(s, add, func(sub any, _ bool) { visit(sub, depth+1) })
			keys := make([]string, 0, len(s))
			for k := range s {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				switch k {
				case "required", "properties", "dependentRequired", "dependentSchemas":
					// declares has read them.
				default:
					if !notSchema[k] {
						visit(s[k], depth+1)
					}
				}
			}
		}
	}
	visit(root, 0)
	return m
}

func lenBit(n int) uint64 { return 1 << min(n, 63) }

// foldHash is the FNV-1a hash of b with ASCII letters lowercased.
func foldHash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// member is one member name of an object being scanned: the foldHash of
// its decoded name folded (memberName), and where it is written (between
// the quotes).
type member struct {
	hash       uint64
	start, end int
}

// frame is an array or object the scan is inside. key is the member of
// an object the scan is at (start, end of its name); idx the element of
// an array. seen is where the object's members begin in walk.seen.
type frame struct {
	obj  bool
	key  member
	idx  int
	seen int
}

// members checks the member names of every object in doc, a JSON
// document known to be valid, against the rule above, recording a
// violation for each member refused under the walker's path. m nil
// declares nothing. It returns false when a member was refused.
//
// One pass over the bytes, without parsing values: a path is built only
// for a violation, from the frames of the arrays and objects around it.
func (w *walk) members(m *memberNames, doc []byte) bool {
	ok := true
	w.frames = w.frames[:0]
	w.seen = w.seen[:0]
	expectKey := false
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '{':
			w.frames = append(w.frames, frame{obj: true, seen: len(w.seen)})
			expectKey = true
		case '[':
			w.frames = append(w.frames, frame{})
			expectKey = false
		case '}':
			if !w.closeObject(doc) {
				ok = false
			}
			w.frames = w.frames[:len(w.frames)-1]
			expectKey = false
		case ']':
			w.frames = w.frames[:len(w.frames)-1]
		case ',':
			f := &w.frames[len(w.frames)-1]
			expectKey = f.obj
			f.idx++
		case '"':
			end := stringEnd(doc, i+1)
			if expectKey {
				expectKey = false
				f := &w.frames[len(w.frames)-1]
				plain, folded := w.memberName(doc[i+1:end], false)
				f.key = member{foldHash(folded), i + 1, end}
				w.seen = append(w.seen, f.key)
				if m != nil && m.lens&lenBit(len(folded)) != 0 && !m.check(w, f.key, plain, folded, doc) {
					ok = false
				}
			}
			i = end
		}
	}
	return ok
}

// stringEnd returns the index of the quote that ends the string whose
// text begins at i.
func stringEnd(doc []byte, i int) int {
	for {
		q := i + bytes.IndexByte(doc[i:], '"')
		bs := 0
		for j := q - 1; j >= i && doc[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// check refuses the member k, plain and folded as memberName gives its
// name, when it is another spelling of a declared name.
func (m *memberNames) check(w *walk, k member, plain, folded, doc []byte) bool {
	for _, i := range m.byFold[k.hash] {
		if d := m.names[i]; d != string(plain) && equalFoldASCII(s2b(m.folded[i]), folded) {
			w.failAt(doc, k, m.other[i], nil)
			return false
		}
	}
	return true
}

// closeObject refuses the members of the object the scan closes that an
// earlier member's name equals ignoring ASCII case.
func (w *walk) closeObject(doc []byte) bool {
	seen := w.seen[w.frames[len(w.frames)-1].seen:]
	defer func() { w.seen = w.seen[:len(w.seen)-len(seen)] }()
	if len(seen) < 2 {
		return true
	}
	ok := true
	if len(seen) <= 16 {
		for j := 1; j < len(seen); j++ {
			for i := 0; i < j; i++ {
				if seen[i].hash == seen[j].hash && !w.sameMember(doc, seen[i], seen[j]) {
					ok = false
					break
				}
			}
		}
		return ok
	}
	slices.SortFunc(seen, func(a, b member) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return a.start - b.start
	})
	for j := 1; j < len(seen); j++ {
		if seen[j].hash == seen[j-1].hash && !w.sameMember(doc, seen[j-1], seen[j]) {
			ok = false
		}
	}
	return ok
}

// sameMember refuses b, a member after a in one object, when their names
// folded (memberName) are equal ignoring ASCII case.
func (w *walk) sameMember(doc []byte, a, b member) bool {
	_, an := w.memberName(doc[a.start:a.end], false)
	w.fold = append(w.fold[:0], an...)
	if _, bn := w.memberName(doc[b.start:b.end], true); !equalFoldASCII(w.fold, bn) {
		return true
	}
	w.fold = append(w.fold[:0], w.unescape(doc[a.start:a.end])...)
	w.failAt(doc, b, "is read by many upstreams as the same member as ", w.fold)
	return false
}

// failAt records a violation at the member k of the innermost object.
func (w *walk) failAt(doc []byte, k member, msg string, arg []byte) {
	mark := len(w.path)
	for i := 1; i < len(w.frames); i++ {
		if p := &w.frames[i-1]; p.obj {
			w.push(w.unescape(doc[p.key.start:p.key.end]))
		} else {
			w.pushIndex(p.idx)
		}
	}
	w.push(w.unescape(doc[k.start:k.end]))
	w.fail(msg, arg, arg != nil)
	w.pop(mark)
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// memberName returns a member name decoded, plain, and folded: with the
// letters that namefold reads as ASCII ones written so ("ſize" is
// size). folded is plain when it has none of them, else in the walker's
// scratch space (norm when second, so that two names can be held), valid
// until the next call.
func (w *walk) memberName(raw []byte, second bool) (plain, folded []byte) {
	plain = w.unescape(raw)
	if !namefold.Has(plain) {
		return plain, plain
	}
	buf := &w.norm
	if !second {
		buf = &w.fold
	}
	*buf = appendFolded((*buf)[:0], plain)
	return plain, *buf
}

// appendFolded appends name to dst with the letters namefold reads written
// as theirs.
func appendFolded(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		if c, n := namefold.Letter(name[i:]); n > 0 {
			dst, i = append(dst, c), i+n
			continue
		}
		dst, i = append(dst, name[i]), i+1
	}
	return dst
}

// unescape returns a member name as it is decoded, in the walker's
// scratch buffer when it has escapes (valid until the next call).
func (w *walk) unescape(key []byte) []byte {
	if bytes.IndexByte(key, '\\') < 0 {
		return key
	}
	if cap(w.key) < len(key) {
		w.key = make([]byte, len(key))
	}
	u, err := jsonparser.Unescape(key, w.key[:len(key)])
	if err != nil {
		return key
	}
	return u
}
