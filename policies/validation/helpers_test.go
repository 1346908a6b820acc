package validation

import (
	"testing"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
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

// compileYAML compiles a policies list (YAML text of one or more entries)
// into the chain of a route named product-catalog.
func compileYAML(t testing.TB, policies string) (*chain.Chain, error) {
	t.Helper()
	return compileRoute(t, nil, policies)
}

// compileRoute is compileYAML for a route that allows only methods (nil:
// every method).
func compileRoute(t testing.TB, methods []string, policies string) (*chain.Chain, error) {
	t.Helper()
	return compileReusing(t, methods, policies, nil)
}

// compileReusing is compileRoute as a reload runs it, carrying over the
// instances of reuse whose keys are unchanged.
func compileReusing(t testing.TB, methods []string, policies string, reuse map[string]chain.Instance) (*chain.Chain, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(policies), &doc); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	route := config.Route{ID: "product-catalog", Methods: methods}
	for _, entry := range doc.Content[0].Content {
		k, v := entry, entry
		if entry.Kind == yaml.MappingNode {
			k, v = entry.Content[0], entry.Content[1]
		}
		spec := config.PolicySpec{Name: k.Value, Pos: config.Pos{File: "gateway.yaml", Line: k.Line, Col: k.Column}}
		if v.Kind == yaml.MappingNode {
			spec.Params = v
		}
		route.Policies = append(route.Policies, spec)
	}
	cfg := &config.Config{Routes: []config.Route{route}}
	c, err := chain.Compile(cfg, &cfg.Routes[0], chain.Options{Provision: true, Reuse: reuse})
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func mustRoute(t testing.TB, methods []string, policies string) *chain.Chain {
	t.Helper()
	return mustRouteReusing(t, methods, policies, nil)
}

func mustRouteReusing(t testing.TB, methods []string, policies string, reuse map[string]chain.Instance) *chain.Chain {
	t.Helper()
	c, err := compileReusing(t, methods, policies, reuse)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
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
