package cors_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// gatewayYAML is a route that takes GET and PUT only (no OPTIONS), with
// client-id-enforcement written before cors.
func gatewayYAML(upstream string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: e2e
spec:
  clients:
    - {id: app, secret: s3cret}
  routes:
    - id: orders
      path: ["/orders/*"]
      methods: [GET, PUT]
      upstream:
        url: "%s"
      policies:
        - client-id-enforcement
        - cors:
            origins: ["https://app.example.com"]
            methods: [GET, PUT]
            headers: [Content-Type, client_id, client_secret]
            exposedHeaders: [X-Request-Id]
            credentials: true
`, upstream)
}

func do(t *testing.T, method, url string, h map[string]string) (*fasthttp.Response, func()) {
	t.Helper()
	resp := proxytest.Do(t, method, url, h, nil)
	return resp, func() { fasthttp.ReleaseResponse(resp) }
}

// TestEndToEndPreflight: a preflight for PUT on a route whose methods do
// not list OPTIONS is answered by the gateway, before the client-id check
// written ahead of cors, and never reaches the upstream; one for a method
// the route does not take is 405 as any OPTIONS would be; an actual
// request gets the headers, and the upstream's own CORS headers never
// reach a disallowed origin.
func TestEndToEndPreflight(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
		ctx.SetBodyString(`{"ok":true}`)
	}
	gw := proxytest.Start(t, gatewayYAML(up.URL))
	url := gw.URL + "/orders/7"

	resp, done := do(t, "OPTIONS", url, map[string]string{"Origin": "https://app.example.com",
		"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type,client_id,client_secret"})
	if resp.StatusCode() != 204 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" ||
		string(resp.Header.Peek("Access-Control-Allow-Methods")) != "GET, PUT" || len(resp.Header.Peek("X-Request-Id")) == 0 ||
		len(resp.Body()) != 0 {
		t.Errorf("preflight: %d\n%s%s", resp.StatusCode(), resp.Header.String(), resp.Body())
	}
	done()
	resp, done = do(t, "OPTIONS", url, map[string]string{"Origin": "https://evil-example.com", "Access-Control-Request-Method": "PUT"})
	if resp.StatusCode() != 403 || string(resp.Header.Peek("X-Flexgate-Error")) != "cors_origin_not_allowed" ||
		string(resp.Header.Peek("X-Flexgate-Policy")) != "cors" || resp.Header.Peek("Access-Control-Allow-Origin") != nil {
		t.Errorf("preflight of a disallowed origin: %d\n%s%s", resp.StatusCode(), resp.Header.String(), resp.Body())
	}
	done()
	resp, done = do(t, "OPTIONS", url, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"})
	if resp.StatusCode() != 405 {
		t.Errorf("preflight for a method the route does not take: %d\n%s", resp.StatusCode(), resp.Body())
	}
	done()
	if n := up.Count.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests, want none: %v", n, up.Requests())
	}

	resp, done = do(t, "PUT", url, map[string]string{"Origin": "https://app.example.com", "client_id": "app", "client_secret": "s3cret"})
	if resp.StatusCode() != 200 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" ||
		string(resp.Header.Peek("Access-Control-Allow-Credentials")) != "true" ||
		string(resp.Header.Peek("Access-Control-Expose-Headers")) != "X-Request-Id" {
		t.Errorf("allowed request: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
	done()
	resp, done = do(t, "GET", url, map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode() != 401 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" {
		t.Errorf("a refusal of another policy lacks the CORS headers the page needs to read it: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
	done()
	resp, done = do(t, "GET", url, map[string]string{"Origin": "https://evil-example.com", "client_id": "app", "client_secret": "s3cret"})
	var vary []string
	for _, v := range resp.Header.PeekAll("Vary") {
		vary = append(vary, string(v))
	}
	if resp.StatusCode() != 200 || resp.Header.Peek("Access-Control-Allow-Origin") != nil || strings.Join(vary, ", ") != "Accept-Encoding, Origin" {
		t.Errorf("disallowed origin: %d, Vary %q\n%s", resp.StatusCode(), vary, resp.Header.String())
	}
	done()

	resp, done = do(t, "GET", gw.AdminURL+"/metrics", nil)
	for _, want := range []string{`flexgate_cors_preflights_total{route="orders"} 1`, `flexgate_cors_requests_total{route="orders",result="allowed"} 2`,
		`flexgate_cors_requests_total{route="orders",result="denied"} 1`,
		`flexgate_policy_rejections_total{route="orders",policy="cors",reason="cors_origin_not_allowed"} 1`} {
		if !strings.Contains(string(resp.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	done()
}

// TestEndToEndFlex: cors-flex bound to a Flex ApiInstance with a later
// order than another policy still answers the preflight first.
func TestEndToEndFlex(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: shop
spec:
  address: http://0.0.0.0:8081/shop
  services:
    backend:
      address: %s
  policies:
    - policyRef: {name: rate-limiting-flex}
      config:
        rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 3600000}]
    - policyRef: {name: cors-flex}
      order: 99
      config:
        publicResource: false
        supportCredentials: true
        originGroups:
          - origins: ["http://www.the-origin-of-time.com"]
            accessControlMaxAge: 60
            allowedMethods:
              - {methodName: POST, isAllowed: true}
              - {methodName: DELETE, isAllowed: false}
            headers: [x-allow-origin]
            exposedHeaders: [x-forwarded-for]
`, up.URL))
	url := gw.URL + "/shop/items"
	for range 3 {
		resp, done := do(t, "OPTIONS", url, map[string]string{"Origin": "http://www.the-origin-of-time.com",
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-allow-origin"})
		if resp.StatusCode() != 204 || string(resp.Header.Peek("Access-Control-Max-Age")) != "60" ||
			string(resp.Header.Peek("Access-Control-Allow-Credentials")) != "true" {
			t.Fatalf("preflight: %d\n%s%s", resp.StatusCode(), resp.Header.String(), resp.Body())
		}
		done()
	}
	resp, done := do(t, "OPTIONS", url, map[string]string{"Origin": "http://www.the-origin-of-time.com", "Access-Control-Request-Method": "DELETE"})
	if resp.StatusCode() != 403 || string(resp.Header.Peek("X-Flexgate-Error")) != "cors_method_not_allowed" {
		t.Errorf("DELETE preflight: %d\n%s", resp.StatusCode(), resp.Body())
	}
	done()
	resp, done = do(t, "POST", url, map[string]string{"Origin": "http://www.the-origin-of-time.com"})
	if resp.StatusCode() != 200 || string(resp.Header.Peek("Access-Control-Expose-Headers")) != "x-forwarded-for" {
		t.Errorf("POST: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
	done()
	resp, done = do(t, "POST", url, map[string]string{"Origin": "http://www.the-origin-of-time.com"})
	if resp.StatusCode() != 429 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "http://www.the-origin-of-time.com" {
		t.Errorf("rate-limited POST: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
	done()
	if n := up.Count.Load(); n != 1 {
		t.Errorf("the upstream received %d requests, want 1", n)
	}
}

// TestEndToEndRules: a cors-flex policy limited by rules to some methods
// answers the preflight of a request it covers: the rules see the method
// the preflight announces, not OPTIONS. A request it does not cover gets
// no CORS answer.
func TestEndToEndRules(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: shop
spec:
  address: http://0.0.0.0:8081/shop
  services:
    backend:
      address: %s
  policies:
    - policyRef: {name: cors-flex}
      rules: [{methods: POST}]
      config:
        publicResource: false
        originGroups:
          - origins: ["https://app.example.com"]
            allowedMethods: [{methodName: POST, isAllowed: true}]
`, up.URL))
	url := gw.URL + "/shop/items"
	resp, done := do(t, "OPTIONS", url, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
	if resp.StatusCode() != 204 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" {
		t.Errorf("POST preflight: %d\n%s%s", resp.StatusCode(), resp.Header.String(), resp.Body())
	}
	done()
	resp, done = do(t, "GET", url, map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode() != 200 || resp.Header.Peek("Access-Control-Allow-Origin") != nil {
		t.Errorf("GET, which the rules leave out: %d\n%s", resp.StatusCode(), resp.Header.String())
	}
	done()
	for _, r := range up.Requests() {
		if r.Method == "OPTIONS" {
			t.Errorf("a preflight reached the upstream")
		}
	}
}
