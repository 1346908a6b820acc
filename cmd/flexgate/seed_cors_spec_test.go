package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flexgate/flexgate/examples"
)

// seedExtended is the seed's chain (examples/secured-gateway-config.yaml)
// with cors and spec-validation after its six steps.
const seedExtended = `
        # ── 7. Browsers of the shop's site may call it, with cookies ──
        - cors:
            origins: ["https://shop.example.com"]
            headers: [client_id, client_secret, authorization]
            credentials: true
        # ── 8. Only what the API's OpenAPI spec describes ─────────────
        - spec-validation:
            strictParams: true
            spec: |
              openapi: 3.1.0
              info: {title: products, version: "1"}
              paths:
                /api/products/{id}:
                  get:
                    parameters:
                      - {name: id, in: path, required: true, schema: {type: string, pattern: "^PRD-[0-9]+$"}}
                      - {name: productId, in: query, required: true, schema: {type: string}}
                      - {name: quantity, in: query, required: true, schema: {type: integer, minimum: 1}}
                      - {name: client_id, in: header, required: true, schema: {type: string}}
                    responses: {"200": {description: the product}}
`

// methodRecorder is an upstream that answers 200 and remembers the
// methods it was sent.
type methodRecorder struct {
	mu      sync.Mutex
	methods []string
}

func (m *methodRecorder) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.methods...)
}

func startRecorder(t *testing.T) (string, *methodRecorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &methodRecorder{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.methods = append(rec.methods, r.Method)
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"PRD-42"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), rec
}

// TestSeedWithCORSAndSpecValidation runs the binary on the seed's config
// with cors and spec-validation added: a browser's request from the shop
// passes all eight steps and carries the CORS headers; its preflight is
// answered by the gateway before the client-id and token checks, which a
// preflight cannot pass, and never reaches the upstream; another origin
// gets no CORS headers and its preflight is refused; requests off the
// spec are refused by spec-validation with its reason.
func TestSeedWithCORSAndSpecValidation(t *testing.T) {
	up, rec := startRecorder(t)
	idp := startIdP(t)
	text, err := os.ReadFile(examples.Path(t, "secured-gateway-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(text)
	for _, r := range [][2]string{{"http://product-service:3000", up}, {"https://auth-server.com/introspect", "http://" + idp + "/introspect"}} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("the seed no longer contains %q", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	writeIn(t, cfg, strings.TrimRight(s, "\n")+"\n"+strings.TrimPrefix(seedExtended, "\n"))
	clients := filepath.Join(dir, "clients.yaml")
	writeIn(t, clients, "clients:\n  - id: shop-app\n    secret: shop-secret\n")
	g := startGateway(t, []string{"INTROSPECTION_CLIENT_ID=gateway", "INTROSPECTION_CLIENT_SECRET=secret"},
		"--config", cfg, "--clients", clients)
	base := g.url("http") + "/api/products/"
	creds := []string{"client_id", "shop-app", "client_secret", "shop-secret", "Authorization", "Bearer good"}
	shop := "https://shop.example.com"

	resp, body := call(t, "GET", base+"PRD-42?productId=PRD-42&quantity=2", append(creds, "Origin", shop)...)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != shop ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(resp.Header.Get("Vary"), "Origin") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("the shop's request: %d %v %s\n%s", resp.StatusCode, resp.Header, body, g.logs())
	}
	// The preflight carries no credentials: it is answered first.
	resp, body = call(t, "OPTIONS", base+"PRD-42?productId=PRD-42&quantity=2", "Origin", shop,
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "client_id,client_secret,authorization")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != shop ||
		resp.Header.Get("Access-Control-Allow-Headers") != "client_id, client_secret, authorization" {
		t.Errorf("the shop's preflight: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, origin := range []string{"https://evil-shop.example.com", "https://shop.example.com.evil.io", "null"} {
		resp, _ = call(t, "GET", base+"PRD-42?productId=PRD-42&quantity=2", append(creds, "Origin", origin)...)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %s: %d, Access-Control-Allow-Origin %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = call(t, "OPTIONS", base+"PRD-42", "Origin", origin, "Access-Control-Request-Method", "GET")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %s, preflight: %d %v", origin, resp.StatusCode, resp.Header)
		}
	}
	for _, tc := range []struct{ uri, reason string }{
		{"42?productId=PRD-42&quantity=2", "validation_failed"},             // the path parameter is off its pattern
		{"PRD-42/reviews?productId=PRD-42&quantity=2", "unknown_operation"}, // no such operation
	} {
		resp, body = call(t, "GET", base+tc.uri, creds...)
		if resp.StatusCode != 400 || resp.Header.Get("X-Flexgate-Error") != tc.reason || !strings.Contains(string(body), `"policy":"spec-validation"`) {
			t.Errorf("%s: %d %s %s", tc.uri, resp.StatusCode, resp.Header.Get("X-Flexgate-Error"), body)
		}
	}
	for _, m := range rec.seen() {
		if m != "GET" {
			t.Errorf("the upstream was sent a %s", m)
		}
	}
	if n := len(rec.seen()); n != 4 {
		t.Errorf("the upstream got %d requests, want 4 (the shop's, and three from other origins)", n)
	}
}
