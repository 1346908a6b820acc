package all_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/examples"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestSeedSecuredChain runs examples/secured-gateway-config.yaml as it is
// — only the two hosts it names are pointed at servers of the test, since
// product-service and auth-server.com do not exist here — with a client
// registry from a --clients file, and checks all six steps of its chain.
func TestSeedSecuredChain(t *testing.T) {
	s := startSeed(t, 100)
	gw, up := s.gw, s.up
	calls, down := &s.calls, &s.down
	good := map[string]string{
		"client_id": "shop-app", "client_secret": "shop-secret",
		"Authorization": "Bearer good-token", "X-Internal-Foo": "internal", "X-Internal-Bar": "internal",
	}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for hk, hv := range good {
			h[hk] = hv
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	sent := 0
	do := func(query string, h map[string]string) *fasthttp.Response {
		sent++
		return proxytest.Do(t, "GET", gw.URL+"/api/products/PRD-42"+query, h, nil)
	}
	securityHeaders := func(name string, resp *fasthttp.Response) {
		t.Helper()
		if got := string(resp.Header.Peek("Strict-Transport-Security")); got != "max-age=31536000; includeSubDomains" {
			t.Errorf("%s: Strict-Transport-Security %q", name, got)
		}
		if got := string(resp.Header.Peek("X-Content-Type-Options")); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, got)
		}
	}

	// A good caller passes every step; the upstream sees the sanitised request.
	resp := do("?productId=PRD-42&quantity=2", good)
	if resp.StatusCode() != 200 {
		t.Fatalf("good caller: %d %s", resp.StatusCode(), resp.Body())
	}
	securityHeaders("200", resp)
	if resp.Header.Peek("X-Ratelimit-Limit") == nil {
		t.Error("no X-RateLimit-Limit on a response of the rate-limited route")
	}
	fasthttp.ReleaseResponse(resp)
	got := up.Last(t)
	for _, h := range []string{"Authorization", "X-Internal-Foo", "X-Internal-Bar", "Client_secret"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("upstream saw %s: %q", h, v)
		}
	}
	if got.Header["X-Api-Version"] != "v1" {
		t.Errorf("upstream saw X-API-Version %q, want v1", got.Header["X-Api-Version"])
	}
	if _, err := time.Parse(time.RFC3339, got.Header["X-Gateway-Time"]); err != nil {
		t.Errorf("upstream saw X-Gateway-Time %q: %v", got.Header["X-Gateway-Time"], err)
	}

	// Each step's rejection, with its status, reason and the security headers.
	reject := func(name, query string, h map[string]string, status int, reason string) map[string]any {
		t.Helper()
		before := up.Count.Load()
		resp := do(query, h)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status || string(resp.Header.Peek("X-Flexgate-Error")) != reason {
			t.Errorf("%s: %d %q, want %d %q; body %s", name, resp.StatusCode(),
				resp.Header.Peek("X-Flexgate-Error"), status, reason, resp.Body())
		}
		securityHeaders(name, resp)
		if up.Count.Load() != before {
			t.Errorf("%s: the request reached the upstream", name)
		}
		var body map[string]any
		if err := json.Unmarshal(resp.Body(), &body); err != nil {
			t.Errorf("%s: body is not JSON: %s", name, resp.Body())
		}
		return body
	}
	body := reject("bad query", "?productId=42&quantity=0", good, 400, "validation_failed")
	if v, _ := json.Marshal(body["violations"]); !strings.Contains(string(v), `"/productId"`) || !strings.Contains(string(v), `"/quantity"`) {
		t.Errorf("violations %s do not name /productId and /quantity", v)
	}
	if body["policy"] != "request-validation" || body["route"] != "product-catalog" {
		t.Errorf("rejection body names policy %v route %v", body["policy"], body["route"])
	}
	reject("unlisted parameter", "?productId=PRD-42&quantity=2&debug=1", good, 400, "validation_failed")
	reject("unknown client", "?productId=PRD-42&quantity=2", with("client_id", "stranger"), 401, "invalid_client")
	reject("wrong secret", "?productId=PRD-42&quantity=2", with("client_secret", "guess"), 401, "invalid_client")
	reject("no token", "?productId=PRD-42&quantity=2", with("Authorization", ""), 401, "missing_token")
	reject("inactive token", "?productId=PRD-42&quantity=2", with("Authorization", "Bearer revoked"), 401, "invalid_token")
	callsBefore := calls.Load()
	down.Store(true)
	reject("IdP down, new token", "?productId=PRD-42&quantity=2", with("Authorization", "Bearer other"), 503, "introspection_unavailable")
	if calls.Load() == callsBefore {
		t.Error("the IdP was not asked about a new token")
	}
	// The good token is cached: the IdP being down does not matter to it.
	resp = do("?productId=PRD-42&quantity=2", good)
	if resp.StatusCode() != 200 {
		t.Errorf("cached token while the IdP is down: %d", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)

	// Rate limiting: 100 per client address (a year here, see startSeed); the 101st is refused.
	for sent < 100 {
		r := do("?productId=PRD-42&quantity=2", good)
		if r.StatusCode() != 200 {
			t.Fatalf("request %d: %d %s", sent, r.StatusCode(), r.Body())
		}
		fasthttp.ReleaseResponse(r)
	}
	body = reject("101st request", "?productId=PRD-42&quantity=2", good, 429, "rate_limited")
	if body["policy"] != "rate-limiting" {
		t.Errorf("429 names policy %v", body["policy"])
	}
}

// seedGateway is the seed's secured gateway with the test's servers.
type seedGateway struct {
	gw    *proxytest.Gateway
	up    *proxytest.Upstream
	calls atomic.Int64
	down  atomic.Bool
}

// startSeed serves the seed file with the test's upstream and IdP and the
// rate limit set to limit a year (the seed's own is 100 a minute), and the
// extra policies after the seed's.
func startSeed(t testing.TB, limit int, extra ...config.PolicySpec) *seedGateway {
	t.Helper()
	if len(extra) == 0 {
		return startSeedWith(t, limit, nil)
	}
	return startSeedWith(t, limit, func(route *config.Route) { route.Policies = append(route.Policies, extra...) })
}

// startSeedWith is startSeed with edit, when not nil, changing the route's
// policies before the gateway starts.
func startSeedWith(t testing.TB, limit int, edit func(route *config.Route)) *seedGateway {
	t.Helper()
	s := &seedGateway{}
	calls, down := &s.calls, &s.down
	seedFile := examples.Path(t, "secured-gateway-config.yaml")
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway")
	t.Setenv("INTROSPECTION_CLIENT_SECRET", "idp-secret")

	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if id, secret, _ := r.BasicAuth(); id != "gateway" || secret != "idp-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.PostFormValue("token") == "good-token" {
			fmt.Fprint(w, `{"active":true,"sub":"alice","client_id":"shop-app","scope":"products:read"}`)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	}))
	t.Cleanup(idp.Close)
	up := proxytest.StartUpstream(t)

	dir := t.TempDir()
	clientsFile := filepath.Join(dir, "clients.yaml")
	if err := os.WriteFile(clientsFile, []byte("clients:\n  - id: shop-app\n    secret: shop-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{seedFile})
	if err != nil {
		t.Fatalf("the seed does not load: %v", err)
	}
	clients, err := config.LoadClients(clientsFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clients = append(cfg.Clients, clients...)
	route := &cfg.Routes[0]
	route.Upstream.Targets[0].Host = up.Addr
	for i := range route.Policies {
		if p := &route.Policies[i]; p.Name == "token-introspection" {
			chain.Field(p.Params, "url").Value = idp.URL + "/introspect"
		}
	}
	for i := range route.Policies {
		if p := &route.Policies[i]; p.Name == "rate-limiting" {
			chain.Field(p.Params, "limit").Value = fmt.Sprint(limit)
			// The seed's 60 s refills a token every 0.6 s, which a
			// loaded machine takes to run the test: over a year none
			// comes back while it runs.
			chain.Field(p.Params, "period").Value = "31622400"
		}
	}
	if edit != nil {
		edit(route)
	}
	s.gw = proxytest.StartConfig(t, cfg, dir)
	s.up = up
	return s

}

// TestSeedNeedsItsEnvironment: the seed's secrets come from the
// environment; without them the config does not compile, and the error
// says which variable, where.
func TestSeedNeedsItsEnvironment(t *testing.T) {
	seedFile := examples.Path(t, "secured-gateway-config.yaml")
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway")
	os.Unsetenv("INTROSPECTION_CLIENT_SECRET")
	cfg, err := config.Load([]string{seedFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clients = []config.Client{{ID: "shop-app", Secret: "s"}}
	_, err = chain.CompileAll(cfg, nil, chain.Options{})
	if err == nil || !strings.Contains(err.Error(), "secured-gateway-config.yaml:40:27: token-introspection: environment variable INTROSPECTION_CLIENT_SECRET is not set") {
		t.Fatalf("error = %v", err)
	}
	// /config shows the reference, not the value.
	view, _ := json.Marshal(cfg.Redacted())
	if !strings.Contains(string(view), "$env.INTROSPECTION_CLIENT_ID") {
		t.Errorf("/config view lost the $env reference: %s", view)
	}
}
