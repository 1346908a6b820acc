// Command compare measures flexgate side by side with nginx, HAProxy and
// Caddy on this machine, in one run, under the same wrk load, and writes
// bench/results/latest.md and latest.svg.
//
// It installs what is missing (wrk, nginx, haproxy, caddy from Debian's
// packages), builds flexgate and bench/upstream, starts everything on
// 127.0.0.1 on ports it picks, runs rounds that visit the targets in turn
// (A B C … A B C …) so that drift on a shared machine hits all of them
// alike, reports the median of the rounds, opens 10,000 idle keep-alive
// connections to measure memory per connection, and stops everything it
// started by PID, also on Ctrl-C. The whole run is bounded by BENCH_TIME
// (default 5m).
//
// Usage:
//
//	go run ./bench/compare [-time 5m] [-conns 64,256] [-rounds 3]
//	    [-bodies small,large] [-targets nginx,flexgate] [-idle 10000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the knobs of one run; flags win over the BENCH_* environment.
type options struct {
	total     time.Duration
	conns     []int
	rounds    int
	bodies    []string
	targets   map[string]bool
	idle      int
	outDir    string
	install   bool
	flexgate  string
	keepTemps bool
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	total := fs.String("time", envOr("BENCH_TIME", "5m"), "whole run's budget, setup aside (env BENCH_TIME)")
	conns := fs.String("conns", envOr("BENCH_CONNS", "64"), "comma-separated wrk connection counts (env BENCH_CONNS)")
	rounds := fs.Int("rounds", 3, "rounds per connection count and body; the report shows their median")
	bodies := fs.String("bodies", envOr("BENCH_BODIES", "small,large"), "upstream bodies: small (~100 B JSON), large (1 KiB JSON)")
	targets := fs.String("targets", envOr("BENCH_TARGETS", ""), "comma-separated target names to run (default all)")
	idle := fs.Int("idle", 10000, "idle keep-alive connections for the connection-scale run (0 skips it)")
	out := fs.String("out", "bench/results", "directory for latest.md, latest.svg and latest.json")
	noInstall := fs.Bool("no-install", false, "fail instead of installing missing tools with apt-get")
	flexgate := fs.String("flexgate", "", "flexgate binary to measure (default: go build ./cmd/flexgate)")
	keep := fs.Bool("keep", false, "keep the temp dir with configs and logs")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{rounds: *rounds, idle: *idle, outDir: *out, install: !*noInstall, flexgate: *flexgate, keepTemps: *keep}
	var err error
	if o.total, err = time.ParseDuration(*total); err != nil || o.total < 10*time.Second {
		return o, fmt.Errorf("-time/BENCH_TIME %q: want a duration of at least 10s, such as 90s or 5m", *total)
	}
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 10000 {
			return o, fmt.Errorf("-conns/BENCH_CONNS %q: want connection counts 1..10000 separated by commas, such as 64,256", *conns)
		}
		o.conns = append(o.conns, n)
	}
	for _, s := range strings.Split(*bodies, ",") {
		s = strings.TrimSpace(s)
		if s != "small" && s != "large" {
			return o, fmt.Errorf("-bodies %q: want small, large or small,large", *bodies)
		}
		o.bodies = append(o.bodies, s)
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if *targets != "" {
		o.targets = map[string]bool{}
		known := map[string]bool{}
		for _, t := range allTargets() {
			known[t.Name] = true
		}
		for _, s := range strings.Split(*targets, ",") {
			s = strings.TrimSpace(s)
			if !known[s] {
				return o, fmt.Errorf("-targets: unknown target %q (known: %s)", s, targetNames())
			}
			o.targets[s] = true
		}
		o.targets["direct"] = true // every ratio needs the ceiling
	}
	return o, nil
}

func targetNames() string {
	var n []string
	for _, t := range allTargets() {
		n = append(n, t.Name)
	}
	return strings.Join(n, ", ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE so that the connection-scale run can
// hold its idle connections; the servers started afterwards inherit it.
func raiseFileLimit(want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	// Root may raise the hard limit too; others get what the hard limit allows.
	try := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
		return want
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	if err := ensureTools(ctx, o.install); err != nil {
		return err
	}
	nofile := raiseFileLimit(max(1<<17, uint64(2*o.idle+4096)))

	dir, err := os.MkdirTemp("", "flexgate-bench-")
	if err != nil {
		return err
	}
	if o.keepTemps {
		logf("configs and logs stay in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	procs := &Procs{}
	defer procs.StopAll()
	// Ctrl-C cancels ctx; the deferred StopAll then runs before exit.

	rep := &Report{Started: started, Options: o, NoFile: nofile, Versions: versions(ctx), Machine: machine()}
	logf("building bench/upstream and flexgate")
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	upBin, err := goBuild(ctx, binDir, "./bench/upstream", "upstream")
	if err != nil {
		return err
	}
	e := &env{procs: procs, dir: dir, nofile: int(nofile), notef: func(format string, args ...any) {
		rep.Notes = append(rep.Notes, fmt.Sprintf(format, args...))
	}}
	if o.flexgate != "" {
		e.flexgate, _ = filepath.Abs(o.flexgate)
	} else if bin, err := goBuild(ctx, binDir, "./cmd/flexgate", "flexgate"); err != nil {
		rep.Notes = append(rep.Notes, "flexgate did not build, so its targets were skipped: "+firstLine(err.Error()))
		logf("%v", err)
	} else {
		e.flexgate = bin
	}
	if e.flexgate != "" {
		if out, err := runOut(ctx, e.flexgate, "version"); err == nil {
			if !strings.HasPrefix(out, "flexgate") {
				out = "flexgate " + out
			}
			rep.Versions = append([]string{out}, rep.Versions...)
		}
	}
	if e.certFile, e.keyFile, err = writeSelfSigned(dir); err != nil {
		return err
	}
	token, jwksFile, err := makeBenchJWT(dir)
	if err != nil {
		return err
	}
	setBenchToken(token)
	e.jwksFile = jwksFile
	upProc, upAddr, err := startUpstream(e, upBin, "upstream")
	if err != nil {
		return err
	}
	e.upstream = upAddr
	for _, t := range allTargets() {
		if t.LB && (o.targets == nil || o.targets[t.Name]) {
			// Two more origins for the targets that balance.
			e.upstreams = []string{upAddr}
			for i := 2; i <= 3; i++ {
				_, addr, err := startUpstream(e, upBin, fmt.Sprintf("upstream-%d", i))
				if err != nil {
					return err
				}
				e.upstreams = append(e.upstreams, addr)
			}
			break
		}
	}

	var targets []*Target
	for _, t := range allTargets() {
		if o.targets != nil && !o.targets[t.Name] {
			continue
		}
		if t.Flexgate && e.flexgate == "" {
			continue
		}
		p, addr, err := t.start(e, t.Name)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s did not start, so it was skipped: %s", t.Name, firstLine(err.Error())))
			logf("%s: %v", t.Name, err)
			if p != nil {
				p.Stop()
			}
			continue
		}
		t.proc, t.addr = p, addr
		if t.proc == nil {
			t.proc = upProc
		}
		if err := checkTarget(ctx, t); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s answered wrongly, so it was skipped: %s", t.Name, firstLine(err.Error())))
			logf("%s: %v", t.Name, err)
			continue
		}
		targets = append(targets, t)
	}
	rep.Targets = targets
	logf("%d targets up after %s: %s", len(targets), time.Since(started).Round(time.Second), names(targets))

	// A safety net under the plan: whatever hangs, the run ends.
	ctx, cancel := context.WithTimeout(ctx, o.total+o.total/2+time.Minute)
	defer cancel()
	plan := makePlan(o, len(targets))
	rep.RunDuration = plan.run
	logf("%d wrk runs of %s each, %d idle connections for %s per target", plan.runs, plan.run, o.idle, plan.idle)

	script := filepath.Join(dir, "report.lua")
	if err := os.WriteFile(script, []byte(wrkReport), 0o644); err != nil {
		return err
	}
	if err := measure(ctx, rep, targets, script, plan); err != nil {
		return err
	}
	for _, t := range targets {
		if u, err := treeUsage(t.proc.PID()); err == nil {
			rep.PeakRSS = setKey(rep.PeakRSS, t.Name, u.PeakRSSKiB)
		}
	}
	if o.idle > 0 && ctx.Err() == nil {
		for _, t := range targets {
			if t.TLS || t.Chain || t.LB || ctx.Err() != nil {
				continue
			}
			ir, err := idleRun(ctx, t, o.idle, script, plan.idle)
			if err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("connection-scale run of %s failed: %s", t.Name, firstLine(err.Error())))
				logf("idle %s: %v", t.Name, err)
				continue
			}
			rep.Idle = append(rep.Idle, ir)
		}
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the run was interrupted: figures are from the rounds that finished")
	}
	rep.Finished = time.Now()
	return rep.Write(o.outDir)
}

// plan splits the budget between the measured rounds and the
// connection-scale run.
type plan struct {
	runs   int
	run    time.Duration
	warmup time.Duration
	idle   time.Duration
}

func makePlan(o options, targets int) plan {
	p := plan{runs: len(o.conns) * len(o.bodies) * o.rounds * targets, warmup: time.Second}
	budget := o.total
	if o.idle > 0 {
		// Four plain targets, each: open the connections, one wrk run.
		p.idle = max(2*time.Second, o.total/40)
		budget -= 4 * (p.idle + 4*time.Second)
	}
	budget -= time.Duration(targets) * p.warmup
	// Each wrk run costs about half a second of start-up and reporting.
	if p.runs > 0 {
		p.run = budget/time.Duration(p.runs) - 500*time.Millisecond
	}
	// wrk takes whole seconds; rounding down keeps the run within its budget.
	p.run = max(time.Second, p.run.Truncate(time.Second))
	return p
}

// Sample is one wrk run's result with the target's CPU use during it.
type Sample struct {
	Result
	CPUSeconds float64
}

// measure runs the rounds. Only one wrk runs at a time.
func measure(ctx context.Context, rep *Report, targets []*Target, script string, p plan) error {
	o := rep.Options
	// Warm up connection pools, TLS session caches and the introspection
	// cache, unmeasured.
	for _, t := range targets {
		if _, err := runWrk(ctx, script, Load{URL: t.URL(pathFor(o.bodies[0])), Headers: benchHeaders, Conns: o.conns[0], Duration: p.warmup}); err != nil && ctx.Err() == nil {
			logf("warm-up of %s: %v", t.Name, err)
		}
	}
	for _, body := range o.bodies {
		for _, conns := range o.conns {
			key := Case{Body: body, Conns: conns}
			for r := 0; r < o.rounds; r++ {
				for _, t := range targets {
					if ctx.Err() != nil {
						return nil
					}
					before, _ := treeUsage(t.proc.PID())
					res, err := runWrk(ctx, script, Load{URL: t.URL(pathFor(body)), Headers: benchHeaders, Conns: conns, Duration: p.run})
					if err != nil {
						if ctx.Err() != nil {
							return nil
						}
						rep.Notes = append(rep.Notes, fmt.Sprintf("%s, %s: a wrk run failed: %s", t.Name, key, firstLine(err.Error())))
						logf("%s %s: %v", t.Name, key, err)
						continue
					}
					after, _ := treeUsage(t.proc.PID())
					s := Sample{Result: res, CPUSeconds: after.CPUSeconds - before.CPUSeconds}
					rep.add(key, t.Name, s)
					logf("%s round %d %-15s %9.0f req/s  p99 %6.2f ms  2xx %.3f", key, r+1, t.Name, res.RPS(), float64(res.P99US)/1000, res.OKRatio())
				}
			}
		}
	}
	return nil
}

func pathFor(body string) string { return "/api/products/" + body }

func names(ts []*Target) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Name)
	}
	return strings.Join(n, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func setKey(m map[string]int64, k string, v int64) map[string]int64 {
	if m == nil {
		m = map[string]int64{}
	}
	m[k] = v
	return m
}

func runOut(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := execCommand(ctx, bin, args...).CombinedOutput()
	return strings.TrimSpace(firstLine(string(out))), err
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
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib := statusKiB(b, "MemTotal:"); kib > 0 {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kib)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s)%s%s, %s/%s", runtime.NumCPU(), model, mem, kernel, runtime.GOOS, runtime.GOARCH)
}
