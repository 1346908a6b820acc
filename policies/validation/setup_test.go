package validation

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/examples"
)

func TestConfigErrorsPointAtTheSchemaLine(t *testing.T) {
	f := func(policies string, want ...string) {
		t.Helper()
		_, err := compileYAML(t, policies)
		if err == nil {
			t.Fatalf("compiled; want an error containing %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not contain %q", err, w)
			}
		}
	}
	// The policy's name is on line 12 of the file (chaintest.PoliciesLine);
	// the block's text starts on line 14.
	f(`- request-validation:
    schema: |
      {
        "type": "object"
        "required": ["a"]
      }
`, "gw.yaml:16:", "schema (its line 3) is not valid JSON")
	f(`- request-validation:
    schema: |
      {
        "properties": {
          "a": {"type": "strin"}
        }
      }
`, "gw.yaml:16:", `unknown type "strin"`)
	f(`- request-validation:
    schema: |
      {"type": "string",
       "pattern": "^(PRD$"}
`, "gw.yaml:15:", "not a valid regular expression")
	f(`- request-validation:
    schema: |
      {"type": "string"} /* unclosed
`, "gw.yaml:14:", "comment is not closed")
	f(`- request-validation:
    schema: '{"type": "object",}'
`, "gw.yaml:13:", "is not valid JSON")
	f(`- request-validation:
    schema: |
      {"type": "object"}
    maxDepth: -1
`, "gw.yaml:15:23", fmt.Sprintf("maxDepth must be a whole number from 0 to 10000 (0: the default, %d), not -1", DefaultMaxDepth))
	// A limit this large wrapped the bound of the read of a streamed
	// body (maxBodySize+1) below zero: the body read as empty, and went
	// upstream so.
	f(`- request-validation:
    schema: |
      {"type": "object"}
    maxBodySize: 9223372036854775807
`, "gw.yaml:15:26", "maxBodySize must be a whole number from 0 to 1073741824 (bytes; 0: the default, 1 MiB), not 9223372036854775807")
	f(`- request-validation:
    schemas: "{}"
`, "gw.yaml:13:13", `unknown parameter "schemas"`, "schema")
	f(`- request-validation
`, `needs a "schema"`)
	f(`- request-validation:
    schema: |
      {"properties": {
        "x": {"$ref": "#/$defs/nope"}}}
`, "gw.yaml:15:", "not in the schema")
	f(`- request-validation:
    schema: |
      {"$ref": "https://example.com/product.json"}
`, "gw.yaml:14:", "https://example.com/product.json", "nothing is fetched")
}

func TestSeedPolicyCompiles(t *testing.T) {
	c := mustCompile(t, seedPolicy)
	v := c.Policies[0].Policy.(*Validator)
	if v.fast == nil {
		t.Fatal("the seed schema should be validated on the fast path")
	}
	if v.MaxBodySize != DefaultMaxBodySize || v.MaxDepth != DefaultMaxDepth {
		t.Fatalf("defaults not applied: %d, %d", v.MaxBodySize, v.MaxDepth)
	}
}

// A schema outside the fast subset is validated by the library, with the
// same query conversion and the same violation format.
func TestLibrarySchema(t *testing.T) {
	c := mustCompile(t, schemaPolicy(`{
  "type": "object",
  "properties": {
    "id": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^x"}]},
    "n": {"type": "integer", "multipleOf": 5}
  },
  "additionalProperties": false
}`, ""))
	if c.Policies[0].Policy.(*Validator).fast != nil {
		t.Fatal("anyOf and multipleOf are outside the fast subset")
	}
	f := func(method, uri, body string, ok bool, wantPath string) {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		r, details := run(c, method, uri, ct, body)
		if (r == nil) != ok {
			t.Fatalf("%s %s: got %v %s, want ok=%v", uri, body, r, details, ok)
		}
		if !ok && !strings.Contains(details, `"path":"`+wantPath+`"`) {
			t.Fatalf("%s %s: violations %s lack %s", uri, body, details, wantPath)
		}
	}
	f("POST", "/", `{"id": 3, "n": 10}`, true, "")
	f("POST", "/", `{"id": "xy"}`, true, "")
	f("POST", "/", `{"id": "y"}`, false, "/id")
	f("POST", "/", `{"n": 7}`, false, "/n")
	f("POST", "/", `{"other": 7}`, false, "/other")
	f("GET", "/?id=3&n=15", "", true, "")
	f("GET", "/?id=x1", "", true, "")
	f("GET", "/?n=7", "", false, "/n")
	f("GET", "/?n=5&n=10", "", false, "/n")
}

// The user's own example file, loaded as `flexgate run` loads it: its
// request-validation entry must compile onto the fast path and judge the
// route's GET requests as the issue promised.
func TestSeedFile(t *testing.T) {
	path := examples.Path(t, "secured-gateway-config.yaml")
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway")
	t.Setenv("INTROSPECTION_CLIENT_SECRET", "secret")
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("the seed does not load: %v", err)
	}
	route := cfg.Routes[0]
	var only []config.PolicySpec
	for _, p := range route.Policies {
		if p.Name == "request-validation" {
			only = append(only, p)
		}
	}
	if len(only) != 1 {
		t.Fatalf("the seed's route has %d request-validation entries, want 1", len(only))
	}
	route.Policies = only
	c, err := chain.Compile(cfg, &route, chain.Options{Provision: true})
	if err != nil {
		t.Fatalf("the seed's request-validation does not compile: %v", err)
	}
	defer c.Close()
	if c.Policies[0].Policy.(*Validator).fast == nil {
		t.Fatal("the seed's schema is not on the fast path")
	}
	for query, ok := range map[string]bool{
		"?productId=PRD-42&quantity=2":     true,
		"?productId=42&quantity=2":         false,
		"?productId=PRD-42&quantity=0":     false,
		"?productId=PRD-42":                false,
		"?productId=PRD-42&quantity=2&x=1": false,
	} {
		if r, details := run(c, "GET", "/api/products/1"+query, "", ""); (r == nil) != ok {
			t.Errorf("%s: got %v %s, want ok=%v", query, r, details, ok)
		}
	}
	// The route allows only GET: a body does not replace the query.
	r, _ := run(c, "GET", "/api/products/1?productId=42&quantity=0&evil=1", "application/json", `{"productId":"PRD-1","quantity":1}`)
	if r == nil || r.Reason != "unexpected_body" {
		t.Errorf("GET with a JSON body and a bad query: got %v, want unexpected_body", r)
	}
}

// TestNumericKeywordsOnQueryText: a query value is text, validated as a
// number only when its property declares "type": "integer" or "number";
// without one, "maximum": 100 never applies and ?limit=99999 passes. A
// schema that validates the query warns of it at the keyword's line.
func TestNumericKeywordsOnQueryText(t *testing.T) {
	const untyped = `{"properties": {
  "limit": {"maximum": 100},
  "ids": {"type": "array", "items": {"minimum": 1}},
  "page": {"type": "integer", "maximum": 50},
  "code": {"type": ["string", "number"], "minimum": 1}}}`
	f := func(methods []string, extra string, want ...string) {
		t.Helper()
		cfg, _ := chaintest.Load(t, catalog(methods, schemaPolicy(untyped, extra)).String())
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
			t.Fatalf("%v %q: %v", methods, extra, err)
		}
		var got []string
		for _, w := range cfg.Warnings {
			got = append(got, w.String())
		}
		if len(got) != len(want) {
			t.Fatalf("%v %q: warnings %q, want %d", methods, extra, got, len(want))
		}
		for i, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%v %q: warning %q, want %q", methods, extra, got[i], w)
			}
		}
	}
	// Named in order; the schema's line 2, where "maximum" is, is the file's 15.
	f([]string{"GET"}, "", `gw.yaml:16:52: warning: request-validation: schema: the items of the property "ids" has "minimum", which never applies to a query parameter`,
		`gw.yaml:15:27: warning: request-validation: schema: the property "limit" has "maximum", which never applies to a query parameter: its value is text, `+
			`and is validated as a number only when the schema declares "type": "integer" or "number" for it; add one`)
	f(nil, "    in: query\n", `"ids"`, `"limit"`)
	f(nil, "", `"ids"`, `"limit"`)
	f([]string{"GET"}, "    in: body\n")

	// What it warns of: the bound does not apply to the query text.
	c := mustRoute(t, []string{"GET"}, schemaPolicy(untyped, ""))
	if r, details := run(c, "GET", "/api/products/x?limit=99999&page=5", "", ""); r != nil {
		t.Errorf("?limit=99999 refused (%v %s): the warning says it passes", r, details)
	}
	if r, _ := run(c, "GET", "/api/products/x?page=51", "", ""); r == nil {
		t.Error("?page=51 passed a typed maximum of 50")
	}
}
