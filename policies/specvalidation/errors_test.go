package specvalidation_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
)

const head = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"

// ok is an operation's minimal answer.
const ok = "      responses: {'200': {description: ok}}\n"

// laughs is a "billion laughs" under an extension: nine anchors, each a
// list of nine aliases to the one before.
var laughs = func() string {
	var b strings.Builder
	b.WriteString("x-laughs:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for c := 'b'; c <= 'i'; c++ {
		b.WriteString("  " + string(c) + ": &" + string(c) + " [" + strings.TrimSuffix(strings.Repeat("*"+string(c-1)+", ", 9), ", ") + "]\n")
	}
	return b.String()
}()

// TestBadSpecs: a spec that is not a valid OpenAPI 3 document, or that
// spec-validation cannot apply, fails the config at its line in the
// config file: the spec's line 1 is the line after `spec: |`, and its
// column 1 is where the block is indented.
func TestBadSpecs(t *testing.T) {
	// at is the config position of line, col of the spec.
	at := func(line, col int) string {
		return ":" + strconv.Itoa(chaintest.PoliciesLine+1+line) + ":" + strconv.Itoa(14+col) + ": spec-validation: spec (its line " + strconv.Itoa(line) + ") "
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"not YAML", head + "paths: [\n", at(3, 1) + "is not JSON or YAML"},
		{"Swagger 2.0", "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n", at(1, 1) + "is Swagger 2.0"},
		{"OpenAPI 2.5", "openapi: 2.5.0\ninfo: {title: t, version: '1'}\npaths: {}\n", at(1, 10) + "is OpenAPI 2.5.0; spec-validation reads OpenAPI 3.0 and 3.1"},
		{"a $ref to nothing", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {$ref: '#/components/schemas/Nope'}}\n" + ok,
			at(7, 47) + "does not load"},
		{"a $ref to another file", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {$ref: 'other.yaml#/Nope'}}\n" + ok,
			at(7, 47) + "does not load: encountered disallowed external reference"},
		{"a wrong schema", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {type: intger}}\n" + ok,
			at(5, 5) + `operation GET /a is wrong: parameter "q" schema is invalid: unsupported 'type' value "intger"`},
		{"a misspelt field", head + "paths:\n  /a:\n    get:\n      paramters: []\n" + ok, at(5, 5) + "operation GET /a is wrong: extra sibling fields: [paramters]"},
		{"an undescribed path parameter", head + "paths:\n  /a/{id}:\n    get:\n" + ok, at(4, 3) + "is not valid OpenAPI"},
		{"two expressions in a segment", head + "paths:\n  /f/{a}.{b}:\n    get:\n      parameters:\n        - {name: a, in: path, required: true, schema: {type: string}}\n        - {name: b, in: path, required: true, schema: {type: string}}\n" + ok,
			at(4, 3) + `path "/f/{a}.{b}" has two template expressions in one segment`},
		{"a deepObject parameter", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: query, style: deepObject, schema: {type: object}}\n" + ok,
			at(7, 12) + `parameter "q" (query) of operation GET /a: style deepObject is not supported`},
		{"an object parameter", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {type: object}}\n" + ok,
			at(7, 12) + `parameter "q" (query) of operation GET /a: an object parameter is not supported`},
		{"two templates for the same paths", head + "paths:\n  /p/{id}:\n    get:\n      parameters:\n        - {name: id, in: path, required: true, schema: {type: string}}\n" + ok +
			"  /p/{name}:\n    get:\n      parameters:\n        - {name: name, in: path, required: true, schema: {type: string}}\n" + ok,
			at(9, 3) + `is not valid OpenAPI: invalid paths: conflicting paths`},
		{"two query parameters an upstream reads as one", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: limit, in: query, schema: {type: integer, maximum: 100}}\n        - {name: Limit, in: query, schema: {type: integer}}\n" + ok,
			at(8, 12) + `parameters "limit" and "Limit" (query) of operation GET /a are read by many upstreams as one (ASP.NET reads query names in any case, ` +
				`Go's and Java's binders ſ as s and K as k, Java's ı and İ as i; PHP reads '.', ' ' and '[' as '_', and a[b] as an element of a): a request could send one past the other's schema; describe one of them`},
		{"a query parameter and its PHP array", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: ids, in: query, schema: {type: string}}\n        - {name: 'ids[]', in: query, schema: {type: array, items: {type: string}}}\n" + ok,
			at(8, 12) + `parameters "ids" and "ids[]" (query) of operation GET /a are read by many upstreams as one`},
		{"two headers an upstream reads as one", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: X-Limit, in: header, schema: {type: integer, maximum: 100}}\n        - {name: x_limit, in: header, schema: {type: integer}}\n" + ok,
			at(8, 12) + `parameters "X-Limit" and "x_limit" (header) of operation GET /a are read by many upstreams as one (CGI-style upstreams read '-' and '_' alike)`},
		{"two cookies an upstream reads as one", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: session_id, in: cookie, schema: {type: string}}\n        - {name: session.id, in: cookie, schema: {type: string}}\n" + ok,
			at(8, 12) + `parameters "session_id" and "session.id" (cookie) of operation GET /a are read by many upstreams as one (ASP.NET reads cookie names in any case;`},
		{"a header of too many separators", head + "paths:\n  /a:\n    get:\n      parameters:\n        - {name: a-b-c-d-e-f-g-h, in: header, schema: {type: string}}\n" + ok,
			at(7, 12) + `parameter "a-b-c-d-e-f-g-h" (header) of operation GET /a: header name "a-b-c-d-e-f-g-h" has more than 6 '-' and '_'`},
		{"a billion laughs", head + "paths:\n  /a:\n    get:\n" + ok + laughs, at(13, 10) + "alias *e stands for"},
		{"no operations", head + "paths: {}\n", ":" + strconv.Itoa(chaintest.PoliciesLine+1) + ":19: spec-validation: spec has no operations"},
	} {
		policies := "- spec-validation:\n    spec: |\n" + block(tc.spec, 6)
		_, path, err := chaintest.Compile(t, chaintest.Gateway(policies))
		if err == nil || !strings.Contains(err.Error(), path+tc.want) {
			t.Errorf("%s:\nerror = %v\nwant    %s%s", tc.name, err, path, tc.want)
		}
	}
}

// TestBadParameters: the policy's own parameters.
func TestBadParameters(t *testing.T) {
	l := strconv.Itoa(chaintest.PoliciesLine)
	spec := "\"" + strings.ReplaceAll(head, "\n", `\n`) + `paths: {/a: {get: {responses: {'200': {description: ok}}}}}` + "\""
	for _, tc := range []struct{ policies, want string }{
		{"- spec-validation", l + ":11: spec-validation: spec is required"},
		{"- spec-validation: {specFile: nope.yaml}", l + ":39: spec-validation: specFile nope.yaml cannot be read: no such file or directory"},
		{"- spec-validation: {specFile: a.yaml, spec: " + spec + "}", l + ":39: spec-validation: spec and specFile are both given"},
		{"- spec-validation: {basePath: api, spec: " + spec + "}", l + ":39: spec-validation: basePath \"api\" must start with /"},
		{"- spec-validation-flex: {source: context, spec: " + spec + "}", l + ":42: spec-validation-flex: source: context reads the spec from Anypoint Exchange"},
		{"- spec-validation-flex: {apiBasePath: 'a/{b}', spec: " + spec + "}", l + ":47: spec-validation-flex: apiBasePath \"a/{b}\" must start with /"},
	} {
		_, path, err := chaintest.Compile(t, chaintest.Gateway(tc.policies))
		if err == nil || !strings.Contains(err.Error(), path+":"+tc.want) {
			t.Errorf("%s:\nerror = %v\nwant    %s:%s", tc.policies, err, path, tc.want)
		}
	}
}

// TestBadSpecFile: an error in a spec file names the file and its line.
func TestBadSpecFile(t *testing.T) {
	f := func(spec, want string) {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "api.yaml"), []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "gw.yaml")
		if err := os.WriteFile(path, []byte(chaintest.Gateway("- spec-validation: {specFile: api.yaml}")), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		_, err = chain.CompileAll(cfg, nil, chain.Options{})
		want = path + ":" + strconv.Itoa(chaintest.PoliciesLine) + ":39: spec-validation: specFile " + filepath.Join(dir, "api.yaml") + want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant    %s", err, want)
		}
	}
	f(head+"paths:\n  /a:\n    get:\n      paramters: []\n"+ok, ":5:5: operation GET /a is wrong: extra sibling fields")
	// yaml.v3 names no line for a character it does not read.
	f(head+"paths:\n  /a:\n    get:\n      summary: a\x00b\n"+ok, ":6:17: is not JSON or YAML: the control character U+0000 (NUL) is not allowed in YAML")
}
