package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// dashboardExprs returns every PromQL expression of the Grafana dashboard:
// panel targets, annotations and template variable queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("grafana/flexgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana/flexgate-dashboard.json: %v", err)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice; Grafana drops one", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		exprs = append(exprs, a.Expr)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("template variable query: %v", err)
		}
		// label_values(selector, label): only the selector is PromQL.
		sel := strings.TrimSuffix(strings.TrimPrefix(q.Query, "label_values("), ")")
		if i := strings.LastIndex(sel, ","); i > 0 {
			sel = sel[:i]
		}
		exprs = append(exprs, sel)
	}
	return exprs
}

// alertExprs returns the expressions of deploy/prometheus/flexgate-alerts.yaml.
func alertExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("prometheus/flexgate-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

var (
	promString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatcher = regexp.MustCompile(`\{[^}]*\}`)
	promRange   = regexp.MustCompile(`\[[^\]]*\]`)
	promGroup   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promWords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "group_left": true, "group_right": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are gone, except those called as functions.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatcher.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGroup.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promWords[name] {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] == '$' || (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9') || s[loc[0]-1] == '.') {
			continue // a Grafana variable or a number like 1e3
		}
		out = append(out, name)
	}
	return out
}

// promisedMetrics reads grafana/metrics.txt, histograms expanded into the
// series names Prometheus stores.
func promisedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("grafana/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[1] == "histogram" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				out[f[0]+suf] = true
			}
			continue
		}
		out[f[0]] = true
	}
	return out
}

func queriedMetrics(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range append(dashboardExprs(t), alertExprs(t)...) {
		for _, n := range metricNames(e) {
			seen[n] = true
		}
	}
	return keys(seen)
}

func TestMetricNamesFromPromQL(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, route) (rate(flexgate_request_duration_seconds_bucket{route=~"$route", x="a{b}"}[$__rate_interval]))) / on(instance) group_left time() - up offset 5m > bool 1e3`)
	want := []string{"flexgate_request_duration_seconds_bucket", "up"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}

func TestDashboardCoversWhatOperatorsAskFor(t *testing.T) {
	q := strings.Join(queriedMetrics(t), " ")
	for _, want := range []string{
		"flexgate_requests_total",                  // request and error rate
		"flexgate_errors_total",                    // errors by reason
		"flexgate_policy_rejections_total",         // by policy, rate-limit rejections
		"flexgate_request_duration_seconds_bucket", // p50/p95/p99
		"flexgate_upstream_duration_seconds_bucket",
		"flexgate_introspection_cache_total", // cache hit ratio
		"flexgate_config_reloads_total",
	} {
		if !strings.Contains(q, want) {
			t.Errorf("dashboard and alerts never query %s", want)
		}
	}
}

func TestDashboardQueriesOnlyPromisedMetrics(t *testing.T) {
	promised := promisedMetrics(t)
	for _, m := range queriedMetrics(t) {
		if !promised[m] {
			t.Errorf("dashboard or alerts query %s, which grafana/metrics.txt does not list", m)
		}
	}
}

// TestDashboardMetricsExistInGatewayOutput runs the gateway, sends traffic
// that touches every metric (routes that answer, fail to connect, get rate
// limited, need a client id and a token, and a reload), scrapes /metrics
// and looks for every metric the dashboard and alerts query.
func TestDashboardMetricsExistInGatewayOutput(t *testing.T) {
	bin := gatewayBinary(t)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active": %t}`, r.PostForm.Get("token") == "good")
	}))
	defer introspect.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	redisAddr := startRedis(t, tool(t, "redis-server", "apt-get install redis-server"))

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: metrics-check
spec:
  clients:
    - {id: app, secret: s3cret}
  sharedStorage:
    redis: {address: "%[4]s"}
  routes:
    - id: ok
      path: ["/ok/*"]
      upstream: {url: "%[1]s"}
    - id: down
      path: ["/down/*"]
      upstream: {url: "http://%[2]s"}
    - id: limited
      path: ["/limited/*"]
      upstream: {url: "%[1]s"}
      policies:
        - rate-limiting: {limit: 1, period: 60, identifier: $request.remoteAddress}
    - id: secured
      path: ["/secured/*"]
      upstream: {url: "%[1]s"}
      policies:
        - client-id-enforcement
        - token-introspection: {url: "%[3]s/introspect", clientId: gw, clientSecret: gw-secret, cacheTtl: 60}
    - id: shared
      path: ["/shared/*"]
      upstream: {url: "%[1]s"}
      policies:
        - rate-limiting: {limit: 1, period: 60, clusterizable: true}
`, upstream.URL, deadAddr, introspect.URL, redisAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	gw := startGateway(t, bin, "run", "--config", dir, "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--drain-delay", "0s", "--shutdown-timeout", "5s")
	proxy, admin := gw.proxy, gw.admin

	client := &http.Client{Timeout: 10 * time.Second}
	do := func(path string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+proxy+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(path string, hdr map[string]string, want int) {
		t.Helper()
		if got := do(path, hdr); got != want {
			t.Errorf("GET %s = %d, want %d", path, got, want)
		}
	}
	expect("/ok/a", nil, 200)
	expect("/nowhere", nil, 404)
	expect("/down/a", nil, 502)
	expect("/limited/a", nil, 200)
	expect("/limited/a", nil, 429)
	expect("/shared/a", nil, 200)
	secured := map[string]string{"client_id": "app", "client_secret": "s3cret", "Authorization": "Bearer good"}
	expect("/secured/a", secured, 200)
	expect("/secured/a", secured, 200) // from the introspection cache

	// A reload: a changed file, then SIGHUP in case the file watcher is slow.
	// An unchanged config is not reloaded, so the change matters.
	if err := os.WriteFile(cfgPath, []byte(cfg+"    - {id: extra, path: [\"/extra/*\"], upstream: {url: \""+upstream.URL+"\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded := regexp.MustCompile(`(?m)^flexgate_config_reloads_total\{result="ok"\} [1-9]`)
	metrics := scrapeUntil(t, admin, reloaded)
	if !reloaded.MatchString(metrics) {
		t.Errorf("no successful reload counted 10s after a config change and SIGHUP\nstdout:\n%s", gw.logs.String())
	}
	expect("/extra/a", nil, 200)

	have := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		have[name] = true
	}
	var missing []string
	for _, m := range queriedMetrics(t) {
		if !have[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("the dashboard or alerts query metrics the gateway did not export: %v\n/metrics:\n%s", missing, metrics)
	}

	// The chart's rollout relies on SIGTERM draining and exiting 0.
	if err := gw.stop(15 * time.Second); err != nil {
		t.Error(err)
	}
}

// scrapeUntil polls the admin /metrics until it matches want, for at most
// ten seconds, since a reload finishes asynchronously after SIGHUP.
// gateway is a flexgate process started by a test.
type gateway struct {
	cmd    *exec.Cmd
	proxy  string // the plain-HTTP listener's address
	admin  string
	logs   *lockedBuffer
	stderr *lockedBuffer
	exited chan error
}

// lockedBuffer collects output written by one goroutine and read by another.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGateway runs the binary with args and waits for its two "listening"
// log lines (the proxy listener and admin), which carry the real ports.
func startGateway(t *testing.T, bin string, args ...string) *gateway {
	t.Helper()
	g := &gateway{cmd: exec.Command(bin, args...), logs: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan map[string]string, 1)
	go func() {
		found := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			g.logs.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				found[l.Listener] = l.Addr
				if len(found) == 2 {
					addrs <- found
				}
			}
		}
		g.exited <- g.cmd.Wait()
	}()
	t.Cleanup(func() {
		g.cmd.Process.Kill() // os.ErrProcessDone when stop already ended it
		err := <-g.exited
		g.exited <- err
	})
	select {
	case found := <-addrs:
		for name, a := range found {
			if name == "admin" {
				g.admin = a
			} else {
				g.proxy = a
			}
		}
	case err := <-g.exited:
		g.exited <- err
		t.Fatalf("gateway exited before listening: %v\nstdout:\n%s\nstderr:\n%s", err, g.logs.String(), g.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not log two listening lines in 30s\nstderr:\n%s", g.stderr.String())
	}
	return g
}

// stop sends SIGTERM and wants a clean exit within limit.
func (g *gateway) stop(limit time.Duration) error {
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-g.exited:
		g.exited <- err
		if err != nil {
			return fmt.Errorf("gateway exited with %v after SIGTERM, want 0\nstderr:\n%s", err, g.stderr.String())
		}
		return nil
	case <-time.After(limit):
		return fmt.Errorf("gateway still running %s after SIGTERM", limit)
	}
}

// newLocalServer serves h on 127.0.0.1 and returns its base URL.
func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func scrapeUntil(t *testing.T, admin string, want *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if want.MatchString(body) || time.Now().After(deadline) {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
}
