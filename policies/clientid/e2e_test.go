package clientid_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

func gatewayYAML(upstream, clients, params string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: e2e
spec:
  clients:
%s
  routes:
    - id: orders
      path: ["/orders/*"]
      upstream:
        url: "%s"
      policies:
        - client-id-enforcement%s
`, clients, upstream, params)
}

func status(t *testing.T, url string, h map[string]string) (int, string, string) {
	t.Helper()
	resp := proxytest.Do(t, "GET", url, h, nil)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error")), string(resp.Header.Peek("WWW-Authenticate"))
}

func TestEndToEndBasicAuthAndMetrics(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, "    - {id: app-1, secret: one}", ": {basicAuth: true}"))
	url := gw.URL + "/orders/1"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("app-1:one"))
	if s, r, _ := status(t, url, map[string]string{"Authorization": basic}); s != 200 {
		t.Fatalf("Basic credentials: %d %s", s, r)
	}
	if _, ok := up.Last(t).Header["Authorization"]; ok {
		t.Error("upstream saw the Basic credentials")
	}
	if s, r, www := status(t, url, nil); s != 401 || r != "missing_credentials" || www != `Basic realm="flexgate"` {
		t.Errorf("no credentials: %d %s %q", s, r, www)
	}
	resp := proxytest.Do(t, "GET", gw.AdminURL+"/metrics", nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if want := `flexgate_client_requests_total{route="orders",client="app-1"} 1`; !strings.Contains(string(resp.Body()), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestEndToEndRegistryReload is what a rotated Kubernetes Secret does: the
// registry changes, the route does not.
func TestEndToEndRegistryReload(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, "    - {id: app-1, secret: old}", ""))
	url := gw.URL + "/orders/1"
	if s, r, _ := status(t, url, map[string]string{"client_id": "app-1", "client_secret": "old"}); s != 200 {
		t.Fatalf("before rotation: %d %s", s, r)
	}
	if err := gw.Reload(t, gatewayYAML(up.URL, "    - {id: app-1, secret: new}\n    - {id: app-2, secret: two}", "")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, secret string
		want       int
	}{{"app-1", "new", 200}, {"app-2", "two", 200}, {"app-1", "old", 401}} {
		if s, r, _ := status(t, url, map[string]string{"client_id": c.id, "client_secret": c.secret}); s != c.want {
			t.Errorf("after rotation, %s/%s: %d %s, want %d", c.id, c.secret, s, r, c.want)
		}
	}
}
