package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

var scripts = []string{"smoke.js", "load.js", "stress.js", "spike.js", "soak.js", "rate-limit.js"}

// TestScriptsParseAsModules is the check k6 cannot do here: every script
// must parse as an ES module (node --check on an .mjs copy; k6's own
// imports are not resolved by a parse) and follow k6's conventions.
func TestScriptsParseAsModules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; CI has it (the scripts' parse check needs it)")
	}
	dir := t.TempDir()
	for _, name := range scripts {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			copyPath := filepath.Join(dir, strings.TrimSuffix(name, ".js")+".mjs")
			if err := os.WriteFile(copyPath, src, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(node, "--check", copyPath).CombinedOutput(); err != nil {
				t.Fatalf("%s does not parse as an ES module: %v\n%s", name, err, out)
			}
			s := string(src)
			// A parse does not resolve imports: check the local ones exist.
			for _, m := range localImport.FindAllStringSubmatch(s, -1) {
				if _, err := os.Stat(m[1]); err != nil {
					t.Errorf("%s imports %s, which is not in loadtest/: %v", name, m[1], err)
				}
			}
			for _, want := range []string{
				"export const options", "export default function", "scenarios:", "thresholds:",
				"__ENV.BASE_URL", "check(", "from 'k6/http'",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("%s lacks %q", name, want)
				}
			}
		})
	}
}

var localImport = regexp.MustCompile(`from '\./([^']+)'`)

// TestScriptsAreAllDocumented keeps README.md in step with the scripts.
func TestScriptsAreAllDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	job, err := os.ReadFile(filepath.Join("k8s", "k6-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	envRE := regexp.MustCompile(`__ENV\.([A-Z0-9_]+)`)
	for _, name := range scripts {
		if !strings.Contains(string(readme), name) {
			t.Errorf("README.md does not mention %s", name)
		}
		src, _ := os.ReadFile(name)
		for _, m := range envRE.FindAllStringSubmatch(string(src), -1) {
			if !strings.Contains(string(readme), "`"+m[1]+"`") {
				t.Errorf("%s reads %s, which README.md does not document", name, m[1])
			}
		}
	}
	if !strings.Contains(string(job), "kind: Job") || !strings.Contains(string(job), "grafana/k6") {
		t.Error("k8s/k6-job.yaml is not a Job running the k6 image")
	}
}

// securedRoute is the seed's secured route with a local upstream and
// introspection endpoint, and a limit given by the test.
func securedRoute(upstream, introspect string, limit int) string {
	return fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: secured-product-gateway
spec:
  clients:
    - id: shop-app
      secret: shop-secret
  routes:
    - id: product-catalog
      path: ["/api/products/*"]
      methods: ["GET"]
      upstream:
        url: "%s"
      policies:
        - rate-limiting:
            limit: %d
            period: 60
            identifier: $request.remoteAddress
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
        - client-id-enforcement
        - token-introspection:
            url: "%s"
            clientId: introspector
            clientSecret: introspector-secret
            cacheTtl: 60
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
`, upstream, limit, introspect)
}

// The scripts' defaults: API_PATH and the credentials a user passes.
const apiPath = "/api/products/PRD-42?productId=PRD-42&quantity=2"

var creds = map[string]string{
	"client_id":        "shop-app",
	"client_secret":    "shop-secret",
	"Authorization":    "Bearer valid-token",
	"X-Internal-Trace": "leak-me-not",
}

// startSecured starts an upstream, an introspection endpoint that calls
// every token active, and the gateway with the secured route.
func startSecured(t *testing.T, limit int) (*proxytest.Gateway, *proxytest.Upstream) {
	t.Helper()
	up := proxytest.StartUpstream(t)
	auth := proxytest.StartUpstream(t)
	auth.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"active":true,"client_id":"shop-app","scope":"products:read"}`)
	}
	return proxytest.Start(t, securedRoute(up.URL, auth.URL+"/introspect", limit)), up
}

// TestSmokeScenario plays smoke.js: every response 200, JSON, with the
// security headers, and the chain's request rules visible upstream.
func TestSmokeScenario(t *testing.T) {
	gw, up := startSecured(t, 1000)
	for i := 0; i < 20; i++ {
		resp := proxytest.Do(t, "GET", gw.URL+apiPath, creds, nil)
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d: status %d, body %s", i+1, resp.StatusCode(), resp.Body())
		}
		for h, want := range map[string]string{
			"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
			"X-Content-Type-Options":    "nosniff",
			"X-Flexgate-Error":          "",
		} {
			if got := string(resp.Header.Peek(h)); got != want {
				t.Errorf("request %d: %s = %q, want %q", i+1, h, got, want)
			}
		}
		if !strings.Contains(string(resp.Header.ContentType()), "json") {
			t.Errorf("request %d: content type %q, want JSON", i+1, resp.Header.ContentType())
		}
		fasthttp.ReleaseResponse(resp)
	}
	last := up.Last(t)
	if last.Header["X-Api-Version"] != "v1" || last.Header["Authorization"] != "" || last.Header["X-Internal-Trace"] != "" {
		t.Errorf("upstream saw headers %v: want X-API-Version v1, no Authorization, no X-Internal-*", last.Header)
	}
}

// TestSmokeScenarioFailsWithoutCredentials shows the smoke checks would
// catch a deploy whose clients lost their credentials.
func TestSmokeScenarioFailsWithoutCredentials(t *testing.T) {
	gw, _ := startSecured(t, 1000)
	resp := proxytest.Do(t, "GET", gw.URL+apiPath, nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() == 200 || len(resp.Header.Peek("X-Flexgate-Error")) == 0 {
		t.Errorf("no credentials: status %d, X-Flexgate-Error %q; want a refusal naming its reason",
			resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
}

// TestRateLimitScenario plays rate-limit.js against a route limited to 5
// per minute: five pass with the limit headers counting down, the rest are
// 429 with Retry-After and the reason.
func TestRateLimitScenario(t *testing.T) {
	const limit, extra = 5, 3
	gw, _ := startSecured(t, limit)
	lastRemaining := limit
	passed := 0
	for i := 0; i < limit+extra; i++ {
		resp := proxytest.Do(t, "GET", gw.URL+apiPath, creds, nil)
		status := resp.StatusCode()
		hdr := func(name string) int {
			n, err := strconv.Atoi(string(resp.Header.Peek(name)))
			if err != nil {
				return -1
			}
			return n
		}
		if i < limit {
			passed++
			if status != 200 {
				t.Errorf("request %d of %d: status %d, want 200: %s", i+1, limit, status, resp.Body())
			}
			if got := hdr("X-RateLimit-Limit"); got != limit {
				t.Errorf("request %d: X-RateLimit-Limit %d, want %d", i+1, got, limit)
			}
			rem := hdr("X-RateLimit-Remaining")
			if rem < 0 || rem >= lastRemaining {
				t.Errorf("request %d: X-RateLimit-Remaining %d after %d, want it counting down", i+1, rem, lastRemaining)
			}
			lastRemaining = rem
			if hdr("X-RateLimit-Reset") < 0 {
				t.Errorf("request %d: no X-RateLimit-Reset", i+1)
			}
		} else {
			if status != 429 {
				t.Errorf("request %d, past the limit: status %d, want 429", i+1, status)
			}
			if ra := hdr("Retry-After"); ra < 1 {
				t.Errorf("request %d: Retry-After %q, want whole seconds >= 1", i+1, resp.Header.Peek("Retry-After"))
			}
			if got := string(resp.Header.Peek("X-Flexgate-Error")); got != "rate_limited" {
				t.Errorf("request %d: X-Flexgate-Error %q, want rate_limited", i+1, got)
			}
			if !strings.Contains(string(resp.Header.ContentType()), "json") {
				t.Errorf("request %d: 429 body type %q, want JSON", i+1, resp.Header.ContentType())
			}
		}
		fasthttp.ReleaseResponse(resp)
	}
	if passed != limit {
		t.Errorf("%d passed, want %d", passed, limit)
	}
}

// TestLoadScenarioHasNoErrors plays load.js briefly: many clients at once
// through the whole chain, bounded in count and time, and not one failure.
// Latency thresholds are left to the benchmarks: this machine is shared.
func TestLoadScenarioHasNoErrors(t *testing.T) {
	gw, up := startSecured(t, 1_000_000)
	const workers, each = 16, 100
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := proxytest.Client()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := map[string]int{}
	sent := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := 0; i < each && ctx.Err() == nil; i++ {
				req.Reset()
				req.SetRequestURI(gw.URL + apiPath)
				for k, v := range creds {
					req.Header.Set(k, v)
				}
				err := client.DoTimeout(req, resp, 5*time.Second)
				mu.Lock()
				sent++
				switch {
				case err != nil:
					failures[err.Error()]++
				case resp.StatusCode() != 200:
					failures[fmt.Sprintf("status %d %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent != workers*each {
		t.Errorf("sent %d of %d requests within 30 s", sent, workers*each)
	}
	if len(failures) > 0 {
		t.Errorf("failures under load: %v", failures)
	}
	if n := up.Count.Load(); n != int64(sent) {
		t.Errorf("upstream got %d requests, gateway answered %d", n, sent)
	}
}
