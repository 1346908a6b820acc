package main

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/bench/procs"
	"github.com/flexgate/flexgate/bench/wrk"
	"github.com/flexgate/flexgate/chain/chaintest"
	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/config/flex"
	"github.com/flexgate/flexgate/examples"
	_ "github.com/flexgate/flexgate/policies/all"
)

func TestTreeUsageOfThisProcess(t *testing.T) {
	u, err := treeUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSSKiB <= 0 || u.RSSKiB <= 0 || u.RSSKiB > u.PeakRSSKiB {
		t.Errorf("rss %d KiB, peak %d KiB: want 0 < rss <= peak", u.RSSKiB, u.PeakRSSKiB)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func sample(rps, p99us int64) Sample {
	return Sample{Result: wrk.Result{Requests: rps, DurationUS: 1e6, P50US: p99us / 4, P99US: p99us, P999US: p99us * 2}, CPUSeconds: float64(rps) / 1e5}
}

func testReport() *Report {
	r := &Report{
		Started: time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 1, 4, 5, 0, 0, time.UTC),
		Options: options{total: 5 * time.Minute, rounds: 3, idle: 10000, bodies: []string{"small"}, openLoop: []int{50, 80}},
		Targets: []*Target{
			{Name: "direct", What: "ceiling"},
			{Name: "flexgate", What: "fg", Flexgate: true},
			{Name: "nginx", What: "ng"},
			{Name: "flexgate-tls", What: "fg tls", Flexgate: true, TLS: true},
			{Name: "nginx-tls", What: "ng tls", TLS: true},
		},
		PeakRSS: map[string]int64{"flexgate": 20480},
	}
	c := Case{Body: "small", Conns: 64}
	for _, s := range []struct {
		name string
		rps  []int64
	}{
		{"direct", []int64{40000, 10, 42000}},
		{"flexgate", []int64{20000, 21000, 19000}},
		{"nginx", []int64{25000, 25000, 1}},
		{"flexgate-tls", []int64{10000, 10000, 10000}},
		{"nginx-tls", []int64{8000, 8000, 8000}},
	} {
		for _, n := range s.rps {
			r.add(c, s.name, sample(n, 4000))
		}
	}
	r.Idle = []IdleResult{
		{Target: "flexgate", Asked: 10000, Open: 10000, OpenSeconds: 2, RSSBeforeKiB: 20000, RSSIdleKiB: 60000, RSSSettledKiB: 40000, Load: wrk.Result{Requests: 15000, DurationUS: 1e6}, AliveAfter: 100, Sampled: 100},
		{Target: "nginx", Asked: 10000, Open: 7000, OpenSeconds: 1, RSSBeforeKiB: 2048, RSSIdleKiB: 9048, RSSSettledKiB: 9048, Load: wrk.Result{Requests: 20000, DurationUS: 1e6}, AliveAfter: 100, Sampled: 100},
	}
	ms := time.Millisecond
	r.OpenLoopBase = 25000
	r.OpenLoop = []OpenLoopResult{
		{Target: "nginx", Percent: 50, Rate: 12500, Achieved: 12490, Requests: 1000, OK: 1000, P50: ms, P99: 4 * ms, P999: 8 * ms, Max: 9 * ms},
		{Target: "flexgate", Percent: 50, Rate: 12500, Achieved: 12480, Requests: 1000, OK: 990, Errors: 10, P50: ms, P99: 2 * ms, P999: 3 * ms, Max: 5 * ms, SendLagP99: ms / 2},
	}
	r.Handshakes = []HandshakeResult{
		{Target: "nginx-tls", Group: "X25519", Conns: 4000, Resumes: 0, Duration: 2 * time.Second, CPUSeconds: 1, P50: 2 * ms, P99: 5 * ms},
		{Target: "flexgate-tls", Group: "X25519", Conns: 3000, Resumes: 0, Duration: 2 * time.Second, CPUSeconds: 1.2, P50: 3 * ms, P99: 6 * ms},
		{Target: "flexgate-tls", Group: "X25519", Resumed: true, Conns: 6000, Resumes: 5990, Duration: 2 * time.Second, CPUSeconds: 1.2, P50: ms, P99: 3 * ms},
		{Target: "flexgate-tls", Group: "X25519MLKEM768", Conns: 2000, Duration: 2 * time.Second, CPUSeconds: 1, P50: 4 * ms, P99: 8 * ms},
	}
	return r
}

func TestRowsTakeMediansAndRatios(t *testing.T) {
	rows := testReport().Rows(Case{Body: "small", Conns: 64})
	got := map[string]Row{}
	for _, row := range rows {
		got[row.Target] = row
	}
	if fg := got["flexgate"]; fg.RPS != 20000 || fg.VsDirect != 0.5 || fg.VsNginx != 0.8 {
		t.Errorf("flexgate row %+v: want 20000 req/s, 0.5 of direct (median 40000), 0.8 of nginx (median 25000)", fg)
	}
	if tls := got["flexgate-tls"]; tls.VsNginx != 1.25 {
		t.Errorf("flexgate-tls is compared with %v, want nginx-tls's 8000 (ratio 1.25)", tls.VsNginx)
	}
	if cpu := got["flexgate"].CPUPer100k; cpu < 0.99 || cpu > 1.01 {
		t.Errorf("CPU per 100k = %v, want 1", cpu)
	}
	if rows[0].Target != "direct" || rows[len(rows)-1].Target != "nginx-tls" {
		t.Errorf("rows not in target order: %v", rows)
	}
}

func TestMarkdownAndSVG(t *testing.T) {
	r := testReport()
	md := r.Markdown("latest.svg")
	for _, want := range []string{
		"| **flexgate** | 20000 | 1.00 | 4.00 | 8.00 | 0.50 | 0.80 |",
		"![requests per second](latest.svg)",
		"## Connection scale: 10000 idle keep-alive connections",
		"| flexgate | 10000 | 2.0 | 19.5 | 58.6 | 4.0 | 39.1 | 2.0 | 15000 |",
		"| nginx | 7000 of 10000 | 1.0 | 2.0 | 8.8 | 1.0 | 8.8 | 1.0 | 20000 |",
		"## Open loop: constant rate at 50 % and 80 % of nginx's maximum (25000 req/s)",
		"| **flexgate** | 50 | 12500 | 12480 | 1.00 | 2.00 | 3.00 | 5.00 | 0.50 | 0.50 | 99.0% | 10 |",
		"| **flexgate-tls** | full | X25519 | 1500 | 0.75 | 0/3000 | 3.00 | 6.00 | 0.400 | 0 |",
		"| **flexgate-tls** | resumed | X25519 | 3000 | – | 5990/6000 |",
		"| **flexgate-tls** | full | X25519MLKEM768 | 1000 | – | 0/2000 | 4.00 | 8.00 | 0.500 | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	svg := r.SVG()
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
	}
	if strings.Count(svg, "<rect") != 1+len(r.Targets) || !strings.Contains(svg, "20000/s") {
		t.Errorf("SVG should have a background and one bar per target with its figure:\n%s", svg)
	}

	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"latest.md", "latest.svg", "latest.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-time", "90s", "-conns", "64, 256", "-targets", "nginx,flexgate"})
	if err != nil {
		t.Fatal(err)
	}
	if o.total != 90*time.Second || len(o.conns) != 2 || o.conns[1] != 256 || !o.targets["direct"] || !o.targets["flexgate"] {
		t.Errorf("parsed %+v", o)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"-time", "1s"}},
		{[]string{"-conns", "0"}},
		{[]string{"-bodies", "huge"}},
		{[]string{"-targets", "envoy"}},
	} {
		if _, err := parseOptions(tc.args); err == nil {
			t.Errorf("%v accepted", tc.args)
		}
	}
	t.Setenv("BENCH_TIME", "2m")
	if o, err := parseOptions(nil); err != nil || o.total != 2*time.Minute {
		t.Errorf("BENCH_TIME=2m gave %v, %v", o.total, err)
	}
}

// TestPlanStaysWithinBudget guards the promise that a run is bounded: the
// measuring the plan schedules fits the budget, whichever phases run.
func TestPlanStaysWithinBudget(t *testing.T) {
	all := map[string]bool{"rounds": true, "openloop": true, "tls": true, "idle": true}
	// flexgate-tls and nginx-tls, full and resumed with X25519, and
	// flexgate-tls with the hybrid offer: 6 handshake runs.
	s := shape{all: len(allTargets()), plain: 6, openLoop: 6, tls: 2, handshakes: len(handshakeCases(allTargets()))}
	for _, total := range []time.Duration{90 * time.Second, 5 * time.Minute, 15 * time.Minute, 40 * time.Minute} {
		for _, phases := range []map[string]bool{all, {"rounds": true}, {"openloop": true}, {"idle": true, "tls": true}} {
			o := options{total: total, phases: phases, conns: []int{64}, scaleConns: []int{256, 1024}, openLoop: []int{50, 80},
				bodies: []string{"small", "large"}, rounds: 3, idle: 100000}
			p := makePlan(o, s)
			spent := time.Duration(p.runs)*(p.run+500*time.Millisecond) + time.Duration(p.openLoopRuns)*(p.openLoop+time.Second) +
				time.Duration(p.handshakeRuns)*p.handshake + time.Duration(p.idleRuns)*p.idle
			if phases["rounds"] {
				spent += time.Duration(s.all) * p.warmup
				if p.run < time.Second || p.runs != 3*(2*s.all+2*s.plain) {
					t.Errorf("budget %s: %d runs of %s", total, p.runs, p.run)
				}
			}
			if total >= 15*time.Minute && spent > total+total/10 {
				t.Errorf("budget %s, phases %v: %s spends about %s", total, phases, p, spent)
			}
			if phases["openloop"] != (p.openLoopRuns == 2*6) || phases["tls"] != (p.handshakeRuns == 6) || phases["idle"] != (p.idleRuns == 6) {
				t.Errorf("phases %v planned %s", phases, p)
			}
			if d := p.deadline(o); d < total+time.Duration(p.idleRuns)*(p.idleOpen+idleSettle) {
				t.Errorf("deadline %s leaves no room for opening the idle connections", d)
			}
		}
	}
}

func TestParseLists(t *testing.T) {
	o, err := parseOptions([]string{"-phases", "openloop, idle", "-scale-conns", "", "-openloop", "30,60,90", "-idle", "500"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.phases["openloop"] || !o.phases["idle"] || o.phases["rounds"] || len(o.scaleConns) != 0 ||
		!slices.Equal(o.openLoop, []int{30, 60, 90}) || o.idle != 500 {
		t.Errorf("parsed %+v", o)
	}
	d, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.phases) != 4 || !slices.Equal(d.conns, []int{64}) || !slices.Equal(d.scaleConns, []int{256, 1024}) ||
		!slices.Equal(d.openLoop, []int{50, 80}) || d.idle != 100000 || d.total != 15*time.Minute {
		t.Errorf("defaults %+v", d)
	}
	for _, args := range [][]string{
		{"-phases", "rounds,warmup"}, {"-phases", ""}, {"-conns", ""}, {"-conns", "64,64"},
		{"-scale-conns", "256,x"}, {"-openloop", "0"}, {"-openloop", "120"}, {"-idle", "-1"},
	} {
		if _, err := parseOptions(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestRoundCases(t *testing.T) {
	o := options{bodies: []string{"small", "large"}, conns: []int{64, 256}, scaleConns: []int{256, 1024}}
	got := roundCases(o)
	want := []Case{{"small", 64}, {"small", 256}, {"large", 64}, {"large", 256}, {"small", 1024}}
	if !slices.Equal(got, want) {
		t.Errorf("roundCases = %v, want %v (scale counts on the first body, none twice)", got, want)
	}
}

// TestCorrectedLatencies checks the coordinated-omission correction: a
// request sent late waits from when it was due.
func TestCorrectedLatencies(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	// 10 requests due every 10 ms; the generator stalled and sent #5..#9
	// 40 ms late, in a burst. The run started 1 ms before #0 was sent...
	// no: #0 is sent exactly on time, which defines the start.
	var ss []sentSample
	for i := range 10 {
		sent := t0.Add(time.Duration(i) * 10 * ms)
		if i >= 5 {
			sent = sent.Add(40 * ms)
		}
		ss = append(ss, sentSample{seq: uint64(i), sent: sent, latency: ms})
	}
	// Arrival order differs from seq order: the correction must not care.
	ss[0], ss[9] = ss[9], ss[0]
	c := correctedLatencies(ss, 10*ms)
	if got := c.quantile(0.5); got != ms {
		t.Errorf("p50 = %s, want 1ms (half the requests were on time)", got)
	}
	if got := c.quantile(0.99); got != 41*ms {
		t.Errorf("p99 = %s, want 41ms (40 ms late + 1 ms)", got)
	}
	if got := c.lagQuantile(0.99); got != 40*ms {
		t.Errorf("send lag p99 = %s, want 40ms", got)
	}
	// 10 sends between t0 and t0+130ms.
	if got := c.sendRate(); got < 69 || got > 70 {
		t.Errorf("send rate = %v, want 9/0.13 s", got)
	}
}

func TestQuantileOf(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 1000; i++ {
		xs = append(xs, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := quantileOf(xs, tc.q); got != tc.want {
			t.Errorf("quantile %v = %d, want %d", tc.q, got, tc.want)
		}
	}
	if quantileOf(nil, 0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

func TestIdleAndHandshakeAccounting(t *testing.T) {
	ir := IdleResult{Open: 1000, RSSBeforeKiB: 10000, RSSIdleKiB: 14000, RSSSettledKiB: 12000}
	if got, settled := ir.KiBPerConn(ir.RSSIdleKiB), ir.KiBPerConn(ir.RSSSettledKiB); got != 4 || settled != 2 {
		t.Errorf("KiB per conn = %v at once and %v settled, want 4 and 2", got, settled)
	}
	if (IdleResult{}).KiBPerConn(1000) != 0 {
		t.Error("no connections held gave a per-connection figure")
	}
	h := HandshakeResult{Conns: 5000, Duration: 2 * time.Second, CPUSeconds: 1.5}
	if h.PerSecond() != 2500 || h.CPUPerHandshake() != 0.3 {
		t.Errorf("%v/s, %v ms CPU each; want 2500/s and 0.3 ms", h.PerSecond(), h.CPUPerHandshake())
	}
	// 100,000 idle connections spread over source addresses within the
	// ephemeral port range.
	seen := map[string]int{}
	for i := range 100000 {
		seen[idleSource(i).IP.String()]++
	}
	for ip, n := range seen {
		if n > 28000 || !strings.HasPrefix(ip, "127.0.0.") || ip == "127.0.0.1" {
			t.Errorf("%d connections from %s", n, ip)
		}
	}
}

// TestChainMatchesSeed keeps the benchmark's chain the user's chain: the
// same policies in the same order with the same parameters, save the ones
// the benchmark must change (rate, introspection URL), and the ones it adds
// (jwt-validation), which it renders apart.
func TestChainMatchesSeed(t *testing.T) {
	seed, err := os.ReadFile(examples.Path(t, "secured-gateway-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]bool{}
	for _, p := range chainPolicies {
		if p.extra {
			extra[p.name] = true
		}
	}
	conf, err := renderFlexgate(chainConfig(extra), flexgateParams{Upstream: "127.0.0.1:1", Rate: 5, MaxConns: 1, ClientID: "a", ClientSecret: "b"})
	if err != nil {
		t.Fatal(err)
	}
	policies := func(src []byte) []map[string]any {
		var doc struct {
			Spec struct {
				Routes []struct {
					Policies []any `yaml:"policies"`
				} `yaml:"routes"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(src, &doc); err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, p := range doc.Spec.Routes[0].Policies {
			switch p := p.(type) {
			case string:
				out = append(out, map[string]any{p: nil})
			case map[string]any:
				out = append(out, p)
			}
		}
		return out
	}
	want, got := policies(seed), policies(conf)
	if len(want) != len(got) {
		t.Fatalf("seed has %d policies, benchmark %d", len(want), len(got))
	}
	for i := range want {
		for name, wp := range want[i] {
			gp, ok := got[i][name]
			if !ok {
				t.Errorf("policy %d: seed has %s, benchmark %v", i, name, got[i])
				continue
			}
			wm, _ := wp.(map[string]any)
			gm, _ := gp.(map[string]any)
			for k, v := range wm {
				if k == "limit" || k == "url" {
					continue
				}
				if gs, ws := yamlString(gm[k]), yamlString(v); gs != ws {
					t.Errorf("%s.%s: seed %s, benchmark %s", name, k, ws, gs)
				}
			}
		}
	}
}

// TestFlexChainIsTheSeedChain: the Flex-resources target loads through the
// Flex loader as one route with the seed's steps in the seed's order, each
// under its Flex name where Flex has one.
func TestFlexChainIsTheSeedChain(t *testing.T) {
	conf, err := renderFlexgate(flexgateChainFlex, flexgateParams{Upstream: "127.0.0.1:1", Listen: "127.0.0.1:2", Rate: 5})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "flex.yaml")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INTROSPECTION_AUTHORIZATION", "Basic eDp5")
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	flexName := map[string]string{
		"rate-limiting":          "rate-limiting-flex",
		"client-id-enforcement":  "client-id-enforcement-flex",
		"token-introspection":    "oauth2-token-introspection-flex",
		"jwt-validation":         "jwt-validation-flex",
		"request-headers-remove": "header-removal-flex",
		// header-injection-flex sets request and response headers in one binding.
		"request-headers-set":  "header-injection-flex",
		"response-headers-set": "",
	}
	var want []string
	for _, p := range chainPolicies {
		name, ok := flexName[p.name]
		if !ok {
			name = p.name
		}
		if name != "" {
			want = append(want, name)
		}
	}
	if len(cfg.Routes) != 1 {
		t.Fatalf("%d routes, want 1", len(cfg.Routes))
	}
	var got []string
	for _, p := range cfg.Routes[0].Policies {
		got = append(got, p.Name)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Flex chain runs %v, want %v", got, want)
	}
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

// TestBalancedConfigLoads: the balancing target's config is valid and
// lists the three origins.
func TestBalancedConfigLoads(t *testing.T) {
	origins := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	conf, err := renderFlexgate(flexgateLB, flexgateParams{Upstream: origins[0], Upstreams: origins, MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	u := cfg.Routes[0].Upstream
	if len(u.Targets) != 3 || u.Targets[2].Host != origins[2] || u.LoadBalancing != config.LeastRequest {
		t.Errorf("upstream %+v", u)
	}
}

// TestChainVerifiesTheBenchToken: the chain target's jwt-validation, with
// the JWK set the upstream serves, accepts the run's token, so that the
// chain measures a verified (then cached) RS256 JWT, not a refusal.
func TestChainVerifiesTheBenchToken(t *testing.T) {
	dir := t.TempDir()
	token, jwksFile, err := makeBenchJWT(dir)
	if err != nil {
		t.Fatal(err)
	}
	set, err := os.ReadFile(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			w.WriteHeader(404)
			return
		}
		_, _ = w.Write(set)
	}))
	t.Cleanup(idp.Close)
	var jwtYAML string
	for _, p := range chainPolicies {
		if p.name == "jwt-validation" {
			jwtYAML = p.yaml
		}
	}
	conf, err := renderFlexgate(jwtYAML, flexgateParams{Upstream: strings.TrimPrefix(idp.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	c := chaintest.MustChain(t, string(conf))
	setBenchToken(token)
	t.Cleanup(func() { setBenchToken("bench-token") })
	var auth string
	for _, h := range benchHeaders {
		if v, ok := strings.CutPrefix(h, "Authorization: "); ok {
			auth = v
		}
	}
	if rej := chaintest.Run(c, chaintest.Ctx("/api/products/small", "Authorization", auth)); rej != nil {
		t.Fatalf("the bench token is refused: %v", rej)
	}
	if rej := chaintest.Run(c, chaintest.Ctx("/api/products/small", "Authorization", "Bearer bench-token")); rej == nil {
		t.Fatal("an opaque token passed jwt-validation")
	}
}

// TestHandshakeRunReportsTheKeyExchange runs the handshake measurement
// against a Go TLS server: with X25519 offered alone it settles on X25519,
// with the hybrid offer on X25519MLKEM768, and resumed runs resume.
func TestHandshakeRunReportsTheKeyExchange(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	// The server is this process; a sleeping child stands in as the
	// process whose CPU the run reads.
	var g procs.Group
	defer g.StopAll()
	sleeper, err := g.Start("sleeper", t.TempDir(), "sleep", []string{"30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := &Target{Name: "go-tls", TLS: true, proc: sleeper, addr: srv.Listener.Addr().String()}
	for _, c := range []struct {
		groups  []tls.CurveID
		resumed bool
		want    string
	}{
		{classicalGroups, false, "X25519"},
		{classicalGroups, true, "X25519"},
		{hybridGroups, false, "X25519MLKEM768"},
		{hybridGroups, true, "X25519MLKEM768"},
	} {
		r, err := handshakeRun(context.Background(), target, c.resumed, c.groups, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s resumed=%v: %v", c.want, c.resumed, err)
		}
		if r.Group != c.want || r.Conns == 0 || r.Errors != 0 {
			t.Errorf("offering %v (resumed %v): %+v, want %s, connections and no errors", c.groups, c.resumed, r, c.want)
		}
		if c.resumed && r.Resumes != r.Conns || !c.resumed && r.Resumes != 0 {
			t.Errorf("resumed=%v: %d of %d connections resumed", c.resumed, r.Resumes, r.Conns)
		}
	}
}
