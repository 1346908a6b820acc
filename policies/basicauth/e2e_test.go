package basicauth_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/flexgate/flexgate/policies/all"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestEndToEnd: a user passes and the upstream sees who, not the password;
// the others get 401 with the challenge; /config hides the passwords and
// /metrics counts the rejections.
func TestEndToEnd(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALICE_PASSWORD", "wonderland")
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  routes:
    - id: orders
      path: ["/orders/*"]
      upstream: {url: "%s"}
      policies:
        - http-basic-authentication:
            realm: orders
            username: alice
            password: $env.ALICE_PASSWORD
            users: [{username: bob, passwordHash: "%s"}]
        - request-headers-set:
            headers: {X-User: $client.id, X-Principal: "#[authentication.principal]", X-Client: "#[authentication.clientId]"}
`, up.URL, hash))
	get := func(user, pass string) *fasthttp.Response {
		h := map[string]string{}
		if user != "" {
			h["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		}
		return proxytest.Do(t, "GET", gw.URL+"/orders/1", h, nil)
	}
	for _, u := range []struct{ user, pass string }{{"alice", "wonderland"}, {"bob", "hunter2"}, {"bob", "hunter2"}} {
		resp := get(u.user, u.pass)
		if resp.StatusCode() != 200 {
			t.Fatalf("%s: %d %s", u.user, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
		seen := up.Last(t).Header
		if seen["X-User"] != u.user || seen["X-Principal"] != u.user || seen["X-Client"] != u.user || seen["Authorization"] != "" {
			t.Errorf("%s: the upstream saw X-User %q, X-Principal %q, X-Client %q, Authorization %q", u.user, seen["X-User"], seen["X-Principal"],
				seen["X-Client"], seen["Authorization"])
		}
	}
	before := up.Count.Load()
	for _, u := range []struct{ user, pass, reason string }{
		{"", "", "missing_credentials"}, {"alice", "nope", "invalid_credentials"}, {"mallory", "hunter2", "invalid_credentials"},
	} {
		resp := get(u.user, u.pass)
		if resp.StatusCode() != 401 || string(resp.Header.Peek("X-Flexgate-Error")) != u.reason ||
			string(resp.Header.Peek("WWW-Authenticate")) != `Basic realm="orders", charset="UTF-8"` ||
			!strings.Contains(string(resp.Body()), `"policy":"http-basic-authentication"`) {
			t.Errorf("%s/%s: %d %q %q %s", u.user, u.pass, resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"), resp.Header.Peek("WWW-Authenticate"), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if up.Count.Load() != before {
		t.Error("a refused request reached the upstream")
	}

	cfg := proxytest.Do(t, "GET", gw.AdminURL+"/config", nil, nil)
	defer fasthttp.ReleaseResponse(cfg)
	if body := string(cfg.Body()); strings.Contains(body, "$2a$") || strings.Contains(body, "wonderland") ||
		strings.Count(body, `"[redacted]"`) < 2 {
		t.Errorf("/config shows a password or hash: %s", body)
	}
	m := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(m)
	for _, want := range []string{
		`flexgate_policy_rejections_total{route="orders",policy="http-basic-authentication",reason="invalid_credentials"} 2`,
		`flexgate_policy_rejections_total{route="orders",policy="http-basic-authentication",reason="missing_credentials"} 1`,
		`flexgate_basic_auth_bcrypt_checks_total{route="orders",result="pass"} 1`,
	} {
		if !strings.Contains(string(m.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
