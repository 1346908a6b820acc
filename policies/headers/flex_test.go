package headers

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestHeaderInjectionFlex: inboundHeaders are set on the request,
// outboundHeaders on the response, values literal or expressions, each
// replacing a copy already there.
func TestHeaderInjectionFlex(t *testing.T) {
	c := chaintest.MustChain(t, `        - header-injection-flex:
            inboundHeaders:
              - {key: x-request-path, value: "#[attributes.requestPath]"}
              - {key: x-source, value: gateway}
            outboundHeaders:
              - {key: x-served-by, value: flexgate}
`)
	ctx := chaintest.Ctx("http://gw/api/users/7", "X-Source", "client")
	ctx.Response.Header.Set("X-Served-By", "upstream")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatal(rej)
	}
	req, resp := &ctx.Request.Header, &ctx.Response.Header
	if got := string(req.Peek("X-Request-Path")); got != "/api/users/7" {
		t.Errorf("x-request-path = %q", got)
	}
	if got := req.PeekAll("X-Source"); len(got) != 1 || string(got[0]) != "gateway" {
		t.Errorf("x-source = %q, want the policy's value alone", got)
	}
	if got := resp.PeekAll("X-Served-By"); len(got) != 1 || string(got[0]) != "flexgate" {
		t.Errorf("x-served-by = %q", got)
	}
}

// TestHeaderRemovalFlex: names and regular expressions, matched without
// regard to case, on the request (inbound) and the response (outbound);
// framing headers are never removed.
func TestHeaderRemovalFlex(t *testing.T) {
	c := chaintest.MustChain(t, `        - header-removal-flex:
            inboundHeaders: ["Cache-Control", "x-internal-.*", "Access-Control.*", "X-(Debug|Trace)-[0-9]+", ".*-secret", "H.*"]
            outboundHeaders: ["server", "X-Powered-.*"]
`)
	ctx := chaintest.Ctx("http://gw/api/x", "Host", "api.example.com",
		"Cache-Control", "no-cache", "X-Internal-User", "u", "x_internal_role", "admin", "Access-Control-Request-Method", "GET",
		"X-Debug-42", "1", "X-Debug-x", "kept", "Client-Secret", "s", "Accept", "*/*")
	ctx.Response.Header.Set("Server", "nginx")
	ctx.Response.Header.Set("X-Powered-By", "php")
	ctx.Response.Header.Set("X-Kept", "1")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatal(rej)
	}
	req := ctx.Request.Header.String()
	for _, gone := range []string{"Cache-Control", "X-Internal-User", "x_internal_role", "Access-Control-Request-Method", "X-Debug-42", "Client-Secret"} {
		if strings.Contains(strings.ToLower(req), strings.ToLower(gone)+":") {
			t.Errorf("request still has %s:\n%s", gone, req)
		}
	}
	for _, kept := range []string{"X-Debug-X", "Accept", "Host"} {
		if len(ctx.Request.Header.Peek(kept)) == 0 {
			t.Errorf("request lost %s:\n%s", kept, req)
		}
	}
	resp := &ctx.Response.Header
	if len(resp.Peek("Server")) > 0 || len(resp.Peek("X-Powered-By")) > 0 || len(resp.Peek("X-Kept")) == 0 {
		t.Errorf("response headers:\n%s", resp.String())
	}
}

func TestHeaderFlexErrors(t *testing.T) {
	f := func(policy, wantPos, want string) {
		t.Helper()
		_, path, err := chaintest.Compile(t, chaintest.Gateway(policy))
		if err == nil || !strings.Contains(err.Error(), path+":"+wantPos+": ") || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant at %s: %s", err, wantPos, want)
		}
	}
	f("        - header-removal-flex: {}\n", "12:32", "inboundHeaders and outboundHeaders are both empty")
	f("        - header-removal-flex: {inboundHeaders: [\"a(\"]}\n", "12:50", `"a(" is neither a header name nor a regular expression`)
	f("        - header-removal-flex: {inboundHeaders: [Content-Length]}\n", "12:50", "Content-Length cannot be removed")
	f("        - header-injection-flex: {inboundHeaders: [{key: x-a}]}\n", "12:52", "entry x-a has no value")
	f("        - header-injection-flex: {outboundHeaders: [{key: \"#[attributes.method]\", value: x}]}\n", "12:59", "header name written as an expression")
	f("        - header-injection-flex: {inboundHeaders: [{key: x-a, value: 1}, {key: X-A, value: 2}]}\n", "12:80", "header X-A is listed twice")
	f("        - header-injection-flex: {inboundHeaders: [{key: Host, value: x}]}\n", "12:58", "Host cannot be set")
	// The request has no status yet; the response has one (see
	// TestHeaderInjectionFlexOutboundReadsResponse).
	f("        - header-injection-flex: {inboundHeaders: [{key: x-a, value: \"#[attributes.statusCode]\"}]}\n", "12:84",
		"attributes.statusCode is the upstream's status, known only on the response")
	f("        - header-injection-flex: {outboundHeaders: [{key: x-a, value: \" \"}]}\n", "12:71",
		"the value of x-a is empty; to drop the header use header-removal-flex (outboundHeaders)")
}

func TestHeaderFlexPoliciesDoNotAllocate(t *testing.T) {
	c := chaintest.MustChain(t, `        - header-removal-flex:
            inboundHeaders: ["x-internal-.*", "X-(Debug|Trace)-[0-9]+", "Authorization"]
            outboundHeaders: ["Server"]
        - header-injection-flex:
            inboundHeaders: [{key: x-caller, value: "#[attributes.remoteAddress]"}]
            outboundHeaders: [{key: x-served-by, value: flexgate}]
`)
	ctx := chaintest.Ctx("http://gw/api/x", "User-Agent", "test")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	serve := func() {
		ctx.Request.Header.Set("X-Internal-Foo", "secret")
		ctx.Request.Header.Set("X-Debug-1", "1")
		ctx.Response.Header.Set("Server", "up")
		ex.Prepare(c)
		c.RunRequest(ctx, ex)
		c.RunResponse(ctx, ex)
		ex.Reset()
	}
	serve()
	if n := testing.AllocsPerRun(1000, serve); n != 0 {
		t.Fatalf("allocations per request = %v, want 0", n)
	}
	if len(ctx.Request.Header.Peek("X-Internal-Foo")) > 0 || len(ctx.Request.Header.Peek("X-Debug-1")) > 0 ||
		string(ctx.Request.Header.Peek("X-Caller")) != "10.0.0.7" || len(ctx.Response.Header.Peek("Server")) > 0 {
		t.Fatalf("chain did not do its work:\n%s\n%s", ctx.Request.Header.String(), ctx.Response.Header.String())
	}
}

// TestHeaderInjectionFlexOutboundReadsResponse: outboundHeaders are
// evaluated on the response, as Flex Gateway evaluates them:
// attributes.headers are the response's, attributes.statusCode is known.
func TestHeaderInjectionFlexOutboundReadsResponse(t *testing.T) {
	c := chaintest.MustChain(t, `        - header-injection-flex:
            inboundHeaders:
              - {key: x-in-ct, value: "#[attributes.headers['content-type']]"}
            outboundHeaders:
              - {key: x-out-ct, value: "#[attributes.headers['content-type']]"}
              - {key: x-out-status, value: "#[if (attributes.statusCode == 201) 'created' else 'other']"}
`)
	ctx := chaintest.Ctx("http://gw/api/x", "Content-Type", "text/req")
	ctx.Response.SetStatusCode(201)
	ctx.Response.Header.SetContentType("text/resp")
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatal(rej)
	}
	if got := string(ctx.Request.Header.Peek("X-In-Ct")); got != "text/req" {
		t.Errorf("request x-in-ct = %q, want the request's text/req", got)
	}
	if got := string(ctx.Response.Header.Peek("X-Out-Ct")); got != "text/resp" {
		t.Errorf("response x-out-ct = %q, want the response's text/resp", got)
	}
	if got := string(ctx.Response.Header.Peek("X-Out-Status")); got != "created" {
		t.Errorf("response x-out-status = %q, want created", got)
	}
}
