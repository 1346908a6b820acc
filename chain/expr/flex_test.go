package expr

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

// flexCtx is a request with something for every binding.
func flexCtx() (*fasthttp.RequestCtx, *chain.Exchange) {
	ctx := newCtx("http://gw/api/products/7?sku=PRD-1&x=%41&client_id=c1&n=5",
		"X-Api-Key", "k1",
		"Authorization", "Bearer tok123",
		"X-Basic", "Basic "+base64.StdEncoding.EncodeToString([]byte("user:pass")),
		"X-Forwarded-For", "1.2.3.4, 5.6.7.8",
		"X-Name", "  Ann Lee \t",
		"X-Uni", "Über")
	ex := &chain.Exchange{RequestID: []byte("req-1")}
	ex.SetValue(testUser, []byte("ann"))
	ex.SetValue(testClaims, []byte(testClaimsJSON))
	return ctx, ex
}

func expand(t *testing.T, src string, phase Phase, ctx *fasthttp.RequestCtx, ex *chain.Exchange) string {
	t.Helper()
	tmpl, err := CompilePhase(src, nil, phase)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return string(tmpl.Append(nil, ctx, ex))
}

// TestFlexRequest: the Flex subset on a request, each binding, operator
// and function as DataWeave computes it.
func TestFlexRequest(t *testing.T) {
	ctx, ex := flexCtx()
	f := func(src, want string) {
		t.Helper()
		if got := expand(t, src, Request, ctx, ex); got != want {
			t.Errorf("%s = %q, want %q", src, got, want)
		}
	}
	// Bindings.
	f("#[attributes.method]", "POST")
	f("#[attributes.headers['x-api-key']]", "k1")
	f("#[attributes.headers['X-API-KEY']]", "k1")
	f("#[attributes.headers.'x-api-key']", "k1")
	f(`#[attributes.headers["x-api-key"]]`, "k1")
	f("#[attributes.headers.authorization]", "Bearer tok123")
	f("#[attributes.headers['missing']]", "")
	f("#[attributes.queryParams.sku]", "PRD-1")
	f("#[attributes.queryParams['client_id']]", "c1")
	f("#[attributes.queryParams.'client_id']", "c1")
	f("#[attributes.queryParams.x]", "A")
	f("#[attributes.queryString]", "sku=PRD-1&x=%41&client_id=c1&n=5")
	f("#[attributes.requestPath]", "/api/products/7")
	f("#[attributes.requestUri]", "/api/products/7?sku=PRD-1&x=%41&client_id=c1&n=5")
	f("#[attributes.remoteAddress]", "10.0.0.7")
	f("#[attributes.clientAddress.ip]", "10.0.0.7")
	f("#[attributes.scheme]", "http")
	f("#[attributes.version]", "HTTP/1.1")
	f("  #[attributes.method]\n", "POST")
	// Values that policies provide, by their Flex names.
	f("#[authentication.testUser]", "ann")
	f("#[vars.testClaims.email]", "ann@example.com")
	f("#[vars.testClaims.address.country]", "NZ")
	f("#[vars.testClaims['a.b']]", "dotted")
	f("#[vars.testClaims.roles[1]]", "r1")
	f("#[vars.testClaims.roles[-1]]", "r1")
	f("#[vars.testClaims.roles]", `["r0","r1"]`)
	f("#[vars.testClaims.n]", "42")
	f("#[vars.testClaims.esc]", `A"/b`)
	f("#[vars.testClaims.list[0].item]", "in an array")
	f("#[vars.testClaims[attributes.queryParams.claim default 'email']]", "ann@example.com")
	// Literals.
	f("#['it\\'s']", "it's")
	f(`#["double"]`, "double")
	f("#[42]", "42")
	f("#[-1.5]", "-1.5")
	f("#[true]", "true")
	f("#[[1, 'x', true]]", `[1,"x",true]`)
	// Operators.
	f("#[attributes.method == 'POST']", "true")
	f("#[attributes.method != 'POST']", "false")
	f("#[attributes.queryParams.n >= '5' and 2 >= 1 and 'a' <= 'b' and 1 < 2 and not (2 > 3)]", "true")
	f("#[not attributes.method == 'GET']", "true")
	f("#[not true or true]", "false") // as in DataWeave: not (true or true)
	f("#[!true or true]", "true")
	f("#[attributes.headers['missing'] default 'anon']", "anon")
	f("#[attributes.headers['x-api-key'] default 'anon']", "k1")
	f("#[vars.testClaims.missing default vars.testClaims.nul default 'none']", "none")
	f("#['v1-' ++ attributes.method]", "v1-POST")
	f("#[attributes.method ++ '-' ++ attributes.headers['missing'] ++ 1]", "POST-1")
	f("#[[1, 2] ++ [3]]", "[1,2,3]")
	f("#[vars.testClaims.roles ++ ['r2']]", `["r0","r1","r2"]`)
	f("#[if (attributes.method == 'POST') 'write' else 'read']", "write")
	f("#[if (attributes.method == 'GET') 'r' else if (attributes.method == 'POST') 'w' else 'x']", "w")
	// Selectors on values.
	f("#['abc'[0] ++ 'abc'[-1]]", "ac")
	f("#['héllo'[1]]", "é")
	f("#[attributes.method[1]]", "O")
	f("#['abc'[5] default '-']", "-")
	// Functions.
	f("#[upper(attributes.method) ++ lower(attributes.method)]", "POSTpost")
	f("#[lower(attributes.headers['x-uni'])]", "über")
	f("#[upper('ß-é')]", "ß-É")
	f("#[trim(attributes.headers['x-name'])]", "Ann Lee")
	f("#[(attributes.headers['x-forwarded-for'] splitBy ', ')[0]]", "1.2.3.4")
	f("#[splitBy(attributes.headers['x-forwarded-for'], ',')[-1]]", " 5.6.7.8")
	f("#[sizeOf(attributes.headers['x-forwarded-for'] splitBy ', ')]", "2")
	f("#[splitBy('a,b,,', ',')]", `["a","b"]`)
	f("#[splitBy('abc', '')]", `["a","b","c"]`)
	f("#[splitBy('abc', ';')]", `["abc"]`)
	f("#[sizeOf('héllo') ++ sizeOf([]) ++ sizeOf(vars.testClaims.roles) ++ sizeOf(vars.testClaims.address)]", "5022")
	f("#[sizeOf(attributes.headers.missing)]", "0")
	f("#[attributes.headers['x-api-key'] contains 'k']", "true")
	f("#[['GET', 'POST'] contains attributes.method]", "true")
	f("#[contains(['GET'], attributes.method)]", "false")
	f("#[vars.testClaims.roles contains 'r1']", "true")
	f("#[vars.testClaims.n == 42 and vars.testClaims.ok]", "true")
	f("#[dw::core::Strings::substringAfter(attributes.headers['Authorization'], 'Bearer ')]", "tok123")
	f("#[dw::core::Strings::substringBefore(dw::core::Binaries::fromBase64("+
		"dw::core::Strings::substringAfter(attributes.headers['x-basic'], 'Basic ')), ':')]", "user")
	f("#[dw::core::Binaries::fromBase64('dXNlcjpwYXNz')]", "user:pass")
	f("#[dw::core::Binaries::fromBase64('dXNlcjpwYXNz!') default 'bad'] ", "bad")
	f("#[dw::Core::lower('A')]", "a")

	id := expand(t, "#[uuid()]", Request, ctx, ex)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("uuid() = %q, not a version 4 UUID", id)
	}
	if id2 := expand(t, "#[uuid()]", Request, ctx, ex); id2 == id {
		t.Errorf("uuid() twice = %q", id)
	}
}

// TestFlexStrings: the results dw::core::Strings documents for each
// function, empty and missing separators included.
func TestFlexStrings(t *testing.T) {
	ctx, ex := flexCtx()
	// Inputs a–f of the DataWeave documentation's examples; null is a
	// missing header.
	in := [][2]string{{"attributes.headers.missing", "'\\''"}, {"''", "'-'"}, {"'abc'", "'b'"}, {"'abcba'", "'b'"},
		{"'abc'", "'d'"}, {"'abc'", "''"}}
	for fn, want := range map[string][]string{
		"substringAfter":      {"null", "", "c", "cba", "", "abc"},
		"substringAfterLast":  {"null", "", "c", "a", "", "null"},
		"substringBefore":     {"null", "", "a", "a", "", ""},
		"substringBeforeLast": {"null", "", "a", "abc", "", "ab"},
	} {
		for i, args := range in {
			src := "#[dw::core::Strings::" + fn + "(" + args[0] + ", " + args[1] + ") default 'null']"
			if got := expand(t, src, Request, ctx, ex); got != want[i] {
				t.Errorf("%s = %q, want %q", src, got, want[i])
			}
		}
	}
}

// TestFlexResponse: in the response phase attributes.headers are the
// response's and attributes.statusCode is known; the http-caching
// defaults decide as documented.
func TestFlexResponse(t *testing.T) {
	ctx, ex := flexCtx()
	ctx.Response.SetStatusCode(404)
	ctx.Response.Header.Set("Content-Type", "application/json")
	ctx.Response.Header.Set("X-Upstream", "u1")
	f := func(src, want string) {
		t.Helper()
		if got := expand(t, src, Response, ctx, ex); got != want {
			t.Errorf("%s = %q, want %q", src, got, want)
		}
	}
	f("#[attributes.statusCode]", "404")
	f("#[attributes.headers['x-upstream']]", "u1")
	f("#[attributes.headers['content-type']]", "application/json")
	f("#[attributes.headers['x-api-key'] default 'not a response header']", "not a response header")
	f("#[attributes.method ++ ' ' ++ attributes.statusCode]", "POST 404")
	f("#[attributes.statusCode >= 400]", "true")

	cache, err := CompileBool("#[[200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501] contains attributes.statusCode]", nil, Response)
	if err != nil {
		t.Fatal(err)
	}
	for status, want := range map[int]bool{200: true, 404: true, 501: true, 500: false, 201: false} {
		ctx.Response.SetStatusCode(status)
		if got := cache.Eval(ctx, ex); got != want {
			t.Errorf("responseExpression at %d = %v, want %v", status, got, want)
		}
	}
	methods, err := CompileBool("#[attributes.method == 'GET' or attributes.method == 'HEAD']", nil, Request)
	if err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]bool{"GET": true, "HEAD": true, "POST": false} {
		ctx.Request.Header.SetMethod(method)
		if got := methods.Eval(ctx, ex); got != want {
			t.Errorf("requestExpression for %s = %v, want %v", method, got, want)
		}
	}
	// A value that is not true or false on a request decides no.
	claim, err := CompileBool("#[vars.testClaims.email]", nil, Request)
	if err != nil {
		t.Fatal(err)
	}
	if claim.Eval(ctx, ex) {
		t.Error("a condition that is text on the request is true")
	}
	for src, want := range map[string]bool{"true": true, " false ": false, "#[1 == 1]": true} {
		c, err := CompileBool(src, nil, Request)
		if err != nil || !c.IsConstant() || c.Eval(nil, nil) != want {
			t.Errorf("CompileBool(%q) = %v, %v; want the constant %v", src, c, err, want)
		}
	}
}

// TestOneEvaluator: a $-expression and its Flex form compile to the same
// evaluator, with the same answers to the callers' questions.
func TestOneEvaluator(t *testing.T) {
	ctx, ex := flexCtx()
	for _, pair := range [][2]string{
		{"$request.header.X-Api-Key", "#[attributes.headers['X-Api-Key']]"},
		{"$request.query.sku", "#[attributes.queryParams.sku]"},
		{"$request.remoteAddress", "#[attributes.remoteAddress]"},
		{"$request.method", "#[attributes.method]"},
		{"$request.path", "#[attributes.requestPath]"},
		{"$test.user", "#[authentication.testUser]"},
		{"$test.claims.address.country", "#[vars.testClaims.address.country]"},
	} {
		a, b := MustCompile(pair[0]), MustCompile(pair[1])
		if a.root.op != b.root.op || string(a.root.name) != string(b.root.name) || a.root.v != b.root.v ||
			strings.Join(a.root.path, ".") != strings.Join(b.root.path, ".") {
			t.Errorf("%s and %s compile to different nodes: %+v, %+v", pair[0], pair[1], a.root, b.root)
		}
		if a.IsRemoteAddress() != b.IsRemoteAddress() || (a.parts == nil) != (b.parts == nil) {
			t.Errorf("%s and %s differ in IsRemoteAddress or directness", pair[0], pair[1])
		}
		ha, qa := a.Reads()
		hb, qb := b.Reads()
		if strings.Join(ha, ",") != strings.Join(hb, ",") || strings.Join(qa, ",") != strings.Join(qb, ",") {
			t.Errorf("%s reads %q %q, %s reads %q %q", pair[0], ha, qa, pair[1], hb, qb)
		}
		if x, y := string(a.Append(nil, ctx, ex)), string(b.Append(nil, ctx, ex)); x != y {
			t.Errorf("%s = %q, %s = %q", pair[0], x, pair[1], y)
		}
	}
	if h, q := MustCompile("#[attributes.headers['A'] ++ lower(attributes.queryParams.b) ++ attributes.headers[attributes.method]]").Reads(); strings.Join(h, ",") != "A" || strings.Join(q, ",") != "b" {
		t.Errorf("Reads() = %q, %q", h, q)
	}
	for src, want := range map[string]string{"#['a' ++ 'b']": "ab", "#[lower('A') ++ sizeOf([1,2])]": "a2", "#[[1] contains 1]": "true"} {
		if tmpl := MustCompile(src); !tmpl.IsConstant() || string(tmpl.Literal()) != want {
			t.Errorf("%s: constant %v %q, want %q", src, tmpl.IsConstant(), tmpl.Literal(), want)
		}
	}
	if MustCompile("#[uuid()]").IsConstant() {
		t.Error("uuid() is folded into a constant")
	}
	// A value that is not wholly #[...] is text with $-expressions.
	for src, want := range map[string]string{"v1-#[attributes.method]": "v1-#[attributes.method]", "x #[y]": "x #[y]"} {
		if got := expand(t, src, Request, ctx, ex); got != want {
			t.Errorf("%s = %q, want the literal text", src, got)
		}
	}
}

// TestFlexErrors: every mistake is refused at load time, with what is
// wrong, how to fix it, and the place in the value.
func TestFlexErrors(t *testing.T) {
	f := func(src string, phase Phase, at, want string) {
		t.Helper()
		_, err := CompilePhase(src, nil, phase)
		var xe *Error
		if !errors.As(err, &xe) {
			t.Errorf("Compile(%q) = %v, want an *Error", src, err)
			return
		}
		if !strings.Contains(xe.Msg, want) {
			t.Errorf("Compile(%q): %q, want a message containing %q", src, xe.Msg, want)
		}
		i := strings.Index(src, at)
		if at == "" {
			i = len(src)
		}
		if xe.Offset != i {
			t.Errorf("Compile(%q): %q at offset %d, want %d (%q)", src, xe.Msg, xe.Offset, i, at)
		}
		if !strings.HasSuffix(err.Error(), "\n"+Caret(src, xe.Offset)) {
			t.Errorf("Compile(%q): %q does not end with the caret", src, err)
		}
	}
	r := Request
	f("#[attributes.methd]", r, "methd", `attributes has no member "methd"; its members are: headers, method,`)
	f("#[attributes.statusCode == 200]", r, "statusCode", "known only on the response")
	f("#[attributes.headers.x-api-key]", r, "-api", "quote it: attributes.headers.'x-api-key'")
	f("#[attributes.headers['bad name']]", r, "['bad", `"bad name" is not a header name`)
	f("#[attributes.headers]", r, "attributes", "select one, e.g. attributes.headers['x-api-key']")
	f("#[attributes]", r, "attributes", "select one, e.g. attributes.method")
	f("#[attributes.headers[0]]", r, "[0]", "is selected by name, not by index")
	f("#[null]", r, "null", "no null literal")
	f("#[{a: 1}]", r, "{", "object literals are not supported")
	f("#[1 + 2]", r, "+", "arithmetic is not supported")
	f("#[-attributes.method]", r, "-", "may only make a number negative")
	f("#[attributes.method ~= 'x']", r, "~=", "compare with ==")
	f("#[attributes.method == 200]", r, "==", "compares text with a number, which are never equal")
	f("#[attributes.statusCode == '200']", Response, "==", "write the number without quotes: 200")
	f("#[attributes.statusCode >= 'a']", Response, ">=", "compares two numbers or two texts")
	f("#[attributes.method and true]", r, "attributes", "and needs true or false on both sides, but this is text")
	f("#[not attributes.method]", r, "attributes", "not needs true or false")
	f("#[if (attributes.method) 'a' else 'b']", r, "attributes", "the condition of if needs true or false")
	f("#[if (true) 'a']", r, "]", "`else`: if needs an else branch")
	f("#[[1] ++ 'a']", r, "++", "++ joins two texts or two arrays, not an array with text")
	f("#[lower(1)]", r, "1)", "argument 1 of lower is a number; it takes text")
	f("#[lower('a', 'b')]", r, "lower", "lower takes 1 argument(s), not 2")
	f("#[sizeOf(true)]", r, "true", "argument 1 of sizeOf is true or false")
	f("#['abc' contains 1]", r, "1]", "contains on text looks for text")
	f("#[attributes.method contains 'P' and true]", r, "'P'", "note that contains written between its arguments binds more loosely than and: "+
		"put it in parentheses, e.g. (x contains y) and z")
	f("#[substringAfter(attributes.method, 'x')]", r, "substringAfter", "write its full name, dw::core::Strings::substringAfter")
	f("#[frobnicate(1)]", r, "frobnicate", "unknown function frobnicate; the functions are:")
	f("#[uuid]", r, "uuid", "uuid is a function: call it, uuid()")
	f("#[payload.x]", r, "payload", "payload (the message body) is not available")
	f("#[foo.bar]", r, "foo", "unknown name foo")
	f("#[authentication.clientName]", r, "clientName", "authentication.clientName is not provided by any policy; known here: authentication.testUser")
	f("#['abc'.x]", r, "x]", "text has no members by name")
	f("#[[1,2].x]", r, "x]", "an array has no members by name")
	f("#[true[0]]", r, "[0]", "cannot select from true or false")
	f("#[attributes.method", r, "", "must make up the whole value: end it with ]")
	f("#[]", r, "]", "the expression is empty")
	f("#[a] ++ #[b]", r, "] ++", "found `]`; an expression is one #[...] that makes up the whole value")
	f("#['abc]", r, "'abc", "this text is not closed")
	f("#['a $(b)']", r, "$(", "string interpolation $( ) is not supported")
	f("#['a' ++ $x]", r, "$x", "`$` is not part of Flex expressions")
	f("#['a\\q']", r, "\\q", "\\q is not an escape")
	f("#[attributes.method attributes.method]", r, "attributes.method]", "expected an operator or the end of the expression")
	f("#[attributes..x]", r, "..", "only the selectors .name, .'name', [key] and [index] are supported")
	f("#[attributes.headers[?(true)]]", r, "?", "only the selectors")
	f("#[12abc]", r, "abc", "a number runs into")
	f("#[attributes.method as Number]", r, "as", "as is not supported in flexgate's Flex expressions")
	f("#[attributes.method map 1]", r, "map", "map is not supported")
	f("#[attributes.method splitBy /,/]", r, "/", "arithmetic and regular expressions are not supported")

	// Nesting deeper than maxDepth is an error, however it nests.
	deep := map[string]string{
		"parentheses": "#[" + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + "]",
		"arrays":      "#[" + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "]",
		"not":         "#[" + strings.Repeat("not ", 200) + "true]",
		"bang":        "#[" + strings.Repeat("!", 5000) + "true]",
		"minus":       "#[" + strings.Repeat("-", 5000) + "1]",
		"concat":      "#['a'" + strings.Repeat(" ++ 'a'", 5000) + "]",
		"selectors":   "#[vars.testClaims" + strings.Repeat(".a", 5000) + "]",
		"indexes":     "#['a'" + strings.Repeat("[0]", 5000) + "]",
		"calls":       "#[" + strings.Repeat("lower(", 200) + "'a'" + strings.Repeat(")", 200) + "]",
		"if":          "#[" + strings.Repeat("if (true) 1 else ", 200) + "1]",
		"default":     "#[1" + strings.Repeat(" default 1", 5000) + "]",
	}
	for name, src := range deep {
		if _, err := Compile(src, nil); err == nil || !strings.Contains(err.Error(), "nests more than") {
			t.Errorf("%s nested deeply: %v", name, err)
		}
	}
	// Just under the bound compiles.
	if _, err := Compile("#["+strings.Repeat("(", maxDepth-2)+"1"+strings.Repeat(")", maxDepth-2)+"]", nil); err != nil {
		t.Errorf("nesting %d deep: %v", maxDepth-2, err)
	}

	for src, want := range map[string]string{
		"#[attributes.method]":                        "a condition must be true or false, but this is text",
		"attributes.method == 'GET'":                  "a condition is a Flex expression",
		"#[attributes.statusCode == 200]":             "known only on the response",
		"#[[200] contains attributes.statusCode] x":   "must make up the whole value",
		"#[attributes.headers['a'] default 'b' == 1]": "compares text with a number",
	} {
		if _, err := CompileBool(src, nil, Request); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileBool(%q) = %v, want %q", src, err, want)
		}
	}
}

// TestCaret: the caret stands under the place, in a window of a long
// value, tabs kept so that it lines up.
func TestCaret(t *testing.T) {
	for _, c := range []struct {
		src  string
		off  int
		want string
	}{
		{"#[a.b]", 4, "    #[a.b]\n        ^"},
		{"#[\ta]", 3, "    #[\ta]\n      \t^"},
		{"#[a]", 99, "    #[a]\n        ^"},
		{"x\n#[ab]", 5, "    #[ab]\n       ^"},
		{"#['" + strings.Repeat("x", 100) + "' ++ y]", 108, "    …" + strings.Repeat("x", 31) + "' ++ y]\n     " + strings.Repeat(" ", 36) + "^"},
	} {
		if got := Caret(c.src, c.off); got != c.want {
			t.Errorf("Caret(%q, %d) =\n%s\nwant\n%s", c.src, c.off, got, c.want)
		}
	}
}

// TestFlexDoesNotAllocate: a lone binding, a comparison and the
// functions cost no allocation per request, once scratch space has grown.
func TestFlexDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop the scratch space")
	}
	ctx, ex := flexCtx()
	ctx.Response.SetStatusCode(200)
	for _, src := range []string{
		"#[attributes.headers['x-api-key']]",
		"#[attributes.remoteAddress]",
		"#[attributes.requestUri]",
		"#[attributes.localAddress]",
		"#[authentication.testUser]",
		"#[vars.testClaims.email]",
		"#[vars.testClaims.esc]",
		"#[attributes.method == 'GET' or attributes.method == 'HEAD']",
		"#[upper(dw::core::Strings::substringAfter(attributes.headers['authorization'], 'Bearer ')) ++ '-' ++ " +
			"(attributes.headers['x-forwarded-for'] splitBy ', ')[0] ++ lower(attributes.headers['x-uni'])]",
		"#[dw::core::Binaries::fromBase64(dw::core::Strings::substringAfter(attributes.headers['x-basic'], 'Basic '))]",
		"#[(vars.testClaims.roles contains 'r1') and sizeOf(vars.testClaims) > 3 and vars.testClaims.n == 42]",
		"#[vars.testClaims.roles ++ [attributes.method, 1] ++ (vars.testClaims.roles ++ ['x'])]",
		"#[vars.testClaims[attributes.queryParams.sku default 'email'] default trim(attributes.headers['x-name'])]",
		"#[if (attributes.remoteAddress == '10.0.0.7') uuid() else attributes.headers['x-api-key'][0]]",
		"#[attributes.method ++ ' ' ++ attributes.requestPath ++ ' ' ++ sizeOf(attributes.headers)]",
	} {
		tmpl := MustCompile(src)
		buf := tmpl.Append(nil, ctx, ex)
		if n := testing.AllocsPerRun(200, func() { buf = tmpl.Append(buf[:0], ctx, ex) }); n != 0 {
			t.Errorf("%s: %v allocations per Append, want 0", src, n)
		}
	}
	ctx.Request.Header.SetMethod("GET")
	for _, c := range []struct {
		src   string
		phase Phase
	}{
		{"#[attributes.method == 'GET' or attributes.method == 'HEAD']", Request},
		{"#[[200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501] contains attributes.statusCode]", Response},
		{"#[attributes.headers['x-api-key'] != 'k2' and not (vars.testClaims.address.country == 'AU')]", Request},
	} {
		cond, err := CompileBool(c.src, nil, c.phase)
		if err != nil {
			t.Fatal(err)
		}
		if !cond.Eval(ctx, ex) {
			t.Errorf("%s is false", c.src)
		}
		if n := testing.AllocsPerRun(200, func() { cond.Eval(ctx, ex) }); n != 0 {
			t.Errorf("%s: %v allocations per Eval, want 0", c.src, n)
		}
	}
}

// TestFlexBounds: an evaluation builds arrays of at most maxList elements
// (a request cannot make it take more space); larger ones are null, while
// a long JSON array is still searched and indexed in place.
func TestFlexBounds(t *testing.T) {
	long := strings.Repeat("a,", maxList) + "a"
	ctx := newCtx("http://gw/x", "X-Long", long, "X-Ok", strings.Repeat("a,", maxList-1)+"a")
	ex := &chain.Exchange{}
	roles := `{"roles":[` + strings.Repeat(`"r",`, 5000) + `"last"]}`
	ex.SetValue(testClaims, []byte(roles))
	f := func(src, want string) {
		t.Helper()
		if got := expand(t, src, Request, ctx, ex); got != want {
			t.Errorf("%s = %q, want %q", src, got, want)
		}
	}
	f("#[sizeOf(attributes.headers['x-ok'] splitBy ',')]", "1000")
	f("#[(attributes.headers['x-long'] splitBy ',') default 'too many']", "too many")
	f("#[splitBy(attributes.headers['x-long'], '') default 'too many']", "too many")
	f("#[(vars.testClaims.roles contains 'last') ++ vars.testClaims.roles[-1] ++ vars.testClaims.roles[5000] ++ sizeOf(vars.testClaims.roles)]", "truelastlast5001")
	f("#[(vars.testClaims.roles ++ ['x']) default 'too many']", "too many")
	cond, _ := CompileBool("#[vars.testClaims.roles contains 'last']", nil, Request)
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(50, func() { cond.Eval(ctx, ex) }); n != 0 {
		t.Errorf("contains on a long JSON array: %v allocations", n)
	}
}
