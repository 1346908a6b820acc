package clientid

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
)

// registry is the client registry of the tests, as spec.clients entries:
// one client with its secret, one with the SHA-256 of its secret.
func registry() []string {
	return []string{
		"{id: app-1, secret: s3cret}",
		fmt.Sprintf("{id: app-2, secretHash: \"sha256:%x\"}", sha256.Sum256([]byte("hashed-secret"))),
	}
}

// compile builds the chain of a route "orders" on /orders/* from the YAML
// of its policies list, with clients as the client registry. The list
// begins on line chaintest.PoliciesLine (12) of the file, indented by 8
// columns: its line 1, column 3 is the file's 12:11.
func compile(t testing.TB, clients []string, policies string) (*chain.Chain, *metrics.Set, error) {
	t.Helper()
	doc := chaintest.Doc{RouteID: "orders", Path: "/orders/*", Clients: clients, Policies: policies}
	set := metrics.NewSet()
	c, _, err := chaintest.CompileRoute(t, doc, chaintest.Options{Metrics: set})
	return c, set, err
}

func mustCompile(t testing.TB, policies string) (*chain.Chain, *metrics.Set) {
	t.Helper()
	c, set, err := compile(t, registry(), policies)
	if err != nil {
		t.Fatal(err)
	}
	return c, set
}

type request struct {
	ctx *fasthttp.RequestCtx
	ex  *chain.Exchange
}

func newRequest(c *chain.Chain, headers ...string) request {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI("/orders/1")
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Add(headers[i], headers[i+1])
	}
	ex := chain.AcquireExchange()
	ex.RouteID = c.RouteID
	ex.Prepare(c)
	return request{ctx, ex}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestKnownClientPasses(t *testing.T) {
	c, set := mustCompile(t, "- client-id-enforcement")
	f := func(id, secret string) {
		t.Helper()
		r := newRequest(c, "client_id", id, "client_secret", secret, "X-Keep", "yes")
		if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
			t.Fatalf("%s: rejected: %v", id, rej)
		}
		if got := string(r.ex.Value(clientIDValue)); got != id {
			t.Errorf("ex.ClientID = %q, want %q", got, id)
		}
		if v := r.ctx.Request.Header.Peek("client_secret"); v != nil {
			t.Errorf("the secret header would reach the upstream: %q", v)
		}
		if v := r.ctx.Request.Header.Peek("client_id"); string(v) != id {
			t.Errorf("client_id header = %q, want it kept for the upstream", v)
		}
		if v := r.ctx.Request.Header.Peek("X-Keep"); string(v) != "yes" {
			t.Errorf("unrelated header lost: %q", v)
		}
	}
	f("app-1", "s3cret")
	f("app-1", "s3cret")
	f("app-2", "hashed-secret")
	if n := set.GetOrCreateCounter(`flexgate_client_requests_total{route="orders",client="app-1"}`).Get(); n != 2 {
		t.Errorf("app-1 counter = %d, want 2", n)
	}
	if n := set.GetOrCreateCounter(`flexgate_client_requests_total{route="orders",client="app-2"}`).Get(); n != 1 {
		t.Errorf("app-2 counter = %d, want 1", n)
	}
}

func TestRejections(t *testing.T) {
	plain, _ := mustCompile(t, "- client-id-enforcement")
	withBasic, _ := mustCompile(t, "- client-id-enforcement: {basicAuth: true}")
	f := func(c *chain.Chain, wantReason, wantChallenge string, headers ...string) {
		t.Helper()
		r := newRequest(c, headers...)
		rej := c.RunRequest(r.ctx, r.ex)
		if rej == nil {
			t.Fatalf("%v: passed, want %s", headers, wantReason)
		}
		if rej.Status != 401 || rej.Reason != wantReason || rej.Policy != "client-id-enforcement" {
			t.Errorf("%v: got %d %s by %s, want 401 %s", headers, rej.Status, rej.Reason, rej.Policy, wantReason)
		}
		if got := string(r.ctx.Response.Header.Peek("WWW-Authenticate")); got != wantChallenge {
			t.Errorf("%v: WWW-Authenticate = %q, want %q", headers, got, wantChallenge)
		}
		if len(r.ex.Value(clientIDValue)) != 0 {
			t.Errorf("%v: ex.ClientID = %q after a rejection", headers, r.ex.Value(clientIDValue))
		}
		if strings.Contains(rej.Message, "s3cret") {
			t.Errorf("message leaks a secret: %s", rej.Message)
		}
	}
	f(plain, "missing_credentials", "")
	f(plain, "missing_credentials", "", "client_id", "app-1")
	f(plain, "missing_credentials", "", "client_secret", "s3cret")
	f(plain, "invalid_client", "", "client_id", "nobody", "client_secret", "s3cret")
	f(plain, "invalid_client", "", "client_id", "app-1", "client_secret", "wrong")
	f(plain, "invalid_client", "", "client_id", "app-1", "client_secret", "s3cret ")
	f(plain, "invalid_client", "", "client_id", "app-2", "client_secret", "s3cret")
	// A secretHash entry is not a password: sending the hash itself fails.
	h := sha256.Sum256([]byte("hashed-secret"))
	f(plain, "invalid_client", "", "client_id", "app-2", "client_secret", string(h[:]))
	f(plain, "missing_credentials", "", "Authorization", basic("app-1", "s3cret"))

	const challenge = `Basic realm="flexgate"`
	f(withBasic, "missing_credentials", challenge)
	f(withBasic, "missing_credentials", challenge, "Authorization", "Bearer abc")
	f(withBasic, "missing_credentials", challenge, "Authorization", "Basic !!!")
	f(withBasic, "invalid_client", challenge, "Authorization", basic("app-1", "nope"))
	f(withBasic, "invalid_client", challenge, "client_id", "app-1", "client_secret", "nope")
}

func TestBasicAuth(t *testing.T) {
	c, _ := mustCompile(t, "- client-id-enforcement: {basicAuth: true}")
	for _, auth := range []string{basic("app-1", "s3cret"), "bAsIc " + basic("app-1", "s3cret")[6:]} {
		r := newRequest(c, "Authorization", auth)
		if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
			t.Fatalf("%s: rejected: %v", auth, rej)
		}
		if string(r.ex.Value(clientIDValue)) != "app-1" {
			t.Errorf("ex.ClientID = %q", r.ex.Value(clientIDValue))
		}
		if v := r.ctx.Request.Header.Peek("Authorization"); v != nil {
			t.Errorf("Basic credentials would reach the upstream: %q", v)
		}
	}
	// The headers win over Basic, so the Authorization header is left alone.
	r := newRequest(c, "client_id", "app-1", "client_secret", "s3cret", "Authorization", "Bearer tok")
	if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	if v := r.ctx.Request.Header.Peek("Authorization"); string(v) != "Bearer tok" {
		t.Errorf("Authorization = %q, want the bearer token kept for later steps", v)
	}
}

// TestDuplicateCredentials: the policy checks one copy of a credential
// header and the upstream may read another (the last, or the one CGI
// spells the same), so a request carrying two is refused.
func TestDuplicateCredentials(t *testing.T) {
	plain, _ := mustCompile(t, "- client-id-enforcement")
	withBasic, _ := mustCompile(t, "- client-id-enforcement: {basicAuth: true}")
	custom, _ := mustCompile(t, "- client-id-enforcement: {clientIdHeader: X-Client-Id, clientSecretHeader: X-Client-Secret}")
	f := func(c *chain.Chain, wantInMessage string, headers ...string) {
		t.Helper()
		r := newRequest(c, headers...)
		rej := c.RunRequest(r.ctx, r.ex)
		if rej == nil {
			t.Fatalf("%v: passed, want 400 duplicate_credentials", headers)
		}
		if rej.Status != 400 || rej.Reason != "duplicate_credentials" || rej.Policy != "client-id-enforcement" {
			t.Errorf("%v: got %d %s by %s, want 400 duplicate_credentials", headers, rej.Status, rej.Reason, rej.Policy)
		}
		if !strings.Contains(rej.Message, wantInMessage) {
			t.Errorf("%v: message %q does not contain %q", headers, rej.Message, wantInMessage)
		}
		if strings.Contains(rej.Message, "s3cret") {
			t.Errorf("message leaks a secret: %s", rej.Message)
		}
		if len(r.ex.Value(clientIDValue)) != 0 {
			t.Errorf("%v: ex.ClientID = %q after a rejection", headers, r.ex.Value(clientIDValue))
		}
	}
	f(plain, "client_id header more than once",
		"client_id", "app-1", "client_secret", "s3cret", "client_id", "app-2")
	f(plain, "client_id header more than once",
		"client_id", "app-1", "client_secret", "s3cret", "Client_ID", "app-1")
	f(plain, "client-id counts as the same header",
		"client_id", "app-1", "client_secret", "s3cret", "client-id", "app-2")
	f(plain, "client_secret header more than once",
		"client_id", "app-1", "client_secret", "s3cret", "client_secret", "other")
	f(plain, "client_secret header more than once",
		"client_id", "app-1", "client-secret", "x", "client_secret", "s3cret")
	f(custom, "X-Client-Id header more than once",
		"X-Client-Id", "app-1", "X-Client-Secret", "s3cret", "x_client_id", "app-2")
	f(withBasic, "Authorization header more than once",
		"Authorization", basic("app-1", "s3cret"), "Authorization", basic("app-2", "x"))
	f(withBasic, "as HTTP Basic credentials",
		"client_id", "app-1", "client_secret", "s3cret", "Authorization", basic("app-2", "x"))
	f(withBasic, "as HTTP Basic credentials",
		"client_id", "app-1", "client_secret", "s3cret", "Authorization", "basic")

	// Without basicAuth the policy does not read Authorization: two of
	// them are for a later step to judge.
	r := newRequest(plain, "client_id", "app-1", "client_secret", "s3cret", "Authorization", "Bearer a", "Authorization", "Bearer b")
	if rej := plain.RunRequest(r.ctx, r.ex); rej != nil {
		t.Errorf("two Authorization headers on a route without basicAuth: %v", rej)
	}
}

// TestCredentialsInTheQueryRefused: an upstream that reads the client id
// from the query (a Mule app's attributes.queryParams.client_id) would
// credit the call to whoever the query names, while the policy checked the
// headers; such a request is refused, under every name an upstream reads
// as the header's, with or without the headers.
func TestCredentialsInTheQueryRefused(t *testing.T) {
	plain, _ := mustCompile(t, "- client-id-enforcement")
	custom, _ := mustCompile(t, "- client-id-enforcement: {clientIdHeader: X-Client-Id, clientSecretHeader: X-Client-Secret}")
	flex, _ := mustCompile(t, `- client-id-enforcement-flex: {clientIdExpression: "#[attributes.headers['x-app']]"}`)
	f := func(c *chain.Chain, query, want string, headers ...string) {
		t.Helper()
		r := newRequest(c, headers...)
		r.ctx.Request.SetRequestURI("/orders/1?" + query)
		rej := c.RunRequest(r.ctx, r.ex)
		if rej == nil || rej.Status != 400 || rej.Reason != "duplicate_credentials" {
			t.Fatalf("?%s %v: got %v, want 400 duplicate_credentials", query, headers, rej)
		}
		if !strings.Contains(rej.Message, want) {
			t.Errorf("?%s: message %q does not contain %q", query, rej.Message, want)
		}
		if len(r.ex.Value(clientIDValue)) != 0 {
			t.Errorf("?%s: $client.id = %q after a rejection", query, r.ex.Value(clientIDValue))
		}
	}
	mine := []string{"client_id", "app-1", "client_secret", "s3cret"}
	const idInQuery = "carries client_id as a query parameter, and client-id-enforcement reads it from the client_id header"
	f(plain, "client_id=app-2", idInQuery, mine...)
	f(plain, "client_id=app-2", idInQuery)
	for _, q := range []string{"CLIENT_ID=app-2", "client.id=app-2", "client-id=app-2", "client_id[]=app-2", "x=1&Client%20Id=app-2"} {
		f(plain, q, idInQuery, mine...)
	}
	f(plain, "client_secret=other", "carries client_secret as a query parameter", mine...)
	f(custom, "x_client_id=app-2", "carries X-Client-Id as a query parameter", "X-Client-Id", "app-1", "X-Client-Secret", "s3cret")
	f(flex, "X-App=app-2", "carries x-app as a query parameter", "X-App", "app-1", "client_secret", "s3cret")

	// Other parameters pass.
	r := newRequest(plain, mine...)
	r.ctx.Request.SetRequestURI("/orders/1?client=x&id=y&client_ids=z")
	if rej := plain.RunRequest(r.ctx, r.ex); rej != nil {
		t.Errorf("other parameters: %v", rej)
	}
}

// TestCredentialHeadersInAnySpelling: client-id and client-secret are the
// client_id and client_secret headers to an upstream that reads '-' and '_'
// alike, and to the policy: it checks them, and removes the secret in the
// spelling it came in.
func TestCredentialHeadersInAnySpelling(t *testing.T) {
	c, _ := mustCompile(t, "- client-id-enforcement")
	r := newRequest(c, "Client-Id", "app-1", "client-secret", "s3cret")
	if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	if got := string(r.ex.Value(clientIDValue)); got != "app-1" {
		t.Errorf("$client.id = %q, want app-1", got)
	}
	if v := r.ctx.Request.Header.Peek("client-secret"); v != nil {
		t.Errorf("the secret would reach the upstream: %q", v)
	}
	r = newRequest(c, "client-id", "app-1", "client-secret", "wrong")
	if rej := c.RunRequest(r.ctx, r.ex); rej == nil || rej.Reason != "invalid_client" {
		t.Errorf("wrong secret in client-secret: %v", rej)
	}
}

func TestCustomHeaderNames(t *testing.T) {
	c, _ := mustCompile(t, "- client-id-enforcement: {clientIdHeader: X-Client-Id, clientSecretHeader: X-Client-Secret}")
	r := newRequest(c, "x-client-id", "app-1", "X-CLIENT-SECRET", "s3cret")
	if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	if v := r.ctx.Request.Header.Peek("X-Client-Secret"); v != nil {
		t.Errorf("secret header kept: %q", v)
	}
	r = newRequest(c, "client_id", "app-1", "client_secret", "s3cret")
	if rej := c.RunRequest(r.ctx, r.ex); rej == nil || rej.Reason != "missing_credentials" {
		t.Errorf("default headers accepted after renaming: %v", rej)
	}
	if !strings.Contains(r.ex.Rejected.Message, "X-Client-Id and X-Client-Secret") {
		t.Errorf("message does not name the configured headers: %s", r.ex.Rejected.Message)
	}
}

func TestValidate(t *testing.T) {
	f := func(clients []string, policies string, want ...string) {
		t.Helper()
		_, _, err := compile(t, clients, policies)
		if err == nil {
			t.Fatalf("%s: no error, want %q", policies, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	f(nil, "- client-id-enforcement",
		`gw.yaml:12:11: client-id-enforcement: route "orders" uses client-id-enforcement but no client registry is configured`,
		"add spec.clients", "--clients FILE")
	f(registry(), "- client-id-enforcement:\n    clientIdHeader: \"bad header\"",
		"gw.yaml:13:29:", `clientIdHeader "bad header" is not a valid header name`)
	f(registry(), "- client-id-enforcement:\n    clientSecretHeader: Client_ID",
		"gw.yaml:13:33:", "give the secret its own header")
	f(registry(), "- client-id-enforcement:\n    clientSecretHeader: Client-ID",
		"gw.yaml:13:33:", "the same header (case, '-' and '_' aside)", "give the secret its own header")
	f(registry(), "- client-id-enforcement:\n    clientIdHeader: A-B-C-D-E-F-G-H",
		"gw.yaml:13:29:", "clientIdHeader:", "more than 6 '-' and '_'")
	f(registry(), "- client-id-enforcement:\n    basicAuht: true",
		"gw.yaml:13:13:", `unknown parameter "basicAuht"`, "basicAuth, clientIdHeader, clientSecretHeader")
}

// TestValidateRegistryBuiltInCode: a client registry the loader did not
// build (the loader refuses a client without a secret) is checked as well.
func TestValidateRegistryBuiltInCode(t *testing.T) {
	cfg := &config.Config{
		Clients: []config.Client{{ID: "x", Pos: config.Pos{File: "clients.yaml", Line: 3, Col: 5}}},
		Routes:  []config.Route{{ID: "orders", Policies: []config.PolicySpec{{Name: "client-id-enforcement"}}}},
	}
	_, err := chain.Compile(cfg, &cfg.Routes[0], chain.Options{})
	if want := "clients.yaml:3:5: client \"x\" has neither secret nor secretHash"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

func TestSuccessDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct{ policies, k1, v1, k2, v2 string }{
		{"- client-id-enforcement", "client_id", "app-1", "client_secret", "s3cret"},
		{"- client-id-enforcement: {basicAuth: true}", "Authorization", basic("app-2", "hashed-secret"), "X-Other", "1"},
	} {
		c, _ := mustCompile(t, tc.policies)
		r := newRequest(c)
		allocs := testing.AllocsPerRun(1000, func() {
			r.ctx.Request.Header.Set(tc.k1, tc.v1)
			r.ctx.Request.Header.Set(tc.k2, tc.v2)
			if rej := c.RunRequest(r.ctx, r.ex); rej != nil {
				t.Fatal(rej)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.policies, allocs)
		}
	}
}

// TestParseBasicReadsOnlyBase64: encoding/base64 would skip line breaks
// inside the credentials; parseBasic refuses them.
func TestParseBasicReadsOnlyBase64(t *testing.T) {
	var buf [maxBasic]byte
	for _, v := range []string{"Basic YWxpY2U6\nd29uZGVybGFuZA==", "Basic YWxpY2U6\r\nd29uZGVybGFuZA==", "Basic YWxpY2U6d29uZGVybGFuZA==\r"} {
		if id, secret, ok := parseBasic([]byte(v), buf[:]); ok {
			t.Errorf("%q: read %q, %q", v, id, secret)
		}
	}
}

// FuzzParseBasic holds parseBasic to what net/http accepts as Basic
// credentials.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{basic("a", "b"), "Basic Og==", "basic YTpiOmM=", "Basic", "Basic  YTpi", "Bearer x", basic("", "x")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req := http.Request{Header: http.Header{"Authorization": {v}}}
		wantID, wantSecret, wantOK := req.BasicAuth()
		var buf [maxBasic]byte
		id, secret, ok := parseBasic([]byte(v), buf[:])
		if len(v) > 700 {
			return // beyond maxBasic parseBasic refuses on purpose
		}
		if strings.ContainsAny(v, "\r\n") {
			if ok {
				t.Errorf("parseBasic(%q) reads credentials across a line break", v)
			}
			return // encoding/base64, and so net/http, skip them
		}
		if ok != wantOK || string(id) != wantID || string(secret) != wantSecret {
			t.Errorf("parseBasic(%q) = %q, %q, %v; net/http says %q, %q, %v", v, id, secret, ok, wantID, wantSecret, wantOK)
		}
	})
}

// TestSeriesLabel: an id with a tab or a line separator in it labels this
// series as it labels the gateway's own (flexgate_requests_total): as
// written, not as Go's \t or \u2028, which Prometheus reads back as other
// text.
func TestSeriesLabel(t *testing.T) {
	want := "flexgate_client_requests_total{route=\"a\tb\\\"c\",client=\"app\u2028\"}"
	if got := requestsName("a\tb\"c", "app\u2028"); got != want {
		t.Errorf("requestsName = %q, want %q", got, want)
	}
}
