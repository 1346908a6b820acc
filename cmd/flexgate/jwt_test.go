package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/flexgate/flexgate/examples"
)

// TestSeedChainWithJWT runs the seed's secured chain through the binary,
// extended by jwt-validation after token-introspection: the token is an
// RS256 JWT whose keys come from a JWK set endpoint, and the claims of the
// JWT reach the header step after it.
func TestSeedChainWithJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, "seed-1")
	set, _ := json.Marshal(map[string]any{"keys": []jwk.Key{pub}})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(set)
	}))
	t.Cleanup(jwks.Close)
	// The introspection server finds every token active: the JWT's own
	// checks are what this test is about.
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, _ := r.BasicAuth(); id != "gateway" || secret != "idp-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"active":true,"sub":"introspected","client_id":"shop-app"}`)
	}))
	t.Cleanup(idp.Close)
	up := startHeaderEcho(t)

	seed, err := os.ReadFile(examples.Path(t, "secured-gateway-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(seed)
	for _, r := range [][2]string{
		{"http://product-service:3000", "http://" + up},
		{"https://auth-server.com/introspect", idp.URL + "/introspect"},
		{"        # ── 5.", fmt.Sprintf(`        - jwt-validation:
            jwks: {url: "%s/jwks"}
            audiences: [products]
        # ── 5.`, jwks.URL)},
		{`              X-API-Version: "v1"`, `              X-API-Version: "v1"
              X-User: $token.sub`},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("the seed no longer contains %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "gateway.yaml")
	writeIn(t, conf, s)
	clients := filepath.Join(dir, "clients.yaml")
	writeIn(t, clients, "clients:\n  - id: shop-app\n    secret: shop-secret\n")
	g := startGateway(t, []string{"INTROSPECTION_CLIENT_ID=gateway", "INTROSPECTION_CLIENT_SECRET=idp-secret"},
		"--config", conf, "--clients", clients)

	token := func(k *rsa.PrivateKey, claims string) string {
		h := jws.NewHeaders()
		_ = h.Set(jws.KeyIDKey, "seed-1")
		b, err := jws.Sign([]byte(claims), jws.WithKey(jwa.RS256(), k, jws.WithProtectedHeaders(h)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	exp := time.Now().Add(time.Hour).Unix()
	url := g.url("http") + "/api/products/PRD-42?productId=PRD-42&quantity=2"
	send := func(tok string) (*http.Response, []byte) {
		return call(t, "GET", url, "client_id", "shop-app", "client_secret", "shop-secret", "Authorization", "Bearer "+tok)
	}

	resp, body := send(token(key, fmt.Sprintf(`{"sub":"alice","aud":"products","exp":%d}`, exp)))
	e := echoOf(t, resp, body)
	if e.Headers["x-user"] != "alice" || e.Headers["authorization"] != "" || e.Headers["x-api-version"] != "v1" {
		t.Errorf("upstream saw %v", e.Headers)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("response headers %v", resp.Header)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"another key":    token(other, fmt.Sprintf(`{"sub":"mallory","aud":"products","exp":%d}`, exp)),
		"wrong audience": token(key, fmt.Sprintf(`{"sub":"alice","aud":"billing","exp":%d}`, exp)),
		"expired":        token(key, fmt.Sprintf(`{"sub":"alice","aud":"products","exp":%d}`, time.Now().Add(-time.Hour).Unix())),
	} {
		resp, body := send(tok)
		if resp.StatusCode != 401 || resp.Header.Get("X-Flexgate-Policy") != "jwt-validation" ||
			resp.Header.Get("WWW-Authenticate") != `Bearer realm="flexgate", error="invalid_token"` || !strings.Contains(string(body), `"reason":"invalid_token"`) {
			t.Errorf("%s: %d %v %s", name, resp.StatusCode, resp.Header, body)
		}
	}
}
