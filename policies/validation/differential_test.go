package validation

import (
	"strings"
	"testing"

	"github.com/buger/jsonparser"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// subsetSchemas are schemas inside the fast subset; the differential and
// fuzz tests hold the fast path to the library's verdict on each.
var subsetSchemas = []string{
	seedSchema,
	`{"type": "array", "items": {"type": ["integer", "null"], "minimum": -5, "exclusiveMaximum": 10}}`,
	`{"properties": {"s": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "b"},
	  "e": {"enum": ["a", 1, true, null, 2.5]}, "c": {"const": "x"}, "k": {"const": 0}},
	  "required": ["s"], "additionalProperties": {"type": "number"}}`,
	`{"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "array", "items": false}}}},
	  "additionalProperties": true}`,
	`{"type": ["string", "number"], "minimum": 1.5, "maxLength": 3, "$comment": "mixed"}`,
	`true`,
	`false`,
	// Names only "required" lists are still additional properties.
	`{"required": ["a"], "additionalProperties": false}`,
	`{"required": ["a"], "additionalProperties": {"type": "string"}}`,
	`{"properties": {"a": {}}, "required": ["b"], "additionalProperties": false}`,
	`{"required": ["b", "a"], "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "integer", "minimum": 2}}`,
	`{"properties": {"o": {"type": "object", "required": ["a"], "additionalProperties": false},
	  "p": {"required": ["x"], "properties": {"y": {}}, "additionalProperties": {"type": "integer"}}}}`,
}

var corpus = []string{
	`{"productId":"PRD-42","quantity":2}`,
	`{"productId":"PRD-42","quantity":2.0}`,
	`{"productId":"PRD-42","quantity":1e0}`,
	`{"productId":"PRD-42","quantity":0.5e1}`,
	`{"productId":"PRD-42","quantity":-0}`,
	`{"productId":"PRD-","quantity":2}`,
	`{"productId":"xPRD-4","quantity":2}`,
	`{"productId":"PRD-4\n","quantity":2}`,
	`{"productId":"PRD-\u0034\u0032","quantity":2}`,
	`{"productId":"PRD-42","quantity":12345678901234567890}`,
	`{"productId":"PRD-42","quantity":1.0000000000000000001}`,
	`{"productId":"PRD-42","quantity":1e400}`,
	`{"productId":"PRD-42","quantity":1e-400}`,
	`{"productId":"PRD-42"}`,
	`{"productId":"PRD-42","quantity":2,"x":null}`,
	`{"product\u0049d":"PRD-42","quantity":2}`,
	`{"s":"ab","e":"a","c":"x","k":0}`,
	`{"s":"abcde"}`, `{"s":"a"}`, `{"s":"aa"}`, `{"s":"ébé"}`, `{"s":"b\"b"}`,
	`{"s":"bb","e":2.50}`, `{"s":"bb","e":"b"}`, `{"s":"bb","e":1.0}`, `{"s":"bb","e":false}`,
	`{"s":"bb","k":-0.0}`, `{"s":"bb","k":0e5}`, `{"s":"bb","c":"\u0078"}`, `{"s":"bb","z":1}`, `{"s":"bb","z":"1"}`,
	`[1,null,-5,9.99,10]`, `[-6]`, `[1.5]`, `[]`, `["1"]`, `[9.999999999999999]`,
	`{"a":{"b":[]}}`, `{"a":{"b":[1]}}`, `{"a":{"c":[1]}}`, `{"a":[]}`,
	`{"a":1}`, `{"a":"x"}`, `{"a":2,"b":2}`, `{"a":1,"b":2}`, `{"a":1,"b":"2"}`, `{"b":2}`, `{"b":1}`, `{"a":"x","b":"y"}`,
	`{"o":{"a":1}}`, `{"o":{}}`, `{"o":{"a":1,"b":1}}`, `{"p":{"x":1}}`, `{"p":{"x":"1"}}`, `{"p":{"y":"1"}}`,
	`{"p":{"x":1,"y":"1","z":2}}`, `{"p":{"x":1,"z":"2"}}`, `{"o":{"a":1},"p":{"x":2}}`,
	`"ab"`, `"abcd"`, `1`, `1.5`, `1.4999999999999999`, `2`, `null`, `true`, `{}`, `[[]]`, `""`,
}

// fastVerdict runs the fast path alone; decided is false when it handed
// the instance to the library.
func fastVerdict(n *node, doc []byte) (valid, decided bool) {
	w := acquireWalk(nil)
	defer releaseWalk(w)
	val, t, _, err := jsonparser.Get(doc)
	if err != nil {
		return false, false
	}
	w.value(n, val, t)
	return w.valid, !w.bail
}

func compileBoth(t testing.TB, schema string) (*node, *library) {
	t.Helper()
	doc, _, _ := stripComments([]byte(schema))
	n, err := compileFast(doc)
	if err != nil {
		t.Fatalf("%s: not in the fast subset: %v", schema, err)
	}
	lib, err := compileLibrary(doc, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n, lib
}

func TestFastPathAgreesWithLibrary(t *testing.T) {
	decided := 0
	for _, schema := range subsetSchemas {
		n, lib := compileBoth(t, schema)
		for _, body := range corpus {
			if !jsontext.Value(body).IsValid() {
				t.Fatalf("corpus entry %s is not valid JSON", body)
			}
			fast, ok := fastVerdict(n, []byte(body))
			if !ok {
				continue
			}
			decided++
			var out violations
			if want := lib.validateJSON([]byte(body), &out); fast != want {
				t.Errorf("schema %s\nbody %s: fast path says valid=%v, library %v", schema, body, fast, want)
			}
		}
	}
	if decided < len(subsetSchemas)*len(corpus)*3/4 {
		t.Fatalf("the fast path decided only %d of %d cases", decided, len(subsetSchemas)*len(corpus))
	}
}

// querySchemas are schemas inside the fast subset for the query; the
// differential and fuzz tests hold the fast path to the library's verdict
// on each.
var querySchemas = []string{
	seedSchema,
	`{"properties": {"n": {"type": "number", "maximum": 10}, "f": {"type": "boolean"},
	  "l": {"type": "array", "items": {"type": "integer", "minimum": 0}}, "s": {"enum": ["a", "b"]},
	  "i": {"type": ["integer", "string"], "maxLength": 2}}, "required": ["n"]}`,
	`{"required": ["n"], "additionalProperties": false}`,
	`{"properties": {"f": {"type": "boolean"}}, "required": ["n", "f"], "additionalProperties": {"type": "string", "maxLength": 1}}`,
	// Array properties: a single value is a one-element array.
	`{"properties": {"a": {"type": "array", "items": {"type": "integer", "minimum": 0}},
	  "b": {"type": ["array", "null"], "items": {"type": "boolean"}}, "c": {"type": "array"},
	  "d": {"type": ["array", "string"], "maxLength": 1}, "e": {"type": "array", "items": {"type": "number", "maximum": 1.5}},
	  "s": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]*$", "maxLength": 2}}},
	  "required": ["a"], "additionalProperties": {"type": "array"}}`,
}

var queryCorpus = []string{
	"productId=PRD-42&quantity=2", "productId=42&quantity=2", "productId=PRD-1&quantity=0",
	"productId=PRD-1&quantity=1.0", "productId=PRD-1&quantity=1e2", "productId=PRD-1&quantity=%2B1",
	"productId=PRD-1&quantity=", "productId=PRD-1", "productId=PRD-1&quantity=2&x=1",
	"productId=PRD-1&productId=PRD-2&quantity=2", "", "quantity=2&quantity=3",
	"n=1", "n=11", "n=x", "n=1&f=true", "n=1&f=1", "n=1&l=1&l=2", "n=1&l=1&l=-1", "n=1&l=1&l=a",
	"n=1&l=5", "n=1&f=x", "n=a&f=true", "n=ab&f=true", "f=true", "n=a&f=true&z=b", "n=a&f=true&z=bc", "n=1&s=a", "n=1&s=c", "n=1&s=a&s=a", "n=1&i=5", "n=1&i=abc", "n=1&i=ab", "n=1&n=2",
	"a=1", "a=-1", "a=x", "a=", "a", "a=1&a=2", "a=1&a=-2", "b=true", "b=1", "a=0&b=false&b=true",
	"a=1&c=x", "a=1&c=", "a=1&d=x", "a=1&d=xy", "a=1&d=x&d=yz", "a=1&e=1.5", "a=1&e=1.6", "a=1&e=x",
	"a=1&s=ab", "a=1&s=abc", "a=1&s=A", "a=1&s=", "a=1&s=a&s=", "a=1&z=1", "a=1&z=1&z=2", "a=1&a",
}

func TestQueryFastPathAgreesWithLibrary(t *testing.T) {
	decided := 0
	for _, schema := range querySchemas {
		n, lib := compileBoth(t, schema)
		doc, _, _ := stripComments([]byte(schema))
		qt := buildQueryTypes(doc)
		for _, q := range queryCorpus {
			fast, ok, want := queryVerdicts(n, lib, qt, q)
			if !ok {
				continue
			}
			decided++
			if fast != want {
				t.Errorf("schema %s\nquery %s: fast path says valid=%v, library %v", schema, q, fast, want)
			}
		}
	}
	if decided < len(querySchemas)*len(queryCorpus)/2 {
		t.Fatalf("the fast path decided only %d of %d cases", decided, len(querySchemas)*len(queryCorpus))
	}
}

// queryVerdicts validates the query q with the fast path and the library;
// decided is false when the fast path handed it to the library.
func queryVerdicts(n *node, lib *library, qt queryTypes, q string) (fast, decided, library bool) {
	var args fasthttp.Args
	args.Parse(q)
	w := acquireWalk(nil)
	w.query(n, qt, &args, nil)
	fast, decided = w.valid, !w.bail
	releaseWalk(w)
	if !decided {
		return false, false, false
	}
	var out violations
	return fast, true, lib.validateValue(queryValue(qt, &args, nil), &out)
}

// FuzzQueryFastPathAgreesWithLibrary feeds the fast path and the library
// the same queries under every query schema; wherever the fast path
// decides, it must decide as the library does.
func FuzzQueryFastPathAgreesWithLibrary(f *testing.F) {
	for _, q := range queryCorpus {
		f.Add(q)
	}
	type entry struct {
		n   *node
		lib *library
		qt  queryTypes
	}
	var entries []entry
	for _, schema := range querySchemas {
		n, lib := compileBoth(f, schema)
		doc, _, _ := stripComments([]byte(schema))
		entries = append(entries, entry{n, lib, buildQueryTypes(doc)})
	}
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 1024 {
			return
		}
		for i, e := range entries {
			if fast, ok, want := queryVerdicts(e.n, e.lib, e.qt, q); ok && fast != want {
				t.Errorf("schema %s\nquery %q: fast path says valid=%v, library %v", querySchemas[i], q, fast, want)
			}
		}
	})
}

// FuzzFastPathAgreesWithLibrary feeds the fast path and the library the
// same bodies under every subset schema; wherever the fast path decides,
// it must decide as the library does.
func FuzzFastPathAgreesWithLibrary(f *testing.F) {
	for _, body := range corpus {
		f.Add([]byte(body))
	}
	type pair struct {
		n   *node
		lib *library
	}
	var pairs []pair
	for _, schema := range subsetSchemas {
		n, lib := compileBoth(f, schema)
		pairs = append(pairs, pair{n, lib})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 4096 || depth(body, DefaultMaxDepth) != depthOK || !jsontext.Value(body).IsValid() {
			return
		}
		for i, p := range pairs {
			fast, decided := fastVerdict(p.n, body)
			if !decided {
				continue
			}
			var out violations
			if want := p.lib.validateJSON(body, &out); fast != want {
				t.Errorf("schema %s\nbody %s: fast path says valid=%v, library %v", subsetSchemas[i], body, fast, want)
			}
		}
	})
}

// A name that "required" lists but "properties" does not declare is an
// additional property like any other (JSON Schema, additionalProperties):
// it must be present and must also satisfy additionalProperties. The
// patternProperties schemas are outside the fast subset and show the
// library's verdict, which the fast path must share.
func TestRequiredOnlyNamesAreAdditional(t *testing.T) {
	f := func(schema, body string, want bool) {
		t.Helper()
		doc, _, _ := stripComments([]byte(schema))
		v := &Validator{}
		if n, err := compileFast(doc); err == nil {
			v.fast = n
		}
		lib, err := compileLibrary(doc, 1)
		if err != nil {
			t.Fatal(err)
		}
		v.lib = lib
		if got := v.checkBody([]byte(body), &chain.Exchange{}); got != want {
			t.Errorf("schema %s (fast path: %v)\nbody %s: valid=%v, want %v", schema, v.fast != nil, body, got, want)
		}
	}
	f(`{"required": ["a"], "additionalProperties": false}`, `{"a":1}`, false)
	f(`{"required": ["a"], "additionalProperties": false}`, `{}`, false)
	f(`{"required": ["a"], "additionalProperties": {"type": "string"}}`, `{"a":1}`, false)
	f(`{"required": ["a"], "additionalProperties": {"type": "string"}}`, `{"a":"x"}`, true)
	f(`{"properties": {"a": {}}, "required": ["b"], "additionalProperties": false}`, `{"a":1,"b":2}`, false)
	f(`{"properties": {"a": {}}, "required": ["a"], "additionalProperties": false}`, `{"a":1}`, true)
	f(`{"properties": {"o": {"required": ["a"], "additionalProperties": false}}}`, `{"o":{"a":1}}`, false)
	f(`{"properties": {"o": {"required": ["a"], "additionalProperties": {"type": "integer"}}}}`, `{"o":{"a":1}}`, true)
	f(`{"required": ["a"], "patternProperties": {"^a$": {"type": "integer"}}, "additionalProperties": false}`, `{"a":1}`, true)
	f(`{"required": ["a"], "patternProperties": {"^a$": {"type": "integer"}}, "additionalProperties": false}`, `{"a":"1"}`, false)
	f(`{"required": ["a", "b"], "patternProperties": {"^a$": {}}, "additionalProperties": false}`, `{"a":1,"b":1}`, false)

	// The query path: a required-only parameter is still not allowed.
	c := mustCompile(t, schemaPolicy(`{"required": ["a"], "additionalProperties": false}`, ""))
	r, details := run(c, "GET", "/?a=1", "", "")
	if r == nil || !strings.Contains(details, `"path":"/a"`) {
		t.Fatalf("?a=1: got %v %s, want a violation at /a", r, details)
	}
}
