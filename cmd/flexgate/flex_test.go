package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startHeaderEcho starts an upstream that answers with the request's path
// and headers as JSON, and with headers of its own (Server, X-Upstream).
func startHeaderEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		for k, v := range r.Header {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		w.Header().Set("Server", "upstream-server")
		w.Header().Set("X-Upstream", "1")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": headers})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type echoed struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// call sends method url with the headers (name, value pairs).
func call(t *testing.T, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp, b
}

// writeIn writes a file, making its directory first.
func writeIn(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, text)
}

// waitLog waits until the gateway has logged a line containing every one
// of words, and returns the log up to and including it.
func waitLog(t *testing.T, g *gateway, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := g.logs()
		for i, line := range strings.Split(logs, "\n") {
			all := true
			for _, w := range words {
				all = all && strings.Contains(line, w)
			}
			if all {
				return strings.Join(strings.Split(logs, "\n")[:i+1], "\n")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", words, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const flexAPI = `apiVersion: gateway.mulesoft.com/v1alpha1
kind: ApiInstance
metadata:
  name: orders
spec:
  address: http://127.0.0.1:0
  services:
    backend:
      address: http://UPSTREAM
  policies:
    - policyRef: {name: rate-limiting-flex}
      config:
        rateLimits: [{maximumRequests: 2, timePeriodInMilliseconds: 60000}]
        exposeHeaders: true
        clusterizable: false
`

const flexBindings = `apiVersion: gateway.mulesoft.com/v1beta1
kind: PolicyBinding
metadata:
  name: strip
spec:
  targetRef: {name: orders}
  policyRef: {name: header-removal-flex}
  config:
    inboundHeaders: ["x-internal-.*"]
    outboundHeaders: ["server"]
  order: 10
---
apiVersion: gateway.mulesoft.com/v1alpha1
kind: PolicyBinding
metadata:
  name: inject
spec:
  targetRef: {kind: Selector, selector: {kind: ApiInstance}}
  policyRef: {name: header-injection-flex}
  config:
    inboundHeaders: [{key: x-gateway-secret, value: $FLEX_E2E_SECRET}]
    outboundHeaders: [{key: x-served-by, value: flexgate}]
`

func flexLogging(level string) string {
	return "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Configuration\nmetadata: {name: logging}\nspec:\n  logging:\n    runtimeLogs: {logLevel: " + level + "}\n"
}

// TestFlexConfDirServes runs the binary on a Flex conf.d, with files in a
// subdirectory: the ApiInstance's port opens, its inline service serves,
// its policies (inline, bound by name and by Selector) run with Flex's
// responses, /config names where the route comes from, and the log level
// of a Configuration applies, and changes on reload.
func TestFlexConfDirServes(t *testing.T) {
	up := startHeaderEcho(t)
	dir := t.TempDir()
	writeIn(t, filepath.Join(dir, "api.yaml"), strings.Replace(flexAPI, "UPSTREAM", up, 1))
	writeIn(t, filepath.Join(dir, "policies", "bindings.yaml"), flexBindings)
	logging := filepath.Join(dir, "config", "logging.yml")
	writeIn(t, logging, flexLogging("debug"))
	g := startGateway(t, []string{"FLEX_E2E_SECRET=s3cret"}, "--config", dir, "--log-level", "info")
	waitLog(t, g, `"msg":"log level set"`, `"logLevel":"DEBUG"`)
	base := g.url("flex-0")

	resp, body := call(t, "GET", base+"/orders/7", "X-Internal-Token", "t", "X-Keep", "k")
	var got echoed
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	if got.Path != "/orders/7" || got.Headers["x-internal-token"] != "" || got.Headers["x-keep"] != "k" || got.Headers["x-gateway-secret"] != "s3cret" {
		t.Errorf("the upstream saw %+v", got)
	}
	if resp.Header.Get("Server") == "upstream-server" || resp.Header.Get("X-Upstream") != "1" || resp.Header.Get("X-Served-By") != "flexgate" {
		t.Errorf("response headers: %v", resp.Header)
	}
	if resp.Header.Get("X-Ratelimit-Limit") != "2" || resp.Header.Get("X-Ratelimit-Remaining") != "1" {
		t.Errorf("rate-limit headers: %v", resp.Header)
	}
	call(t, "GET", base+"/orders/7")
	resp, body = call(t, "GET", base+"/orders/7")
	var rej map[string]any
	if resp.StatusCode != 429 || json.Unmarshal(body, &rej) != nil || rej["error"] != "Too Many Requests" ||
		resp.Header.Get("X-Flexgate-Error") != "rate_limited" {
		t.Errorf("third request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if reset := resp.Header.Get("X-Ratelimit-Reset"); len(reset) < 4 {
		t.Errorf("X-Ratelimit-Reset = %q, want milliseconds", reset)
	}

	// /config: the route, its listener and where it comes from; the
	// secret as the reference written.
	_, body = call(t, "GET", g.url("admin")+"/config")
	var view struct {
		Config struct {
			Routes []struct {
				ID        string   `json:"id"`
				Listeners []string `json:"listeners"`
				Sources   []string `json:"sources"`
				Policies  []struct {
					Name   string `json:"name"`
					Params any    `json:"params"`
				} `json:"policies"`
			} `json:"routes"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &view); err != nil || len(view.Config.Routes) != 1 {
		t.Fatalf("/config: %v\n%s", err, body)
	}
	r := view.Config.Routes[0]
	bindings := filepath.Join(dir, "policies", "bindings.yaml")
	want := []string{filepath.Join(dir, "api.yaml") + ":4:9", filepath.Join(dir, "api.yaml") + ":8:5", bindings + ":16:9", bindings + ":4:9"}
	if r.ID != "default/orders/backend" || strings.Join(r.Listeners, ",") != "flex-0" || strings.Join(r.Sources, " ") != strings.Join(want, " ") {
		t.Errorf("/config route: %+v\nwant sources %v", r, want)
	}
	if names := []string{r.Policies[0].Name, r.Policies[1].Name, r.Policies[2].Name}; strings.Join(names, ",") != "header-injection-flex,header-removal-flex,rate-limiting-flex" {
		t.Errorf("policies in order: %v", names)
	}
	if strings.Contains(string(body), "s3cret") || !strings.Contains(string(body), "$env.FLEX_E2E_SECRET") {
		t.Errorf("/config shows the secret, or not its reference:\n%s", body)
	}

	// The level follows the Configuration: at warn, the reload that
	// follows logs nothing at info; back at info, it does again.
	writeIn(t, logging, flexLogging("warn"))
	waitLog(t, g, `"msg":"log level set"`, `"logLevel":"WARN"`)
	writeIn(t, logging, flexLogging("warn")+"# edited\n")
	writeIn(t, logging, flexLogging("info"))
	logs := waitLog(t, g, `"msg":"log level set"`, `"logLevel":"INFO"`)
	between := logs[strings.Index(logs, `"logLevel":"WARN"`):]
	if strings.Contains(between, `"msg":"config reloaded"`) {
		t.Errorf("info lines logged at level warn:\n%s", between)
	}
}

// TestFlexPortZero: `flexgate validate`, as users build it, refuses an
// ApiInstance on port 0, at its place; the binary the other tests run is
// built to accept it (e2e.go). This test runs validate in this process,
// which go test builds without that tag.
func TestFlexPortZero(t *testing.T) {
	if loadOptions.EphemeralPorts {
		t.Skip("built with the tag flexgate_e2e, which accepts port 0")
	}
	dir := t.TempDir()
	writeIn(t, filepath.Join(dir, "api.yaml"), strings.Replace(flexAPI, "UPSTREAM", "backend:8080", 1))
	var out, errOut strings.Builder
	code := cmdValidate([]string{dir}, &out, &errOut)
	want := filepath.Join(dir, "api.yaml") + `:6:12: ApiInstance address "http://127.0.0.1:0" has port 0: ` +
		"the gateway would listen on a port the kernel picks, which its clients cannot know; use a port from 1 to 65535\n"
	if code != 1 || out.String() != want {
		t.Errorf("exit %d:\n%s%s\nwant exit 1:\n%s", code, out.String(), errOut.String(), want)
	}
}

// TestFlexValidate: validate reads a conf.d as run does, prints a summary
// per resource and the routes they produce with where they come from, and
// reports each problem at its place.
func TestFlexValidate(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, filepath.Join(dir, "api.yaml"), strings.Replace(flexAPI, "UPSTREAM", "backend:8080", 1))
	writeIn(t, filepath.Join(dir, "policies", "bindings.yaml"), flexBindings)
	out, code := runBinary(t, []string{"FLEX_E2E_SECRET=x"}, "validate", dir)
	api := filepath.Join(dir, "api.yaml")
	for _, want := range []string{
		api + ": ApiInstance default/orders at http://127.0.0.1:0 (1 service, 1 inline policy)",
		"PolicyBinding default/inject: header-injection-flex on every ApiInstance",
		`route "default/orders/backend" on flex-0: /* -> http://backend:8080; policies: header-injection-flex, header-removal-flex, rate-limiting-flex (from ` + api + ":4:9, " + api + ":8:5, ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q", want)
		}
	}
	if code != 0 || t.Failed() {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	writeIn(t, filepath.Join(dir, "custom.yaml"), "apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Extension\nmetadata: {name: custom-flex}\nspec: {}\n")
	writeIn(t, filepath.Join(dir, "ldap.yaml"), strings.Replace(flexBindings[:strings.Index(flexBindings, "---")], "header-removal-flex", "ldap-authentication-flex", 1))
	out, code = runBinary(t, []string{"FLEX_E2E_SECRET=x"}, "validate", dir)
	for _, want := range []string{
		filepath.Join(dir, "custom.yaml") + ":2:7: kind: Extension",
		filepath.Join(dir, "ldap.yaml") + `:7:21: policy "ldap-authentication-flex" (LDAP authentication) is not supported yet`,
		// ldap.yaml is read first, and defines the binding's name too.
		filepath.Join(dir, "policies", "bindings.yaml") + ":4:9: PolicyBinding default/strip is already defined at " + filepath.Join(dir, "ldap.yaml") + ":4:9",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q", want)
		}
	}
	if code != 1 || t.Failed() {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
