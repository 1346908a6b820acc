package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

// Defaults for the limits a body meets before it is parsed. 64 levels is
// far beyond any real API payload and far below what makes a parser's
// stack a problem.
const (
	DefaultMaxBodySize = 1 << 20
	DefaultMaxDepth    = 64
)

// Validator is the request-validation policy: it checks a request's JSON
// body or its query parameters, as In decides, against a JSON Schema.
// A provisioned Validator is safe for concurrent use.
type Validator struct {
	// Schema is a JSON Schema (draft 2020-12). `//` and `/* */` comments
	// outside strings are allowed. Required.
	Schema string `yaml:"schema"`
	// MaxBodySize is the largest body, in bytes, that is read and parsed;
	// a larger one is answered 413. Default 1 MiB.
	MaxBodySize int64 `yaml:"maxBodySize" min:"0" max:"1073741824" note:"bytes; 0: the default, 1 MiB"`
	// MaxDepth is the deepest nesting of arrays and objects a body may
	// have; a deeper one is answered 400 before it is parsed. Default 64.
	MaxDepth int `yaml:"maxDepth" min:"0" max:"10000" note:"0: the default, 64"`
	// In says what the schema validates: "query" (the query parameters;
	// a request with a body is rejected), "body" (the JSON body; a request
	// without one is rejected) or "auto", the default: "query" when the
	// route lists only methods without a body (GET, HEAD, DELETE,
	// OPTIONS), otherwise the body when there is one and the query when
	// there is none.
	In string `yaml:"in"`

	in     source // In, resolved against the route's methods
	doc    []byte // the schema with comments blanked out
	fast   *node  // nil when the schema is outside the fast subset
	lib    *library
	qtypes queryTypes
	route  string
	// names are the query parameters the schema declares
	// (declaredNames), otherName the violation of each sent under
	// another name an upstream reads as it, and hiddenName of each sent
	// inside another parameter after a ';' (see chain.QueryParams).
	names      *chain.QueryNames
	otherName  []string
	hiddenName []string
	// members are the property names the schema declares anywhere, for
	// the check of a body's member names (see members).
	members *memberNames

	tooLarge, tooDeep, invalidJSON, unsupported, failed *chain.Rejection
	unexpectedBody, missingBody                         *chain.Rejection
}

// source is what a route's requests are validated by, decided at load.
type source uint8

const (
	// fromEither validates the body when there is one, else the query.
	fromEither source = iota
	fromQuery
	fromBody
)

func init() {
	chain.Register(chain.Registration{Name: "request-validation", New: func() chain.Policy { return new(Validator) }, KeyFrom: methodsKey})
}

// methodsKey names the route's methods: "in: auto" is resolved against
// them at provision, so a reload that changes them must build the policy
// anew rather than carry the old decision over.
func methodsKey(_ *config.Config, route *config.Route) string {
	return strings.Join(route.Methods, ",")
}

// bodyless are the methods whose requests carry no body by convention.
// HEAD is routed with GET, and has no body either.
var bodyless = map[string]bool{"GET": true, "HEAD": true, "DELETE": true, "OPTIONS": true}

// resolveIn decides what a route validates. "auto" means the query only
// when the route names its methods and none of them carries a body: a body
// on such a request must not switch the query's validation off.
func resolveIn(in string, methods []string) source {
	switch in {
	case "query":
		return fromQuery
	case "body":
		return fromBody
	}
	if len(methods) == 0 {
		return fromEither
	}
	for _, m := range methods {
		if !bodyless[m] {
			return fromEither
		}
	}
	return fromQuery
}

// Validate checks the parameters and compiles the schema, so that a schema
// that does not compile fails `flexgate validate` at its own line.
func (v *Validator) Validate(env *chain.Env) error {
	params := env.Spec.Params
	if params == nil || strings.TrimSpace(v.Schema) == "" {
		return errors.New(`needs a "schema": write the JSON Schema the requests must match under schema: |`)
	}
	switch v.In {
	case "", "auto", "query", "body":
	default:
		return chain.Errorf(chain.Field(params, "in"), `in must be "query", "body" or "auto", not %q`, v.In)
	}
	doc, err := prepare(params, v.Schema)
	if err != nil {
		return err
	}
	if err := checkNames(env, v.In, v.Schema, doc); err != nil {
		return err
	}
	warnTextBounds(env, v.In, v.Schema, doc)
	warnSpellings(env, v.In, v.Schema, doc)
	return nil
}

// warnSpellings warns, where the schema validates bodies, of two property
// names equal ignoring ASCII case ("id" and "ID"): the body check refuses
// a member spelled unlike any declared name of its kind anywhere in the
// schema (see members), so a body can send neither.
func warnSpellings(env *chain.Env, in, schema string, doc []byte) {
	var methods []string
	if env.Route != nil {
		methods = env.Route.Methods
	}
	if resolveIn(in, methods) == fromQuery {
		return
	}
	m := declaredMembers(doc)
	for i, name := range m.names {
		for _, j := range m.byFold[foldHash(s2b(m.folded[i]))] {
			if j >= i || !equalFoldASCII(s2b(m.folded[j]), s2b(m.folded[i])) {
				continue
			}
			// Named in the order written, placed at the second.
			a, b := m.names[j], name
			offA, offB := keywordOffset(doc, "", a), keywordOffset(doc, "", b)
			if offB < offA {
				a, b, offB = b, a, offA
			}
			key, val := keyAndValue(env.Spec.Params, "schema")
			node := &yaml.Node{}
			var pe *chain.ParamError
			if errors.As(schemaError(key, val, []byte(schema), offB, ""), &pe) {
				node.Line, node.Column = pe.Line, pe.Col
			}
			env.Warn(node, "schema declares the properties %q and %q, which many upstreams read as one member: "+
				"a body member named either way is refused as the other spelled in another case; use one spelling", a, b)
			return
		}
	}
}

// numericKeywords apply only to numbers: to a string they say nothing.
var numericKeywords = []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}

// warnTextBounds warns, where the schema validates the query, of a
// property (or its items) with a numeric keyword and no number type: a
// query value becomes a number only under "type": "integer" or "number"
// (see convert), so the bound never applies and ?limit=99999 passes
// "maximum": 100.
func warnTextBounds(env *chain.Env, in, schema string, doc []byte) {
	var methods []string
	if env.Route != nil {
		methods = env.Route.Methods
	}
	if resolveIn(in, methods) == fromBody {
		return
	}
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&root) != nil {
		return
	}
	props, _ := root["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	key, val := keyAndValue(env.Spec.Params, "schema")
	warn := func(m map[string]any, at, what string) {
		if declared(m)&(tNumber|tInteger) != 0 {
			return
		}
		for _, k := range numericKeywords {
			if _, ok := m[k]; !ok {
				continue
			}
			node := &yaml.Node{}
			var pe *chain.ParamError
			if errors.As(schemaError(key, val, []byte(schema), keywordOffset(doc, at, k), ""), &pe) {
				node.Line, node.Column = pe.Line, pe.Col
			}
			env.Warn(node, "schema: %s has %q, which never applies to a query parameter: its value is text, "+
				"and is validated as a number only when the schema declares \"type\": \"integer\" or \"number\" for it; add one", what, k)
			return
		}
	}
	for _, name := range names {
		m, _ := props[name].(map[string]any)
		warn(m, "/properties/"+name, fmt.Sprintf("the property %q", name))
		if items, ok := m["items"].(map[string]any); ok {
			warn(items, "/properties/"+name+"/items", fmt.Sprintf("the items of the property %q", name))
		}
	}
}

// checkNames refuses a schema that validates the query and declares two
// parameters that many upstreams read as one (limit and Limit): a request
// could send one past the other's rules, and the upstream would read it
// as the other. Where the schema also validates bodies (in: auto on a
// route that takes them), where such names are distinct members, it is a
// warning.
func checkNames(env *chain.Env, in, schema string, doc []byte) error {
	var methods []string
	if env.Route != nil {
		methods = env.Route.Methods
	}
	src := resolveIn(in, methods)
	if src == fromBody {
		return nil
	}
	names := declaredNames(doc)
	a, b, ok := chain.NewQueryNames(names...).Overlapping()
	if !ok {
		return nil
	}
	// Named in the order written, placed at the second.
	offA, offB := keywordOffset(doc, "", names[a]), keywordOffset(doc, "", names[b])
	if offB < offA {
		a, b, offB = b, a, offA
	}
	msg := fmt.Sprintf("declares the query parameters %q and %q, which many upstreams read as one parameter "+
		"(ASP.NET reads query names in any case, Go's and Java's binders ſ as s and K as k, Java's ı and İ as i; PHP reads '.', ' ' and '[' as '_', and a[b] as an element of a): "+
		"a request could send one past the rules of the other", names[a], names[b])
	key, val := keyAndValue(env.Spec.Params, "schema")
	if src == fromQuery {
		return schemaError(key, val, []byte(schema), offB, msg+"; declare one of them")
	}
	at := &yaml.Node{}
	var pe *chain.ParamError
	if errors.As(schemaError(key, val, []byte(schema), offB, ""), &pe) {
		at.Line, at.Column = pe.Line, pe.Col
	}
	env.Warn(at, "schema %s; when it validates a query (a request without a body), declare one of them, or write in: body", msg)
	return nil
}

// prepare strips the schema's comments and compiles it both ways, turning
// every error into one at the YAML line of the schema.
func prepare(params *yaml.Node, schema string) ([]byte, error) {
	key, val := keyAndValue(params, "schema")
	src := []byte(schema)
	doc, off, ok := stripComments(src)
	if !ok {
		return nil, schemaError(key, val, src, off, "a /* comment is not closed; add */")
	}
	var syn *json.SyntaxError
	dec := json.NewDecoder(bytes.NewReader(doc))
	var probe any
	if err := dec.Decode(&probe); err != nil {
		if errors.As(err, &syn) {
			return nil, schemaError(key, val, src, int(syn.Offset)-1, "is not valid JSON: "+err.Error())
		}
		return nil, schemaError(key, val, src, len(src), "is not valid JSON: "+err.Error())
	}
	if dec.More() {
		return nil, schemaError(key, val, src, int(dec.InputOffset()), "has text after the JSON value; a schema is one JSON value")
	}
	if _, err := compileFast(doc); err != nil {
		var kw *keywordError
		if errors.As(err, &kw) {
			return nil, schemaError(key, val, src, keywordOffset(doc, kw.at, kw.keyword), "is wrong: "+err.Error())
		}
	}
	if err := checkSchema(doc); err != nil {
		var re *refError
		if errors.As(err, &re) {
			return nil, schemaError(key, val, src, keywordOffset(doc, "", "$ref"), err.Error())
		}
		return nil, schemaError(key, val, src, -1, "does not compile: "+err.Error())
	}
	return doc, nil
}

func keyAndValue(params *yaml.Node, name string) (key, val *yaml.Node) {
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		if params.Content[i].Value == name {
			return params.Content[i], params.Content[i+1]
		}
	}
	return nil, nil
}

// keywordOffset finds where "keyword" is written in doc inside the schema
// at the JSON pointer at, by finding each name of the pointer in turn; -1
// when it cannot tell.
func keywordOffset(doc []byte, at, keyword string) int {
	off := 0
	for _, seg := range strings.Split(at, "/")[1:] {
		i := bytes.Index(doc[off:], []byte(`"`+seg+`"`))
		if i < 0 {
			break
		}
		off += i + len(seg) + 2
	}
	i := bytes.Index(doc[off:], []byte(`"`+keyword+`"`))
	if i < 0 {
		return -1
	}
	return off + i
}

// schemaError places msg at the YAML line and column of byte off of the
// schema text (off < 0: the schema's first line). Inside a block scalar
// (`schema: |`) the text starts on the next line, indented; the indent is
// taken to be the key's plus two, as YAML is usually written.
func schemaError(key, val *yaml.Node, src []byte, off int, msg string) error {
	e := &chain.ParamError{Msg: "schema " + msg}
	if val == nil {
		return e
	}
	e.Line, e.Col = val.Line, val.Column
	if off < 0 {
		return e
	}
	line, col := lineCol(src, off)
	e.Msg = fmt.Sprintf("schema (its line %d) %s", line, msg)
	if val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && key != nil {
		e.Line, e.Col = val.Line+line, key.Column+2+col-1
	} else if line == 1 {
		e.Col = val.Column + col
	}
	return e
}

// Provision compiles the schema into the fast path (when the schema stays
// inside its subset) and the library, and builds the rejections.
func (v *Validator) Provision(env *chain.Env) error {
	if v.MaxBodySize == 0 {
		v.MaxBodySize = DefaultMaxBodySize
	}
	if v.MaxDepth == 0 {
		v.MaxDepth = DefaultMaxDepth
	}
	doc, err := prepare(env.Spec.Params, v.Schema)
	if err != nil {
		return err
	}
	v.doc = doc
	v.route = env.Owner()
	v.in = resolveIn(v.In, env.Route.Methods)
	fast, err := compileFast(doc)
	var u *errUnsupported
	switch {
	case errors.As(err, &u):
		env.Logger.Info("schema is validated by the library, not the fast path", "reason", u.reason)
	case err != nil:
		return err
	default:
		v.fast = fast
	}
	if v.lib, err = compileLibrary(doc, libraryCopies()); err != nil {
		return err
	}
	v.qtypes = buildQueryTypes(doc)
	v.members = declaredMembers(doc)
	names := declaredNames(doc)
	v.names = chain.NewQueryNames(names...)
	v.otherName = make([]string, len(names))
	v.hiddenName = make([]string, len(names))
	for i, n := range names {
		v.otherName[i] = fmt.Sprintf("is read by many upstreams as the query parameter %q; send it as %q", n, n)
		v.hiddenName[i] = chain.HiddenParam(n)
	}
	v.tooLarge = env.Reject(413, "body_too_large",
		fmt.Sprintf("request body is larger than %d bytes, the limit of %s", v.MaxBodySize, env.Whose()))
	v.tooDeep = env.Reject(400, "json_too_deep",
		fmt.Sprintf("request body nests arrays and objects deeper than %d levels, the limit of %s", v.MaxDepth, env.Whose()))
	v.invalidJSON = env.Reject(400, "invalid_json",
		"request body is not valid JSON (UTF-8, every object member named once)")
	v.unsupported = env.Reject(415, "unsupported_media_type",
		"request body must be JSON: send it with Content-Type: application/json")
	v.failed = env.Reject(400, "validation_failed",
		fmt.Sprintf("request does not match the schema of %s", env.Whose()))
	v.failed.DetailKey = "violations"
	v.unexpectedBody = env.Reject(400, "unexpected_body",
		fmt.Sprintf("request has a body, but the schema of %s validates the query parameters; send them in the query, without a body", env.Whose()))
	v.missingBody = env.Reject(400, "missing_body",
		fmt.Sprintf("request has no body, but the schema of %s validates a JSON body", env.Whose()))
	return nil
}

// Close releases nothing: a Validator holds no goroutines or connections.
func (v *Validator) Close() error { return nil }

var (
	_ chain.Policy         = (*Validator)(nil)
	_ chain.RequestHandler = (*Validator)(nil)
)
