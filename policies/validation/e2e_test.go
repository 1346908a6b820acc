package validation_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestEndToEnd runs the seed's request-validation policy in a real gateway
// in front of a real upstream.
func TestEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`
apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: secured-product-gateway
spec:
  routes:
    - id: product-catalog
      path: ["/api/products/*"]
      methods: ["GET"]
      upstream:
        url: "%[1]s"
      policies:
        - request-validation:
            schema: |
              {
                "type": "object",
                "required": ["productId", "quantity"],
                "properties": {
                  "productId": { "type": "string", "pattern": "^PRD-[0-9]+$" },
                  "quantity":  { "type": "integer", "minimum": 1 }
                },
                "additionalProperties": false // deny unlisted fields — strict allow-list
              }
    - id: uploads
      path: ["/api/uploads"]
      methods: ["POST"]
      upstream:
        url: "%[1]s"
      policies:
        - request-validation:
            maxBodySize: 300000
            schema: '{"type": "object", "properties": {"blob": {"type": "string"}}, "required": ["blob"]}'
`, up.URL))

	type answer struct {
		Reason     string `json:"reason"`
		Route      string `json:"route"`
		Policy     string `json:"policy"`
		Violations []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"violations"`
	}
	f := func(method, path, contentType, body string, wantStatus int, wantReason, wantPath string) {
		t.Helper()
		before := up.Count.Load()
		var headers map[string]string
		var b []byte
		if contentType != "" {
			headers = map[string]string{"Content-Type": contentType}
		}
		if body != "" {
			b = []byte(body)
		}
		resp := proxytest.Do(t, method, gw.URL+path, headers, b)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != wantStatus {
			t.Fatalf("%s %s: status %d %s, want %d", method, path, resp.StatusCode(), resp.Body(), wantStatus)
		}
		reached := up.Count.Load() > before
		if wantStatus == 200 {
			if !reached {
				t.Fatalf("%s %s: the upstream was not reached", method, path)
			}
			if body != "" && string(up.Last(t).Body) != body {
				t.Fatalf("%s %s: the upstream received %d bytes of body, want the %d sent", method, path, len(up.Last(t).Body), len(body))
			}
			return
		}
		if reached {
			t.Fatalf("%s %s: a rejected request reached the upstream", method, path)
		}
		if got := string(resp.Header.Peek("X-Flexgate-Error")); got != wantReason {
			t.Fatalf("%s %s: X-Flexgate-Error %q, want %q", method, path, got, wantReason)
		}
		var a answer
		if err := json.Unmarshal(resp.Body(), &a); err != nil {
			t.Fatalf("%s %s: error body is not JSON: %v: %s", method, path, err, resp.Body())
		}
		if a.Policy != "request-validation" || a.Reason != wantReason {
			t.Fatalf("%s %s: body %s does not name the policy and reason", method, path, resp.Body())
		}
		if wantPath == "" {
			return
		}
		for _, v := range a.Violations {
			if v.Path == wantPath {
				return
			}
		}
		t.Fatalf("%s %s: no violation at %s in %s", method, path, wantPath, resp.Body())
	}
	f("GET", "/api/products/list?productId=PRD-42&quantity=2", "", "", 200, "", "")
	f("GET", "/api/products/list?productId=42&quantity=2", "", "", 400, "validation_failed", "/productId")
	f("GET", "/api/products/list?productId=PRD-42&quantity=0", "", "", 400, "validation_failed", "/quantity")
	f("GET", "/api/products/list?productId=PRD-42", "", "", 400, "validation_failed", "/quantity")
	f("GET", "/api/products/list?productId=PRD-42&quantity=2&admin=1", "", "", 400, "validation_failed", "/admin")
	// The route allows only GET, so its schema validates the query: a JSON
	// body must not switch that off and smuggle a bad query upstream.
	f("GET", "/api/products/1?productId=42&quantity=0&evil=1", "application/json", `{"productId":"PRD-1","quantity":1}`,
		400, "unexpected_body", "")
	f("GET", "/api/products/1?productId=PRD-42&quantity=2", "application/json", `{"productId":"PRD-1","quantity":1}`,
		400, "unexpected_body", "")
	if got := up.Last(t).URI; got != "/api/products/list?productId=PRD-42&quantity=2" {
		t.Fatalf("the upstream last received %q, the last valid request", got)
	}

	f("POST", "/api/uploads", "application/json", `{"blob":"x"}`, 200, "", "")
	f("POST", "/api/uploads", "application/json", `{"blob":1}`, 400, "validation_failed", "/blob")
	f("POST", "/api/uploads", "text/plain", `{"blob":"x"}`, 415, "unsupported_media_type", "")
	f("POST", "/api/uploads", "application/json", `{"blob":"x"`, 400, "invalid_json", "")
	// Larger than what the gateway reads before the handler runs, so the
	// body arrives as a stream: it is read, validated and still forwarded
	// whole.
	big := `{"blob":"` + strings.Repeat("b", 200000) + `"}`
	f("POST", "/api/uploads", "application/json", big, 200, "", "")
	f("POST", "/api/uploads", "application/json", `{"blob":"`+strings.Repeat("b", 300000)+`"}`, 413, "body_too_large", "")

	// Chunked, so that no Content-Length announces the size: the limit
	// must hold while reading. Below it, the body is forwarded whole.
	chunked := func(body string) int {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI(gw.URL + "/api/uploads")
		req.Header.SetContentType("application/json")
		req.SetBodyStream(strings.NewReader(body), -1)
		if err := proxytest.Client().DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	if got := chunked(`{"blob":"` + strings.Repeat("c", 400000) + `"}`); got != 413 {
		t.Fatalf("chunked body over maxBodySize: status %d, want 413", got)
	}
	// A chunked body on the GET route is found without reading it all.
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod("GET")
	req.SetRequestURI(gw.URL + "/api/products/1?productId=PRD-42&quantity=2")
	req.Header.SetContentType("application/json")
	req.SetBodyStream(strings.NewReader(`{"productId":"PRD-1","quantity":1}`), -1)
	before := up.Count.Load()
	if err := proxytest.Client().DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 400 || string(resp.Header.Peek("X-Flexgate-Error")) != "unexpected_body" || up.Count.Load() != before {
		t.Fatalf("chunked body on the GET route: %d %s, upstream reached: %v", resp.StatusCode(), resp.Body(), up.Count.Load() != before)
	}
	fasthttp.ReleaseRequest(req)
	fasthttp.ReleaseResponse(resp)

	body := `{"blob":"` + strings.Repeat("c", 250000) + `"}`
	if got := chunked(body); got != 200 {
		t.Fatalf("chunked body under maxBodySize: status %d, want 200", got)
	}
	if got := up.Last(t).Body; string(got) != body {
		t.Fatalf("the upstream received %d bytes of a %d-byte chunked body", len(got), len(body))
	}
}
