package all_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// spec is a policy of the seed's route, parsed from its YAML parameters.
func spec(t testing.TB, name, params string) config.PolicySpec {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(params), &n); err != nil {
		t.Fatal(err)
	}
	return config.PolicySpec{Name: name, Params: n.Content[0], Pos: config.Pos{File: "test", Line: 1, Col: 1}}
}

// withFirst puts policies in front of the seed route's own.
func withFirst(specs ...config.PolicySpec) func(*config.Route) {
	return func(r *config.Route) {
		r.Policies = append(specs, r.Policies...)
	}
}

// replacing puts a policy in place of the seed route's policy old.
func replacing(old string, p config.PolicySpec) func(*config.Route) {
	return func(r *config.Route) {
		for i := range r.Policies {
			if r.Policies[i].Name == old {
				r.Policies[i] = p
			}
		}
	}
}

// TestSeedChainWithIPAndJSONChecks runs the seed's chain behind an IP
// allowlist and JSON threat protection: the good caller passes and costs no
// allocation, a body too deep and an address not on the list are refused
// with the seed's security headers, before the steps behind them.
func TestSeedChainWithIPAndJSONChecks(t *testing.T) {
	guards := withFirst(spec(t, "ip-allowlist", `{ips: ["127.0.0.1", "::1"]}`),
		spec(t, "json-threat-protection", `{maxContainerDepth: 3}`))
	s := startSeedWith(t, 50_000_000, guards)
	s.up.Record = false
	r := newSeedRequest(s)
	for i := 0; i < 200; i++ {
		r.do(t)
	}
	if testing.CoverMode() == "" && !raceEnabled {
		if allocs := proxytest.SteadyAllocs(500, func() { r.do(t) }); allocs >= 0.5 {
			t.Errorf("a request through the seed chain and the two checks costs %.2f allocations, want 0", allocs)
		}
	}
	addr := s.gw.URL[len("http://"):]
	const head = "GET /api/products/PRD-42?productId=PRD-42&quantity=2 HTTP/1.1\r\nHost: shop\r\n" +
		"client_id: shop-app\r\nclient_secret: shop-secret\r\nAuthorization: Bearer good-token\r\nConnection: close\r\n"
	before := s.up.Count.Load()
	resp := rawDo(t, addr, head+"Content-Type: application/json\r\nContent-Length: 8\r\n\r\n[[[[]]]]")
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "json_too_deep" ||
		string(resp.Header.Peek("X-Content-Type-Options")) != "nosniff" {
		t.Errorf("a body too deep: %d %s %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Body())
	}
	if s.up.Count.Load() != before {
		t.Error("the refused request reached the upstream")
	}

	blocked := startSeedWith(t, 1000, withFirst(spec(t, "ip-allowlist", `{ips: ["10.0.0.0/8"]}`)))
	resp = proxytest.Do(t, "GET", blocked.gw.URL+"/api/products/PRD-42?productId=PRD-42&quantity=2",
		map[string]string{"client_id": "shop-app", "client_secret": "shop-secret", "Authorization": "Bearer good-token",
			"X-Forwarded-For": "10.0.0.1"}, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 403 || string(resp.Header.Peek("X-Flexgate-Error")) != "ip_not_allowed" ||
		string(resp.Header.Peek("Strict-Transport-Security")) == "" || blocked.calls.Load() != 0 {
		t.Errorf("a client off the list: %d %s, IdP asked %d times", resp.StatusCode(), resp.Body(), blocked.calls.Load())
	}
}

// TestSeedChainWithBasicAuthentication runs the seed's chain with HTTP Basic
// users in place of token introspection: a user passes without allocating,
// a wrong password is refused with the challenge.
func TestSeedChainWithBasicAuthentication(t *testing.T) {
	s := startSeedWith(t, 50_000_000, replacing("token-introspection",
		spec(t, "http-basic-authentication", `{username: shop-user, password: "pässword"}`)))
	s.up.Record = false
	r := newSeedRequest(s)
	r.req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("shop-user:pässword")))
	for i := 0; i < 200; i++ {
		r.do(t)
	}
	if testing.CoverMode() == "" && !raceEnabled {
		if allocs := proxytest.SteadyAllocs(500, func() { r.do(t) }); allocs >= 0.5 {
			t.Errorf("a request through the seed chain with basic authentication costs %.2f allocations, want 0", allocs)
		}
	}
	r.req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("shop-user:password")))
	if err := r.hc.Do(r.req, r.resp); err != nil {
		t.Fatal(err)
	}
	if r.resp.StatusCode() != 401 || string(r.resp.Header.Peek("X-Flexgate-Error")) != "invalid_credentials" ||
		!strings.HasPrefix(string(r.resp.Header.Peek("WWW-Authenticate")), `Basic realm="flexgate"`) {
		t.Errorf("a wrong password: %d %s", r.resp.StatusCode(), r.resp.Body())
	}
}
