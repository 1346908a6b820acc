package headers

import (
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func TestSeedHeaderSteps(t *testing.T) {
	// The parameters of secured-gateway-config.yaml's steps 5 and 6.
	c := chaintest.MustChain(t, `        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization"]
        - request-headers-set:
            headers:
              X-API-Version: "v1"
              X-Gateway-Time: $datetime
        - response-headers-set:
            headers:
              Strict-Transport-Security: "max-age=31536000; includeSubDomains"
              X-Content-Type-Options: "nosniff"
`)
	ctx := chaintest.Ctx("http://gw/api/products/1",
		"X-Internal-Foo", "secret", "x-internal-bar", "secret", "X-INTERNAL-Baz", "s",
		"Authorization", "Bearer abc", "X-Internals", "kept", "Accept", "application/json",
		"X-API-Version", "v0")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	h := &ctx.Request.Header
	for _, gone := range []string{"X-Internal-Foo", "X-Internal-Bar", "X-Internal-Baz", "Authorization"} {
		if v := h.Peek(gone); v != nil {
			t.Errorf("upstream would see %s: %q", gone, v)
		}
	}
	for name, want := range map[string]string{"X-Internals": "kept", "Accept": "application/json", "X-Api-Version": "v1"} {
		if got := string(h.Peek(name)); got != want {
			t.Errorf("request header %s = %q, want %q", name, got, want)
		}
	}
	if n := strings.Count(h.String(), "X-Api-Version"); n != 1 {
		t.Errorf("X-API-Version appears %d times; set must replace:\n%s", n, h.String())
	}
	gt, err := time.Parse(time.RFC3339, string(h.Peek("X-Gateway-Time")))
	if err != nil {
		t.Fatalf("X-Gateway-Time is not RFC 3339: %v", err)
	}
	if d := time.Since(gt); d < -time.Second || d > 3*time.Second {
		t.Errorf("X-Gateway-Time %v is %v away from now", gt, d)
	}
	if got := string(ctx.Response.Header.Peek("Strict-Transport-Security")); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	if got := string(ctx.Response.Header.Peek("X-Content-Type-Options")); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

// TestRemoveTreatsUnderscoreAsDash: CGI-style upstreams (PHP, WSGI, nginx
// with underscores_in_headers) read X-Internal_Baz as X-Internal-Baz, so a
// header removed by name or prefix goes in every spelling.
func TestRemoveTreatsUnderscoreAsDash(t *testing.T) {
	c := chaintest.MustChain(t, `        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization", "X-Api-Key", "Session_Token"]
`)
	ctx := chaintest.Ctx("http://gw/api/x",
		"X-Internal_Baz", "1", "X_Internal-Foo", "2", "x_internal_bar", "3", "X-Internal-Qux", "4",
		"X_Api_Key", "5", "x-api_key", "6", "X-Api-Key", "7", "Session-Token", "8", "session_token", "9",
		"X-Internals", "kept", "X_Internals", "kept", "XInternal-A", "kept", "Authorization_", "kept")
	chaintest.Run(c, ctx)
	h := &ctx.Request.Header
	raw := h.String()
	for _, gone := range []string{"X-Internal_baz", "X_internal-Foo", "X_internal_bar", "X-Internal-Qux",
		"X_api_key", "X-Api_key", "X-Api-Key", "Session-Token", "Session_token"} {
		if strings.Contains(raw, gone+":") {
			t.Errorf("upstream would see %s:\n%s", gone, raw)
		}
	}
	for _, kept := range []string{"X-Internals", "X_internals", "Xinternal-A", "Authorization_"} {
		if !strings.Contains(raw, kept+": kept") {
			t.Errorf("%s was removed:\n%s", kept, raw)
		}
	}
}

// TestSetReplacesEveryCopy: fasthttp's Set replaces the first copy of a
// name only, so a client that sends a header twice, or in another spelling
// (X_User for X-User, which CGI-style upstreams read as one), would get its
// own value to the upstream beside the one set.
func TestSetReplacesEveryCopy(t *testing.T) {
	c := chaintest.MustChain(t, `        - request-headers-set:
            headers:
              X-User: "gateway"
              X-Echo: "was $request.header.X-Echo"
        - response-headers-set:
            headers:
              Access-Control-Allow-Origin: "https://shop.example"
              Set-Cookie: "gw=1"
`)
	ctx := chaintest.Ctx("http://gw/api/x",
		"X-User", "forged-1", "X-User", "forged-2", "X_User", "forged-3", "x_user", "forged-4",
		"X-Echo", "in", "X-Echo", "in2", "X_Userx", "kept")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	if rej := c.RunRequest(ctx, ex); rej != nil {
		t.Fatal(rej)
	}
	h := &ctx.Request.Header
	if got := h.PeekAll("X-User"); len(got) != 1 || string(got[0]) != "gateway" {
		t.Errorf("X-User = %q, want only \"gateway\":\n%s", got, h.String())
	}
	if got := h.PeekAll("X_User"); len(got) != 0 {
		t.Errorf("X_User = %q, want none", got)
	}
	if got := h.PeekAll("X-Echo"); len(got) != 1 || string(got[0]) != "was in" {
		t.Errorf("X-Echo = %q, want only \"was in\" (the value reads the header it replaces)", got)
	}
	if got := string(h.Peek("X_Userx")); got != "kept" {
		t.Errorf("X_Userx = %q, want it kept", got)
	}

	// On a response, the upstream's copies are replaced too, but its
	// cookies are not: Set-Cookie is set per cookie name.
	ctx.Response.Header.Add("Access-Control-Allow-Origin", "*")
	ctx.Response.Header.Add("Access-Control-Allow-Origin", "https://evil.example")
	ctx.Response.Header.Add("Set-Cookie", "session=abc")
	c.RunResponse(ctx, ex)
	rh := &ctx.Response.Header
	if got := rh.PeekAll("Access-Control-Allow-Origin"); len(got) != 1 || string(got[0]) != "https://shop.example" {
		t.Errorf("Access-Control-Allow-Origin = %q, want only the value set", got)
	}
	if raw := rh.String(); !strings.Contains(raw, "Set-Cookie: session=abc\r\n") || !strings.Contains(raw, "Set-Cookie: gw=1\r\n") {
		t.Errorf("want the upstream's cookie and gw=1:\n%s", raw)
	}
}

func TestRemoveWildcardKeepsFraming(t *testing.T) {
	c := chaintest.MustChain(t, `        - request-headers-remove:
            headers: ["Content-*", "Ho*"]
`)
	ctx := chaintest.Ctx("http://gw/api/x", "Content-Type", "text/plain", "Content-Language", "en", "Hop", "1")
	ctx.Request.Header.SetHost("gw")
	ctx.Request.SetBodyString("hello")
	ctx.Request.Header.SetContentLength(5)
	chaintest.Run(c, ctx)
	h := &ctx.Request.Header
	if h.Peek("Content-Language") != nil || len(h.ContentType()) != 0 || h.Peek("Hop") != nil {
		t.Errorf("wildcards did not remove matching headers:\n%s", h.String())
	}
	if string(h.Host()) != "gw" || h.ContentLength() != 5 {
		t.Errorf("wildcards must not remove Host or Content-Length; host %q length %d", h.Host(), h.ContentLength())
	}
}

func TestSetExpressionsAndSanitizing(t *testing.T) {
	c := chaintest.MustChain(t, `        - request-headers-set:
            headers:
              X-Method: "v1-$request.method"
              X-Echo: "q=$request.query.q h=$request.header.X-In"
              X-Client-Ip: $request.remoteAddress
        - response-headers-set:
            headers:
              X-Echo: "${request.path}!"
`)
	ctx := chaintest.Ctx("http://gw/api/x?q=a%0d%0aInjected:%20yes%00", "X-In", "in")
	chaintest.Run(c, ctx)
	h := &ctx.Request.Header
	if got := string(h.Peek("X-Method")); got != "v1-GET" {
		t.Errorf("X-Method = %q, want v1-GET", got)
	}
	echo := string(h.Peek("X-Echo"))
	if strings.ContainsAny(echo, "\r\n\x00") || !strings.HasPrefix(echo, "q=a  Injected: yes ") || !strings.HasSuffix(echo, "h=in") {
		t.Errorf("X-Echo = %q: control characters must become spaces", echo)
	}
	if strings.Contains(h.String(), "\r\nInjected") {
		t.Errorf("header injection reached the request:\n%s", h.String())
	}
	if got := string(h.Peek("X-Client-Ip")); got != "10.0.0.7" {
		t.Errorf("X-Client-Ip = %q, want 10.0.0.7", got)
	}
	if got := string(ctx.Response.Header.Peek("X-Echo")); got != "/api/x!" {
		t.Errorf("response X-Echo = %q, want /api/x!", got)
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(policies, wantPos, wantMsg string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, chaintest.Gateway(policies))
		if err == nil {
			t.Fatalf("no error for:\n%s", policies)
		}
		if !strings.Contains(err.Error(), path+":"+wantPos+":") || !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("error %q\nwant position %s and %q", err, wantPos, wantMsg)
		}
	}
	// The policies list starts on line 12 of the document gateway builds.
	f("        - request-headers-remove\n", "12:11", "headers is required")
	f("        - request-headers-remove:\n            headers: []\n", "13:22", "headers is required")
	f("        - request-headers-remove:\n            headers: [\"X-A\", \"*\"]\n", "13:30", "would remove every header")
	f("        - request-headers-remove:\n            headers: [\"X-*-B\"]\n", "13:23", "is not a header name")
	f("        - request-headers-remove:\n            headers: [\"Content-Length\"]\n", "13:23", "cannot be removed")
	f("        - request-headers-remove:\n            header: [\"X-A\"]\n", "13:13", "unknown parameter \"header\"; known parameters: headers")
	f("        - request-headers-remove:\n            headers: [\"A-B-C-D-E-F-G-H\"]\n", "13:23", "more than 6 '-' and '_'")
	f("        - request-headers-set:\n            headers:\n              A-B-C-D-E-F-G-H: x\n", "14:15", "more than 6 '-' and '_'")
	f("        - request-headers-set\n", "12:11", "headers is required")
	f("        - request-headers-set:\n            headers:\n              Bad Name: x\n", "14:15", "is not a header name")
	f("        - request-headers-set:\n            headers:\n              Transfer-Encoding: chunked\n", "14:15", "cannot be set")
	f("        - response-headers-set:\n            headers:\n              connection: close\n", "14:15", "cannot be set")
	f("        - request-headers-set:\n            headers:\n              X-A: \"a\\r\\nB: c\"\n", "14:20", "control character")
	f("        - request-headers-set:\n            headers:\n              X-A: \"\"\n", "14:20", "is empty")
	// A response header is dropped by a policy that reaches the response.
	f("        - response-headers-set:\n            headers:\n              X-A: \"\"\n", "14:20", "is empty; to drop the header use header-removal-flex (outboundHeaders)")
	f("        - request-headers-set:\n            headers:\n              X-A: $request.nope\n", "14:20", "unknown expression $request.nope")
	f("        - response-headers-set:\n            headers: [a]\n", "13:22", "headers must be a mapping, not a list")
}

// TestHeadersThroughAliases: a headers block reused through an alias works
// as if written out.
func TestHeadersThroughAliases(t *testing.T) {
	c := chaintest.MustChain(t, `        - response-headers-set:
            headers: &h {X-Api-Version: "v2"}
        - request-headers-set:
            headers: *h
        - request-headers-remove:
            headers: &gone [X-Internal-*]
        - request-headers-remove:
            headers: *gone
`)
	ctx := chaintest.Ctx("http://gw/api/x", "X-Internal-A", "secret")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	if got := string(ctx.Request.Header.Peek("X-Api-Version")); got != "v2" {
		t.Errorf("request X-Api-Version = %q", got)
	}
	if got := ctx.Request.Header.Peek("X-Internal-A"); got != nil {
		t.Errorf("X-Internal-A was not removed: %q", got)
	}
}

// TestSetErrorsHideCredentials: an error in the value of a header that
// carries a credential (by its name, or a Basic or Bearer value) does not
// quote the value.
func TestSetErrorsHideCredentials(t *testing.T) {
	for _, header := range []string{
		`Authorization: "Bearer abc${secret-token-value"`,
		`X-Upstream-Auth: "basic dXNl${secret-token-value"`,
		`X_Client_Key: "${secret-token-value"`,
	} {
		_, _, err := chaintest.Compile(t, chaintest.Gateway("        - request-headers-set:\n            headers: {"+header+"}\n"))
		if err == nil || strings.Contains(err.Error(), "secret-token") || !strings.Contains(err.Error(), "is not closed") {
			t.Errorf("%s: error = %v", header, err)
		}
	}
	// Other values are quoted, to show where the mistake is.
	_, _, err := chaintest.Compile(t, chaintest.Gateway("        - request-headers-set:\n            headers: {X-Version: \"v1${oops\"}\n"))
	if err == nil || !strings.Contains(err.Error(), `"${oops"`) {
		t.Errorf("error = %v", err)
	}
}
