package introspection_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// securedYAML is the seed's secured-gateway-config.yaml with a client
// registry, the upstream and introspection server of the test, and extra
// parameters for token-introspection.
func securedYAML(upstream, introspect, extra string) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: secured-product-gateway
spec:
  clients:
    - id: shop-app
      secret: $env.FG_E2E_SHOP_SECRET
  routes:
    - id: product-catalog
      path: ["/api/products/*"]
      methods: ["GET"]
      upstream:
        url: "%s"
      policies:
        - rate-limiting:
            limit: 1000
            period: 60
            identifier: $request.remoteAddress
        - client-id-enforcement
        - token-introspection:
            url: "%s"
            clientId: $env.INTROSPECTION_CLIENT_ID # never hardcode secrets
            clientSecret: $env.INTROSPECTION_CLIENT_SECRET
            cacheTtl: 60%s
        - request-headers-remove:
            headers: ["X-Internal-*", "Authorization"]
        - request-headers-set:
            headers:
              X-API-Version: "v1"
        - response-headers-set:
            headers:
              X-Content-Type-Options: "nosniff"
`, upstream, introspect, extra)
}

// authServer is a real introspection endpoint that counts its calls.
type authServer struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	active map[string]string // token → scope of an active token
	status int
}

func startAuthServer(t *testing.T) *authServer {
	a := &authServer{active: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if id, secret, _ := r.BasicAuth(); id != "gateway" || secret != "idp-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a.mu.Lock()
		scope, ok := a.active[r.PostFormValue("token")]
		status := a.status
		a.mu.Unlock()
		switch {
		case status != 0:
			w.WriteHeader(status)
		case ok:
			fmt.Fprintf(w, `{"active":true,"sub":"alice","client_id":"shop-app","scope":%q}`, scope)
		default:
			fmt.Fprint(w, `{"active":false}`)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func TestEndToEndSecuredRoute(t *testing.T) {
	t.Setenv("FG_E2E_SHOP_SECRET", "shop-secret")
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway")
	t.Setenv("INTROSPECTION_CLIENT_SECRET", "idp-secret")
	auth := startAuthServer(t)
	auth.active["good-token"] = "products:read"
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, securedYAML(up.URL, auth.URL+"/introspect", ""))
	url := gw.URL + "/api/products/PRD-1"

	type want struct {
		status           int
		reason, wwwAuth  string
		upstreamReceives bool
	}
	check := func(name string, h map[string]string, w want) {
		t.Helper()
		before := up.Count.Load()
		resp := proxytest.Do(t, "GET", url, h, nil)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != w.status {
			t.Errorf("%s: status %d, want %d; body %s", name, resp.StatusCode(), w.status, resp.Body())
		}
		if got := string(resp.Header.Peek("X-Flexgate-Error")); got != w.reason {
			t.Errorf("%s: X-Flexgate-Error %q, want %q", name, got, w.reason)
		}
		if w.reason != "" && !strings.Contains(string(resp.Body()), w.reason) {
			t.Errorf("%s: body %s does not name %s", name, resp.Body(), w.reason)
		}
		if got := string(resp.Header.Peek("WWW-Authenticate")); got != w.wwwAuth {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, w.wwwAuth)
		}
		if reached := up.Count.Load() > before; reached != w.upstreamReceives {
			t.Errorf("%s: upstream reached = %v, want %v", name, reached, w.upstreamReceives)
		}
	}
	good := map[string]string{"client_id": "shop-app", "client_secret": "shop-secret",
		"Authorization": "Bearer good-token", "X-Internal-Trace": "x"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for k, v := range good {
			h[k] = v
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}

	check("good caller", good, want{200, "", "", true})
	rec := up.Last(t)
	for _, h := range []string{"Authorization", "X-Internal-Trace", "Client_secret", "Client-Secret"} {
		if _, ok := rec.Header[h]; ok {
			t.Errorf("upstream saw %s", h)
		}
	}
	if rec.Header["X-Api-Version"] != "v1" {
		t.Errorf("upstream headers %v, want X-Api-Version v1", rec.Header)
	}
	check("good caller again", good, want{200, "", "", true})
	if n := auth.calls.Load(); n != 1 {
		t.Errorf("two requests within cacheTtl made %d introspection calls, want 1", n)
	}

	check("no credentials", with("client_id", ""), want{401, "missing_credentials", "", false})
	check("unknown client", with("client_id", "nobody"), want{401, "invalid_client", "", false})
	check("wrong secret", with("client_secret", "guess"), want{401, "invalid_client", "", false})
	check("no token", with("Authorization", ""), want{401, "missing_token", `Bearer realm="flexgate"`, false})
	check("inactive token", with("Authorization", "Bearer revoked"),
		want{401, "invalid_token", `Bearer realm="flexgate", error="invalid_token"`, false})

	auth.mu.Lock()
	auth.status = http.StatusServiceUnavailable
	auth.mu.Unlock()
	check("IdP failing", with("Authorization", "Bearer new-token"), want{503, "introspection_unavailable", "", false})
	auth.Close()
	check("IdP down", with("Authorization", "Bearer newer-token"), want{503, "introspection_unavailable", "", false})
	check("cached token while IdP down", good, want{200, "", "", true})

	if strings.Contains(gw.Logs.String(), "newer-token") || strings.Contains(gw.Logs.String(), "shop-secret") {
		t.Errorf("a token or secret reached the log:\n%s", gw.Logs.String())
	}
}

func TestEndToEndScopeAndConcurrency(t *testing.T) {
	t.Setenv("FG_E2E_SHOP_SECRET", "shop-secret")
	t.Setenv("INTROSPECTION_CLIENT_ID", "gateway")
	t.Setenv("INTROSPECTION_CLIENT_SECRET", "idp-secret")
	auth := startAuthServer(t)
	auth.active["reader"] = "products:read"
	auth.active["writer"] = "products:read products:write"
	up := proxytest.StartUpstream(t)
	gw := proxytest.Start(t, securedYAML(up.URL, auth.URL, "\n            scopes: [products:write]"))
	url := gw.URL + "/api/products/PRD-1"
	h := func(token string) map[string]string {
		return map[string]string{"client_id": "shop-app", "client_secret": "shop-secret", "Authorization": "Bearer " + token}
	}

	resp := proxytest.Do(t, "GET", url, h("reader"), nil)
	if resp.StatusCode() != 403 || string(resp.Header.Peek("X-Flexgate-Error")) != "insufficient_scope" ||
		string(resp.Header.Peek("WWW-Authenticate")) != `Bearer realm="flexgate", error="insufficient_scope", scope="products:write"` {
		t.Errorf("token without the scope: %d %s %s", resp.StatusCode(), resp.Header.Peek("WWW-Authenticate"), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)

	const n = 100
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := proxytest.Do(t, "GET", url, h("writer"), nil)
			if resp.StatusCode() == 200 {
				ok.Add(1)
			}
			fasthttp.ReleaseResponse(resp)
		}()
	}
	wg.Wait()
	if ok.Load() != n {
		t.Errorf("%d of %d concurrent requests passed", ok.Load(), n)
	}
	if c := auth.calls.Load(); c != 2 {
		t.Errorf("introspection calls = %d, want 2 (one for reader, one shared by %d concurrent writers)", c, n)
	}
}
