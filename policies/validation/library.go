package validation

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/kaptinlin/jsonschema"
)

// library validates with kaptinlin/jsonschema: every schema the fast path
// does not cover, and the rare instance it cannot decide.
//
// A compiled jsonschema.Schema caches regular expressions in itself the
// first time it meets them, so one Schema must not validate on two
// goroutines at once. library keeps a set of copies and hands each to one
// validation at a time: one compiled at load, more (up to the channel's
// capacity) when validations overlap, so that a config of many schemas
// rarely met pays for one copy of each.
type library struct {
	doc    []byte
	copies chan *jsonschema.Schema
	made   atomic.Int32
}

// compileLibrary compiles doc with the library, for at most n concurrent
// validations.
func compileLibrary(doc []byte, n int) (*library, error) {
	s, err := compileOnce(doc)
	if err != nil {
		return nil, err
	}
	l := &library{doc: doc, copies: make(chan *jsonschema.Schema, max(n, 1))}
	l.made.Store(1)
	l.copies <- s
	return l, nil
}

// get takes a copy, compiling one more when every copy is in use and
// fewer than the limit were made; put gives it back.
func (l *library) get() *jsonschema.Schema {
	select {
	case s := <-l.copies:
		return s
	default:
	}
	if int(l.made.Add(1)) <= cap(l.copies) {
		if s, err := compileOnce(l.doc); err == nil {
			return s
		}
	}
	l.made.Add(-1)
	return <-l.copies
}

func (l *library) put(s *jsonschema.Schema) { l.copies <- s }

func libraryCopies() int {
	return min(max(runtime.GOMAXPROCS(0), 1), 16)
}

func compileOnce(doc []byte) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	// A schema in a gateway config must not make the gateway fetch
	// anything at load time: $ref stays inside the document.
	clear(c.Loaders)
	return c.Compile(doc)
}

// checkSchema compiles doc with the library, as Provision will. A $ref
// that points outside the document would silently validate nothing, so it
// is an error here.
func checkSchema(doc []byte) error {
	s, err := compileOnce(doc)
	if err != nil {
		return err
	}
	if refs := s.UnresolvedReferenceURIs(); len(refs) > 0 {
		return &refError{uris: refs}
	}
	return nil
}

// refError is a $ref the schema does not contain.
type refError struct{ uris []string }

func (e *refError) Error() string {
	return fmt.Sprintf("has a $ref to %s, which is not in the schema; a $ref must point inside it (\"#/$defs/name\"), nothing is fetched",
		strings.Join(e.uris, ", "))
}

// validateJSON validates a JSON document and appends its violations to out.
func (l *library) validateJSON(doc []byte, out *violations) bool {
	return l.validateJSONAt(doc, out, "")
}

// validateJSONAt is validateJSON with the violations' paths under at.
func (l *library) validateJSONAt(doc []byte, out *violations, at string) bool {
	s := l.get()
	res := s.ValidateJSON(doc)
	l.put(s)
	return report(res, out, at)
}

// validateValue validates an already decoded value (the query object).
func (l *library) validateValue(v map[string]any, out *violations) bool {
	s := l.get()
	res := s.ValidateMap(v)
	l.put(s)
	return report(res, out, "")
}

// validateAny validates a decoded value (a parameter's) with the
// violations' paths under at.
func (l *library) validateAny(v any, out *violations, at string) bool {
	s := l.get()
	res := s.Validate(v)
	l.put(s)
	return report(res, out, at)
}

func report(res *jsonschema.EvaluationResult, out *violations, at string) bool {
	if res.IsValid() {
		return true
	}
	collect(res, out, at)
	return false
}

// aggregate keywords only say that something below them failed; their
// subschemas' own errors are listed instead.
var aggregate = map[string]bool{
	"properties": true, "patternProperties": true, "additionalProperties": true,
	"items": true, "prefixItems": true, "allOf": true, "$ref": true, "$dynamicRef": true,
	"dependentSchemas": true, "unevaluatedProperties": true, "unevaluatedItems": true,
}

// alternatives are keywords whose subschemas failing is what makes them
// fail: their own error is the one to show, not every branch's.
var alternatives = map[string]bool{
	"anyOf": true, "oneOf": true, "not": true, "if": true, "then": true, "else": true,
	"contains": true, "propertyNames": true,
}

// collect writes the errors of a result, sorted by path, so that a
// response lists the same violations in the same order each time. Paths
// in the result are relative to the parent's; they are joined here, under
// at.
func collect(res *jsonschema.EvaluationResult, out *violations, at string) {
	before := out.count
	type leaf struct{ path, msg string }
	var leaves []leaf
	var walk func(r *jsonschema.EvaluationResult, base string)
	walk = func(r *jsonschema.EvaluationResult, base string) {
		path := base + r.InstanceLocation
		descended := false
		for _, d := range r.Details {
			if d.Valid || isAlternative(d.EvaluationPath) {
				continue
			}
			descended = true
			walk(d, path)
		}
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			if descended && aggregate[k] {
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			leaves = append(leaves, leaf{path, r.Errors[k].Error()})
		}
	}
	walk(res, at)
	sort.SliceStable(leaves, func(i, j int) bool { return leaves[i].path < leaves[j].path })
	seen := map[leaf]bool{}
	for _, lf := range leaves {
		if seen[lf] {
			continue
		}
		seen[lf] = true
		out.add(s2b(lf.path), lf.msg, nil, false)
	}
	if out.count == before {
		out.add(s2b(at), "does not match the schema", nil, false)
	}
}

// isAlternative reports whether a detail's evaluation path (relative to
// its parent: "/anyOf/0", "/properties/id") starts at an alternative.
func isAlternative(evalPath string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(evalPath, "/"), "/")
	return alternatives[first]
}
