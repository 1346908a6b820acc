package validation

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// seedPolicy is the request-validation entry of the user's
// secured-gateway-config.yaml, as written there (comment included).
const seedPolicy = `
        - request-validation:
            schema: |
              {
                "type": "object",
                "required": ["productId", "quantity"],
                "properties": {
                  "productId": { "type": "string", "pattern": "^PRD-[0-9]+$" },
                  "quantity":  { "type": "integer", "minimum": 1 }
                },
                "additionalProperties": false // deny unlisted fields — strict allow-list
              }
`

// seedSchema is the schema of seedPolicy with its comment.
const seedSchema = `{
  "type": "object",
  "required": ["productId", "quantity"],
  "properties": {
    "productId": { "type": "string", "pattern": "^PRD-[0-9]+$" },
    "quantity":  { "type": "integer", "minimum": 1 }
  },
  "additionalProperties": false // deny unlisted fields — strict allow-list
}`

// catalog is the document of these tests: a route named product-catalog
// that allows only methods (nil: every method), with a policies list. The
// list begins on line chaintest.PoliciesLine (12) of the file, indented by
// 8 columns: its line 1, column 3 is the file's 12:11.
func catalog(methods []string, policies string) chaintest.Doc {
	return chaintest.Doc{RouteID: "product-catalog", Methods: methods, Policies: policies}
}

// compileYAML compiles a policies list (YAML text of one or more entries)
// into the chain of the catalog route.
func compileYAML(t testing.TB, policies string) (*chain.Chain, error) {
	t.Helper()
	return compileRoute(t, nil, policies)
}

// compileRoute is compileYAML for a route that allows only methods (nil:
// every method).
func compileRoute(t testing.TB, methods []string, policies string) (*chain.Chain, error) {
	t.Helper()
	c, _, err := chaintest.CompileRoute(t, catalog(methods, policies), chaintest.Options{})
	return c, err
}

func mustRoute(t testing.TB, methods []string, policies string) *chain.Chain {
	t.Helper()
	c, err := compileRoute(t, methods, policies)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// mustSet compiles the catalog route as a reload that replaces old (nil:
// none) does: the instances of old whose keys are unchanged are carried
// over, and old is retired.
func mustSet(t testing.TB, methods []string, policies string, old *chain.Set) *chain.Set {
	t.Helper()
	set, _, err := chaintest.CompileWith(t, catalog(methods, policies).String(), chaintest.Options{Old: old})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set
}

func mustCompile(t testing.TB, policies string) *chain.Chain {
	t.Helper()
	c, err := compileYAML(t, policies)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// schemaPolicy is a request-validation entry with schema as its schema
// and extra parameters appended.
func schemaPolicy(schema string, extra string) string {
	var b []byte
	b = append(b, "- request-validation:\n    schema: |\n"...)
	start := true
	for i := 0; i < len(schema); i++ {
		if start {
			b = append(b, "      "...)
			start = false
		}
		b = append(b, schema[i])
		if schema[i] == '\n' {
			start = true
		}
	}
	b = append(b, '\n')
	b = append(b, extra...)
	return string(b)
}

// run sends one request through the chain and returns the rejection and
// the violations the error renderer would add.
func run(c *chain.Chain, method, uri, contentType, body string) (*chain.Rejection, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	if contentType != "" {
		ctx.Request.Header.SetContentType(contentType)
	}
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.RouteID = c.RouteID
	ex.Prepare(c)
	r := c.RunRequest(&ctx, ex)
	return r, string(ex.Details)
}
