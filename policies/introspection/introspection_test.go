package introspection

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// idp is a real RFC 7662 introspection server on 127.0.0.1 that counts its
// calls and can be held, made to fail, or stopped.
type idp struct {
	srv   *httptest.Server
	calls atomic.Int64

	mu      sync.Mutex
	answers map[string]string // token → JSON answer; others are inactive
	status  int               // answer with this status instead, when set
	hold    chan struct{}     // when set, calls wait until it is closed
	form    string            // the last request's form, for assertions
	auth    string
}

func newIdP(t testing.TB, tls bool) *idp {
	p := &idp{answers: map[string]string{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		// RFC 6749 §2.3.1: id and secret are form-encoded inside Basic.
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.Method != http.MethodPost || id != "gateway" || secret != "gw&secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		p.mu.Lock()
		p.form, p.auth = r.PostForm.Encode(), r.Header.Get("Authorization")
		hold, status, answer := p.hold, p.status, p.answers[r.PostForm.Get("token")]
		p.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if answer == "" {
			answer = `{"active":false}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	})
	if tls {
		p.srv = httptest.NewUnstartedServer(h)
		// Handshakes refused on purpose stay out of the test's output.
		p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		p.srv.StartTLS()
	} else {
		p.srv = httptest.NewServer(h)
	}
	release := make(chan struct{})
	t.Cleanup(func() {
		close(release)
		p.srv.Close()
	})
	return p
}

func (p *idp) set(f func(p *idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// clock is an injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// compile builds the chain of a route "orders" on /orders/* from the YAML
// of its policies list. The list begins on line chaintest.PoliciesLine (12)
// of the file, indented by 8 columns: its line 1, column 3 is the file's
// 12:11.
func compile(t testing.TB, policies string, opts chaintest.Options) (*chain.Chain, error) {
	t.Helper()
	c, _, err := chaintest.CompileRoute(t, chaintest.Doc{RouteID: "orders", Path: "/orders/*", Policies: policies}, opts)
	return c, err
}

type fixture struct {
	c     *chain.Chain
	in    *Introspector
	set   *metrics.Set
	clock *clock
}

// setup provisions a token-introspection policy against url with extra
// parameters in YAML flow syntax.
func setup(t testing.TB, url, extra string) *fixture {
	t.Helper()
	params := fmt.Sprintf("{url: %q, clientId: gateway, clientSecret: gw&secret", url)
	if extra != "" {
		params += ", " + extra
	}
	set := metrics.NewSet()
	c, err := compile(t, "- token-introspection: "+params+"}",
		chaintest.Options{Metrics: set, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	in := c.Policies[0].Policy.(*Introspector)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	in.now = clk.now
	return &fixture{c: c, in: in, set: set, clock: clk}
}

func (f *fixture) counter(name string) uint64 { return f.set.GetOrCreateCounter(name).Get() }

type result struct {
	rej       *chain.Rejection
	challenge string
	ex        *chain.Exchange
}

func (f *fixture) do(authorization string) result {
	if authorization == "" {
		return f.doHeaders()
	}
	return f.doHeaders("Authorization", authorization)
}

// doHeaders sends a request with the given headers (name, value pairs; a
// name may repeat).
func (f *fixture) doHeaders(headers ...string) result {
	return f.doURI("/orders/1", headers...)
}

// doURI sends a request for uri with the given headers.
func (f *fixture) doURI(uri string, headers ...string) result {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Add(headers[i], headers[i+1])
	}
	ex := chain.AcquireExchange()
	ex.Prepare(f.c)
	rej := f.c.RunRequest(ctx, ex)
	return result{rej: rej, challenge: string(ctx.Response.Header.Peek("WWW-Authenticate")), ex: ex}
}

const goodAnswer = `{"active":true,"sub":"alice","client_id":"shop-app","scope":"orders:read orders:write","exp":%d}`

func TestActiveTokenPasses(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL+"/introspect", "scopes: [orders:read]")
	p.answers["tok-1"] = fmt.Sprintf(goodAnswer, 1_700_003_600)

	r := f.do("Bearer tok-1")
	if r.rej != nil {
		t.Fatalf("rejected: %v", r.rej)
	}
	sub, clientID, scope := r.ex.Value(subValue), r.ex.Value(clientIDValue), r.ex.Value(scopeValue)
	if string(sub) != "alice" || string(clientID) != "shop-app" || string(scope) != "orders:read orders:write" {
		t.Errorf("claims = sub %q client_id %q scope %q", sub, clientID, scope)
	}
	if got, want := string(r.ex.Value(claimsValue)), fmt.Sprintf(goodAnswer, 1_700_003_600); got != want {
		t.Errorf("$token.claims = %s, want the answer %s", got, want)
	}
	if p.form != "token=tok-1&token_type_hint=access_token" {
		t.Errorf("server got form %q", p.form)
	}
	// RFC 6749 §2.3.1: the secret is form-encoded before Basic.
	if p.auth != "Basic Z2F0ZXdheTpndyUyNnNlY3JldA==" {
		t.Errorf("server got Authorization %q", p.auth)
	}
	if f.counter(`flexgate_introspection_requests_total{route="orders",result="active"}`) != 1 {
		t.Error("active call not counted")
	}
	if r := f.do("bearer   tok-1  "); r.rej != nil {
		t.Errorf("lower-case scheme and extra spaces rejected: %v", r.rej)
	}
}

func TestRejections(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "scopes: [orders:read, admin]")
	p.answers["reader"] = fmt.Sprintf(goodAnswer, 1_700_003_600)
	p.answers["admin"] = `{"active":true,"scope":"admin orders:read"}`

	check := func(auth string, status int, reason, challenge string) {
		t.Helper()
		r := f.do(auth)
		if r.rej == nil {
			t.Fatalf("%q passed, want %d %s", auth, status, reason)
		}
		if r.rej.Status != status || r.rej.Reason != reason {
			t.Errorf("%q: got %d %s, want %d %s", auth, r.rej.Status, r.rej.Reason, status, reason)
		}
		if r.challenge != challenge {
			t.Errorf("%q: WWW-Authenticate = %q, want %q", auth, r.challenge, challenge)
		}
	}
	const (
		noToken = `Bearer realm="flexgate"`
		invalid = `Bearer realm="flexgate", error="invalid_token"`
		scope   = `Bearer realm="flexgate", error="insufficient_scope", scope="orders:read admin"`
	)
	calls := p.calls.Load()
	check("", 401, "missing_token", noToken)
	check("Basic YTpi", 401, "missing_token", noToken)
	check("Bearer", 401, "invalid_token", invalid)
	check("Bearer ", 401, "invalid_token", invalid)
	check("Bearer a b", 401, "invalid_token", invalid)
	check("Bearer a=b", 401, "invalid_token", invalid)
	check("tok-without-scheme", 401, "invalid_token", invalid)
	if n := p.calls.Load() - calls; n != 0 {
		t.Errorf("malformed or missing tokens made %d calls to the server", n)
	}
	check("Bearer revoked", 401, "invalid_token", invalid)
	check("Bearer reader", 403, "insufficient_scope", scope)
	if r := f.do("Bearer admin"); r.rej != nil {
		t.Errorf("token with every scope rejected: %v", r.rej)
	}

	for _, tc := range []struct {
		name   string
		status int
		answer string
	}{
		{"5xx", 502, ""},
		{"gateway credentials refused", 401, ""},
		{"redirect", 302, ""},
		{"not JSON", 0, "<html>login</html>"},
		{"truncated JSON", 0, `{"active":true,"sub":"x"`},
		{"no active member", 0, `{"sub":"x"}`},
		{"active as a string", 0, `{"active":"true"}`},
	} {
		p.set(func(p *idp) { p.status, p.answers["t-"+tc.name[:2]] = tc.status, tc.answer })
		r := f.do("Bearer t-" + tc.name[:2])
		if r.rej == nil || r.rej.Status != 503 || r.rej.Reason != "introspection_unavailable" {
			t.Errorf("%s: got %v, want 503 introspection_unavailable", tc.name, r.rej)
		}
	}
}

// TestDuplicateAuthorization: the policy checks one Authorization header;
// an upstream may read another, so a request with two is refused before
// any token is looked up.
func TestDuplicateAuthorization(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "")
	p.answers["good"] = `{"active":true}`
	for _, headers := range [][]string{
		{"Authorization", "Bearer good", "Authorization", "Bearer forged"},
		{"Authorization", "Bearer good", "authorization", "Bearer good"},
		{"Authorization", "Bearer good", "Authorization", "Basic YTpi"},
		{"Authorization", "Bearer good", "Authorization", ""},
	} {
		r := f.doHeaders(headers...)
		if r.rej == nil || r.rej.Status != 400 || r.rej.Reason != "duplicate_credentials" {
			t.Fatalf("%q: got %v, want 400 duplicate_credentials", headers, r.rej)
		}
		if !strings.Contains(r.rej.Message, "Authorization header more than once") {
			t.Errorf("message does not name the header: %s", r.rej.Message)
		}
		if want := `Bearer realm="flexgate", error="invalid_request"`; r.challenge != want {
			t.Errorf("%q: WWW-Authenticate = %q, want %q", headers, r.challenge, want)
		}
	}
	if n := p.calls.Load(); n != 0 {
		t.Errorf("%d calls to the server for refused requests", n)
	}
	if r := f.doHeaders("Authorization", "Bearer good", "X-Other", "1"); r.rej != nil {
		t.Errorf("one Authorization header: %v", r.rej)
	}
}

// TestTokenInQueryToo: an upstream may take the token from access_token
// in the query (RFC 6750 §2.3), which nobody checked, rather than from
// Authorization.
func TestTokenInQueryToo(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "")
	p.answers["good"] = `{"active":true}`
	for _, uri := range []string{"/orders/1?access_token=forged", "/orders/1?a=1&access_token", "/orders/1?access%5Ftoken=x",
		// PHP reads these names as access_token, ASP.NET the last.
		"/orders/1?access.token=forged", "/orders/1?access+token=forged", "/orders/1?access[token=forged", "/orders/1?access_token[]=forged", "/orders/1?Access_Token=forged",
		// Rack 2 splits at ';' too.
		"/orders/1?a=1;access_token=forged"} {
		r := f.doURI(uri, "Authorization", "Bearer good")
		if r.rej == nil || r.rej.Status != 400 || r.rej.Reason != "duplicate_credentials" ||
			!strings.Contains(r.rej.Message, "access_token query parameter") {
			t.Fatalf("%s: got %v, want 400 duplicate_credentials naming access_token", uri, r.rej)
		}
		if want := `Bearer realm="flexgate", error="invalid_request"`; r.challenge != want {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", uri, r.challenge, want)
		}
	}
	if n := p.calls.Load(); n != 0 {
		t.Errorf("%d calls to the server for refused requests", n)
	}
	for _, uri := range []string{"/orders/1?token=x", "/orders/1?access-token=x"} {
		if r := f.doURI(uri, "Authorization", "Bearer good"); r.rej != nil {
			t.Errorf("%s: another query parameter: %v", uri, r.rej)
		}
	}
	// Nor may the query carry the header's own name.
	if r := f.doURI("/orders/1?Authorization=Bearer+forged", "Authorization", "Bearer good"); r.rej == nil || r.rej.Reason != "duplicate_credentials" ||
		!strings.Contains(r.rej.Message, "carries Authorization as a query parameter") {
		t.Errorf("authorization in the query: got %v", r.rej)
	}
	// Without Authorization the query token is not a token the policy
	// takes: the answer says what is missing.
	if r := f.doURI("/orders/1?access_token=good"); r.rej == nil || r.rej.Reason != "missing_token" {
		t.Errorf("query token only: got %v, want missing_token", r.rej)
	}
}

// TestTokenInFormBodyToo: RFC 6750 §2.2 lets an upstream take the token
// from access_token in a form body, which nobody checked.
func TestTokenInFormBodyToo(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "")
	p.answers["good"] = `{"active":true}`
	post := func(ct, body string) result {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&fasthttp.Request{}, nil, nil)
		ctx.Request.SetRequestURI("/orders/1")
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.Set("Authorization", "Bearer good")
		ctx.Request.Header.SetContentType(ct)
		ctx.Request.SetBodyString(body)
		ex := chain.AcquireExchange()
		ex.Prepare(f.c)
		rej := f.c.RunRequest(ctx, ex)
		return result{rej: rej, challenge: string(ctx.Response.Header.Peek("WWW-Authenticate")), ex: ex}
	}
	for _, body := range []string{"access_token=forged", "a=1&ACCESS.TOKEN=forged", "a=1;access_token=forged"} {
		r := post("application/x-www-form-urlencoded", body)
		if r.rej == nil || r.rej.Status != 400 || r.rej.Reason != "duplicate_credentials" ||
			!strings.Contains(r.rej.Message, "an access_token in the form body") {
			t.Errorf("%s: got %v, want 400 duplicate_credentials naming access_token in the form body", body, r.rej)
		}
		if want := `Bearer realm="flexgate", error="invalid_request"`; r.challenge != want {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", body, r.challenge, want)
		}
	}
	if r := post("application/x-www-form-urlencoded", "authorization=Bearer+forged"); r.rej == nil ||
		!strings.Contains(r.rej.Message, "carries Authorization in the form body") {
		t.Errorf("authorization in the form body: got %v", r.rej)
	}
	for ct, body := range map[string]string{"application/x-www-form-urlencoded": "token=x&amount=3", "application/json": `{"access_token":"x"}`} {
		if r := post(ct, body); r.rej != nil {
			t.Errorf("%s %s: %v", ct, body, r.rej)
		}
	}
}

func TestServerDownOrSlowFailsClosed(t *testing.T) {
	p := newIdP(t, false)
	var logs bytes.Buffer
	f := setup(t, p.srv.URL, "timeout: 0.2")
	f.in.logs.logger = slog.New(slog.NewTextHandler(&logs, nil))
	const secretToken = "s3cr3t-t0ken"
	p.answers[secretToken] = `{"active":true}`

	p.set(func(p *idp) { p.hold = make(chan struct{}) })
	start := time.Now()
	r := f.do("Bearer " + secretToken)
	if r.rej == nil || r.rej.Status != 503 || r.rej.Reason != "introspection_unavailable" {
		t.Fatalf("slow server: got %v, want 503", r.rej)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 0.2s timeout took %s", d)
	}
	if !strings.Contains(logs.String(), "did not answer within 200ms") {
		t.Errorf("log does not say the server was slow: %s", logs.String())
	}

	// A failure is not cached: the next request asks again and passes.
	p.set(func(p *idp) { p.hold = nil })
	if r := f.do("Bearer " + secretToken); r.rej != nil {
		t.Fatalf("after recovery: %v", r.rej)
	}

	p.srv.Close()
	f.in.logs.last.Store(0)
	r = f.do("Bearer " + secretToken + "-2")
	if r.rej == nil || r.rej.Status != 503 {
		t.Fatalf("server down: got %v, want 503", r.rej)
	}
	if f.counter(`flexgate_introspection_requests_total{route="orders",result="error"}`) != 2 {
		t.Error("failures not counted")
	}
	if l := logs.String(); !strings.Contains(l, "cannot reach introspection server") && !strings.Contains(l, "closed the connection without answering") {
		t.Errorf("log does not say the server is down: %s", logs.String())
	}
	if strings.Contains(logs.String(), secretToken) {
		t.Errorf("a token reached the log: %s", logs.String())
	}
}

func TestCacheTTL(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "cacheTtl: 60")
	p.answers["long"] = fmt.Sprintf(goodAnswer, 1_700_003_600)

	want := func(token string, calls int64) {
		t.Helper()
		before := p.calls.Load()
		if r := f.do("Bearer " + token); r.rej != nil {
			t.Fatalf("%s: %v", token, r.rej)
		}
		if n := p.calls.Load() - before; n != calls {
			t.Errorf("%s: %d calls to the server, want %d", token, n, calls)
		}
	}
	want("long", 1)
	want("long", 0)
	f.clock.advance(59 * time.Second)
	want("long", 0)
	f.clock.advance(time.Second)
	want("long", 1)
	want("long", 0)

	if f.counter(`flexgate_introspection_cache_total{route="orders",result="hit"}`) != 3 ||
		f.counter(`flexgate_introspection_cache_total{route="orders",result="miss"}`) != 2 {
		t.Error("cache hits and misses not counted")
	}
}

func TestExpShortensCache(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "cacheTtl: 60")
	p.answers["t"] = fmt.Sprintf(goodAnswer, 1_700_000_010)
	for i, step := range []struct {
		advance time.Duration
		calls   int64
	}{{0, 1}, {9 * time.Second, 1}, {time.Second, 2}, {5 * time.Second, 3}} {
		f.clock.advance(step.advance)
		f.do("Bearer t")
		if n := p.calls.Load(); n != step.calls {
			t.Errorf("step %d: %d calls, want %d", i, n, step.calls)
		}
	}
}

// TestExpiredOrNotYetValidTokenRefused: a server may say active for a
// token whose exp has passed (its own cache, its clock behind ours), or
// whose nbf is ahead; the gateway refuses it as inactive.
func TestExpiredOrNotYetValidTokenRefused(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "cacheTtl: 60, inactiveCacheTtl: 5")
	const now = 1_700_000_000
	p.answers["expired"] = fmt.Sprintf(goodAnswer, now-1)
	p.answers["exp-now"] = fmt.Sprintf(goodAnswer, now)
	p.answers["exp-zero"] = `{"active":true,"exp":0}`
	p.answers["exp-negative"] = `{"active":true,"exp":-5}`
	p.answers["exp-fraction"] = `{"active":true,"exp":1699999999.5}`
	p.answers["nbf-ahead"] = fmt.Sprintf(`{"active":true,"nbf":%d,"exp":%d}`, now+1, now+3600)
	const invalid = `Bearer realm="flexgate", error="invalid_token"`
	for _, tok := range []string{"expired", "exp-now", "exp-zero", "exp-negative", "exp-fraction", "nbf-ahead"} {
		r := f.do("Bearer " + tok)
		if r.rej == nil || r.rej.Status != 401 || r.rej.Reason != "invalid_token" || r.challenge != invalid {
			t.Errorf("%s: got %v %q, want 401 invalid_token", tok, r.rej, r.challenge)
		}
		if len(r.ex.Value(subValue)) != 0 || len(r.ex.Value(claimsValue)) != 0 {
			t.Errorf("%s: claims handed on: sub %q claims %s", tok, r.ex.Value(subValue), r.ex.Value(claimsValue))
		}
	}
	if n := f.counter(`flexgate_introspection_requests_total{route="orders",result="inactive"}`); n != 6 {
		t.Errorf("%d answers counted inactive, want 6", n)
	}
	// Refused like an inactive token, and cached like one: no new call.
	calls := p.calls.Load()
	if r := f.do("Bearer expired"); r.rej == nil || p.calls.Load() != calls {
		t.Errorf("expired token asked again within inactiveCacheTtl: %v, %d calls", r.rej, p.calls.Load()-calls)
	}
	// Valid from nbf on: the refusal is cached no longer than that.
	f.clock.advance(time.Second)
	if r := f.do("Bearer nbf-ahead"); r.rej != nil {
		t.Errorf("at nbf: %v", r.rej)
	}
	// exp null is exp left out.
	p.set(func(p *idp) { p.answers["exp-null"] = `{"active":true,"exp":null,"nbf":null}` })
	if r := f.do("Bearer exp-null"); r.rej != nil {
		t.Errorf("exp null: %v", r.rej)
	}
	// A date that is not a number is not an RFC 7662 answer.
	for _, answer := range []string{`{"active":true,"exp":"1800000000"}`, `{"active":true,"nbf":true}`} {
		p.set(func(p *idp) { p.answers["odd"] = answer })
		if r := f.do("Bearer odd"); r.rej == nil || r.rej.Status != 503 {
			t.Errorf("%s: got %v, want 503 introspection_unavailable", answer, r.rej)
		}
	}
}

// TestCacheNeverOutlivesExp: whatever cacheTtl says, an answer is not
// served past its token's exp; after it the server is asked again, and
// its saying active for the expired token does not make it pass.
func TestCacheNeverOutlivesExp(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "cacheTtl: 3600")
	p.answers["t"] = fmt.Sprintf(goodAnswer, 1_700_000_030)
	if r := f.do("Bearer t"); r.rej != nil {
		t.Fatal(r.rej)
	}
	f.clock.advance(29*time.Second + 999*time.Millisecond)
	if r := f.do("Bearer t"); r.rej != nil || p.calls.Load() != 1 {
		t.Fatalf("before exp: %v, %d calls", r.rej, p.calls.Load())
	}
	f.clock.advance(time.Millisecond)
	if r := f.do("Bearer t"); r.rej == nil || r.rej.Reason != "invalid_token" {
		t.Errorf("at exp: got %v, want invalid_token", r.rej)
	}
	if n := p.calls.Load(); n != 2 {
		t.Errorf("%d calls, want the cached answer dropped at exp and the server asked again", n)
	}
}

func TestInactiveCachedBriefly(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "inactiveCacheTtl: 5")
	for i, step := range []struct {
		advance time.Duration
		calls   int64
	}{{0, 1}, {4 * time.Second, 1}, {time.Second, 2}} {
		f.clock.advance(step.advance)
		if r := f.do("Bearer dead"); r.rej == nil || r.rej.Reason != "invalid_token" {
			t.Fatalf("step %d: got %v, want invalid_token", i, r.rej)
		}
		if n := p.calls.Load(); n != step.calls {
			t.Errorf("step %d: %d calls, want %d", i, n, step.calls)
		}
	}
	// A token that has become active is believed after the inactive TTL.
	p.set(func(p *idp) { p.answers["dead"] = `{"active":true}` })
	f.clock.advance(5 * time.Second)
	if r := f.do("Bearer dead"); r.rej != nil {
		t.Errorf("not asked again after inactiveCacheTtl: %v", r.rej)
	}
}

func TestConcurrentFirstRequestsMakeOneCall(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "")
	hold := make(chan struct{})
	p.set(func(p *idp) { p.answers["shared"], p.hold = `{"active":true,"sub":"bob"}`, hold })

	const n = 100
	var wg sync.WaitGroup
	var passed atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.do("Bearer shared"); r.rej == nil && string(r.ex.Value(subValue)) == "bob" {
				passed.Add(1)
			}
		}()
	}
	// Release the server once every request has missed the cache.
	deadline := time.Now().Add(10 * time.Second)
	for f.counter(`flexgate_introspection_cache_total{route="orders",result="miss"}`) < n {
		if time.Now().After(deadline) {
			t.Fatal("requests did not all reach the cache")
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if c := p.calls.Load(); c != 1 {
		t.Errorf("%d concurrent first requests made %d calls, want 1", n, c)
	}
	if passed.Load() != n {
		t.Errorf("%d of %d requests passed", passed.Load(), n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "maxCacheEntries: 8")
	for i := range 50 {
		tok := fmt.Sprintf("tok-%d", i)
		p.set(func(p *idp) { p.answers[tok] = `{"active":true}` })
		if r := f.do("Bearer " + tok); r.rej != nil {
			t.Fatal(r.rej)
		}
	}
	if n := f.in.cache.Len(); n == 0 || n > 8 {
		t.Errorf("cache holds %d entries, want 1..8", n)
	}
}

func TestHTTPSWithCAFile(t *testing.T) {
	p := newIdP(t, true)
	p.answers["tok"] = `{"active":true}`
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	trusted := setup(t, p.srv.URL, fmt.Sprintf("caFile: %q", ca))
	if r := trusted.do("Bearer tok"); r.rej != nil {
		t.Errorf("with caFile: %v", r.rej)
	}
	untrusted := setup(t, p.srv.URL, "")
	if r := untrusted.do("Bearer tok"); r.rej == nil || r.rej.Status != 503 {
		t.Errorf("self-signed server without caFile: got %v, want 503", r.rej)
	}
}

// TestCAFileRotation: a trust bundle rotated on disk verifies the next
// handshake with the introspection server, without a reload.
func TestCAFileRotation(t *testing.T) {
	p := newIdP(t, true)
	p.answers["tok"] = `{"active":true}`
	ca := filepath.Join(t.TempDir(), "ca.pem")
	write := func(der []byte) {
		t.Helper()
		if err := os.WriteFile(ca+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(ca+".tmp", ca); err != nil {
			t.Fatal(err)
		}
	}
	write(otherCert(t)) // the bundle first holds another certificate
	f := setup(t, p.srv.URL, fmt.Sprintf("caFile: %q", ca))
	if r := f.do("Bearer tok"); r.rej == nil || r.rej.Status != 503 {
		t.Fatalf("a server the bundle does not trust: got %v, want 503", r.rej)
	}
	write(p.srv.Certificate().Raw)
	deadline := time.Now().Add(10 * time.Second)
	for f.do("Bearer tok").rej != nil {
		if time.Now().After(deadline) {
			t.Fatal("the rotated bundle is not used")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// otherCert is a self-signed certificate no test server uses.
func otherCert(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestValidate(t *testing.T) {
	f := func(policies string, want ...string) {
		t.Helper()
		_, err := compile(t, policies, chaintest.Options{ValidateOnly: true})
		if err == nil {
			t.Fatalf("%s: no error, want %q", policies, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	f("- token-introspection", "gw.yaml:12:11: token-introspection: url is required")
	f("- token-introspection:\n    url: ftp://x/introspect\n    clientId: a\n    clientSecret: b",
		`gw.yaml:13:18: token-introspection: url "ftp://x/introspect" is not an http(s) URL`)
	f("- token-introspection:\n    url: https://x/introspect\n    clientId: a",
		"gw.yaml:14:23: token-introspection: clientId and clientSecret are both required")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    cacheTtl: -1",
		"gw.yaml:16:23:", "cacheTtl must be a whole number from 0 to 31622400, not -1")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    cacheTtl: 1m",
		"gw.yaml:16:23:", `cacheTtl must be a whole number from 0 to 31622400, not "1m"`)
	// 18446744080 s in nanoseconds is 2⁶⁴ + 6.3e9: as a Duration, 6.3 s.
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    cacheTtl: 18446744080",
		"gw.yaml:16:23:", "cacheTtl must be a whole number from 0 to 31622400, not 18446744080")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    maxCacheEntries: -1",
		"gw.yaml:16:30:", fmt.Sprintf("maxCacheEntries must be a whole number from 0 to 2147483647 (0: the default, %d), not -1", DefaultMaxCacheEntries))
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    timeout: 61",
		"gw.yaml:16:22:", fmt.Sprintf("timeout must be a number from 0 to 60 (seconds; 0: the default, %g), not 61", DefaultTimeout.Seconds()))
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    timeout: -1",
		"gw.yaml:16:22:", "timeout must be a number from 0 to 60 (seconds; 0: the default, 3), not -1")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    timeout: 1e300",
		"gw.yaml:16:22:", "timeout must be a number from 0 to 60 (seconds; 0: the default, 3), not 1e300")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    caFile: /nonexistent.pem",
		"gw.yaml:16:21:", "cannot read caFile")
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    scopes: [ok, \"two words\"]",
		"gw.yaml:16:26:", `scope "two words"`)
	f("- token-introspection:\n    url: https://x/i\n    clientId: a\n    clientSecret: b\n    cacheTTL: 5",
		`unknown parameter "cacheTTL"`, "caFile, cacheTtl, clientId, clientSecret, inactiveCacheTtl, maxCacheEntries, scopes, timeout, url")
}

// TestSeedProvisionsOffline is the seed's policy: auth-server.com is not
// reachable from tests, and neither validate nor provisioning may dial it.
func TestSeedProvisionsOffline(t *testing.T) {
	const seed = `- token-introspection:
    url: "https://auth-server.com/introspect"
    clientId: shop-gateway
    clientSecret: not-a-real-secret
    cacheTtl: 60`
	for _, provision := range []bool{false, true} {
		c, err := compile(t, seed, chaintest.Options{ValidateOnly: !provision})
		if err != nil {
			t.Fatalf("provision %v: %v", provision, err)
		}
		if provision {
			in := c.Policies[0].Policy.(*Introspector)
			if in.hc.ConnsCount() != 0 {
				t.Error("provisioning opened a connection")
			}
		}
	}
}

func TestCachedHitDoesNotAllocate(t *testing.T) {
	p := newIdP(t, false)
	f := setup(t, p.srv.URL, "scopes: [orders:read]")
	p.answers["tok"] = fmt.Sprintf(goodAnswer, 1_700_003_600)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI("/orders/1")
	ex := chain.AcquireExchange()
	ex.Prepare(f.c)
	allocs := testing.AllocsPerRun(1000, func() {
		ctx.Request.Header.Set("Authorization", "Bearer tok")
		if rej := f.c.RunRequest(ctx, ex); rej != nil {
			t.Fatal(rej)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per cached request, want 0", allocs)
	}
	if p.calls.Load() != 1 {
		t.Errorf("%d calls, want 1", p.calls.Load())
	}
}

// isDate reports whether an encoding/json value may be an exp or nbf
// claim: absent, null or a number.
func isDate(v any) bool {
	switch v.(type) {
	case nil, float64:
		return true
	}
	return false
}

var b64tokenRe = regexp.MustCompile(`^(?i:bearer) +([A-Za-z0-9._~+/-]+=*) *$`)

// FuzzBearer holds the hand-written header parser to RFC 6750's grammar.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b-c_d~e+f/g==", "Bearer", "Bearer  x ", "Basic x", "Bearer a=b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, _ := bearer([]byte(v))
		m := b64tokenRe.FindStringSubmatch(v)
		want := ""
		if m != nil {
			want = m[1]
		}
		if string(tok) != want {
			t.Errorf("bearer(%q) = %q, grammar says %q", v, tok, want)
		}
	})
}

// FuzzParseResponse holds the jsonparser reading of an answer to
// encoding/json's: nothing encoding/json does not read as an active token
// may pass, and the claims must agree.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"active":true,"sub":"a\u00e9","scope":"x y","exp":1e9}`, `{"active":false}`,
		`{"active":true,"active":false}`, `{"active":true,"sub":1}`, `{"active":true,}`, `[true]`, ` {"active":true} `,
		`{"active":true,"exp":"1"}`, `{"active":true,"exp":-1,"nbf":1e10}`, `{"active":true,"nbf":null,"exp":1.5}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e, err := parseResponse([]byte(body))
		var ref map[string]any
		refErr := json.Unmarshal([]byte(body), &ref)
		active, isBool := ref["active"].(bool)
		if refErr != nil || !isBool {
			if err == nil && e.active {
				t.Fatalf("parseResponse(%q) says active; encoding/json: %v, active=%v", body, refErr, ref["active"])
			}
			return
		}
		if err != nil {
			// Refusing an ambiguous answer (a repeated or escaped member
			// name) fails closed, which is allowed; so is refusing dates
			// that are not numbers.
			if strings.Count(body, `"active"`) > 1 || strings.Contains(body, `\`) || !isDate(ref["exp"]) || !isDate(ref["nbf"]) {
				return
			}
			t.Fatalf("parseResponse(%q): %v; encoding/json read active=%v", body, err, active)
		}
		if active && (!isDate(ref["exp"]) || !isDate(ref["nbf"])) && strings.Count(body, `"exp"`)+strings.Count(body, `"nbf"`) <= 2 {
			t.Fatalf("parseResponse(%q) accepts a date that is not a number", body)
		}
		if e.active != active {
			t.Fatalf("parseResponse(%q) active=%v, encoding/json %v", body, e.active, active)
		}
		if !e.active {
			return
		}
		for name, got := range map[string]int64{"exp": e.exp, "nbf": e.nbf} {
			f, ok := ref[name].(float64)
			if !ok || strings.Count(body, `"`+name+`"`) > 1 || strings.Contains(body, `\`) {
				continue
			}
			want := int64(f * float64(time.Second))
			switch {
			case f <= 0:
				want = 1
			case f >= 1<<33 && name == "exp":
				want = 0
			case f >= 1<<33:
				want = math.MaxInt64
			}
			if got != want {
				t.Errorf("parseResponse(%q) %s = %d, encoding/json %v", body, name, got, f)
			}
		}
		for _, name := range []string{"sub", "client_id", "scope"} {
			got := map[string][]byte{"sub": e.sub, "client_id": e.clientID, "scope": e.scope}[name]
			want, _ := ref[name].(string)
			if utf8.ValidString(want) && utf8.Valid(got) && string(got) != want {
				t.Errorf("parseResponse(%q) %s = %q, encoding/json %q", body, name, got, want)
			}
		}
	})
}

// TestSeriesLabel: an id with a tab or a line separator in it labels this
// series as it labels the gateway's own (flexgate_requests_total): as
// written, not as Go's \t or \u2028, which Prometheus reads back as other
// text.
func TestSeriesLabel(t *testing.T) {
	set := metrics.NewSet()
	newPolicyMetrics(set, "a\tb\"c\u2028")
	want := "flexgate_introspection_requests_total{route=\"a\tb\\\"c\u2028\",result=\"active\"}"
	if !slices.Contains(set.ListMetricNames(), want) {
		t.Errorf("series %q missing from %q", want, set.ListMetricNames())
	}
}

// TestCAFileBesideTheConfig: a relative caFile names a bundle beside the
// config file that names it, wherever the gateway runs from.
func TestCAFileBesideTheConfig(t *testing.T) {
	p := newIdP(t, true)
	p.answers["tok"] = `{"active":true}`
	dir := t.TempDir()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "idp-ca.pem"), pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gw.yaml")
	doc := chaintest.Gateway(fmt.Sprintf("- token-introspection: {url: %q, clientId: gateway, clientSecret: gw&secret, caFile: idp-ca.pem}", p.srv.URL))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	c := chaintest.CompileFile(t, path).Chains[0]
	f := &fixture{c: c, in: c.Policies[0].Policy.(*Introspector)}
	if r := f.do("Bearer tok"); r.rej != nil {
		t.Errorf("with the bundle beside the config: %v", r.rej)
	}
}

// TestServerLogNamesWhatFailed: the log says whether the introspection
// server could not be reached or answered with something that is no HTTP
// answer, so that an operator looks at the network or at the server.
func TestServerLogNamesWhatFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Read(make([]byte, 4096))
				_, _ = c.Write([]byte("SMTP 220 not http\r\n\r\n"))
			}()
		}
	}()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneURL := "http://" + gone.Addr().String() + "/introspect"
	gone.Close()
	for _, tc := range []struct{ url, want string }{
		{"http://" + ln.Addr().String() + "/introspect", "sent no valid answer"},
		{goneURL, "cannot reach introspection server"},
	} {
		var logs bytes.Buffer
		f := setup(t, tc.url, "timeout: 2")
		f.in.logs.logger = slog.New(slog.NewTextHandler(&logs, nil))
		if r := f.do("Bearer t"); r.rej == nil || r.rej.Status != 503 {
			t.Fatalf("%s: got %v, want 503", tc.url, r.rej)
		}
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("%s: the log does not say %q: %s", tc.url, tc.want, logs.String())
		}
	}
}
