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
