package specvalidation_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	_ "github.com/flexgate/flexgate/policies/all"
)

// petstore returns the test spec, indented to sit under `spec: |` in a
// policy written at chaintest's indentation.
func petstore(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "petstore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// block indents text by n spaces, for a YAML block scalar.
func block(text string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n"+pad) + "\n"
}

// policy is spec-validation with the petstore inline and extra params.
func policy(t testing.TB, extra string) string {
	return "- spec-validation:\n    basePath: /api\n" + extra + "    spec: |\n" + block(petstore(t), 6)
}

type result struct {
	rej     *chain.Rejection
	details string
	ctx     *fasthttp.RequestCtx
}

// send runs method uri with headers (name, value pairs) and body through
// c, and returns the rejection and the violations.
func send(c *chain.Chain, method, uri, body string, headers ...string) result {
	ctx := chaintest.Ctx("http://gw"+uri, headers...)
	ctx.Request.Header.SetMethod(method)
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	rej := c.RunRequest(ctx, ex)
	return result{rej: rej, details: string(ex.Details), ctx: ctx}
}

const reqID = "X-Request-Id"

// TestPetstore: each kind of parameter, the body, $ref'd parameters and
// schemas, and the operations' matching.
func TestPetstore(t *testing.T) {
	c := chaintest.MustChain(t, policy(t, ""))
	id := []string{reqID, "0af7651916cd43dd"}
	json := []string{reqID, "0af7651916cd43dd", "Content-Type", "application/json"}
	for _, tc := range []struct {
		name, method, uri, body string
		headers                 []string
		reason                  string // "" passes
		violations              string // a part of the violations
	}{
		{"valid list", "GET", "/api/pets?limit=10&tags=dog&tags=cat", "", id, "", ""},
		{"no query", "GET", "/api/pets", "", id, "", ""},
		{"query below minimum ($ref'd parameter)", "GET", "/api/pets?limit=0", "", id, "validation_failed", `{"path":"/query/limit","message":"must be >= 1"}`},
		{"query not an integer", "GET", "/api/pets?limit=ten", "", id, "validation_failed", `{"path":"/query/limit","message":"must be integer"}`},
		{"repeated query, an item off the enum", "GET", "/api/pets?tags=dog&tags=fish", "", id, "validation_failed", `{"path":"/query/tags/1","message":"must be one of the allowed values"}`},
		{"one query value of an array", "GET", "/api/pets?tags=cat", "", id, "", ""},
		{"unknown query parameter, not strict", "GET", "/api/pets?debug=1", "", id, "", ""},
		{"missing required header", "GET", "/api/pets", "", nil, "validation_failed", `{"path":"/header/X-Request-Id","message":"is required"}`},
		{"header in another case", "GET", "/api/pets", "", []string{"x-request-id", "0af7651916cd43dd"}, "", ""},
		{"header off its pattern", "GET", "/api/pets", "", []string{reqID, "nope"}, "validation_failed", `"path":"/header/X-Request-Id","message":"must match the pattern`},
		{"path parameter", "GET", "/api/pets/7", "", nil, "", ""},
		{"path parameter below minimum", "GET", "/api/pets/0", "", nil, "validation_failed", `{"path":"/path/petId","message":"must be >= 1"}`},
		{"path parameter not an integer", "GET", "/api/pets/rex", "", nil, "validation_failed", `{"path":"/path/petId","message":"must be integer"}`},
		{"a literal path before a template", "GET", "/api/pets/mine", "", nil, "", ""},
		{"HEAD is GET", "HEAD", "/api/pets/7", "", nil, "", ""},
		{"two path parameters, one inside a segment", "GET", "/api/pets/7/photos/cute.jpg?sizes=64|128", "", nil, "", ""},
		{"a parameter inside a segment, too long", "GET", "/api/pets/7/photos/abcdefghijklm.jpg", "", nil, "validation_failed", `{"path":"/path/name","message":"must be at most this many characters long: 12"}`},
		{"pipe-delimited query", "GET", "/api/pets/7/photos/a.jpg?sizes=64|8192", "", nil, "validation_failed", `{"path":"/query/sizes/1","message":"must be <= 4096"}`},
		{"another suffix", "GET", "/api/pets/7/photos/cute.png", "", nil, "unknown_operation", ""},
		{"cookie", "DELETE", "/api/pets/7", "", []string{"Cookie", "session=0123456789"}, "", ""},
		{"missing cookie", "DELETE", "/api/pets/7", "", nil, "validation_failed", `{"path":"/cookie/session","message":"is required"}`},
		{"short cookie", "DELETE", "/api/pets/7", "", []string{"Cookie", "session=short"}, "validation_failed", `{"path":"/cookie/session","message":"must be at least this many characters long: 8"}`},
		{"header array", "DELETE", "/api/pets/7", "", []string{"Cookie", "session=0123456789", "ids", "1,2,x"}, "validation_failed", `{"path":"/header/ids/2","message":"must be integer"}`},
		{"body", "POST", "/api/pets", `{"name":"rex","tag":null,"age":2}`, json, "", ""},
		{"body against a $ref'd schema", "POST", "/api/pets", `{"name":""}`, json, "validation_failed", `{"path":"/body/name","message":"must be at least this many characters long: 1"}`},
		{"3.0 exclusiveMinimum: true", "POST", "/api/pets", `{"name":"rex","age":0}`, json, "validation_failed", `{"path":"/body/age","message":"must be > 0"}`},
		{"3.0 nullable", "POST", "/api/pets", `{"name":null}`, json, "validation_failed", `{"path":"/body/name","message":"must be string"}`},
		{"body missing", "POST", "/api/pets", "", json, "missing_body", ""},
		{"body not JSON", "POST", "/api/pets", `{"name":`, json, "invalid_json", ""},
		{"body of another type", "POST", "/api/pets", `name=rex`, []string{"Content-Type", "application/x-www-form-urlencoded"}, "unsupported_media_type", ""},
		{"readOnly is not required in a request (allOf)", "PUT", "/api/pets/7", `{"name":"rex"}`, json, "", ""},
		{"allOf still validates", "PUT", "/api/pets/7", `{"name":5}`, json, "validation_failed", `"path":"/body/name"`},
		{"recursive schema", "POST", "/api/categories", `{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}`, json, "", ""},
		{"recursive schema, deep violation", "POST", "/api/categories", `{"name":"a","children":[{"children":[]}]}`, json, "validation_failed", `"path":"/body/children/0`},
		// Java's equalsIgnoreCase reads the dotless ı as i: chıldren is children to it.
		{"a member with a dotless i", "POST", "/api/categories", `{"name":"a","ch\u0131ldren":[{"children":[]}]}`, json, "validation_failed",
			`{"path":"/body/chıldren","message":"is read by many upstreams as \"children\"; send it as \"children\""}`},
		{"a body not validated: text", "POST", "/api/categories", `anything`, []string{"Content-Type", "text/plain"}, "", ""},
		{"optional body left out", "POST", "/api/categories", "", nil, "", ""},
		{"a body where none is described", "GET", "/api/pets/7", `{}`, json, "unexpected_body", ""},
		{"several violations at once", "GET", "/api/pets?limit=0", "", []string{reqID, "x"}, "validation_failed", `/header/X-Request-Id`},
		{"method the path does not take", "PATCH", "/api/pets", "", id, "unknown_operation", ""},
		{"unknown path", "GET", "/api/owners", "", id, "unknown_operation", ""},
		{"outside the base path", "GET", "/pets", "", id, "unknown_operation", ""},
		{"base path as a prefix of a segment", "GET", "/apix/pets", "", id, "unknown_operation", ""},
		{"trailing slash", "GET", "/api/pets/", "", id, "unknown_operation", ""},
	} {
		r := send(c, tc.method, tc.uri, tc.body, tc.headers...)
		switch {
		case tc.reason == "" && r.rej != nil:
			t.Errorf("%s: refused %s %s", tc.name, r.rej.Reason, r.details)
		case tc.reason != "" && (r.rej == nil || r.rej.Reason != tc.reason):
			t.Errorf("%s: %v, want %s", tc.name, r.rej, tc.reason)
		case !strings.Contains(r.details, tc.violations):
			t.Errorf("%s: violations %s, want %s", tc.name, r.details, tc.violations)
		}
	}
	if r := send(c, "GET", "/api/pets?limit=0", "", reqID, "x"); strings.Count(r.details, `"path"`) != 2 {
		t.Errorf("both violations are not listed: %s", r.details)
	}
}

// TestStrictParams: with strictParams a query parameter the operation
// does not describe is refused; a described one is not.
func TestStrictParams(t *testing.T) {
	c := chaintest.MustChain(t, policy(t, "    strictParams: true\n"))
	if r := send(c, "GET", "/api/pets?limit=5&debug=1", "", reqID, "0af7651916cd43dd"); r.rej == nil ||
		!strings.Contains(r.details, `{"path":"/query/debug","message":"is not a parameter of the operation"}`) {
		t.Errorf("unknown parameter: %v %s", r.rej, r.details)
	}
	if r := send(c, "GET", "/api/pets?limit=5&tags=dog", "", reqID, "0af7651916cd43dd"); r.rej != nil {
		t.Errorf("described parameters: %v %s", r.rej, r.details)
	}
}

// TestLogOnly: block: false lets a request that does not match through,
// logs it (with its violations) and leaves no violations behind; a body
// over the limit is still refused, since it was not read whole.
func TestLogOnly(t *testing.T) {
	var logs strings.Builder
	doc := chaintest.Doc{Policies: policy(t, "    block: false\n    maxBodySize: 64\n")}
	c, _, err := chaintest.CompileRoute(t, doc, chaintest.Options{Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	r := send(c, "GET", "/api/pets/0", "", "")
	if r.rej != nil || r.details != "" {
		t.Fatalf("log only: %v %q", r.rej, r.details)
	}
	if r := send(c, "GET", "/api/unknown", ""); r.rej != nil {
		t.Fatalf("log only, unknown operation: %v", r.rej)
	}
	if !strings.Contains(logs.String(), `"reason":"validation_failed"`) || !strings.Contains(logs.String(), `/path/petId`) {
		t.Errorf("not logged: %s", logs.String())
	}
	if r := send(c, "POST", "/api/pets", `{"name":"`+strings.Repeat("x", 100)+`"}`, "Content-Type", "application/json"); r.rej == nil || r.rej.Reason != "body_too_large" {
		t.Errorf("a body over the limit: %v", r.rej)
	}
}

// TestOpenAPI31: a 3.1 spec in JSON: type lists with null, numeric
// exclusive bounds, const.
func TestOpenAPI31(t *testing.T) {
	spec := `{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
 "paths": {"/items/{id}": {"put": {
  "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "exclusiveMinimum": 0}},
                 {"name": "mode", "in": "query", "schema": {"const": "fast"}}],
  "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"note": {"type": ["string", "null"]}}}}}},
  "responses": {"200": {"description": "ok"}}}}}}`
	c := chaintest.MustChain(t, "- spec-validation-flex:\n    source: inline\n    spec: |\n"+block(spec, 6))
	json := []string{"Content-Type", "application/json"}
	if r := send(c, "PUT", "/items/1?mode=fast", `{"note":null}`, json...); r.rej != nil {
		t.Errorf("valid: %v %s", r.rej, r.details)
	}
	if r := send(c, "PUT", "/items/0?mode=slow", `{"note":1}`, json...); r.rej == nil || !strings.Contains(r.details, "/path/id") ||
		!strings.Contains(r.details, "/query/mode") || !strings.Contains(r.details, "/body/note") {
		t.Errorf("invalid: %v %s", r.rej, r.details)
	}
}

// TestFlexParameters: spec-validation-flex reads apiBasePath,
// blockOperation and strictParamsValidation.
func TestFlexParameters(t *testing.T) {
	c := chaintest.MustChain(t, "- spec-validation-flex:\n    source: inline\n    apiBasePath: /api/\n    blockOperation: true\n    strictParamsValidation: true\n    spec: |\n"+block(petstore(t), 6))
	if r := send(c, "GET", "/api/pets/7?x=1", ""); r.rej == nil || !strings.Contains(r.details, "/query/x") {
		t.Errorf("strict: %v %s", r.rej, r.details)
	}
	if r := send(c, "GET", "/api/pets/7", ""); r.rej != nil {
		t.Errorf("valid: %v %s", r.rej, r.details)
	}
}

// TestSpecFile: the spec may live in a file beside the config.
func TestSpecFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "petstore.yaml"), []byte(petstore(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	text := chaintest.Gateway("- spec-validation: {specFile: petstore.yaml, basePath: /api}")
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	set := chaintest.CompileFile(t, path)
	if r := send(set.Chains[0], "GET", "/api/pets/0", ""); r.rej == nil || r.rej.Reason != "validation_failed" {
		t.Errorf("spec from a file: %v", r.rej)
	}
}

// TestRepeatedParameters: a parameter of one value given twice — in the
// query, on two header lines, in two cookies — is refused: the gateway
// would validate one and the upstream might read the other. A repeated
// array parameter is a list.
func TestRepeatedParameters(t *testing.T) {
	c := chaintest.MustChain(t, policy(t, ""))
	for _, tc := range []struct {
		name, method, uri string
		headers           [][2]string
		violation         string // "" passes
	}{
		{"query", "GET", "/api/pets?limit=10&limit=abc", [][2]string{{reqID, "0af7651916cd43dd"}}, `{"path":"/query/limit","message":"is given more than once; it takes one value"}`},
		{"query list", "GET", "/api/pets?tags=dog&tags=cat", [][2]string{{reqID, "0af7651916cd43dd"}}, ""},
		{"header", "GET", "/api/pets", [][2]string{{reqID, "0af7651916cd43dd"}, {reqID, "nope"}}, `{"path":"/header/X-Request-Id","message":"is given more than once; it takes one value"}`},
		{"cookie", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "session=0123456789; session=x"}}, `{"path":"/cookie/session","message":"is given more than once; it takes one value"}`},
	} {
		ctx := chaintest.Ctx("http://gw" + tc.uri)
		ctx.Request.Header.SetMethod(tc.method)
		for _, h := range tc.headers {
			ctx.Request.Header.Add(h[0], h[1])
		}
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		rej := c.RunRequest(ctx, ex)
		switch {
		case tc.violation == "" && rej != nil:
			t.Errorf("%s: %v %s", tc.name, rej, ex.Details)
		case tc.violation != "" && (rej == nil || !strings.Contains(string(ex.Details), tc.violation)):
			t.Errorf("%s: %v %s, want %s", tc.name, rej, ex.Details, tc.violation)
		}
		chain.ReleaseExchange(ex)
	}
}
