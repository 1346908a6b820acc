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

// TestEndToEndFormBody: an upstream that reads form parameters (Rails
// params, PHP $_POST) would credit the call to the client_id of a form
// body, while the policy checked the headers: such a request is refused
// before it reaches the upstream. A form without credentials, large
// enough to stream from the client, reaches the upstream intact; one
// larger than the gateway reads to look for them is refused with 413.
func TestEndToEndFormBody(t *testing.T) {
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, gatewayYAML(up.URL, "    - {id: app-1, secret: one}\n    - {id: victim, secret: two}", ""))
	url := gw.URL + "/orders/1"
	creds := func(ct string) map[string]string {
		return map[string]string{"client_id": "app-1", "client_secret": "one", "Content-Type": ct}
	}
	post := func(h map[string]string, body string) (int, string, string) {
		t.Helper()
		resp := proxytest.Do(t, "POST", url, h, []byte(body))
		defer fasthttp.ReleaseResponse(resp)
		return resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error")), string(resp.Body())
	}
	for _, c := range []struct{ ct, body, want string }{
		{"application/x-www-form-urlencoded", "amount=3&client_id=victim", "carries client_id in the form body"},
		{"Application/X-WWW-Form-Urlencoded; charset=utf-8", "CLIENT.ID=victim", "carries client_id in the form body"},
		{"application/x-www-form-urlencoded", "client_secret=two", "carries client_secret in the form body"},
		{"application/x-www-form-urlencoded", "note=" + strings.Repeat("n", 100<<10) + "&client_id=victim", "carries client_id in the form body"},
	} {
		before := up.Count.Load()
		s, reason, body := post(creds(c.ct), c.body)
		if s != 400 || reason != "duplicate_credentials" || !strings.Contains(body, c.want) {
			t.Errorf("%s %.40q: %d %s %s, want 400 duplicate_credentials %q", c.ct, c.body, s, reason, body, c.want)
		}
		if up.Count.Load() != before {
			t.Errorf("%.40q: the request reached the upstream", c.body)
		}
	}

	// Not a form: the upstream does not read its parameters.
	if s, reason, _ := post(creds("application/json"), `{"client_id":"victim"}`); s != 200 {
		t.Errorf("JSON body: %d %s", s, reason)
	}
	form := "note=" + strings.Repeat("abcdefgh", 25<<10) + "&amount=3"
	if s, reason, _ := post(creds("application/x-www-form-urlencoded"), form); s != 200 {
		t.Fatalf("streamed form without credentials: %d %s", s, reason)
	}
	if got := up.Last(t); string(got.Body) != form || got.Header["Content-Type"] != "application/x-www-form-urlencoded" {
		t.Errorf("the upstream got %d bytes of type %q, want the %d of the form", len(got.Body), got.Header["Content-Type"], len(form))
	}
	s, reason, body := post(creds("application/x-www-form-urlencoded"), "note="+strings.Repeat("x", 1<<20))
	if s != 413 || reason != "body_too_large" || !strings.Contains(body, "form body is larger than 1048576 bytes") {
		t.Errorf("form over the limit: %d %s %s", s, reason, body)
	}
}
