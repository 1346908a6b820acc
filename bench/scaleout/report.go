package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/flexgate/flexgate/bench/wrk"
)

// The throughput modes: the same three gateways, the same limit far above
// the load, with and without clusterizable.
const (
	ModeCluster        = "clusterizable"
	ModeClusterNoLease = "clusterizable, no lease"
	ModePerReplica     = "per-replica"
)

// Report is one run's figures.
type Report struct {
	Started, Finished time.Time
	Options           options `json:"-"`
	Command           string
	Machine           string
	Versions          []string
	// Load is the load average at the start, before each part and at the
	// end.
	Load       []LoadSample
	Config     string
	Accuracy   *AccuracyResult
	PerReplica *AccuracyResult
	Samples    []Sample
	Notes      []string
}

// LoadSample is /proc/loadavg's first three fields at a moment of the run.
type LoadSample struct {
	At, Load string
}

// loadAverage is the first three fields of /proc/loadavg ("1.20 0.90
// 0.70"), or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// AccuracyResult is one accuracy run.
type AccuracyResult struct {
	Accuracy
	Path        string
	WindowCount int
	// Warmup is how long the load ran before the windows; Drained says
	// whether every client had been refused through every gateway by
	// then.
	Warmup     time.Duration
	Drained    bool
	Requests   int64
	Errors     int64
	FirstError string `json:",omitempty"`
	// AdmittedLatency and RefusedLatency are the Go client's round trips
	// in the measured windows.
	AdmittedLatency, RefusedLatency Latency
	// Counters are the gateways' (and Redis's) over the whole run, warm-up
	// included, as Requests is.
	Counters                counters
	CallsPerRequest         float64
	CallsPerAdmitted        float64
	RedisCommandsPerRequest float64
}

// Sample is one wrk run.
type Sample struct {
	Round int
	Mode  string
	wrk.Result
	Counters          counters
	CallsPerRequest   float64
	GatewayCPUPer100k float64
	RedisCPUPer100k   float64
	Load              string
}

// ModeSummary is the median of one mode's rounds, figure by figure.
type ModeSummary struct {
	Mode                       string
	Rounds                     int
	RPS, OKPS                  float64
	P50, P99, P999             time.Duration
	CallsPerRequest            float64
	GatewayCPU, RedisCPU       float64
	StatusErrors, SocketErrors int64
	// Spread is (max - min) / median of OKPS over the rounds.
	Spread float64
}

func summarizeMode(samples []Sample, mode string) ModeSummary {
	s := ModeSummary{Mode: mode}
	var rps, ok, p50, p99, p999, calls, gcpu, rcpu []float64
	for _, x := range samples {
		if x.Mode != mode {
			continue
		}
		s.Rounds++
		rps, ok = append(rps, x.RPS()), append(ok, x.OKPS())
		p50, p99, p999 = append(p50, float64(x.P50US)), append(p99, float64(x.P99US)), append(p999, float64(x.P999US))
		calls, gcpu, rcpu = append(calls, x.CallsPerRequest), append(gcpu, x.GatewayCPUPer100k), append(rcpu, x.RedisCPUPer100k)
		s.StatusErrors += x.StatusErrors
		s.SocketErrors += x.ConnectErrors + x.ReadErrors + x.WriteErrors + x.Timeouts
	}
	s.RPS, s.OKPS = median(rps), median(ok)
	us := func(v float64) time.Duration { return time.Duration(v) * time.Microsecond }
	s.P50, s.P99, s.P999 = us(median(p50)), us(median(p99)), us(median(p999))
	s.CallsPerRequest, s.GatewayCPU, s.RedisCPU = median(calls), median(gcpu), median(rcpu)
	if s.OKPS > 0 {
		lo, hi := ok[0], ok[0]
		for _, v := range ok {
			lo, hi = min(lo, v), max(hi, v)
		}
		s.Spread = (hi - lo) / s.OKPS
	}
	return s
}

// ratios are mode / per-replica 2xx throughput: of the medians, and round
// by round (each round runs every mode back to back).
func ratios(samples []Sample, mode string) (ofMedians float64, perRound []float64) {
	c, p := summarizeMode(samples, mode), summarizeMode(samples, ModePerReplica)
	if p.OKPS > 0 {
		ofMedians = c.OKPS / p.OKPS
	}
	byRound := map[int]map[string]float64{}
	var rounds []int
	for _, x := range samples {
		if byRound[x.Round] == nil {
			byRound[x.Round] = map[string]float64{}
			rounds = append(rounds, x.Round)
		}
		byRound[x.Round][x.Mode] = x.OKPS()
	}
	for _, r := range rounds {
		if m := byRound[r]; m[ModePerReplica] > 0 && m[mode] > 0 {
			perRound = append(perRound, m[mode]/m[ModePerReplica])
		}
	}
	return ofMedians, perRound
}

// Write writes scaleout.md and scaleout.json into dir and the Markdown to
// stdout.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := r.Markdown()
	if err := os.WriteFile(filepath.Join(dir, "scaleout.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "scaleout.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	logf("wrote %s and scaleout.json", filepath.Join(dir, "scaleout.md"))
	return nil
}

func pct(f float64) string { return fmt.Sprintf("%+.2f %%", 100*f) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.Options
	w("# flexgate scale-out: three gateways, one Redis\n\n")
	w("`%s`, %s UTC, %s in all.\n\n", r.Command, r.Started.UTC().Format("2006-01-02 15:04"), r.Finished.Sub(r.Started).Round(time.Second))
	w("- **Machine:** %s. Redis, the upstream, the three gateways and the load generator share it.\n", r.Machine)
	w("- **Versions:** %s.\n", strings.Join(r.Versions, "; "))
	var loads []string
	for _, l := range r.Load {
		loads = append(loads, l.At+" "+l.Load)
	}
	w("- **Load average** (1, 5, 15 min): %s.\n", strings.Join(loads, "; "))
	w("- **Setup:** three `flexgate run` processes with the config at the end (one `spec.sharedStorage.redis`, " +
		"five routes to one `bench/upstream`, each with one `rate-limiting` by `X-Client`; `FLEXGATE_MAX_REPLICAS=3`), one `redis-server` " +
		"(no persistence), all on 127.0.0.1.\n\n")

	if a := r.Accuracy; a != nil {
		w("## Accuracy: a clusterizable limit of %d per %s for each of %d clients\n\n", o.limit, o.period, o.clients)
		w("%d closed-loop workers (Go, fasthttp), spread evenly over the three gateways, each cycling through the clients, "+
			"sent requests until every client had been refused through every gateway (%s: its initial burst spent), "+
			"and then for %d windows of %s. A response counts in the window of its round trip's midpoint. "+
			"Expected per window: limit × clients = %.0f.\n\n",
			o.workers, warmupText(a), a.WindowCount, o.period, float64(o.limit*o.clients))
		r.accuracyTable(&b, a)
		w("\n- **Total: admitted %d, expected %.0f (%s)**; the largest deviation of one window %.2f %%; "+
			"the client furthest from its share: %s, %s.\n",
			a.Total.Admitted, a.Total.Expected, pct(a.Total.Deviation), 100*a.MaxWindowDeviation, clientID(a.WorstClient), pct(a.WorstClientDeviation))
		w("- **Redis calls: %.3f per request, %.2f per admitted request** (%.0f calls by the gateways' "+
			"`%s` over %d requests, warm-up included); Redis ran the script %.3f times per request (INFO commandstats, probes included). "+
			"%.0f of the 429s were answered from the gateways' memory (`%s`).\n",
			a.CallsPerRequest, a.CallsPerAdmitted, a.Counters.Calls, metricCalls, a.Requests, a.RedisCommandsPerRequest,
			a.Counters.LocalRefusals, metricLocalRefusals)
		w("- **Latency** (Go client, measured windows): admitted p50 %s ms, p99 %s ms, max %s ms; refused p50 %s ms, p99 %s ms.\n",
			ms(a.AdmittedLatency.P50), ms(a.AdmittedLatency.P99), ms(a.AdmittedLatency.Max), ms(a.RefusedLatency.P50), ms(a.RefusedLatency.P99))
		w("- Store errors %.0f, `onStoreError` fallbacks %.0f, transport errors %d%s.\n\n",
			a.Counters.StoreErrors, a.Counters.Fallbacks, a.Errors, firstErr(a.FirstError))
	}
	if a := r.PerReplica; a != nil {
		w("## The same limit per replica (`clusterizable: false`)\n\n")
		ratio := 0.0
		if a.Total.Expected > 0 {
			ratio = float64(a.Total.Admitted) / a.Total.Expected
		}
		w("The same load for %d windows against the route whose limit is the same but per replica: admitted %d where the limit allows %.0f, "+
			"**%.2f × the limit** (three replicas, each counting on its own, let through up to three times it). "+
			"429s %d, 503s %d, other %d.\n\n",
			a.WindowCount, a.Total.Admitted, a.Total.Expected, ratio, a.Total.Refused, a.Total.Unavailable, a.Total.Other)
	}
	if len(r.Samples) > 0 {
		w("## Throughput: the limiter's cost, limit far above the load\n\n")
		w("The clusterizable route allows %d requests per 60 s per client, the per-replica route the same: nothing is refused, "+
			"so the difference is what the shared limit costs. With `FLEXGATE_MAX_REPLICAS=%d` a limit that high is spent in leases "+
			"(a call takes %d tokens more than its requests need, spent from memory within 300 ms; see the rate-limiting README). "+
			"The route `clusterizable, no lease` allows %d per 60 s, the highest limit that three replicas spend request by request, "+
			"each call deciding the requests of one client that came together. "+
			"`wrk -t3 -c%d` (one thread per gateway, `%d` clients cycled), %s runs, rounds alternating the order "+
			"(A B C, C B A, …). 2xx/s is the compared figure.\n\n", highLimit, replicas, highLimit/(200*200*replicas), noLeaseLimit,
			o.conns, o.clients, r.runLength())
		w("| round | mode | req/s | 2xx/s | p50 ms | p99 ms | p99.9 ms | non-2xx | Redis calls / req | gateways' CPU s / 100k req | Redis CPU s / 100k req | load avg |\n")
		w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range r.Samples {
			w("| %d | %s | %.0f | %.0f | %s | %s | %s | %d | %.3f | %.2f | %.2f | %s |\n", s.Round, s.Mode, s.RPS(), s.OKPS(),
				ms(time.Duration(s.P50US)*time.Microsecond), ms(time.Duration(s.P99US)*time.Microsecond), ms(time.Duration(s.P999US)*time.Microsecond),
				s.StatusErrors, s.CallsPerRequest, s.GatewayCPUPer100k, s.RedisCPUPer100k, s.Load)
		}
		for _, m := range []string{ModeCluster, ModeClusterNoLease, ModePerReplica} {
			s := summarizeMode(r.Samples, m)
			w("| **median** | **%s** | %.0f | **%.0f** | %s | **%s** | %s | %d | %.3f | %.2f | %.2f | spread %.0f %% |\n", m, s.RPS, s.OKPS,
				ms(s.P50), ms(s.P99), ms(s.P999), s.StatusErrors, s.CallsPerRequest, s.GatewayCPU, s.RedisCPU, 100*s.Spread)
		}
		w("\n")
		p := summarizeMode(r.Samples, ModePerReplica)
		for _, m := range []string{ModeCluster, ModeClusterNoLease} {
			of, per := ratios(r.Samples, m)
			var perS []string
			for _, v := range per {
				perS = append(perS, fmt.Sprintf("%.2f", v))
			}
			verdict := "meets"
			if of < 0.8 {
				verdict = "misses"
			}
			w("- **Throughput %s / per-replica: %.2f** (medians of 2xx/s; the goal is ≥ 0.8, which this run %s); round by round: %s.",
				m, of, verdict, strings.Join(perS, ", "))
			if c := summarizeMode(r.Samples, m); c.GatewayCPU > 0 {
				w(" The gateways' own CPU per request, %.2f s / 100k against %.2f per replica, puts their throughput per core at **%.2f ×** "+
					"(an estimate from CPU time, not a measurement: in Kubernetes Redis and the load do not share the gateways' cores).",
					c.GatewayCPU, p.GatewayCPU, p.GatewayCPU/c.GatewayCPU)
			}
			w("\n")
		}
		w("\nSpread is (max − min) / median of a mode's rounds: the run's noise. Here Redis and wrk take their CPU from the same " +
			"two cores as the gateways.\n\n")
	}
	if len(r.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
		w("\n")
	}
	w("## The gateways' config\n\n```yaml\n%s```\n", r.Config)
	return b.String()
}

func (r *Report) runLength() string {
	for _, s := range r.Samples {
		return (time.Duration(s.DurationUS) * time.Microsecond).Round(time.Second).String()
	}
	return "no"
}

func (r *Report) accuracyTable(b *strings.Builder, a *AccuracyResult) {
	fmt.Fprintf(b, "| window | admitted | expected | deviation | 429 | 503 | other |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, x := range a.Windows {
		fmt.Fprintf(b, "| %d | %d | %.0f | %s | %d | %d | %d |\n", i+1, x.Admitted, x.Expected, pct(x.Deviation), x.Refused, x.Unavailable, x.Other)
	}
	t := a.Total
	fmt.Fprintf(b, "| **total** | **%d** | **%.0f** | **%s** | %d | %d | %d |\n", t.Admitted, t.Expected, pct(t.Deviation), t.Refused, t.Unavailable, t.Other)
}

func warmupText(a *AccuracyResult) string {
	if a.Drained {
		return "after " + a.Warmup.Round(time.Millisecond).String()
	}
	return "which had not happened after " + a.Warmup.String() + ", so the windows began anyway: the load did not exceed the limit everywhere"
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + firstLine(s) + ")"
}

// machine describes the host for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s)%s, %s/%s", runtime.NumCPU(), model, kernel, runtime.GOOS, runtime.GOARCH)
}
