package specvalidation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/policies/validation"
)

// source is the spec's text and where it is written, so that an error
// in the spec points at its line in the config (an inline spec) or in
// its own file (specFile).
type source struct {
	text []byte
	// key and val are the parameter's nodes: spec (inline) or specFile.
	key, val *yaml.Node
	// file is the spec's own file; "" when it is inline.
	file string
}

// errorf places an error at line and column of the spec text (line 0:
// the spec as a whole).
func (s *source) errorf(line, col int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	e := &chain.ParamError{}
	if s.val != nil {
		e.Line, e.Col = s.val.Line, s.val.Column
	}
	switch {
	case s.file != "" && line > 0:
		e.Msg = fmt.Sprintf("specFile %s:%d:%d: %s", s.file, line, col, msg)
	case s.file != "":
		e.Msg = fmt.Sprintf("specFile %s: %s", s.file, msg)
	case line > 0:
		e.Msg = fmt.Sprintf("spec (its line %d) %s", line, msg)
		if s.val != nil && s.val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && s.key != nil {
			e.Line, e.Col = s.val.Line+line, s.key.Column+2+col-1
		} else if s.val != nil && line == 1 {
			e.Col = s.val.Column + col
		}
	default:
		e.Msg = "spec " + msg
	}
	return e
}

func (s *source) at(loc *openapi3.Location, format string, args ...any) error {
	if loc == nil {
		return s.errorf(0, 0, format, args...)
	}
	return s.errorf(loc.Line, loc.Column, format, args...)
}

// methods are the operations of a path item, in the order of the index
// the request path uses (methodIndex).
var methods = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}

func methodIndex(m []byte) int {
	switch string(m) {
	case "GET":
		return 0
	case "PUT":
		return 1
	case "POST":
		return 2
	case "DELETE":
		return 3
	case "OPTIONS":
		return 4
	case "HEAD":
		return 5
	case "PATCH":
		return 6
	case "TRACE":
		return 7
	}
	return -1
}

// pathItem is a path template's operations.
type pathItem struct {
	template string
	ops      [8]*operation
}

// operation is one operation of the spec, compiled for the request path.
type operation struct {
	name string // "GET /pets/{petId}"
	// path are the path parameters, in the order of the template's
	// expressions.
	path                  []*param
	query, header, cookie []*param
	// queryNames and cookieNames are the names of query and cookie, in
	// their order, with every name an upstream reads as them.
	queryNames, cookieNames *chain.QueryNames
	// body is nil when the operation takes no body.
	body *body
}

// param is one parameter of an operation.
type param struct {
	name     string
	at       string // the violations' path: "/query/limit"
	required bool
	schema   *validation.Schema
	// list: the value is an array, written as repeated query keys
	// (repeat) or separated by sep.
	list   bool
	repeat bool
	sep    byte
	// json: the parameter has content application/json instead of a
	// schema: its value is JSON text.
	json bool
	// other is the violation of the parameter sent under another name
	// that many upstreams read as it, hidden of a query parameter sent
	// inside another after a ';' (see chain.QueryParams); header is a
	// header's spellings.
	other  string
	hidden string
	header chain.HeaderName
}

// body is an operation's requestBody.
type body struct {
	required bool
	media    []media
}

// media is one media type of a requestBody: type/subtype, either of
// which may be "*", and the schema of a JSON body (nil: not validated).
type media struct {
	typ, sub string
	schema   *validation.Schema
}

// spec is a loaded spec, compiled for the request path.
type spec struct {
	root pnode
	// ops counts the operations, slow those whose schemas the fast path
	// does not cover (for the load's log line).
	ops, slow int
}

var (
	refInError = regexp.MustCompile(`"([^"]+)"`)
	pathError  = regexp.MustCompile(`(?:path|operation [A-Z]+) (/[^ :]*)`)
)

// loadSpec parses, validates and compiles a spec.
func loadSpec(src *source) (*spec, error) {
	var tree yaml.Node
	if err := yaml.Unmarshal(src.text, &tree); err != nil {
		line := 0
		if m := regexp.MustCompile(`line (\d+): (.*)`).FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			return nil, src.errorf(line, 1, "is not JSON or YAML: %s", m[2])
		}
		if line, col, what, ok := config.BadChar(src.text); ok {
			return nil, src.errorf(line, col, "is not JSON or YAML: %s", what)
		}
		return nil, src.errorf(0, 0, "is not JSON or YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var alias *config.AliasError
	if err := config.CheckAliases(&tree); errors.As(err, &alias) {
		return nil, src.errorf(alias.Alias.Line, alias.Alias.Column, "%s", alias.Msg)
	}
	if len(tree.Content) == 0 || tree.Content[0].Kind != yaml.MappingNode {
		return nil, src.errorf(0, 0, "is not an OpenAPI document: write the spec (a mapping with openapi: 3.0.3 or 3.1.0, info and paths)")
	}
	top := tree.Content[0]
	version := chain.Field(top, "openapi")
	switch {
	case chain.Field(top, "swagger") != nil:
		k := keyNode(top, "swagger")
		return nil, src.errorf(k.Line, k.Column, "is Swagger 2.0, which spec-validation does not read: convert it to OpenAPI 3")
	case version == nil:
		return nil, src.errorf(top.Line, top.Column, "has no openapi version: write openapi: 3.0.3 or 3.1.0")
	case !strings.HasPrefix(version.Value, "3.0.") && !strings.HasPrefix(version.Value, "3.1.") &&
		version.Value != "3.0" && version.Value != "3.1":
		return nil, src.errorf(version.Line, version.Column, "is OpenAPI %s; spec-validation reads OpenAPI 3.0 and 3.1", version.Value)
	}
	loader := openapi3.NewLoader()
	loader.IncludeOrigin = true
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(src.text)
	if err != nil {
		return nil, locate(src, &tree, err, "does not load: %v")
	}
	ctx := context.Background()
	opts := []openapi3.ValidationOption{openapi3.DisableExamplesValidation()}
	if doc.IsOpenAPI31OrLater() {
		opts = append(opts, openapi3.IsOpenAPI31OrLater())
	}
	vctx := openapi3.WithValidationOptions(ctx, opts...)
	templates := sortedPaths(doc)
	// Each operation first, so that an error points at its own place.
	for _, t := range templates {
		item := doc.Paths.Value(t)
		for _, p := range item.Parameters {
			if p.Value != nil {
				if err := p.Value.Validate(vctx); err != nil {
					return nil, src.at(paramLoc(p), "parameter %q of path %s is wrong: %v", p.Value.Name, t, err)
				}
			}
		}
		for _, m := range methods {
			if op := item.GetOperation(m); op != nil {
				if err := op.Validate(vctx); err != nil {
					return nil, src.at(key(op.Origin), "operation %s %s is wrong: %v", m, t, err)
				}
			}
		}
	}
	if err := doc.Validate(ctx, opts...); err != nil {
		// Placed at the path the message names, where it names one.
		names := pathError.FindAllStringSubmatch(err.Error(), -1)
		names = append(names, refInError.FindAllStringSubmatch(err.Error(), -1)...)
		for _, m := range names {
			if item := doc.Paths.Value(m[1]); item != nil {
				return nil, src.at(key(item.Origin), "is not valid OpenAPI: %v", err)
			}
		}
		return nil, locate(src, &tree, err, "is not valid OpenAPI: %v")
	}
	conv, err := newConverter(doc)
	if err != nil {
		return nil, src.errorf(0, 0, "cannot be read: %v", err)
	}
	sp := &spec{}
	for _, t := range templates {
		item := doc.Paths.Value(t)
		loc := key(item.Origin)
		segs, err := parseTemplate(t)
		if err != nil {
			return nil, src.at(loc, "%v", err)
		}
		pi := &pathItem{template: t}
		for name := range item.Operations() {
			if !slices.Contains(methods, strings.ToUpper(name)) {
				return nil, src.at(loc, "path %s has a %s operation, which spec-validation does not know; remove it", t, name)
			}
		}
		for i, m := range methods {
			op := item.GetOperation(m)
			if op == nil {
				continue
			}
			compiled, err := compileOperation(src, conv, m, t, segs, item, op)
			if err != nil {
				return nil, err
			}
			pi.ops[i] = compiled
			sp.ops++
			if compiled.slow() {
				sp.slow++
			}
		}
		if err := sp.root.add(segs, pi); err != nil {
			return nil, src.at(loc, "%v", err)
		}
	}
	if sp.ops == 0 {
		return nil, src.errorf(0, 0, "has no operations: every request would be refused; describe the API's paths")
	}
	return sp, nil
}

// sortedPaths lists the spec's path templates in the order written.
func sortedPaths(doc *openapi3.T) []string {
	var ts []string
	for t := range doc.Paths.Map() {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		li, lj := line(doc.Paths.Value(ts[i]).Origin), line(doc.Paths.Value(ts[j]).Origin)
		if li != lj {
			return li < lj
		}
		return ts[i] < ts[j]
	})
	return ts
}

func key(o *openapi3.Origin) *openapi3.Location {
	if o == nil {
		return nil
	}
	return o.Key
}

func line(o *openapi3.Origin) int {
	if l := key(o); l != nil {
		return l.Line
	}
	return 0
}

func paramLoc(p *openapi3.ParameterRef) *openapi3.Location {
	if l := key(p.Origin); l != nil {
		return l
	}
	if p.Value != nil {
		return key(p.Value.Origin)
	}
	return nil
}

func keyNode(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i]
		}
	}
	return m
}

// locate places a loader's error: at the $ref it names, when it names
// one the spec writes, else at the spec.
func locate(src *source, tree *yaml.Node, err error, format string) error {
	msg := err.Error()
	for _, m := range refInError.FindAllStringSubmatch(msg, -1) {
		if n := findRef(tree, m[1]); n != nil {
			return src.errorf(n.Line, n.Column, format, err)
		}
	}
	return src.errorf(0, 0, format, err)
}

// findRef finds the value node of a $ref whose value is ref.
func findRef(n *yaml.Node, ref string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "$ref" && n.Content[i+1].Value == ref {
				return n.Content[i+1]
			}
		}
	}
	for _, c := range n.Content {
		if f := findRef(c, ref); f != nil {
			return f
		}
	}
	return nil
}

// ignoredHeaders are header parameters OpenAPI says to ignore: they are
// described by the operation's content and security instead.
var ignoredHeaders = []string{"accept", "content-type", "authorization"}

// compileOperation compiles op, of method m on template t.
func compileOperation(src *source, conv *converter, m, t string, segs []segment, item *openapi3.PathItem, op *openapi3.Operation) (*operation, error) {
	o := &operation{name: m + " " + t}
	// The path item's parameters, unless the operation has its own of the
	// same name and location.
	type keyed struct{ in, name string }
	var all []*openapi3.ParameterRef
	own := map[keyed]bool{}
	for _, p := range op.Parameters {
		own[keyed{p.Value.In, strings.ToLower(p.Value.Name)}] = true
		all = append(all, p)
	}
	for _, p := range item.Parameters {
		if !own[keyed{p.Value.In, strings.ToLower(p.Value.Name)}] {
			all = append(all, p)
		}
	}
	byVar := map[string]*param{}
	var queryNames, cookieNames []string
	var queryLocs, headerLocs, cookieLocs []*openapi3.Location
	for _, pr := range all {
		p := pr.Value
		loc := paramLoc(pr)
		if p.In == openapi3.ParameterInHeader && slices.Contains(ignoredHeaders, strings.ToLower(p.Name)) {
			continue
		}
		cp, err := compileParam(src, conv, o.name, loc, p)
		if err != nil {
			return nil, err
		}
		switch p.In {
		case openapi3.ParameterInPath:
			byVar[p.Name] = cp
		case openapi3.ParameterInQuery:
			o.query = append(o.query, cp)
			queryNames, queryLocs = append(queryNames, p.Name), append(queryLocs, loc)
		case openapi3.ParameterInHeader:
			o.header = append(o.header, cp)
			headerLocs = append(headerLocs, loc)
		case openapi3.ParameterInCookie:
			o.cookie = append(o.cookie, cp)
			cookieNames, cookieLocs = append(cookieNames, p.Name), append(cookieLocs, loc)
		}
	}
	// Two parameters an upstream reads as one: a request could send one
	// past the other's schema. Cookie names are folded as query names
	// are, the non-ASCII letters too (namefold), though no reader is
	// known to fold those in cookie names (ASP.NET folds ASCII case
	// only; net/http and servlets none): a cookie name is a token, ASCII
	// only, so refusing one that has them costs no valid request.
	o.queryNames, o.cookieNames = chain.NewQueryNames(queryNames...), chain.NewQueryNames(cookieNames...)
	for _, x := range []struct {
		in    string
		names *chain.QueryNames
		locs  []*openapi3.Location
		how   string
	}{
		{"query", o.queryNames, queryLocs, "ASP.NET reads query names in any case, Go's and Java's binders ſ as s and K as k, Java's ı and İ as i; PHP reads '.', ' ' and '[' as '_', and a[b] as an element of a"},
		{"cookie", o.cookieNames, cookieLocs, "ASP.NET reads cookie names in any case; PHP reads '.', ' ' and '[' as '_', and a[b] as an element of a"},
	} {
		if a, b, ok := x.names.Overlapping(); ok {
			return nil, src.at(x.locs[b], "parameters %q and %q (%s) of operation %s are read by many upstreams as one (%s): "+
				"a request could send one past the other's schema; describe one of them", x.names.Name(a).String(), x.names.Name(b).String(), x.in, o.name, x.how)
		}
	}
	for i, a := range o.header {
		for _, b := range o.header[:i] {
			if strings.EqualFold(strings.ReplaceAll(a.name, "_", "-"), strings.ReplaceAll(b.name, "_", "-")) {
				return nil, src.at(headerLocs[i], "parameters %q and %q (header) of operation %s are read by many upstreams as one "+
					"(CGI-style upstreams read '-' and '_' alike): a request could send one past the other's schema; describe one of them",
					b.name, a.name, o.name)
			}
		}
	}
	for _, s := range segs {
		if s.name == "" {
			continue
		}
		p := byVar[s.name]
		if p == nil {
			return nil, src.at(key(op.Origin), "operation %s does not describe the path parameter {%s}; add it to parameters", o.name, s.name)
		}
		o.path = append(o.path, p)
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		b := &body{required: rb.Value.Required}
		for _, mt := range sortedMedia(rb.Value.Content) {
			typ, sub, _ := strings.Cut(strings.ToLower(strings.TrimSpace(strings.Split(mt, ";")[0])), "/")
			md := media{typ: typ, sub: sub}
			if s := rb.Value.Content[mt].Schema; s != nil && jsonish(typ, sub) {
				schema, err := compileSchema(conv, s)
				if err != nil {
					return nil, src.at(key(rb.Value.Content[mt].Origin), "the %s body of operation %s: %v", mt, o.name, err)
				}
				md.schema = schema
			}
			b.media = append(b.media, md)
		}
		o.body = b
	}
	return o, nil
}

// jsonish reports whether a body of this media type may be JSON: JSON
// itself, a +json type, or a wildcard.
func jsonish(typ, sub string) bool {
	return typ == "*" || typ == "application" && (sub == "json" || sub == "*" || strings.HasSuffix(sub, "+json"))
}

// sortedMedia lists media types exact ones first, then type/*, then */*.
func sortedMedia(c openapi3.Content) []string {
	var out []string
	for mt := range c {
		out = append(out, mt)
	}
	rank := func(mt string) int {
		switch {
		case strings.HasPrefix(mt, "*/"):
			return 2
		case strings.Contains(mt, "/*"):
			return 1
		}
		return 0
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

func compileSchema(conv *converter, s *openapi3.SchemaRef) (*validation.Schema, error) {
	doc, err := conv.document(s, true)
	if err != nil {
		return nil, err
	}
	return validation.CompileSchema(doc)
}

// compileParam compiles one parameter of operation opName.
func compileParam(src *source, conv *converter, opName string, loc *openapi3.Location, p *openapi3.Parameter) (*param, error) {
	cp := &param{name: p.Name, at: "/" + p.In + "/" + escapePointer(p.Name), required: p.Required}
	fail := func(format string, args ...any) error {
		return src.at(loc, "parameter %q (%s) of operation %s: %s", p.Name, p.In, opName, fmt.Sprintf(format, args...))
	}
	switch p.In {
	case openapi3.ParameterInQuery:
		cp.other = fmt.Sprintf("is read by many upstreams as the query parameter %q; send it as %q", p.Name, p.Name)
		cp.hidden = chain.HiddenParam(p.Name)
	case openapi3.ParameterInCookie:
		cp.other = fmt.Sprintf("is read by many upstreams as the cookie %q; send it as %q", p.Name, p.Name)
	case openapi3.ParameterInHeader:
		h, err := chain.NewHeaderName(p.Name)
		if err != nil {
			return nil, fail("%v", err)
		}
		cp.header = h
		cp.other = fmt.Sprintf("is read by many upstreams as the header %q ('-' and '_' alike); send it as %q", p.Name, p.Name)
	}
	schemaRef := p.Schema
	if schemaRef == nil {
		// content instead of schema: one media type, which must be JSON.
		for mt, m := range p.Content {
			typ, sub, _ := strings.Cut(strings.ToLower(mt), "/")
			if typ != "application" || (sub != "json" && !strings.HasSuffix(sub, "+json")) {
				return nil, fail("its content is %s; spec-validation validates parameters written as JSON (application/json) or with a schema", mt)
			}
			cp.json = true
			schemaRef = m.Schema
		}
		if schemaRef == nil {
			cp.json = false
			return cp, nil
		}
	}
	schema, err := compileSchema(conv, schemaRef)
	if err != nil {
		return nil, fail("%v", err)
	}
	cp.schema = schema
	if cp.json {
		return cp, nil
	}
	style := p.Style
	explode := p.Explode
	switch p.In {
	case openapi3.ParameterInPath:
		if style != "" && style != openapi3.SerializationSimple {
			return nil, fail("style %s is not supported for path parameters; use simple (the default)", style)
		}
		cp.sep = ','
	case openapi3.ParameterInQuery:
		switch style {
		case "", openapi3.SerializationForm:
			cp.repeat = explode == nil || *explode
			cp.sep = ','
		case openapi3.SerializationSpaceDelimited:
			cp.sep = ' '
		case openapi3.SerializationPipeDelimited:
			cp.sep = '|'
		default:
			return nil, fail("style %s is not supported for query parameters; use form (the default), spaceDelimited or pipeDelimited", style)
		}
	case openapi3.ParameterInHeader:
		if style != "" && style != openapi3.SerializationSimple {
			return nil, fail("style %s is not supported for header parameters; use simple (the default)", style)
		}
		cp.sep = ','
	case openapi3.ParameterInCookie:
		if style != "" && style != openapi3.SerializationForm {
			return nil, fail("style %s is not supported for cookie parameters; use form (the default)", style)
		}
		cp.sep = ','
		if schema.IsArray() && (explode == nil || *explode) {
			return nil, fail("an array cookie with explode: true is not supported; write explode: false (a,b,c)")
		}
	}
	if sv := schemaRef.Value; sv != nil && sv.Type != nil && sv.Type.Includes("object") &&
		!sv.Type.Includes("string") && !sv.Type.Includes("array") && !sv.Type.Includes("number") && !sv.Type.Includes("integer") && !sv.Type.Includes("boolean") {
		return nil, fail("an object parameter is not supported: describe its fields as parameters of their own, or send it as JSON (content: application/json)")
	}
	cp.list = schema.IsArray()
	return cp, nil
}

// escapePointer escapes a name as a JSON pointer segment.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// slow reports whether a schema of the operation is off the fast path.
func (o *operation) slow() bool {
	for _, list := range [][]*param{o.path, o.query, o.header, o.cookie} {
		for _, p := range list {
			if p.schema != nil && p.schema.Slow() != "" {
				return true
			}
		}
	}
	if o.body != nil {
		for _, m := range o.body.media {
			if m.schema != nil && m.schema.Slow() != "" {
				return true
			}
		}
	}
	return false
}
