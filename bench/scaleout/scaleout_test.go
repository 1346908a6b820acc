package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexgate/flexgate/bench/wrk"
	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	_ "github.com/flexgate/flexgate/policies/all"
)

// TestTallyWindows: responses count in the window of their time, those
// before the first or after the last count as outside, and only admitted
// ones count for their client.
func TestTallyWindows(t *testing.T) {
	start := time.Unix(1000, 0)
	tl := newTally(start, time.Second, 3, 2)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tl.add(at(-time.Millisecond), 0, 200)    // warm-up
	tl.add(at(0), 0, 200)                    // window 1, first instant
	tl.add(at(999*time.Millisecond), 1, 200) // window 1, last
	tl.add(at(time.Second), 1, 429)          // window 2
	tl.add(at(1500*time.Millisecond), 0, 503)
	tl.add(at(2999*time.Millisecond), 1, 500) // window 3
	tl.add(at(3*time.Second), 0, 200)         // after the last window
	want := [][outcomes]int64{{2, 0, 0, 0}, {0, 1, 1, 0}, {0, 0, 0, 1}}
	for w := range want {
		if tl.counts[w] != want[w] {
			t.Errorf("window %d: %v, want %v", w+1, tl.counts[w], want[w])
		}
	}
	if tl.outside != 2 {
		t.Errorf("outside %d, want 2", tl.outside)
	}
	if tl.clientAdmits[0] != 1 || tl.clientAdmits[1] != 1 {
		t.Errorf("client admits %v, want [1 1]", tl.clientAdmits)
	}
	other := newTally(start, time.Second, 3, 2)
	other.add(at(500*time.Millisecond), 1, 200)
	other.add(at(-time.Second), 1, 200)
	tl.merge(other)
	if tl.counts[0][admitted] != 3 || tl.clientAdmits[1] != 2 || tl.outside != 3 {
		t.Errorf("after merge: window 1 %v, clients %v, outside %d", tl.counts[0], tl.clientAdmits, tl.outside)
	}
}

// TestAccuracy: the limit is held against each window and the total, and
// the client furthest from its share is named with its sign.
func TestAccuracy(t *testing.T) {
	tl := newTally(time.Unix(0, 0), time.Second, 2, 2)
	// Limit 100 per window per client: 200 expected per window.
	tl.counts[0][admitted], tl.counts[0][refused] = 202, 5000
	tl.counts[1][admitted], tl.counts[1][unavailable] = 196, 7
	tl.clientAdmits = []int64{201, 197}
	a := tl.accuracy(100)
	if len(a.Windows) != 2 || a.Windows[0].Expected != 200 || a.Windows[1].Unavailable != 7 {
		t.Fatalf("windows %+v", a.Windows)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if !near(a.Windows[0].Deviation, 0.01) || !near(a.Windows[1].Deviation, -0.02) || !near(a.MaxWindowDeviation, 0.02) {
		t.Errorf("deviations %v, %v, max %v; want +0.01, -0.02, 0.02", a.Windows[0].Deviation, a.Windows[1].Deviation, a.MaxWindowDeviation)
	}
	if a.Total.Admitted != 398 || a.Total.Expected != 400 || !near(a.Total.Deviation, -0.005) || a.Total.Refused != 5000 {
		t.Errorf("total %+v, want 398 of 400 (-0.5 %%)", a.Total)
	}
	if a.WorstClient != 1 || !near(a.WorstClientDeviation, -0.015) {
		t.Errorf("worst client %d %v, want client 1 at -1.5 %%", a.WorstClient, a.WorstClientDeviation)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	if l.Count != 100 || l.P50 != 50*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Errorf("summary %+v, want p50 50ms, p99 99ms, max 100ms", l)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %v", got)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summary of none = %+v", got)
	}
	if median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 3, 2}) != 2.5 || median(nil) != 0 {
		t.Error("median")
	}
}

const metricsText = `# HELP flexgate_ratelimit_store_call_duration_seconds calls
flexgate_ratelimit_store_call_duration_seconds_bucket{le="0.001"} 90
flexgate_ratelimit_store_call_duration_seconds_bucket{le="+Inf"} 120
flexgate_ratelimit_store_call_duration_seconds_sum 0.05
flexgate_ratelimit_store_call_duration_seconds_count 120
flexgate_ratelimit_store_call_duration_seconds_count_other 5
flexgate_ratelimit_local_refusals_total{route="accuracy"} 40
flexgate_ratelimit_local_refusals_total{route="cluster"} 2
flexgate_ratelimit_store_errors_total{reason="timeout"} 3
flexgate_ratelimit_store_errors_total{reason="connection"} 1
flexgate_ratelimit_store_up 1
`

func TestSumMetric(t *testing.T) {
	f := func(name string, labels []string, want float64, wantFound bool) {
		t.Helper()
		got, found := sumMetric(metricsText, name, labels...)
		if got != want || found != wantFound {
			t.Errorf("sumMetric(%s, %v) = %v, %v; want %v, %v", name, labels, got, found, want, wantFound)
		}
	}
	f(metricCalls, nil, 120, true) // not _bucket, not the longer name
	f(metricLocalRefusals, nil, 42, true)
	f(metricLocalRefusals, []string{`route="accuracy"`}, 40, true)
	f(metricStoreErrors, nil, 4, true)
	f(metricStoreUp, nil, 1, true)
	f(metricFallbacks, nil, 0, false)
}

func TestCommandCalls(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_evalsha:calls=1000,usec=9000,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_eval:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_time:calls=1003,usec=500,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
	if got := commandCalls(info, scriptCommands...); got != 1003 {
		t.Errorf("script calls = %v, want 1003 (EVALSHA and EVAL, not what the script runs)", got)
	}
}

func TestWrkScript(t *testing.T) {
	s, err := renderWrkScript([]string{"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"127.0.0.1", "1001"}, {"127.0.0.1", "1002"}, {"127.0.0.1", "1003"}`, "for i = 1, 4 do", `"client-" .. i`} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "GATEWAYS") || strings.Contains(s, "CLIENTS") {
		t.Errorf("a placeholder is left:\n%s", s)
	}
	if !strings.HasSuffix(s, "end\n\n"+wrk.DoneHook) {
		t.Errorf("the script does not end with wrk.DoneHook, which prints what wrk.Parse reads:\n%s", s)
	}
	// The Go client and wrk name the clients alike.
	if clientID(0) != "client-1" {
		t.Errorf("clientID(0) = %q, want client-1 as wrk's script names it", clientID(0))
	}
}

// TestGatewayConfigCompiles: the gateways' config loads and compiles as
// `flexgate validate` would, with the five routes the run measures, and
// only the three named for it clusterizable.
func TestGatewayConfigCompiles(t *testing.T) {
	conf, err := renderGateway(gatewayParams{Redis: "127.0.0.1:6379", Upstream: "127.0.0.1:8081", Limit: 500,
		Period: yamlSeconds(2 * time.Second), HighLimit: highLimit, StoreTimeout: "25ms"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{path})
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if cfg.SharedStorage == nil || cfg.SharedStorage.Redis.Address != "127.0.0.1:6379" {
		t.Errorf("shared storage %+v", cfg.SharedStorage)
	}
	want := map[string]string{"/accuracy/*": "true", "/accuracy-per-replica/*": "false", "/cluster/*": "true", "/cluster-no-lease/*": "true", "/per-replica/*": "false"}
	if len(cfg.Routes) != len(want) {
		t.Fatalf("%d routes, want %d", len(cfg.Routes), len(want))
	}
	for _, r := range cfg.Routes {
		if len(r.Paths) != 1 || want[r.Paths[0]] == "" {
			t.Errorf("route %s: paths %v", r.ID, r.Paths)
		}
	}
	for _, p := range []string{pathAccuracy, pathAccuracyPerReplica, pathCluster, pathClusterNoLease, pathPerReplica} {
		if !strings.Contains(conf, `path: ["`+strings.TrimSuffix(p, "x")+`*"]`) {
			t.Errorf("no route serves %s", p)
		}
	}
	if strings.Count(conf, "clusterizable: true") != 3 || strings.Count(conf, "storeTimeout: 25ms") != 3 {
		t.Errorf("want three clusterizable routes, each with the store timeout:\n%s", conf)
	}
	if yamlSeconds(1500*time.Millisecond) != "1.5" || yamlSeconds(2*time.Second) != "2" {
		t.Error("yamlSeconds")
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.windows < 10 || o.total != 4*time.Minute || o.conns%3 != 0 {
		t.Errorf("defaults %+v: want at least 10 windows, 4m, connections a multiple of 3", o)
	}
	p, err := makePlan(o)
	if err != nil {
		t.Fatal(err)
	}
	// The budget: the accuracy windows, then a wrk run per mode and round.
	used := p.accuracy + p.contrast + throughputModes*p.warmup + time.Duration(throughputModes*o.rounds)*(p.run+time.Second)
	if used > o.total+5*time.Second || used < o.total-10*time.Second {
		t.Errorf("the plan %+v uses %s of %s", p, used, o.total)
	}
	for _, bad := range [][]string{
		{"-conns", "50"},
		{"-time", "10s"},
		{"-time", "40s", "-windows", "30"}, // no time left for throughput
		{"-period", "10ms"},
		{"-store-timeout", "2s"},
		{"-workers", "2"},
		{"extra"},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	t.Setenv("BENCH_TIME", "5m")
	if o, err := parseOptions([]string{"-rounds", "5"}); err != nil || o.total != 5*time.Minute || o.rounds != 5 {
		t.Errorf("BENCH_TIME=5m -rounds 5: %+v, %v", o, err)
	}
	if got := command(options{args: []string{"-time", "5m", "-out", "a b"}}); got != "go run ./bench/scaleout -time 5m -out 'a b'" {
		t.Errorf("command = %q", got)
	}
}

// TestThroughputRatio: the ratio is of the modes' medians, and round by
// round from the two runs of each round.
func TestThroughputRatio(t *testing.T) {
	s := func(round int, mode string, requests int64) Sample {
		return Sample{Round: round, Mode: mode, Result: wrk.Result{Requests: requests, DurationUS: 1e6}}
	}
	samples := []Sample{
		s(1, ModeCluster, 900), s(1, ModePerReplica, 1000),
		s(2, ModePerReplica, 1200), s(2, ModeCluster, 960),
		s(3, ModeCluster, 850), s(3, ModePerReplica, 1100),
	}
	of, per := ratios(samples, ModeCluster)
	if math.Abs(of-900.0/1100) > 1e-9 {
		t.Errorf("ratio of medians %v, want 900/1100", of)
	}
	if len(per) != 3 || math.Abs(per[1]-0.8) > 1e-9 {
		t.Errorf("per-round ratios %v, want [0.9 0.8 0.77]", per)
	}
	c := summarizeMode(samples, ModeCluster)
	if c.Rounds != 3 || c.OKPS != 900 || math.Abs(c.Spread-110.0/900) > 1e-9 {
		t.Errorf("clusterizable summary %+v", c)
	}
}
