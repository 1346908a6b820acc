package specvalidation_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestEndToEnd: through the real gateway, a valid request reaches the
// upstream with its body, an invalid one is answered 400 with the
// violations, and an unknown operation 400, neither reaching it.
func TestEndToEnd(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: e2e
spec:
  routes:
    - id: pets
      path: ["/api/*"]
      upstream:
        url: "%s"
      policies:
%s`, up.URL, block(policy(t, ""), 8)))
	jsonCT := map[string]string{"Content-Type": "application/json"}
	body := `{"name":"rex","age":3}`
	resp := proxytest.Do(t, "POST", gw.URL+"/api/pets", jsonCT, []byte(body))
	if resp.StatusCode() != 200 || string(up.Last(t).Body) != body {
		t.Errorf("valid POST: %d %s; upstream got %q", resp.StatusCode(), resp.Body(), up.Last(t).Body)
	}
	fasthttp.ReleaseResponse(resp)
	n := up.Count.Load()
	for _, tc := range []struct {
		method, uri, body, reason string
		violations                []string
	}{
		{"POST", "/api/pets", `{"name":"","age":0}`, "validation_failed", []string{"/body/name", "/body/age"}},
		{"GET", "/api/pets/0?sizes=1", "", "validation_failed", []string{"/path/petId"}},
		{"GET", "/api/owners", "", "unknown_operation", nil},
	} {
		resp := proxytest.Do(t, tc.method, gw.URL+tc.uri, jsonCT, []byte(tc.body))
		var got struct {
			Reason     string `json:"reason"`
			Policy     string `json:"policy"`
			Violations []struct {
				Path string `json:"path"`
			} `json:"violations"`
		}
		if err := json.Unmarshal(resp.Body(), &got); err != nil || resp.StatusCode() != 400 || got.Reason != tc.reason ||
			got.Policy != "spec-validation" || string(resp.Header.Peek("X-Flexgate-Error")) != tc.reason {
			t.Errorf("%s %s: %d %s", tc.method, tc.uri, resp.StatusCode(), resp.Body())
		}
		var paths []string
		for _, v := range got.Violations {
			paths = append(paths, v.Path)
		}
		if strings.Join(paths, " ") != strings.Join(tc.violations, " ") {
			t.Errorf("%s %s: violations %v, want %v", tc.method, tc.uri, paths, tc.violations)
		}
		fasthttp.ReleaseResponse(resp)
	}
	if up.Count.Load() != n {
		t.Error("a refused request reached the upstream")
	}
	resp = proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	for _, want := range []string{`flexgate_spec_validation_total{route="pets",result="valid"} 1`,
		`flexgate_spec_validation_total{route="pets",result="refused"} 3`,
		`flexgate_policy_rejections_total{route="pets",policy="spec-validation",reason="unknown_operation"} 1`} {
		if !strings.Contains(string(resp.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	fasthttp.ReleaseResponse(resp)
}

// TestEndToEndFlex: spec-validation-flex on a Flex ApiInstance, whose
// base path the spec's apiBasePath names.
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
    - policyRef: {name: spec-validation-flex}
      config:
        source: inline
        apiBasePath: /shop
        strictParamsValidation: true
        spec: |
%s`, up.URL, block(petstore(t), 10)))
	for _, tc := range []struct {
		uri  string
		want int
	}{{"/shop/pets/7", 200}, {"/shop/pets/7?debug=1", 400}, {"/shop/pets/x", 400}, {"/shop/nothing", 400}} {
		resp := proxytest.Do(t, "GET", gw.URL+tc.uri, nil, nil)
		if resp.StatusCode() != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.uri, resp.StatusCode(), resp.Body(), tc.want)
		}
		fasthttp.ReleaseResponse(resp)
	}
	if n := up.Count.Load(); n != 1 {
		t.Errorf("the upstream got %d requests, want 1", n)
	}
}
