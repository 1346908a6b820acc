package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flexgate/flexgate/examples"
)

// flexGuarded is a Flex conf.d ApiInstance behind HTTP basic
// authentication, an IP allowlist and JSON threat protection, with Flex
// Gateway's names and parameters.
const flexGuarded = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: orders
spec:
  address: http://127.0.0.1:0/orders
  services:
    backend:
      address: http://UPSTREAM
  policies:
    - policyRef: {name: ip-allowlist-flex}
      config: {ips: ["127.0.0.1", "::1"]}
    - policyRef: {name: http-basic-authentication-flex}
      config: {username: chris, password: $FLEX_BASIC_PASSWORD}
    - policyRef: {name: json-threat-protection-flex}
      config: {maxContainerDepth: 2, maxArrayElementCount: 3}
`

// TestBasicIPAndJSONPoliciesInTheBinary runs the three policies in the real
// binary from a Flex conf.d, with Flex Gateway's names and with flexgate's.
func TestBasicIPAndJSONPoliciesInTheBinary(t *testing.T) {
	up := startHeaderEcho(t)
	dir := t.TempDir()
	writeIn(t, filepath.Join(dir, "api.yaml"), strings.Replace(flexGuarded, "UPSTREAM", up, 1))
	// flexgate's own names run in a Flex conf.d too.
	writeIn(t, filepath.Join(dir, "internal.yaml"), `apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: internal
spec:
  address: http://127.0.0.1:0/internal
  services:
    backend:
      address: http://`+up+`
  policies:
    - policyRef: {name: ip-blocklist}
      config: {ips: ["127.0.0.0/8", "::1"]}
`)
	g := startGateway(t, []string{"FLEX_BASIC_PASSWORD=admin"}, "--config", dir)
	base := g.url("flex-0")
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("chris:admin"))

	post := func(body, authorization string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("POST", base+"/orders", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, resp.Header.Get("X-Flexgate-Error")
	}
	if resp, reason := post(`{"items":[1,2,3]}`, auth); resp.StatusCode != 200 {
		t.Errorf("a good request: %d %s", resp.StatusCode, reason)
	}
	if resp, reason := post(`{"items":[1,2,3]}`, ""); resp.StatusCode != 401 || reason != "missing_credentials" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Basic realm="flexgate"`) {
		t.Errorf("no credentials: %d %s %v", resp.StatusCode, reason, resp.Header)
	}
	if resp, reason := post(`{"items":[1,2,3,4]}`, auth); resp.StatusCode != 400 || reason != "json_array_too_long" {
		t.Errorf("four items: %d %s", resp.StatusCode, reason)
	}
	if resp, reason := post(`{"a":{"b":[]}}`, auth); resp.StatusCode != 400 || reason != "json_too_deep" {
		t.Errorf("three levels: %d %s", resp.StatusCode, reason)
	}
	if code, body, _ := get(t, base+"/internal/x"); code != 403 || !strings.Contains(body, `"reason":"ip_blocked"`) {
		t.Errorf("blocked: %d %s", code, body)
	}
	_, metrics, _ := get(t, g.url("admin")+"/metrics")
	for _, want := range []string{`policy="http-basic-authentication-flex",reason="missing_credentials"} 1`,
		`policy="json-threat-protection-flex",reason="json_array_too_long"} 1`, `policy="ip-blocklist",reason="ip_blocked"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if _, cfg, _ := get(t, g.url("admin")+"/config"); strings.Contains(cfg, `": "admin"`) || !strings.Contains(cfg, `"password": "[redacted]"`) {
		t.Errorf("/config: the password is not redacted: %s", cfg)
	}
}

// TestSeedChainExtendedInTheBinary runs the seed's chain
// (examples/secured-gateway-config.yaml) in the real binary behind an IP
// allowlist and JSON threat protection, with HTTP Basic users from an
// htpasswd file (a SHA-crypt and a bcrypt one) in place of token
// introspection, and the client's address read from X-Forwarded-For only
// as spec.trustedProxies allows.
func TestSeedChainExtendedInTheBinary(t *testing.T) {
	seed, err := os.ReadFile(examples.Path(t, "secured-gateway-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	up := startHeaderEcho(t)
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	hash, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -nb -2 -r 5000 carol 'Hello world!' with the salt saltstring.
	writeIn(t, htpasswd, "carol:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\nbob:"+string(hash)+"\n")
	clients := filepath.Join(dir, "clients.yaml")
	writeIn(t, clients, "clients:\n  - id: shop-app\n    secret: shop-secret\n")

	cfg := string(seed)
	for _, r := range []struct{ old, new string }{
		{"spec:\n", "spec:\n  trustedProxies: [\"127.0.0.1/32\"]\n"},
		{`url: "http://product-service:3000"`, `url: "http://` + up + `"`},
		{"      policies:\n", "      policies:\n" +
			"        - ip-allowlist: {ips: [\"127.0.0.1\", \"192.0.2.0/24\"]}\n" +
			"        - json-threat-protection: {maxContainerDepth: 3, maxStringValueLength: 64}\n"},
		{`        - token-introspection:
            url: "https://auth-server.com/introspect"
            clientId: $env.INTROSPECTION_CLIENT_ID # never hardcode secrets
            clientSecret: $env.INTROSPECTION_CLIENT_SECRET
            cacheTtl: 60
`, "        - http-basic-authentication: {realm: products, htpasswdFile: " + htpasswd + "}\n"},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("the seed no longer has %q", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	file := filepath.Join(dir, "gateway.yaml")
	writeIn(t, file, cfg)
	g := startGateway(t, nil, "--config", file, "--clients", clients)
	url := g.url("http") + "/api/products/PRD-42?productId=PRD-42&quantity=2"

	do := func(user, pass, body string, headers ...string) (int, string, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("client_id", "shop-app")
		req.Header.Set("client_secret", "shop-secret")
		req.SetBasicAuth(user, pass)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Flexgate-Error"), resp.Header, b
	}
	for _, u := range []struct{ user, pass string }{{"carol", "Hello world!"}, {"bob", "hunter2"}} {
		code, reason, h, body := do(u.user, u.pass, "")
		var seen echoed
		if code != 200 || json.Unmarshal(body, &seen) != nil {
			t.Fatalf("%s: %d %s %s", u.user, code, reason, body)
		}
		if seen.Headers["authorization"] != "" || seen.Headers["x-api-version"] != "v1" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: the upstream saw %v; the client %v", u.user, seen.Headers, h)
		}
	}
	for _, tc := range []struct {
		name, user, pass, body string
		headers                []string
		status                 int
		reason                 string
	}{
		{"a wrong password", "carol", "hello world!", "", nil, 401, "invalid_credentials"},
		{"an unknown user", "mallory", "Hello world!", "", nil, 401, "invalid_credentials"},
		{"a body too deep", "carol", "Hello world!", `{"a":{"b":[{}]}}`, nil, 400, "json_too_deep"},
		{"a string too long", "carol", "Hello world!", `["` + strings.Repeat("é", 65) + `"]`, nil, 400, "json_string_too_long"},
		{"invalid UTF-8", "carol", "Hello world!", "[\"\xff\"]", nil, 400, "invalid_json"},
		{"a listed client behind the proxy", "carol", "Hello world!", "", []string{"X-Forwarded-For", "192.0.2.7"}, 200, ""},
		{"an unlisted client behind the proxy", "carol", "Hello world!", "", []string{"X-Forwarded-For", "203.0.113.9"}, 403, "ip_not_allowed"},
		{"a listed address forged in front", "carol", "Hello world!", "", []string{"X-Forwarded-For", "192.0.2.7, 203.0.113.9"}, 403, "ip_not_allowed"},
		{"an IPv4-mapped address", "carol", "Hello world!", "", []string{"X-Forwarded-For", "::ffff:192.0.2.9"}, 200, ""},
	} {
		code, reason, h, body := do(tc.user, tc.pass, tc.body, tc.headers...)
		if code != tc.status || reason != tc.reason || h.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: %d %q %s", tc.name, code, reason, body)
		}
		if code == 401 && h.Get("WWW-Authenticate") != `Basic realm="products", charset="UTF-8"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, h.Get("WWW-Authenticate"))
		}
	}
	_, metrics, _ := get(t, g.url("admin")+"/metrics")
	for _, want := range []string{`policy="http-basic-authentication",reason="invalid_credentials"} 2`,
		`policy="json-threat-protection",reason="json_too_deep"} 1`, `policy="ip-allowlist",reason="ip_not_allowed"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
