package jwt_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/policies/jwt"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// jwksServer is an identity provider's JWK set endpoint on 127.0.0.1.
type jwksServer struct {
	*httptest.Server
	calls atomic.Int64
	down  atomic.Bool
	// served is closed when the set is first served.
	served chan struct{}
	once   sync.Once
}

func startJWKS(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{served: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
		s.once.Do(func() { close(s.served) })
	}))
	t.Cleanup(s.Close)
	return s
}

func gatewayYAML(upstream, policies string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: jwt-e2e}
spec:
  routes:
    - id: orders
      path: ["/orders/*"]
      upstream: {url: "%s"}
      policies:
%s`, upstream, policies)
}

// TestEndToEnd runs jwt-validation with a JWKS on a real gateway: the
// claims reach a later policy and the upstream, the refusals are the
// gateway's JSON errors.
func TestEndToEnd(t *testing.T) {
	key := jwt.RSAKeyForTest()
	idp := startJWKS(t, jwt.JWKSForTest(t, &key.PublicKey, "k1"))
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, fmt.Sprintf(`        - jwt-validation:
            jwks: {url: "%s/jwks"}
            issuer: https://idp.example.com
            audiences: [orders]
        - request-headers-remove: {headers: [Authorization]}
        - request-headers-set:
            headers:
              X-User: $token.sub
              X-Client: $client.id
              X-Tier: "#[vars.claimSet.tier]"
`, idp.URL)))
	exp := time.Now().Add(time.Hour).Unix()
	good := jwt.SignForTest(t, key, "k1", fmt.Sprintf(`{"iss":"https://idp.example.com","aud":"orders","sub":"alice","client_id":"shop-app","tier":"gold","exp":%d}`, exp))
	resp := proxytest.Do(t, "GET", gw.URL+"/orders/1", map[string]string{"Authorization": "Bearer " + good}, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("good token: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	got := up.Last(t).Header
	for h, want := range map[string]string{"X-User": "alice", "X-Client": "shop-app", "X-Tier": "gold", "Authorization": ""} {
		if got[h] != want {
			t.Errorf("upstream saw %s: %q, want %q", h, got[h], want)
		}
	}

	for _, c := range []struct {
		name, auth, reason, challenge string
		status                        int
	}{
		{"no token", "", "missing_token", `Bearer realm="flexgate"`, 400},
		{"wrong audience", "Bearer " + jwt.SignForTest(t, key, "k1", fmt.Sprintf(`{"iss":"https://idp.example.com","aud":"billing","exp":%d}`, exp)), "invalid_token", `Bearer realm="flexgate", error="invalid_token"`, 401},
		{"garbage", "Bearer abc.def.ghi", "invalid_token", `Bearer realm="flexgate", error="invalid_token"`, 401},
	} {
		before := up.Count.Load()
		h := map[string]string{}
		if c.auth != "" {
			h["Authorization"] = c.auth
		}
		resp := proxytest.Do(t, "GET", gw.URL+"/orders/1", h, nil)
		var body map[string]any
		_ = json.Unmarshal(resp.Body(), &body)
		if resp.StatusCode() != c.status || string(resp.Header.Peek("X-Flexgate-Error")) != c.reason ||
			body["policy"] != "jwt-validation" || string(resp.Header.Peek("WWW-Authenticate")) != c.challenge {
			t.Errorf("%s: %d %q %q %s", c.name, resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Header.Peek("WWW-Authenticate"), resp.Body())
		}
		if up.Count.Load() != before {
			t.Errorf("%s: the request reached the upstream", c.name)
		}
		fasthttp.ReleaseResponse(resp)
	}
	metrics := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(metrics)
	for _, want := range []string{`flexgate_policy_rejections_total{route="orders",policy="jwt-validation",reason="invalid_token"} 2`,
		`flexgate_jwt_jwks_fetches_total{route="orders",result="ok"} 1`} {
		if !strings.Contains(string(metrics.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A flood of tokens with made-up kids, signed by a key the identity
	// provider does not know: each is refused, and the JWK set is fetched
	// again at most once per MinRefreshInterval, however many there are.
	attacker := jwt.OtherRSAKeyForTest()
	const flood = 60
	toks := make([]string, flood)
	for i := range toks {
		toks[i] = jwt.SignForTest(t, attacker, fmt.Sprintf("random-%d", i), fmt.Sprintf(`{"iss":"https://idp.example.com","aud":"orders","exp":%d}`, exp))
	}
	before, began := idp.calls.Load(), time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += 4 {
				resp := proxytest.Do(t, "GET", gw.URL+"/orders/1", map[string]string{"Authorization": "Bearer " + toks[i]}, nil)
				if resp.StatusCode() != 401 {
					t.Errorf("random kid %d: %d %s", i, resp.StatusCode(), resp.Body())
				}
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	wg.Wait()
	fetches := idp.calls.Load() - before
	if most := 1 + int64(time.Since(began)/jwt.MinRefreshInterval); fetches > most {
		t.Errorf("%d tokens with unknown kids made %d JWKS fetches in %s, want at most %d", flood, fetches, time.Since(began), most)
	}
	metrics = proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(metrics)
	for _, want := range []string{`flexgate_jwt_jwks_refresh_throttled_total{route="orders"}`} {
		if !strings.Contains(string(metrics.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEndToEndFlex: jwt-validation-flex answers with Flex Gateway's bodies,
// and 503 while no JWK set was ever fetched.
func TestEndToEndFlex(t *testing.T) {
	key := jwt.RSAKeyForTest()
	idp := startJWKS(t, jwt.JWKSForTest(t, &key.PublicKey, "k1"))
	idp.down.Store(true)
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, fmt.Sprintf(`        - jwt-validation-flex:
            jwtKeyOrigin: jwks
            jwksUrl: "%s/jwks"
            skipClientIdValidation: true
`, idp.URL)))
	tok := jwt.SignForTest(t, key, "k1", fmt.Sprintf(`{"sub":"alice","exp":%d}`, time.Now().Add(time.Hour).Unix()))
	check := func(name, auth string, status int, message string) {
		t.Helper()
		h := map[string]string{}
		if auth != "" {
			h["Authorization"] = auth
		}
		resp := proxytest.Do(t, "GET", gw.URL+"/orders/1", h, nil)
		defer fasthttp.ReleaseResponse(resp)
		var body map[string]any
		_ = json.Unmarshal(resp.Body(), &body)
		if resp.StatusCode() != status || (message != "" && body["error"] != message) {
			t.Errorf("%s: %d %s, want %d %q", name, resp.StatusCode(), resp.Body(), status, message)
		}
	}
	check("JWKS never fetched", "Bearer "+tok, 503, "")
	check("no token", "", 400, "JWT Token is required.")
	check("bad token", "Bearer a.b.c", 401, "Invalid token.")
	idp.down.Store(false)
	// The refresher fetches the set again after its backoff (1 s, then 2 s,
	// …); a request that comes while the fetch runs joins it.
	select {
	case <-idp.served:
	case <-time.After(20 * time.Second):
		t.Fatal("the JWK set was not fetched again after the endpoint came back")
	}
	// Served is not yet installed: the gateway reads and checks the set
	// after the IdP has written it, which on a busy machine takes a while.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp := proxytest.Do(t, "GET", gw.URL+"/orders/1", map[string]string{"Authorization": "Bearer " + tok}, nil)
		ok := resp.StatusCode() == 200
		fasthttp.ReleaseResponse(resp)
		if ok {
			break
		}
	}
	check("after the JWKS came back", "Bearer "+tok, 200, "")
}

// TestCachedTokenRoundTripDoesNotAllocate: a request whose JWT is cached
// goes through a real gateway, jwt-validation and a header step reading
// its claims, and counts every allocation in the process.
func TestCachedTokenRoundTripDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and race instrumentation allocate")
	}
	key := jwt.RSAKeyForTest()
	idp := startJWKS(t, jwt.JWKSForTest(t, &key.PublicKey, "k1"))
	up := proxytest.StartUpstream(t)
	up.Record = false
	gw := proxytest.Start(t, gatewayYAML(up.URL, fmt.Sprintf(`        - jwt-validation: {jwks: {url: "%s/jwks"}}
        - request-headers-set: {headers: {X-User: $token.sub, X-Tier: "#[vars.claimSet.tier]"}}
`, idp.URL)))
	tok := jwt.SignForTest(t, key, "k1", fmt.Sprintf(`{"sub":"alice","tier":"gold","exp":%d}`, time.Now().Add(time.Hour).Unix()))
	addr := strings.TrimPrefix(gw.URL, "http://")
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 4, ReadTimeout: 5 * time.Second}
	req, resp := new(fasthttp.Request), new(fasthttp.Response)
	req.SetRequestURI(gw.URL + "/orders/1")
	req.Header.Set("Authorization", "Bearer "+tok)
	do := func() {
		if err := hc.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
		}
	}
	for range 200 {
		do()
	}
	if allocs := proxytest.SteadyAllocs(500, do); allocs >= 0.5 {
		t.Fatalf("a request with a cached JWT costs %.2f allocations, want 0", allocs)
	}
	// A form body is looked in for an access_token without allocating:
	// it costs what the same body costs as text/plain, which is not
	// looked in.
	req.Header.SetMethod("POST")
	req.SetBodyString("amount=3&note=" + strings.Repeat("n", 4<<10))
	var allocs [2]float64
	for i, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		req.Header.SetContentType(ct)
		for range 200 {
			do()
		}
		allocs[i] = proxytest.SteadyAllocs(500, do)
	}
	if allocs[1] >= allocs[0]+0.5 {
		t.Fatalf("a form request with a cached JWT costs %.2f allocations, the same as text/plain %.2f", allocs[1], allocs[0])
	}
}

// TestSecretsFromEnvironment: an HMAC secret written as $env.NAME (kind:
// Gateway) or $NAME (Flex's textKey) verifies tokens, and the admin
// /config never shows it.
func TestSecretsFromEnvironment(t *testing.T) {
	secret := "e2e-hmac-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
	t.Setenv("JWT_E2E_SECRET", secret)
	exp := time.Now().Add(time.Hour).Unix()
	good := jwt.SignHMACForTest(t, []byte(secret), fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp))
	forged := jwt.SignHMACForTest(t, []byte(strings.Repeat("x", 64)), fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp))
	up := proxytest.StartUpstream(t)
	up.Record = false

	check := func(name, url, admin string) {
		t.Helper()
		for _, c := range []struct {
			tok    string
			status int
		}{{good, 200}, {forged, 401}} {
			resp := proxytest.Do(t, "GET", url, map[string]string{"Authorization": "Bearer " + c.tok}, nil)
			if resp.StatusCode() != c.status {
				t.Errorf("%s: %d %s, want %d", name, resp.StatusCode(), resp.Body(), c.status)
			}
			fasthttp.ReleaseResponse(resp)
		}
		resp := proxytest.Do(t, "GET", admin+"/config", nil, nil)
		defer fasthttp.ReleaseResponse(resp)
		if view := string(resp.Body()); strings.Contains(view, secret) || !strings.Contains(view, `"[redacted]"`) {
			t.Errorf("%s: /config shows the secret, or no [redacted]:\n%s", name, view)
		}
	}

	gw := proxytest.Start(t, gatewayYAML(up.URL, `        - jwt-validation: {keys: [{secret: $env.JWT_E2E_SECRET}]}
`))
	check("kind: Gateway", gw.URL+"/orders/1", gw.AdminURL)

	dir := t.TempDir()
	api := fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata: {name: orders}
spec:
  address: http://127.0.0.1:8081
  services:
    backend: {address: "%s"}
  policies:
    - policyRef: {name: jwt-validation-flex}
      config: {signingMethod: hmac, textKey: $JWT_E2E_SECRET, skipClientIdValidation: true}
`, up.URL)
	if err := os.WriteFile(filepath.Join(dir, "api.yaml"), []byte(api), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	// proxytest serves the instance's port, 8081 as written, on one the
	// kernel picks.
	fgw := proxytest.StartConfig(t, cfg, dir)
	check("Flex", fgw.URLs["flex-8081"]+"/orders/1", fgw.AdminURL)
}

// TestEndToEndFormToken: RFC 6750 §2.2 lets an upstream take a token from
// a form body's access_token, which nobody checked while jwt-validation
// checked Authorization's: such a request is refused, also when its body
// streams in chunks after a 100 Continue, while a form without it reaches
// the upstream intact. A request without a token is refused before the
// client sends its body.
func TestEndToEndFormToken(t *testing.T) {
	key := jwt.RSAKeyForTest()
	idp := startJWKS(t, jwt.JWKSForTest(t, &key.PublicKey, "k1"))
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, fmt.Sprintf("        - jwt-validation: {jwks: {url: \"%s/jwks\"}}\n", idp.URL)))
	tok := jwt.SignForTest(t, key, "k1", fmt.Sprintf(`{"sub":"alice","exp":%d}`, time.Now().Add(time.Hour).Unix()))
	h := map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/x-www-form-urlencoded"}

	resp := proxytest.Do(t, "POST", gw.URL+"/orders/1", h, []byte("amount=3&access_token=forged"))
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "duplicate_credentials" ||
		!strings.Contains(string(resp.Body()), "an access_token in the form body") ||
		string(resp.Header.Peek("WWW-Authenticate")) != `Bearer realm="flexgate", error="invalid_request"` {
		t.Errorf("access_token in the form body: %d %q %q %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"),
			resp.Header.Peek("WWW-Authenticate"), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
	resp = proxytest.Do(t, "POST", gw.URL+"/orders/1", h, []byte("amount=3"))
	if resp.StatusCode() != 200 {
		t.Errorf("form without a token: %d %s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)

	// send writes a request whose client waits for 100 Continue before
	// it sends its body in chunks of 8 KiB; it returns the first status
	// line and the final response.
	send := func(auth, body string) (string, *fasthttp.Response) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "POST /orders/1 HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n"+
			"Content-Type: application/x-www-form-urlencoded\r\n%s\r\n", auth)
		br := bufio.NewReader(conn)
		first, _ := br.ReadString('\n')
		resp := new(fasthttp.Response)
		if !strings.Contains(first, "100 Continue") {
			// The final answer came instead.
			if err := resp.Read(bufio.NewReader(io.MultiReader(strings.NewReader(first), br))); err != nil {
				t.Fatal(err)
			}
			return first, resp
		}
		for l, _ := br.ReadString('\n'); l != "\r\n" && l != ""; l, _ = br.ReadString('\n') {
		}
		for b := body; len(b) > 0; {
			n := min(len(b), 8<<10)
			fmt.Fprintf(conn, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		fmt.Fprint(conn, "0\r\n\r\n")
		if err := resp.Read(br); err != nil {
			t.Fatal(err)
		}
		return first, resp
	}
	bearer := "Authorization: Bearer " + tok + "\r\n"
	note := "note=" + strings.Repeat("abcdefgh", 20<<10)
	first, resp := send(bearer, note+"&access_token=forged")
	if !strings.Contains(first, "100 Continue") || resp.StatusCode() != 400 ||
		!strings.Contains(string(resp.Body()), "an access_token in the form body") {
		t.Errorf("chunked form with access_token: %q, then %d %s", first, resp.StatusCode(), resp.Body())
	}
	first, resp = send(bearer, note+"&amount=3")
	if !strings.Contains(first, "100 Continue") || resp.StatusCode() != 200 {
		t.Errorf("chunked form without a token: %q, then %d %s", first, resp.StatusCode(), resp.Body())
	}
	if got := up.Last(t); string(got.Body) != note+"&amount=3" {
		t.Errorf("the upstream got %d bytes, want the %d of the form", len(got.Body), len(note)+9)
	}
	first, resp = send(bearer, "note="+strings.Repeat("x", 1<<20))
	if resp.StatusCode() != 413 || string(resp.Header.Peek("X-Flexgate-Error")) != "body_too_large" {
		t.Errorf("chunked form over the limit: %q, then %d %s", first, resp.StatusCode(), resp.Body())
	}
	first, resp = send("", note)
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "missing_token" {
		t.Errorf("no token: %q, then %d %s", first, resp.StatusCode(), resp.Body())
	}
	if strings.Contains(first, "100 Continue") {
		t.Error("no token: the client was asked for its body")
	}
}
