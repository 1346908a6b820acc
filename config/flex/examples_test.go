package flex_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/examples"
)

// selfSigned returns a certificate for localhost and its key, as PEM.
func selfSigned(t testing.TB) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// exampleEnv sets the variables the examples read.
func exampleEnv(t *testing.T) (cert, key string) {
	cert, key = selfSigned(t)
	t.Setenv("INTROSPECTION_AUTH", "Basic Z2F0ZXdheTpzZWNyZXQ=")
	t.Setenv("REDIS_PASSWORD", "redis-secret")
	t.Setenv("TLS_CERT_PEM", cert)
	t.Setenv("TLS_KEY_PEM", key)
	return cert, key
}

// loadExample loads one file of examples/flex and compiles its policies
// as `flexgate validate` does.
func loadExample(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load([]string{examples.Path(t, "flex/"+name)})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatalf("%s: policies: %v", name, err)
	}
	return cfg
}

// TestExamplesLoad: every file of examples/flex loads, and maps into the
// model as its opening comment says; the tests of the router and proxy
// serve them (see cmd/flexgate's flex tests).
func TestExamplesLoad(t *testing.T) {
	cert, key := exampleEnv(t)
	dir := filepath.Dir(examples.Path(t, "flex/01-inline-api.yaml"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			loadExample(t, e.Name())
			seen++
		}
	}
	if seen != 7 {
		t.Errorf("%d examples, want 7", seen)
	}

	t.Run("07 traffic", func(t *testing.T) {
		cfg := loadExample(t, "07-traffic.yaml")
		r := route(t, cfg, "default/catalog/upstream")
		if policyNames(r) != "spike-control-flex,response-timeout-flex,http-caching-flex" || r.Upstream.IdleTimeout != 30*time.Second {
			t.Errorf("policies = %s, idle timeout %s", policyNames(r), r.Upstream.IdleTimeout)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("warnings: %v", cfg.Warnings)
		}
	})

	t.Run("01 inline", func(t *testing.T) {
		cfg := loadExample(t, "01-inline-api.yaml")
		if len(cfg.Listeners) != 1 || cfg.Listeners[0].Name != "flex-8081" || cfg.Listeners[0].Address != "0.0.0.0:8081" || cfg.Listeners[0].Protocol != "HTTP" {
			t.Errorf("listeners = %+v", cfg.Listeners)
		}
		r := route(t, cfg, "default/api-example/api-example/1")
		if r.UpstreamURL() != "http://127.0.0.1:9001/v1/apps" || r.StripPrefix != "" || strings.Join(r.Paths, " ") != "/*" ||
			strings.Join(r.Listeners, ",") != "flex-8081" || !r.ReverseResponse {
			t.Errorf("route = %+v", r)
		}
		if len(r.Rules) != 2 || r.Rules[0].Path != "/api(/users/.*)" || r.Rules[1].Path != "/api(/comments/.*)" {
			t.Errorf("rules = %+v", r.Rules)
		}
		if policyNames(r) != "rate-limiting-flex,header-injection-flex" {
			t.Errorf("policies = %s", policyNames(r))
		}
	})
	t.Run("02 resource based", func(t *testing.T) {
		cfg := loadExample(t, "02-resource-based.yaml")
		r := route(t, cfg, "e-commerce/shop/shop-route-orders")
		if r.UpstreamURL() != "http://127.0.0.1:9002/api/v2" || r.StripPrefix != "/shop" || strings.Join(r.Paths, " ") != "/shop/*" ||
			len(r.Rules) != 1 || r.Rules[0].Path != "/orders(/.*)" {
			t.Errorf("route = %+v", r)
		}
		// order 10 before order 20; the introspection only for its
		// methods.
		if policyNames(r) != "header-removal-flex,oauth2-token-introspection-flex" {
			t.Errorf("policies = %s", policyNames(r))
		}
		if w := r.Policies[1].When; len(w) != 1 || w[0].Methods != "POST|PUT|DELETE" || len(r.Policies[0].When) != 0 {
			t.Errorf("when = %+v / %+v", r.Policies[0].When, w)
		}
		// The secret stays a reference in the model, for /config.
		if p := chain.Field(r.Policies[1].Params, "authorizationValue"); p.Value != "$env.INTROSPECTION_AUTH" {
			t.Errorf("authorizationValue = %q", p.Value)
		}
		// Where the route comes from: instance, route binding, Service,
		// then the policy bindings.
		var from []string
		for _, p := range r.Origins() {
			from = append(from, filepath.Base(p.File)+":"+itoa(p.Line))
		}
		if got := strings.Join(from, " "); got != "02-resource-based.yaml:14 02-resource-based.yaml:30 02-resource-based.yaml:22 02-resource-based.yaml:47 02-resource-based.yaml:62" {
			t.Errorf("sources = %s", got)
		}
	})
	t.Run("03 route-weighted", func(t *testing.T) {
		cfg := loadExample(t, "03-route-weighted.yaml")
		r := route(t, cfg, "default/json-http/json-http-canary")
		rule := r.Rules[0]
		if rule.Path != "(.*)" || rule.Host != "test.com" || rule.Methods != "POST" || len(rule.Headers) != 1 ||
			rule.Headers[0] != (config.HeaderMatch{Name: "x-test", Value: "true", Regex: true}) {
			t.Errorf("rule = %+v", rule)
		}
		u := r.Upstream
		if u.URL() != "http://127.0.0.1:9003/posts, http://127.0.0.1:9004/posts" || u.Targets[0].Weight != 75 || u.Targets[1].Weight != 25 ||
			u.LoadBalancing != config.Random || u.Name != "default/products-api, default/products-api-beta" {
			t.Errorf("upstream = %+v", u)
		}
		if w := warnings(cfg); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	})
	t.Run("04 selector", func(t *testing.T) {
		cfg := loadExample(t, "04-selector-binding.yaml")
		if got := policyNames(route(t, cfg, "default/api-a/upstream")); got != "rate-limiting-flex" {
			t.Errorf("api-a: %s", got)
		}
		// The automated policy runs before the instance's own.
		if got := policyNames(route(t, cfg, "default/api-b/upstream")); got != "rate-limiting-flex,header-injection-flex" {
			t.Errorf("api-b: %s", got)
		}
		if got := policyNames(route(t, cfg, "default/api-c/upstream")); got != "" {
			t.Errorf("api-c: %s", got)
		}
		if len(cfg.Listeners) != 2 || cfg.Listeners[0].Name != "flex-8084" || cfg.Listeners[1].Name != "flex-8085" {
			t.Errorf("listeners = %+v", cfg.Listeners)
		}
	})
	t.Run("05 shared storage", func(t *testing.T) {
		cfg := loadExample(t, "05-shared-storage.yaml")
		r := cfg.SharedStorage.Redis
		if r.Address != "127.0.0.1:6379" || r.Username != "default" || r.Password != "redis-secret" || r.DB != 0 {
			t.Errorf("redis = %+v", r)
		}
	})
	t.Run("06 tls", func(t *testing.T) {
		cfg := loadExample(t, "06-tls.yaml")
		l := cfg.Listeners[0]
		if l.Protocol != "HTTPS" || l.TLS == nil || l.TLS.MinVersion != "1.2" || strings.Join(l.TLS.ALPN, ",") != "http/1.1" ||
			len(l.TLS.Certificates) != 1 || string(l.TLS.Certificates[0].CertPEM) != cert || string(l.TLS.Certificates[0].KeyPEM) != key {
			t.Errorf("listener = %+v", l)
		}
	})
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
