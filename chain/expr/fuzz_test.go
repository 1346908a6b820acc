package expr

import (
	"errors"
	"testing"
)

// FuzzCompile: no value, however malformed, panics or recurses without
// bound when it is compiled, and what compiles evaluates without panicking
// on a request and on a response. A refused value is an *Error whose
// offset lies within it.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		// Flex Gateway's documentation and examples.
		"#[attributes.method]",
		"#[attributes.requestPath]",
		"#[attributes.remoteAddress]",
		"#[attributes.headers['client_id']]",
		"#[attributes.headers['x-forwarded-for']]",
		"#[attributes.queryParams['identifier']]",
		"#[attributes.queryParams.'client_id']",
		"#[vars.claimSet.client_id]",
		"#[authentication.clientId]",
		"#[authentication.properties.claims.email]",
		"#[attributes.clientAddress.ip]",
		"#[dw::core::Strings::substringAfter(attributes.headers['Authorization'], 'Bearer ')]",
		"#[uuid()]",
		"#['literal string']",
		"#[attributes.method == 'GET' or attributes.method == 'HEAD']",
		"#[[200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501] contains attributes.statusCode]",
		"#[dw::core::Binaries::fromBase64(dw::core::Strings::substringAfter(attributes.headers['authorization'], 'Basic '))]",
		// The rest of the subset.
		"#[if (attributes.method == 'GET') lower(attributes.headers.accept) else upper('x') ++ trim(' y ')]",
		"#[(attributes.headers['x-forwarded-for'] splitBy ',')[-1] default sizeOf([1, true, 'a'])]",
		"#[not vars.testClaims.roles[0] != 'a' and !(1 >= 2) or 'a' <= 'b' and 1 < 2 and 3 > 2]",
		"#[dw::core::Strings::substringBeforeLast(vars.testClaims['a.b'], \"x\\u0041\") ++ [1] ++ 'é'[0]]",
		// $-expressions share the entry point.
		"v1-$request.method ${request.header.X-Api-Key} $$ $test.claims.roles ${test.claims.roles[0]} $env.HOME",
		"#[", "#[]", "#[[", "#[']", "#[a.", "#[1e", "#[-", "#[\\u", "${", "$", "#[ #[ ] ]",
	} {
		f.Add(seed)
	}
	ctx, ex := flexCtx()
	ctx.Response.SetStatusCode(200)
	f.Fuzz(func(t *testing.T, src string) {
		for _, phase := range []Phase{Request, Response} {
			tmpl, err := CompilePhase(src, nil, phase)
			if err != nil {
				var xe *Error
				if errors.As(err, &xe) && (xe.Offset < 0 || xe.Offset > len(src) || xe.Src != src) {
					t.Fatalf("Compile(%q): offset %d outside the value", src, xe.Offset)
				}
				_ = err.Error()
			} else {
				_ = tmpl.Append(nil, ctx, ex)
				_, _ = tmpl.Reads()
			}
			if cond, err := CompileBool(src, nil, phase); err == nil {
				_ = cond.Eval(ctx, ex)
			}
		}
	})
}
