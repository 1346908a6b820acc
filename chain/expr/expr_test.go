package expr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
)

func newCtx(uri string, hdrs ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	req.Header.SetMethod("POST")
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.Header.Set(hdrs[i], hdrs[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}, nil)
	return ctx
}

func TestExpand(t *testing.T) {
	ctx := newCtx("http://gw/api/products/7?sku=PRD-1&x=%41", "X-Api-Key", "k1", "User-Agent", "curl")
	ex := &chain.Exchange{RequestID: []byte("req-1")}
	ex.SetValue(testUser, []byte("acme"))
	ex.SetValue(testClaims, []byte(`{"sub":"alice","scope":"read write"}`))
	f := func(src, want string) {
		t.Helper()
		tmpl, err := Compile(src, nil)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		if got := string(tmpl.Append(nil, ctx, ex)); got != want {
			t.Fatalf("%q expands to %q, want %q", src, got, want)
		}
	}
	f("v1", "v1")
	f("", "")
	f("v1-$request.method", "v1-POST")
	f("$request.path", "/api/products/7")
	f("$request.header.X-Api-Key", "k1")
	f("$request.header.x-api-key", "k1")
	f("$request.header.Missing", "")
	f("$request.query.sku/$request.query.x", "PRD-1/A")
	f("$requestId", "req-1")
	f("$test.user:$test.claims.sub:$test.claims.scope", "acme:alice:read write")
	f("${request.method}-v1", "POST-v1")
	f("costs $5 or $$10", "costs $5 or $10")
	f("at $request.method.", "at POST.")
	f("$request.remoteAddress", "10.0.0.7")
	ex.RemoteIP = netip.MustParseAddr("2001:db8::1")
	f("$request.remoteAddress", "2001:db8::1")
	ex.RemoteAddr = []byte("192.0.2.1")
	f("[$request.remoteAddress]", "[192.0.2.1]")

	tmpl, _ := Compile("$datetime", nil)
	ts, err := time.Parse(time.RFC3339, string(tmpl.Append(nil, ctx, ex)))
	if err != nil {
		t.Fatalf("$datetime is not RFC 3339: %v", err)
	}
	if d := time.Since(ts); d < -time.Second || d > 2*time.Second || ts.Location() != time.UTC {
		t.Fatalf("$datetime = %v, now is %v", ts, time.Now().UTC())
	}
}

func TestConstant(t *testing.T) {
	for src, want := range map[string]bool{"v1": true, "": true, "$$": true, "a$request.path": false} {
		tmpl := MustCompile(src)
		if tmpl.IsConstant() != want {
			t.Errorf("%q: IsConstant = %v, want %v", src, !want, want)
		}
		if want && tmpl.Literal() == nil {
			t.Errorf("%q: constant without a literal", src)
		}
	}
	if !MustCompile("$request.remoteAddress").IsRemoteAddress() || MustCompile("x$request.remoteAddress").IsRemoteAddress() {
		t.Error("IsRemoteAddress is wrong")
	}
}

func TestCompileErrors(t *testing.T) {
	f := func(src string, env *chain.Env, want string) {
		t.Helper()
		_, err := Compile(src, env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Compile(%q) = %v, want an error containing %q", src, err, want)
		}
	}
	f("$request.ip", nil, "unknown expression $request.ip; known expressions: $request.remoteAddress,")
	f("$datetimes", nil, "unknown expression $datetimes")
	f("$request.method-v1", nil, "use ${request.method}-v1")
	f("${request.method", nil, "not closed")
	f("$request.header.", nil, "needs a name")
	f("${request.header.a b}", nil, "not a valid header name")
	f("$env.SECRET", nil, "environment variable SECRET")
	plain := &chain.Env{Name: "request-headers-set", Before: []string{"rate-limiting"}}
	f("$test.claims.sub", plain, "$test.claims.sub is only known after test-provider: put test-provider before request-headers-set")
	f("$test.user", plain, "only known after test-other or test-provider: put one of them before request-headers-set")
	for _, before := range [][]string{{"test-provider"}, {"rate-limiting", "test-other"}} {
		after := &chain.Env{Name: "rate-limiting", Before: before}
		for _, src := range []string{"$test.user", "$test.principal"} {
			if _, err := Compile(src, after); err != nil {
				t.Errorf("Compile(%q) after %q: %v", src, before, err)
			}
		}
	}
	if _, err := Compile("$test.claims.sub", &chain.Env{Name: "x", Before: []string{"test-other"}}); err == nil {
		t.Error("$test.claims.sub after test-other, which does not provide it: no error")
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	ctx := newCtx("http://gw/api/x?q=1", "X-Api-Key", "k1")
	ex := &chain.Exchange{RequestID: []byte("r")}
	tmpl := MustCompile("$request.method $request.path $request.header.X-Api-Key $request.query.q $datetime $requestId $request.remoteAddress lit")
	buf := tmpl.Append(nil, ctx, ex)
	if n := testing.AllocsPerRun(1000, func() { buf = tmpl.Append(buf[:0], ctx, ex) }); n != 0 {
		t.Fatalf("allocations per Append = %v, want 0", n)
	}
}

func TestEnvNames(t *testing.T) {
	t.Setenv("FG_REGION", "eu")
	t.Setenv("FG_CRLF", "a\r\nb")
	f := func(src, want string) {
		t.Helper()
		tmpl, err := Compile(src, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := string(tmpl.Literal()); !tmpl.IsConstant() || got != want {
			t.Errorf("%s = %q, want %q", src, got, want)
		}
	}
	f("$env.FG_REGION-prod", "eu-prod")
	f("$env.FG_REGION.example.com", "eu.example.com")
	f("${env.FG_REGION}x", "eux")
	f("$$env.FG_REGION", "$env.FG_REGION")
	if _, err := Compile("$env.FG_CRLF", nil); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a variable holding CR LF: %v", err)
	}
}

func TestReads(t *testing.T) {
	h, q := MustCompile("k-$request.header.X-Api-Key/${request.query.tenant}-${request.method}:$request.header.X_B").Reads()
	if len(h) != 2 || h[0] != "X-Api-Key" || h[1] != "X_B" || len(q) != 1 || q[0] != "tenant" {
		t.Errorf("Reads() = %q, %q", h, q)
	}
	if h, q := MustCompile("$request.remoteAddress").Reads(); h != nil || q != nil {
		t.Errorf("remoteAddress reads %q, %q", h, q)
	}
	// A condition on the response reads the request's query, and the
	// response's headers, which are not the request's.
	c, err := CompileBool("#[attributes.headers['x-a'] == 'a' and attributes.queryParams.q == 'b']", nil, Response)
	if err != nil {
		t.Fatal(err)
	}
	if h, q := c.Reads(); h != nil || len(q) != 1 || q[0] != "q" {
		t.Errorf("a response condition reads %q, %q", h, q)
	}
	if c, err = CompileBool("#[attributes.headers['x-a'] == 'a']", nil, Request); err != nil {
		t.Fatal(err)
	}
	if h, q := c.Reads(); len(h) != 1 || h[0] != "x-a" || q != nil {
		t.Errorf("a request condition reads %q, %q", h, q)
	}
	if c, err = CompileBool("true", nil, Request); err != nil {
		t.Fatal(err)
	}
	if h, q := c.Reads(); h != nil || q != nil {
		t.Errorf("true reads %q, %q", h, q)
	}
}

// TestAlternatives: the operands of a `default` chain are alternatives,
// each with what it reads; parts read together are none.
func TestAlternatives(t *testing.T) {
	c, err := CompileBool("#[attributes.method == (attributes.headers['x-t'] default attributes.queryParams.t default 'none') and "+
		"attributes.headers['x-a'] == 'a']", nil, Request)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.Alternatives())
	if want := "[[{[x-t] []} {[] [t]}]]"; got != want {
		t.Errorf("Alternatives() = %s, want %s", got, want)
	}
	if c, err = CompileBool("#[attributes.headers['x-a'] == 'a' and attributes.queryParams.b == 'b']", nil, Request); err != nil {
		t.Fatal(err)
	}
	if a := c.Alternatives(); a != nil {
		t.Errorf("parts read together: Alternatives() = %v, want none", a)
	}
}

// TestEnvBracedName: a braced variable name follows the same grammar as an
// unbraced one and as `$env.NAME` elsewhere in the config.
func TestEnvBracedName(t *testing.T) {
	t.Setenv("FG-REGION", "eu")
	for _, s := range []string{"${env.FG-REGION}", "${env.1A}", "${env.A B}"} {
		if _, err := Compile(s, nil); err == nil || !strings.Contains(err.Error(), "is not an environment variable name") {
			t.Errorf("Compile(%q) = %v, want a bad name", s, err)
		}
	}
}

// TestCompileCredential: a value that identifies the client reads its
// header in the spelling the request sends and its query parameter under
// any name an upstream reads as it, the exact name first; any other value
// reads the exact name.
func TestCompileCredential(t *testing.T) {
	for _, src := range []string{"$request.header.X-Api-Key/${request.query.api_key}", "#[attributes.headers['x-api-key'] ++ '/' ++ attributes.queryParams.api_key]"} {
		cred, err := CompileCredential(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		plain := MustCompile(src)
		f := func(uri, want, wantPlain string, hdrs ...string) {
			t.Helper()
			ctx := newCtx(uri, hdrs...)
			if got := string(cred.Append(nil, ctx, nil)); got != want {
				t.Errorf("%s %s %q: %q, want %q", src, uri, hdrs, got, want)
			}
			if got := string(plain.Append(nil, ctx, nil)); got != wantPlain {
				t.Errorf("%s (not a credential) %s %q: %q, want %q", src, uri, hdrs, got, wantPlain)
			}
		}
		f("/?api_key=q", "h/q", "h/q", "X-Api-Key", "h")
		f("/?API_KEY=q", "h/q", "/", "X_Api_Key", "h")
		f("/?x=1&api.key=q", "h/q", "/", "x_api-key", "h")
		f("/?Api%20Key=q", "/q", "/")
		f("/?API_KEY=other&api_key=q", "h/q", "h/q", "X-Api-Key", "h", "X_Api_Key", "other")
		f("/?api_keys=q&xapi_key=r", "/", "/")
	}

	f := func(src string, wantAt int, want string) {
		t.Helper()
		_, err := CompileCredential(src, nil)
		var e *Error
		if !errors.As(err, &e) || e.Offset != wantAt || !strings.Contains(e.Msg, want) {
			t.Errorf("CompileCredential(%q) = %v, want %q at %d", src, err, want, wantAt)
		}
		if _, err := Compile(src, nil); err != nil {
			t.Errorf("Compile(%q), not a credential: %v", src, err)
		}
	}
	f("k-$request.header.A-B-C-D-E-F-G-H", 2, "more than 6 '-' and '_'")
	f("k-${request.query.api[key]}", 2, `PHP reads this name as "api"`)
	f("#[attributes.queryParams['ids[]']]", 2, `PHP reads this name as "ids"`)
}

func TestCredentialDoesNotAllocate(t *testing.T) {
	ctx := newCtx("http://gw/api/x?a=1&b=2&API.KEY=k", "X_Api_Key", "k1")
	tmpl, err := CompileCredential("$request.header.X-Api-Key $request.query.api_key", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := tmpl.Append(nil, ctx, nil)
	if string(buf) != "k1 k" {
		t.Fatalf("Append = %q", buf)
	}
	if n := testing.AllocsPerRun(1000, func() { buf = tmpl.Append(buf[:0], ctx, nil) }); n != 0 {
		t.Fatalf("allocations per Append = %v, want 0", n)
	}
}
