package cors_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	_ "github.com/flexgate/flexgate/policies/all"
)

// appPolicy allows one origin with credentials, a subdomain pattern, two
// extra headers and an exposed one.
const appPolicy = `- cors:
    origins: ["https://app.example.com", "http://localhost:3000", "https://*.tenants.example.com"]
    methods: [GET, PUT]
    headers: [Content-Type, X-Token]
    exposedHeaders: [X-Request-Id]
    credentials: true
    maxAge: 600
`

type answer struct {
	rej  *chain.Rejection
	resp *fasthttp.ResponseHeader
	ctx  *fasthttp.RequestCtx
}

func (a answer) h(name string) string { return string(a.resp.Peek(name)) }

// run sends method /api/x with headers (name, value pairs) through c,
// after the "upstream" answered with upstream's headers.
func run(c *chain.Chain, method string, upstream []string, headers ...string) answer {
	ctx := chaintest.Ctx("http://gw/api/x", headers...)
	ctx.Request.Header.SetMethod(method)
	for i := 0; i+1 < len(upstream); i += 2 {
		ctx.Response.Header.Add(upstream[i], upstream[i+1])
	}
	rej := chaintest.Run(c, ctx)
	return answer{rej: rej, resp: &ctx.Response.Header, ctx: ctx}
}

func vary(a answer) string {
	var v []string
	for _, x := range a.resp.PeekAll("Vary") {
		v = append(v, string(x))
	}
	return strings.Join(v, "|")
}

// TestActualRequests: an allowed origin's answer names it (never "*" with
// credentials), allows credentials and exposes the header; any other
// origin's answer has no CORS header, whatever the upstream sent; every
// answer varies by Origin.
func TestActualRequests(t *testing.T) {
	c := chaintest.MustChain(t, appPolicy)
	allowed := []struct{ origin, want string }{
		{"https://app.example.com", "https://app.example.com"},
		// Scheme and host without regard to case, the default port as none.
		{"HTTPS://App.Example.COM:443", "https://app.example.com"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"https://eu.tenants.example.com", "https://eu.tenants.example.com"},
		{"https://a.b.tenants.example.com", "https://a.b.tenants.example.com"},
	}
	for _, tc := range allowed {
		a := run(c, "GET", nil, "Origin", tc.origin)
		if a.rej != nil || a.h("Access-Control-Allow-Origin") != tc.want || a.h("Access-Control-Allow-Credentials") != "true" ||
			a.h("Access-Control-Expose-Headers") != "X-Request-Id" || vary(a) != "Origin" {
			t.Errorf("%s: rejection %v, headers:\n%s", tc.origin, a.rej, a.resp)
		}
	}
	denied := []string{
		"null",                                  // sandboxed frames, files: never
		"https://evil-example.com",              // a suffix of the name is not the name
		"https://app.example.com.evil.com",      // nor a prefix
		"https://evilapp.example.com",           // not a listed origin
		"http://app.example.com",                // another scheme
		"https://app.example.com:8443",          // another port
		"http://localhost:30000",                // port prefix
		"https://app.example.com/",              // not an origin: a path
		"https://user@app.example.com",          // not an origin: a user
		"https://app.example.com\t",             // trailing junk
		"https://tenants.example.com",           // the pattern needs a subdomain
		"https://evil-tenants.example.com",      // and a dot before its suffix
		"https://x.tenants.example.com.evil.io", // and the suffix at the end
		"http://eu.tenants.example.com",         // the pattern's scheme
		"https://eu.tenants.example.com:444",    // and port
		"https://" + strings.Repeat("a", 600) + ".app.example.com",
	}
	for _, origin := range denied {
		a := run(c, "GET", []string{"Access-Control-Allow-Origin", "*", "Access-Control-Allow-Credentials", "true"}, "Origin", origin)
		if a.rej != nil || a.h("Access-Control-Allow-Origin") != "" || a.h("Access-Control-Allow-Credentials") != "" || vary(a) != "Origin" {
			t.Errorf("%q was given CORS headers (or the upstream's were kept):\n%s", origin, a.resp)
		}
	}
	// A method the policy does not allow gets no headers either.
	if a := run(c, "DELETE", nil, "Origin", "https://app.example.com"); a.h("Access-Control-Allow-Origin") != "" {
		t.Errorf("DELETE was allowed:\n%s", a.resp)
	}
	// HEAD is GET without a body.
	if a := run(c, "HEAD", nil, "Origin", "https://app.example.com"); a.h("Access-Control-Allow-Origin") == "" {
		t.Errorf("HEAD was not allowed with GET:\n%s", a.resp)
	}
	// Without Origin: no CORS headers, but Vary, merged with the upstream's.
	if a := run(c, "GET", []string{"Vary", "Accept-Encoding"}); a.h("Access-Control-Allow-Origin") != "" || vary(a) != "Accept-Encoding|Origin" {
		t.Errorf("same-origin request: Vary %q:\n%s", vary(a), a.resp)
	}
	if a := run(c, "GET", []string{"Vary", "accept, ORIGIN"}, "Origin", "https://app.example.com"); vary(a) != "accept, ORIGIN" {
		t.Errorf("Vary already naming Origin became %q", vary(a))
	}
}

// TestPreflight: the policy answers a preflight itself: 204 with the
// group's methods, headers and max age when the origin, the method and
// every header it names are allowed (header names in any case), else a
// 403 naming what is not. Either way nothing after it runs.
func TestPreflight(t *testing.T) {
	c := chaintest.MustChain(t, appPolicy+`- request-headers-set:
    headers: {X-After: ran}
- response-headers-set:
    headers: {X-After: ran}
`)
	pre := func(origin, method, headers string) answer {
		h := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			h = append(h, "Access-Control-Request-Headers", headers)
		}
		return run(c, "OPTIONS", nil, h...)
	}
	a := pre("https://app.example.com", "PUT", "content-type,x-token")
	if a.rej == nil || !a.rej.Answer || a.ctx.Response.StatusCode() != 204 {
		t.Fatalf("allowed preflight: %v, status %d", a.rej, a.ctx.Response.StatusCode())
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, PUT",
		"Access-Control-Allow-Headers":     "Content-Type, X-Token",
		"Access-Control-Max-Age":           "600",
		"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		"X-After":                          "",
	} {
		if got := a.h(name); got != want {
			t.Errorf("allowed preflight: %s = %q, want %q", name, got, want)
		}
	}
	if a.ctx.Request.Header.Peek("X-After") != nil {
		t.Error("a policy after cors ran on the preflight")
	}
	if a := pre("https://app.example.com", "PUT", "X-TOKEN , Content-Type"); a.rej == nil || !a.rej.Answer {
		t.Errorf("header names in another case and with spaces: %v", a.rej)
	}
	for _, tc := range []struct{ origin, method, headers, reason string }{
		{"https://evil-example.com", "PUT", "", "cors_origin_not_allowed"},
		{"null", "GET", "", "cors_origin_not_allowed"},
		{"https://app.example.com", "DELETE", "", "cors_method_not_allowed"},
		{"https://app.example.com", "put", "", "cors_method_not_allowed"}, // methods are case-sensitive
		{"https://app.example.com", "PUT", "x-token, authorization", "cors_header_not_allowed"},
		{"https://app.example.com", "PUT", "x-token, x token", "cors_header_not_allowed"},
	} {
		a := pre(tc.origin, tc.method, tc.headers)
		if a.rej == nil || a.rej.Answer || a.rej.Reason != tc.reason || a.rej.Status != 403 {
			t.Errorf("%s %s %q: %v, want %s", tc.origin, tc.method, tc.headers, a.rej, tc.reason)
		}
		if a.h("Access-Control-Allow-Origin") != "" || a.ctx.Request.Header.Peek("X-After") != nil {
			t.Errorf("%s %s %q: refused preflight has CORS headers or reached the next policy", tc.origin, tc.method, tc.headers)
		}
	}
	// OPTIONS without Access-Control-Request-Method is not a preflight.
	if a := run(c, "OPTIONS", nil, "Origin", "https://app.example.com"); a.rej != nil || a.ctx.Request.Header.Peek("X-After") == nil {
		t.Errorf("plain OPTIONS was answered: %v", a.rej)
	}
}

// TestRunsFirst: written after a policy that refuses the request, cors
// still answers the preflight (which never reaches that policy), and the
// refusal of an actual request carries its headers, so that the page can
// read the 401.
func TestRunsFirst(t *testing.T) {
	doc := chaintest.Doc{Clients: []string{"{id: app, secret: s}"}, Policies: `- client-id-enforcement
- cors:
    origins: ["https://app.example.com"]
    headers: [client_id, client_secret]
`}
	c, _, err := chaintest.CompileRoute(t, doc, chaintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Policies[0].Name != "cors" {
		t.Fatalf("the chain runs %s first", c.Policies[0].Name)
	}
	a := run(c, "OPTIONS", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "client_id,client_secret")
	if a.rej == nil || !a.rej.Answer {
		t.Fatalf("preflight: %v", a.rej)
	}
	a = run(c, "GET", nil, "Origin", "https://app.example.com")
	if a.rej == nil || a.rej.Reason != "missing_credentials" || a.h("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("refused request: %v\n%s", a.rej, a.resp)
	}
}

// TestAnyOrigin: "*" allows every origin but "null", answering "*".
func TestAnyOrigin(t *testing.T) {
	c := chaintest.MustChain(t, `- cors: {origins: ["*"], headers: ["*"], methods: [GET, POST, PATCH]}`)
	a := run(c, "GET", nil, "Origin", "https://anyone.example")
	if a.h("Access-Control-Allow-Origin") != "*" || a.h("Access-Control-Allow-Credentials") != "" {
		t.Errorf("any origin:\n%s", a.resp)
	}
	if a := run(c, "GET", nil, "Origin", "null"); a.h("Access-Control-Allow-Origin") != "" {
		t.Errorf("null origin allowed by *:\n%s", a.resp)
	}
	a = run(c, "OPTIONS", nil, "Origin", "https://anyone.example", "Access-Control-Request-Method", "PATCH",
		"Access-Control-Request-Headers", "authorization,x-anything")
	if a.rej == nil || !a.rej.Answer || a.h("Access-Control-Allow-Headers") != "authorization,x-anything" || a.h("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight of any origin with any header: %v\n%s", a.rej, a.resp)
	}
}

// TestConfigErrors: every bad parameter is an error at its line.
func TestConfigErrors(t *testing.T) {
	l := func(n int) string { return ":" + itoa(chaintest.PoliciesLine+n-1) + ":" }
	for _, tc := range []struct{ policies, want string }{
		{"- cors", l(1) + "11: cors: origins is required"},
		{"- cors: {origins: [\"null\"]}", l(1) + `28: cors: origin "null" is refused`},
		{"- cors: {origins: [\"*\"], credentials: true}", l(1) + `28: cors: origin "*" with credentials would let every website read`},
		{"- cors: {origins: [\"*\", \"https://a.example\"]}", l(1) + `28: cors: origin "*" allows every origin`},
		{"- cors:\n    origins: [\"https://a.example/\"]", l(2) + `23: cors: origin "https://a.example/" has a path`},
		{"- cors:\n    origins: [\"a.example\"]", l(2) + `23: cors: origin "a.example" is not an origin`},
		{"- cors:\n    origins: [\"https://*.com\"]", l(2) + `23: cors: origin "https://*.com" allows every site under a top-level domain`},
		{"- cors:\n    origins: [\"https://a*.example.com\"]", l(2) + `23: cors: origin "https://a*.example.com": a * is allowed only`},
		{"- cors:\n    origins: [\"https://bücher.example\"]", l(2) + `23: cors: origin "https://bücher.example" has a host that is not ASCII`},
		{"- cors:\n    origins: [\"https://a.example:99999\"]", l(2) + `23: cors: origin "https://a.example:99999" is not scheme://host[:port]`},
		{"- cors:\n    origins:\n      - https://a.example\n      - HTTPS://A.EXAMPLE:443", l(4) + `17: cors: origin "HTTPS://A.EXAMPLE:443" is listed twice (first on line ` + itoa(chaintest.PoliciesLine+2)},
		{"- cors:\n    origins: [\"https://a.example\"]\n    methods: [GET, \"PO ST\"]", l(3) + `28: cors: method "PO ST" is not a method name`},
		{"- cors:\n    origins: [\"https://a.example\"]\n    methods: [get, GET]", l(3) + `28: cors: method GET is listed twice`},
		{"- cors:\n    origins: [\"https://a.example\"]\n    headers: [X-A, x-a]", l(3) + `28: cors: header x-a is listed twice`},
		{"- cors:\n    origins: [\"https://a.example\"]\n    credentials: true\n    exposedHeaders: [\"*\"]", l(4) + `30: cors: exposedHeaders "*" exposes nothing`},
		{"- cors:\n    origins: [\"https://a.example\"]\n    maxAge: -1", l(3) + `21: cors: maxAge must be a whole number from 0 to 2147483647, not -1`},
		{"- cors-flex:\n    originGroups: [{origins: [\"https://a.example\"], accessControlMaxAge: \" 600\"}]", l(2) + `82: cors-flex: accessControlMaxAge must be a whole number from 0 to 2147483647, not " 600"; remove the spaces around the value`},
		{"- cors: {origins: [\"https://a.example\"]}\n- cors: {origins: [\"https://b.example\"]}", l(2) + `11: cors: route "r" already runs a CORS policy`},
		{"- cors-flex: {supportCredentials: true}", l(1) + `43: cors-flex: supportCredentials: true with publicResource: true (its default)`},
		{"- cors-flex: {publicResource: false}", l(1) + `39: cors-flex: publicResource: false allows only the origins of originGroups, and there are none`},
		{"- cors-flex:\n    publicResource: false\n    originGroups:\n      - {headers: [x-a]}", l(4) + `17: cors-flex: origin group 1 lists no origins`},
		{"- cors-flex:\n    originGroups:\n      - {headers: [x-a]}\n      - {headers: [x-b]}", l(4) + `17: cors-flex: origin groups 1 and 2 both list no origins`},
		{"- cors-flex:\n    originGroups:\n      - origins: [\"https://a.example\"]\n        allowedMethods: [{isAllowed: true}]", l(4) + `34: cors-flex: allowedMethods entry has no methodName`},
		{"- cors-flex:\n    originGroups:\n      - origins: [\"https://a.example\"]\n        allowedMethod: []", l(4) + `17: cors-flex: unknown parameter "allowedMethod"`},
	} {
		_, path, err := chaintest.Compile(t, chaintest.Gateway(tc.policies))
		if err == nil || !strings.Contains(err.Error(), path+tc.want) {
			t.Errorf("%s\nerror = %v\nwant %s%s", tc.policies, err, path, tc.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
