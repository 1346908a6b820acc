package iplist_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	_ "github.com/flexgate/flexgate/policies/iplist"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

func gatewayYAML(upstream, trusted, policy string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  trustedProxies: [%s]
  routes:
    - id: admin
      path: ["/admin/*"]
      upstream: {url: "%s"}
      policies:
        - %s
`, trusted, upstream, policy)
}

// TestEndToEndForwardedFor: the default address is the one the gateway
// verified, so X-Forwarded-For counts only from a trusted proxy, and then
// only its right-most untrusted address: a client cannot write its way in.
func TestEndToEndForwardedFor(t *testing.T) {
	up := proxytest.StartUpstream(t)
	const allow = `ip-allowlist: {ips: ["10.0.0.0/8"]}`
	gw := proxytest.Start(t, gatewayYAML(up.URL, "", allow))
	status := func(xff string) (int, string) {
		t.Helper()
		h := map[string]string{}
		if xff != "" {
			h["X-Forwarded-For"] = xff
		}
		resp := proxytest.Do(t, "GET", gw.URL+"/admin/x", h, nil)
		defer fasthttp.ReleaseResponse(resp)
		return resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error"))
	}
	// The test's client is 127.0.0.1, which is not a trusted proxy here.
	if s, r := status("10.0.0.1"); s != 403 || r != "ip_not_allowed" {
		t.Errorf("untrusted peer with a forged X-Forwarded-For: %d %s", s, r)
	}
	if err := gw.Reload(t, gatewayYAML(up.URL, `"127.0.0.1/32"`, allow)); err != nil {
		t.Fatal(err)
	}
	for xff, want := range map[string]int{
		"10.0.0.1":              200, // what the trusted proxy saw
		"10.0.0.1, 203.0.113.5": 403, // a client of the proxy that wrote 10.0.0.1 itself
		"203.0.113.5, 10.0.0.1": 200,
		"::ffff:10.1.1.1":       200,
		"10.0.0.1, 127.0.0.1":   200, // trusted hops are skipped
		"":                      403, // the proxy itself, 127.0.0.1
	} {
		if s, r := status(xff); s != want {
			t.Errorf("trusted peer, X-Forwarded-For %q: %d %s, want %d", xff, s, r, want)
		}
	}

	// Flex Gateway's own default reads the header as it is: every address
	// of it must be allowed, and one that is not refuses.
	if err := gw.Reload(t, gatewayYAML(up.URL, "", `ip-allowlist-flex: {ips: ["10.0.0.0/8"], ipExpression: "#[attributes.headers['x-forwarded-for']]"}`)); err != nil {
		t.Fatal(err)
	}
	for xff, want := range map[string]string{"10.0.0.1": "", "10.0.0.1, 203.0.113.5": "ip_not_allowed", "garbage": "ip_unknown", "": "ip_unknown"} {
		if _, r := status(xff); r != want {
			t.Errorf("ip-allowlist-flex on X-Forwarded-For %q: %q, want %q", xff, r, want)
		}
	}

	m := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(m)
	for _, want := range []string{
		`flexgate_policy_rejections_total{route="admin",policy="ip-allowlist",reason="ip_not_allowed"} 3`,
		`flexgate_policy_rejections_total{route="admin",policy="ip-allowlist-flex",reason="ip_unknown"} 2`,
	} {
		if !strings.Contains(string(m.Body()), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
