package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	t.Setenv("FG_INTROSPECT_SECRET", "env-secret-value")
	cfg := mustLoad(t, "a.yaml", head+`  listeners:
    - name: tls
      port: 8443
      tls: {certificates: [{certFile: /tls/tls.crt, keyFile: /tls/tls.key}]}
  clients:
    - {id: app, secret: client-secret-value}
    - {id: hashed, secretHash: "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}
  routes:
    - id: r
      path: /x
      upstream: {url: "https://b:8443/base"}
      policies:
        - client-id-enforcement
        - token-introspection:
            url: https://auth/introspect
            clientId: gateway
            clientSecret: $env.FG_INTROSPECT_SECRET
            cacheTtl: 60
            upstream:
              Password: nested-password-value
              accessTOKEN: [token-in-list-value]
            headers: ["Authorization"]
`)
	b, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"client-secret-value", "env-secret-value", "nested-password-value",
		"token-in-list-value", "2bb80d53"} {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaked into %s", secret, out)
		}
	}
	for _, want := range []string{`"url":"https://b:8443/base"`, `"clientId":"gateway"`, `"cacheTtl":60`,
		`"clientSecret":"[redacted]"`, `"Password":"[redacted]"`, `"accessTOKEN":"[redacted]"`,
		`{"name":"client-id-enforcement"}`, `"headers":["Authorization"]`, `"id":"app","secret":"[redacted]"`,
		`"address":":8443"`, `"certFile":"/tls/tls.crt"`, `"maxConnections":10000`, `"maxConnectionsPerClient":256`} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %s:\n%s", want, out)
		}
	}
	// The view is a copy: the policy still gets its parameters as written
	// (the chain substitutes $env when it decodes them).
	var p struct {
		ClientSecret string `yaml:"clientSecret"`
	}
	if err := cfg.Routes[0].Policies[1].Params.Decode(&p); err != nil || p.ClientSecret != "$env.FG_INTROSPECT_SECRET" {
		t.Errorf("params changed by Redacted: %q %v", p.ClientSecret, err)
	}
	if cfg.Clients[0].Secret != "client-secret-value" {
		t.Errorf("client secret changed by Redacted")
	}
}

// TestLoadErrorsHideURLPasswords: an error that quotes a value shows a URL's
// password as xxxxx, whether it was written in the file or came from $env.
func TestLoadErrorsHideURLPasswords(t *testing.T) {
	t.Setenv("FG_UPSTREAM_URL", "http://svc:env-pass-value@b:bad")
	route := func(url string) string {
		return head + "  routes:\n    - id: r\n      path: /x\n      upstream: {url: " + url + "}\n"
	}
	for _, c := range []struct{ src, want string }{
		{route(`"http://user:s3cret-value@host:bad"`), `upstream url "http://user:xxxxx@host:bad" is not a valid URL`},
		{route(`"http://user:s3cret-value@host:80"`), `upstream url "http://user:xxxxx@host:80" must not contain user info`},
		{route(`"https://user:s3cret-value:with@at@host/x"`), `upstream url "https://user:xxxxx@host/x" must not contain user info`},
		{route(`$env.FG_UPSTREAM_URL`), `upstream url "http://svc:xxxxx@b:bad" is not a valid URL`},
		{head + "  trustedProxies: [\"http://proxy:s3cret-value@10.0.0.1\"]\n", `trustedProxies entry "http://proxy:xxxxx@10.0.0.1" is not`},
	} {
		got := loadErrors(t, "a.yaml", c.src)
		if len(got) != 1 || !strings.Contains(got[0], c.want) || strings.Contains(got[0], "s3cret") || strings.Contains(got[0], "env-pass") {
			t.Errorf("errors = %q, want one with %s and no password", got, c.want)
		}
	}
}

func TestCredentialRecognition(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "proxy-authorization": true, "COOKIE": true, "Set-Cookie": true,
		"X-Api-Key": true, "x_client_key": true, "X-Auth-Token": true, "X-Client-Secret": true, "X_DB_PASSWORD": true,
		"X-Version": false, "Monkey": false, "X-Key-Id": false, "Keep-Alive": false,
		"X-Auth": true, "X-Upstream-Auth": true, "x_api_sig": true, "X-Signature": true, "X-Session": true,
		"X-Session-Id": true, "X-Pass": true, "X-Jwt": true, "X-Bearer-Value": true, "X-Auth-User": true,
		"Author": false, "X-Author": false, "X-Authority": false, "X-Signal": false, "X-Passage": false,
		"X-Sessions-Count": false, "X-Jwts-Url": false,
	} {
		if got := CredentialHeader(name); got != want {
			t.Errorf("CredentialHeader(%q) = %v", name, got)
		}
	}
	for v, want := range map[string]bool{
		"Basic dXNlcjpw": true, "bearer abc": true, " BEARER abc$env.X": true, "Bearer ${abc": true,
		"Bearer $env.TOKEN": false, "Bearer ${env.TOKEN}": false, "Bearer $request.header.X-Token": false,
		"Bearer": false, "Bearerabc": false, "v1": false,
	} {
		if got := CredentialValue(v); got != want {
			t.Errorf("CredentialValue(%q) = %v", v, got)
		}
	}
	for in, want := range map[string]string{
		`url "http://u:p@h:1/x" is bad`:            `url "http://u:xxxxx@h:1/x" is bad`,
		`a https://u:p@x@h/ and ftp://v:q@g b`:     `a https://u:xxxxx@h/ and ftp://v:xxxxx@g b`,
		`"http://u:pa\"ss@h"`:                      `"http://u:xxxxx@h"`,
		`http://u:$env.PASSWORD@h`:                 `http://u:$env.PASSWORD@h`,
		`http://token@h and http://h:80 and a@b:c`: `http://token@h and http://h:80 and a@b:c`,
	} {
		if got := RedactURLPasswords(in); got != want {
			t.Errorf("RedactURLPasswords(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactedRouteHeaders: the admin view shows a route's hosts and the
// headers it matches, except the values of headers that carry a credential.
func TestRedactedRouteHeaders(t *testing.T) {
	cfg := mustLoad(t, "a.yaml", head+`  routes:
    - id: r
      path: /x
      hosts: [api.example.com]
      headers: {x-canary: "true", X-Internal-Token: internal-token-value, Authorization: "Bearer abc-credential"}
      upstream: {url: "http://b"}
`)
	b, err := json.Marshal(cfg.Redacted().Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{`"hosts":["api.example.com"]`, `"x-canary":"true"`, `"X-Internal-Token":"[redacted]"`, `"Authorization":"[redacted]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %s: %s", want, out)
		}
	}
	for _, secret := range []string{"internal-token-value", "abc-credential"} {
		if strings.Contains(out, secret) {
			t.Errorf("view shows %s: %s", secret, out)
		}
	}
}

// TestRedactedRuleHeaders: a route's rules and a policy's when rules (Flex
// rules) show their header values, except those of headers that carry a
// credential, as a route's headers do.
func TestRedactedRuleHeaders(t *testing.T) {
	rule := MatchRule{Path: "/x", Headers: []HeaderMatch{{Name: "x-canary", Value: "true"}, {Name: "apikey", Value: "rule-secret"},
		{Name: "X-Authorization", Value: "Bearer rule-token"}}}
	cfg := &Config{Routes: []Route{{ID: "r", Paths: []string{"/*"}, Rules: []MatchRule{rule},
		Policies: []PolicySpec{{Name: "cors", When: []MatchRule{rule}}}}}}
	b, err := json.Marshal(cfg.Redacted().Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Count(out, `"x-canary":"true"`) != 2 || strings.Count(out, `"apikey":"[redacted]"`) != 2 {
		t.Errorf("rule headers in view: %s", out)
	}
	for _, secret := range []string{"rule-secret", "rule-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("view shows %s: %s", secret, out)
		}
	}
}
