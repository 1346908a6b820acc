package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flexgate/flexgate/examples"
)

var binary string

// TestMain builds the real binary once: these tests run it as users do,
// but for the tag flexgate_e2e, which lets a Flex ApiInstance listen on
// port 0 (e2e.go), so that they serve Flex configs on ports the kernel
// picks.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flexgate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "flexgate")
	out, err := exec.Command("go", "build", "-tags", "flexgate_e2e", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building flexgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// command runs the binary with its address space capped, so that input
// that makes it allocate without bound ends it with "out of memory" instead
// of taking the machine's memory (and the other tests' with it).
func command(args ...string) *exec.Cmd {
	return exec.Command("/bin/sh", append([]string{"-c", `ulimit -v 4194304 && exec "$0" "$@"`, binary}, args...)...)
}

func runBinary(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := command(args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestVersion(t *testing.T) {
	out, code := runBinary(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "flexgate ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestValidateExamples(t *testing.T) {
	gw := examples.Path(t, "gateway-config.yaml")
	out, code := runBinary(t, nil, "validate", "--skip-cert-files", gw)
	if code != 0 || !strings.Contains(out, `gateway-config.yaml: Gateway "edge-gateway": 1 listener, 1 route`) {
		t.Fatalf("validate the example: exit %d\n%s", code, out)
	}
	// Without the TLS secret mounted, validate says which file is missing.
	out, code = runBinary(t, nil, "validate", gw)
	if code != 1 || !strings.Contains(out, "gateway-config.yaml:16:13: cannot read certificate file /tls/tls.crt") {
		t.Fatalf("validate the example without certificates: exit %d\n%s", code, out)
	}

	secured := examples.Path(t, "secured-gateway-config.yaml")
	clients := filepath.Join(t.TempDir(), "clients.yaml")
	if err := os.WriteFile(clients, []byte("clients:\n  - id: mobile-app\n    secret: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"INTROSPECTION_CLIENT_ID=gw", "INTROSPECTION_CLIENT_SECRET=pw"}
	out, code = runBinary(t, env, "validate", "--clients", clients, secured)
	if code != 0 || !strings.Contains(out, `secured-gateway-config.yaml: Gateway "secured-product-gateway": 0 listeners, 1 route, 7 policies`) {
		t.Fatalf("validate the secured example: exit %d\n%s", code, out)
	}
}

// TestValidateWithoutSecrets: CI has neither the pod's environment nor its
// client registry; the secured example still validates there.
func TestValidateWithoutSecrets(t *testing.T) {
	secured := examples.Path(t, "secured-gateway-config.yaml")
	cmd := exec.Command(binary, "validate", secured)
	cmd.Env = filterEnv(os.Environ(), "INTROSPECTION_")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "INTROSPECTION_CLIENT_ID is not set") {
		t.Fatalf("without the flag: %s", out)
	}
	cmd = exec.Command(binary, "validate", "--without-secrets", secured, examples.Path(t, "gateway-config.yaml"))
	cmd.Env = filterEnv(os.Environ(), "INTROSPECTION_")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "7 policies") {
		t.Fatalf("--without-secrets: %v\n%s", err, out)
	}
}

// TestValidateWithoutSecretsInlinePEM: a Flex tls policy whose certificate
// and key come from the environment validates in CI without them, as a
// certificate file does with --skip-cert-files; without the flag the
// missing secrets are named.
func TestValidateWithoutSecretsInlinePEM(t *testing.T) {
	tlsExample := examples.Path(t, "flex/06-tls.yaml")
	cmd := exec.Command(binary, "validate", tlsExample)
	cmd.Env = filterEnv(os.Environ(), "TLS_")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "TLS_KEY_PEM is not set") {
		t.Fatalf("without the flag: %s", out)
	}
	for _, flag := range []string{"--without-secrets", "--skip-cert-files"} {
		cmd = exec.Command(binary, "validate", flag, tlsExample)
		cmd.Env = filterEnv(os.Environ(), "TLS_")
		if flag == "--skip-cert-files" {
			cmd.Env = append(cmd.Env, "TLS_KEY_PEM=not a key", "TLS_CERT_PEM=not a certificate")
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tls on ApiInstance default/secure-api") {
			t.Errorf("%s: %v\n%s", flag, err, out)
		}
	}
	cmd = exec.Command(binary, "validate", tlsExample)
	cmd.Env = append(filterEnv(os.Environ(), "TLS_"), "TLS_KEY_PEM=not a key", "TLS_CERT_PEM=not a certificate")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "holds no PEM private key") {
		t.Errorf("a broken key without --skip-cert-files: %v\n%s", err, out)
	}
}

func filterEnv(env []string, prefix string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: bad}
spec:
  routes:
    - id: a
      path: ["/a/*"]
      upstream: {url: "ftp://files:21"}
    - id: b
      path: ["/b/*"]
      methods: [FETCH]
      upstream: {url: "http://b:80", timeout: 2s}
    - id: d
      path: ["/d/*"]
      upstream: {url: "$env.FLEXGATE_TEST_UNSET_UPSTREAM"}
`)
	// Policies are compiled once the config itself is sound.
	badPolicies := write("policies.yaml", `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: bad}
spec:
  routes:
    - id: c
      path: ["/c/*"]
      upstream: {url: "http://c:80"}
      policies:
        - rate-limit: {limit: 1}
        - rate-limiting: {limit: 10, period: 60, identifier: $request.nope}
`)
	out, code := runBinary(t, nil, "validate", bad)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	f := func(file, out string, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("validate output lacks %q", want)
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			// An expression's error goes on with the value, indented,
			// and a caret under the place.
			if !strings.HasPrefix(line, file+":") && !strings.HasPrefix(line, "    ") {
				t.Errorf("line %q is not in file:line:col: message form, nor an indented continuation", line)
			}
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	}
	f(bad, out,
		bad+`:8:23: upstream url "ftp://files:21" must start with http:// or https://`,
		bad+`:11:17: unknown HTTP method "FETCH"; known methods: GET,`,
		bad+`:12:38: unknown field "timeout" in upstream; known fields: caFile, circuitBreaker, connectTimeout,`,
		bad+`:15:23: environment variable FLEXGATE_TEST_UNSET_UPSTREAM is not set; set it`)

	out, code = runBinary(t, nil, "validate", badPolicies)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	f(badPolicies, out,
		badPolicies+`:10:11: route "c": unknown policy "rate-limit"; known policies: client-id-enforcement,`,
		badPolicies+`:11:62: rate-limiting: identifier: unknown expression $request.nope; known expressions: $request.remoteAddress,`,
		"$env.NAME\n    $request.nope\n    ^\n")
}

// gateway is a flexgate process under test.
type gateway struct {
	cmd   *exec.Cmd
	addrs map[string]string
	mu    sync.Mutex
	log   bytes.Buffer
	exit  chan error
}

func startGateway(t *testing.T, env []string, args ...string) *gateway {
	t.Helper()
	args = append([]string{"run", "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...)
	g := &gateway{cmd: command(args...), addrs: map[string]string{}, exit: make(chan error, 1)}
	g.cmd.Env = append(os.Environ(), env...)
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.cmd.Stdout
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			g.mu.Lock()
			g.log.WriteString(line + "\n")
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				if m["msg"] == "listening" {
					g.addrs[m["listener"].(string)] = m["addr"].(string)
				}
				if m["msg"] == "flexgate serving" && !signalled {
					signalled = true
					close(ready)
				}
			}
			g.mu.Unlock()
		}
		g.exit <- g.cmd.Wait()
	}()
	t.Cleanup(func() { _ = g.cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-g.exit:
		t.Fatalf("flexgate exited at start: %v\n%s", err, g.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("flexgate did not start\n%s", g.logs())
	}
	return g
}

func (g *gateway) logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

func (g *gateway) url(listener string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return "http://" + g.addrs[listener]
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestQuickStart(t *testing.T) {
	g := startGateway(t, []string{"FLEXGATE_CONFIG="})
	code, body, _ := get(t, g.url("http")+"/api/v1/hello")
	if code != 200 || !strings.Contains(body, `"path": "/api/v1/hello"`) {
		t.Fatalf("quick-start answered %d %s", code, body)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, _, _ := get(t, g.url("admin")+probe); code != 200 {
			t.Errorf("%s = %d", probe, code)
		}
	}
	_, metrics, _ := get(t, g.url("admin")+"/metrics")
	if !strings.Contains(metrics, `flexgate_requests_total{route="quick-start",status="2xx"} 1`) {
		t.Errorf("/metrics does not count the request:\n%s", metrics)
	}
}

func TestLiveReloadAndDrain(t *testing.T) {
	upstream := startEcho(t, "one")
	upstream2 := startEcho(t, "two")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	writeRoute := func(url string) {
		text := fmt.Sprintf("apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: t}\nspec:\n  routes:\n    - id: r\n      path: [\"/*\"]\n      upstream: {url: %q}\n", url)
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	writeRoute(upstream)
	g := startGateway(t, nil, "--config", dir, "--drain-delay", "500ms")
	base := g.url("http")
	if _, body, _ := get(t, base+"/x"); body != "one" {
		t.Fatalf("before reload: %q", body)
	}

	// A file change is serving within 2 seconds.
	writeRoute(upstream2)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, body, _ := get(t, base+"/x"); body == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the changed config was not serving within 2 s\n%s", g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A broken file is refused and the old config keeps serving.
	if err := os.WriteFile(cfgPath, []byte("spec: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(g.logs(), "config reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload failure logged\n%s", g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, body, _ := get(t, base+"/x"); body != "two" {
		t.Fatalf("after a broken reload: %q", body)
	}

	// SIGTERM: /readyz turns 503, in-flight requests finish, exit 0.
	slow, arrived := startSlowEcho(t, "slow", 700*time.Millisecond)
	writeRoute(slow)
	deadline = time.Now().Add(2 * time.Second)
	for {
		if _, body, _ := get(t, base+"/x"); body == "slow" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow upstream config not serving\n%s", g.logs())
		}
	}
	for len(arrived) > 0 { // the probes above, all answered
		<-arrived
	}
	inflight := make(chan string, 4)
	for i := 0; i < 4; i++ {
		go func() {
			resp, err := http.Get(base + "/x")
			if err != nil {
				inflight <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			inflight <- string(b)
		}()
	}
	for i := 0; i < 4; i++ {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 4 requests reached the upstream\n%s", i, g.logs())
		}
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		code, _, _ := get(t, g.url("admin")+"/readyz")
		if code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 503 after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		if got := <-inflight; got != "slow" {
			t.Errorf("in-flight request during drain: %q", got)
		}
	}
	select {
	case err := <-g.exit:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, g.logs())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flexgate did not exit after SIGTERM")
	}
}

func TestConnectedModeIsRefused(t *testing.T) {
	out, code := runBinary(t, []string{"FLEXGATE_CONNECTED_MODE=true"}, "run", "--listen", "127.0.0.1:0", "--admin-addr", "")
	if code != 1 || !strings.Contains(out, "connected mode is not supported yet") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// shadowYAML has a broad route that requires a client id and a narrower
// one, inside it, that does not; extra goes under the narrower route.
func shadowYAML(extra string) string {
	return `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata: {name: shadow}
spec:
  clients:
    - {id: ops, secret: s3cret}
  routes:
    - id: api
      path: ["/api/*"]
      upstream: {url: "http://api:80"}
      policies:
        - client-id-enforcement
        - rate-limiting: {limit: 10, period: 60, identifier: $request.remoteAddress}
    - id: public
      path: ["/api/public/*"]
      upstream: {url: "http://public:80"}
      policies:
        - rate-limiting: {limit: 10, period: 60, identifier: $request.remoteAddress}
` + extra
}

// TestValidateWarnsOfShadowedPolicies: a narrower route takes requests
// away from a broader one and runs fewer policies; validate says so, as a
// warning, and says how to acknowledge it.
func TestValidateWarnsOfShadowedPolicies(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(shadowYAML("")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runBinary(t, nil, "validate", p)
	want := p + `:14:7: warning: route "public" (path "/api/public/*") takes requests that route "api" at ` + p +
		`:8:7 (path "/api/*") would serve, without its policy client-id-enforcement`
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "withoutPolicies: [client-id-enforcement]") {
		t.Fatalf("validate: exit %d, want 0 and a line with\n%s\noutput:\n%s", code, want, out)
	}
	if !strings.Contains(out, `Gateway "shadow": 0 listeners, 2 routes, 3 policies`) {
		t.Errorf("validate no longer prints the summary:\n%s", out)
	}

	// Acknowledged, the warning goes.
	if err := os.WriteFile(p, []byte(shadowYAML("      withoutPolicies: [client-id-enforcement]\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runBinary(t, nil, "validate", p)
	if code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("acknowledged: exit %d\n%s", code, out)
	}
}

// TestRunLogsConfigWarnings: run logs the warnings of the config it starts
// with and of each config it reloads.
func TestRunLogsConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(shadowYAML("")), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, nil, "--config", p)
	if !strings.Contains(g.logs(), `"msg":"config warning"`) || !strings.Contains(g.logs(), `route \"public\"`) {
		t.Fatalf("no config warning logged at start:\n%s", g.logs())
	}
	// The reloaded config shadows with another route.
	text := strings.ReplaceAll(shadowYAML(""), "id: public", "id: open")
	if err := os.WriteFile(p+".tmp", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.logs(), `route \"open\"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no config warning logged on reload:\n%s", g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
