package ratelimit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// gatewayYAML is a gateway with the seed's rate-limiting, header and
// response steps on one route, in front of upstream.
func gatewayYAML(upstream, trusted, limit string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: e2e
spec:
  trustedProxies: [%s]
  routes:
    - id: product-catalog
      path: ["/api/products/*"]
      methods: ["GET"]
      upstream:
        url: "%s"
      policies:
        - rate-limiting:
            limit: %s
            period: 60
            identifier: $request.remoteAddress
        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization"]
        - request-headers-set:
            headers:
              X-API-Version: "v1"
              X-Gateway-Time: $datetime
        - response-headers-set:
            headers:
              Strict-Transport-Security: "max-age=31536000; includeSubDomains"
              X-Content-Type-Options: "nosniff"
    - id: other
      path: ["/other/*"]
      upstream:
        url: "%s"
`, trusted, upstream, limit, upstream)
}

func get(t *testing.T, url string, hdrs map[string]string) (int, map[string]string) {
	t.Helper()
	resp := proxytest.Do(t, "GET", url, hdrs, nil)
	defer fasthttp.ReleaseResponse(resp)
	h := map[string]string{}
	for k, v := range resp.Header.All() {
		h[http.CanonicalHeaderKey(string(k))] = string(v)
	}
	return resp.StatusCode(), h
}

func TestEndToEnd429AfterLimit(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, "", "5"))
	url := gw.URL + "/api/products/1"
	for i := 1; i <= 5; i++ {
		status, h := get(t, url, map[string]string{"X-Internal-Foo": "secret", "Authorization": "Bearer t"})
		if status != 200 {
			t.Fatalf("request %d: status %d", i, status)
		}
		if h["X-Ratelimit-Limit"] != "5" || h["X-Ratelimit-Remaining"] != strconv.Itoa(5-i) || h["X-Ratelimit-Reset"] == "" {
			t.Fatalf("request %d: rate-limit headers %v", i, h)
		}
		if h["Strict-Transport-Security"] != "max-age=31536000; includeSubDomains" || h["X-Content-Type-Options"] != "nosniff" {
			t.Fatalf("request %d: security headers missing on 200: %v", i, h)
		}
	}
	rec := up.Last(t)
	if _, ok := rec.Header["X-Internal-Foo"]; ok {
		t.Errorf("upstream saw X-Internal-Foo")
	}
	if _, ok := rec.Header["Authorization"]; ok {
		t.Errorf("upstream saw Authorization")
	}
	if rec.Header["X-Api-Version"] != "v1" {
		t.Errorf("upstream saw X-API-Version %q, want v1", rec.Header["X-Api-Version"])
	}
	if _, err := time.Parse(time.RFC3339, rec.Header["X-Gateway-Time"]); err != nil {
		t.Errorf("upstream saw X-Gateway-Time %q: %v", rec.Header["X-Gateway-Time"], err)
	}

	// A forged X-Forwarded-For from an untrusted peer changes nothing.
	status, h := get(t, url, map[string]string{"X-Forwarded-For": "198.51.100.77"})
	if status != 429 {
		t.Fatalf("6th request with a forged X-Forwarded-For: status %d, want 429", status)
	}
	for k, want := range map[string]string{"X-Ratelimit-Limit": "5", "X-Ratelimit-Remaining": "0",
		"X-Content-Type-Options": "nosniff", "X-Flexgate-Error": "rate_limited"} {
		if got := h[k]; got != want {
			t.Errorf("429: %s = %q, want %q", k, got, want)
		}
	}
	// 5 per 60 s gives a token back every 12 s; the bucket is full in 60.
	if ra, _ := strconv.Atoi(h["Retry-After"]); ra < 1 || ra > 12 {
		t.Errorf("429: Retry-After = %q, want whole seconds in 1..12", h["Retry-After"])
	}
	if reset, _ := strconv.Atoi(h["X-Ratelimit-Reset"]); reset < 49 || reset > 60 {
		t.Errorf("429: X-RateLimit-Reset = %q, want about 60", h["X-Ratelimit-Reset"])
	}
	if n := up.Count.Load(); n != 5 {
		t.Errorf("upstream received %d requests, want 5 (a 429 must not reach it)", n)
	}

	// The budget survives a reload that changes another route only.
	if err := gw.Reload(t, strings.Replace(gatewayYAML(up.URL, "", "5"), `path: ["/other/*"]`, `path: ["/elsewhere/*"]`, 1)); err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, url, nil); status != 429 {
		t.Fatalf("after reloading an unrelated change: status %d, want 429 (budget kept)", status)
	}
}

func TestEndToEndTrustedProxy(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, `"127.0.0.1/32"`, "2"))
	url := gw.URL + "/api/products/1"
	for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
		for i := 0; i < 2; i++ {
			if status, _ := get(t, url, map[string]string{"X-Forwarded-For": "10.9.9.9, " + client}); status != 200 {
				t.Fatalf("client %s request %d behind a trusted proxy: status %d", client, i+1, status)
			}
		}
		if status, _ := get(t, url, map[string]string{"X-Forwarded-For": client}); status != 429 {
			t.Fatalf("client %s: 3rd request: status %d, want 429 (limits per client)", client, status)
		}
	}
}
