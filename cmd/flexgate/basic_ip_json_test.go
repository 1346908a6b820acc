package main

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
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
