// Command scaleout measures a cluster-wide rate limit the way it runs in
// Kubernetes: three flexgate gateways sharing one Redis, on this machine.
//
// It installs what is missing (wrk, redis-server from Debian's packages),
// builds flexgate and bench/upstream, starts one redis-server (no
// persistence), one upstream and three gateways on 127.0.0.1 on ports it
// picks, all three running one config with five routes to the upstream:
//
//   - accuracy: a clusterizable limit of -limit per -period for each of
//     -clients clients (by X-Client). A Go load generator, closed-loop
//     workers spread over the three gateways, sends more than the limit
//     for a warm-up period and then -windows periods, and counts 200s and
//     429s per window: admitted against the limit per window and in
//     total, the ±1 % figure.
//   - accuracy-per-replica: the same limit with clusterizable: false, for
//     a few windows: what the same three gateways admit without shared
//     storage (about three times the limit).
//   - cluster and per-replica: the same two with a limit far above the
//     load, so that the limiter's cost is measured, not its refusals; the
//     gateways spend the clusterizable one in leases
//     (FLEXGATE_MAX_REPLICAS=3). cluster-no-lease: a clusterizable limit
//     above the load but too low for leases, decided in Redis request by
//     request. wrk, one thread per gateway, alternates between the three
//     for -rounds rounds; the report gives the throughput ratios
//     clusterizable / per-replica (the goal is at least 0.8), p99, and
//     Redis calls per request (from the gateways' /metrics,
//     cross-checked with Redis's INFO commandstats).
//
// It writes bench/results/scaleout.md and scaleout.json and stops
// everything it started, by PID, at the end, on error and on Ctrl-C. The
// run is bounded by -time (default 4m, setup aside) and a hard deadline of
// 1.5 × that plus a minute.
//
// Usage:
//
//	go run ./bench/scaleout [-time 4m] [-period 2s] [-windows 12] [-limit 500]
//	    [-clients 4] [-workers 48] [-conns 48] [-rounds 3] [-store-timeout 10ms]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flexgate/flexgate/bench/apt"
	"github.com/flexgate/flexgate/bench/procs"
)

// options are the knobs of one run.
type options struct {
	total        time.Duration
	period       time.Duration
	windows      int
	limit        int
	clients      int
	workers      int
	conns        int
	rounds       int
	storeTimeout time.Duration
	flexgate     string
	outDir       string
	install      bool
	keep         bool
	// args are the command-line arguments, for the report.
	args []string
}

// contrastWindows is how long the per-replica accuracy run measures: its
// figure (about three times the limit) needs no precision.
const contrastWindows = 4

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("scaleout", flag.ContinueOnError)
	total := fs.String("time", envOr("BENCH_TIME", "4m"), "the run's budget, setup aside (env BENCH_TIME)")
	period := fs.Duration("period", 2*time.Second, "the accuracy limit's period, and the length of a window")
	windows := fs.Int("windows", 12, "windows the accuracy run measures (the issue's figure needs at least 10)")
	limit := fs.Int("limit", 500, "the accuracy limit: requests per period for each client")
	clients := fs.Int("clients", 4, "clients (X-Client values), each with its own budget")
	workers := fs.Int("workers", 48, "closed-loop senders of the accuracy run, spread over the three gateways")
	conns := fs.Int("conns", 48, "wrk connections of the throughput runs, spread over the three gateways (a multiple of 3)")
	rounds := fs.Int("rounds", 3, "throughput rounds; each runs both modes, and the report gives their median")
	storeTimeout := fs.Duration("store-timeout", 0, "storeTimeout of the clusterizable limits (0: the policy's default, 10ms)")
	flexgate := fs.String("flexgate", "", "flexgate binary to measure (default: go build ./cmd/flexgate)")
	out := fs.String("out", "bench/results", "directory for scaleout.md and scaleout.json")
	noInstall := fs.Bool("no-install", false, "fail instead of installing missing tools with apt-get")
	keep := fs.Bool("keep", false, "keep the temp dir with configs and logs")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q: every setting is a flag (-h lists them)", fs.Arg(0))
	}
	o := options{period: *period, windows: *windows, limit: *limit, clients: *clients, workers: *workers, conns: *conns,
		rounds: *rounds, storeTimeout: *storeTimeout, flexgate: *flexgate, outDir: *out, install: !*noInstall, keep: *keep, args: args}
	var err error
	if o.total, err = time.ParseDuration(*total); err != nil || o.total < 30*time.Second {
		return o, fmt.Errorf("-time/BENCH_TIME %q: want a duration of at least 30s, such as 90s or 3m", *total)
	}
	switch {
	case o.period < 100*time.Millisecond || o.period > time.Minute:
		return o, fmt.Errorf("-period %s: want 100ms to 1m", o.period)
	case o.windows < 1 || o.windows > 1000:
		return o, fmt.Errorf("-windows %d: want 1 to 1000 (10 or more for the ±1 %% figure)", o.windows)
	case o.limit < 1 || o.limit > 1000000:
		return o, fmt.Errorf("-limit %d: want 1 to 1000000", o.limit)
	case o.clients < 1 || o.clients > 10000:
		return o, fmt.Errorf("-clients %d: want 1 to 10000", o.clients)
	case o.workers < 3 || o.workers > 10000:
		return o, fmt.Errorf("-workers %d: want 3 to 10000 (at least one per gateway)", o.workers)
	case o.conns < 3 || o.conns%3 != 0 || o.conns > 30000:
		return o, fmt.Errorf("-conns %d: want a multiple of 3 (wrk splits them between its three threads), 3 to 30000", o.conns)
	case o.rounds < 1 || o.rounds > 100:
		return o, fmt.Errorf("-rounds %d: want 1 to 100", o.rounds)
	case o.storeTimeout != 0 && (o.storeTimeout < time.Millisecond || o.storeTimeout > time.Second):
		return o, fmt.Errorf("-store-timeout %s: want 1ms to 1s, as the policy takes, or 0 for its default", o.storeTimeout)
	}
	if _, err := makePlan(o); err != nil {
		return o, err
	}
	return o, nil
}

// maxWarmup bounds an accuracy run's warm-up: far longer than the load
// needs to spend every client's burst when it exceeds the limit.
func maxWarmup(period time.Duration) time.Duration { return 3 * period }

// plan splits the budget: the accuracy runs take their windows (and a
// warm-up period each); the throughput runs share the rest.
type plan struct {
	accuracy, contrast time.Duration
	// run is the length of one wrk run; there are 2 × rounds of them,
	// after a warm-up of warmup per mode.
	run, warmup time.Duration
}

// throughputModes are the routes each throughput round measures.
const throughputModes = 3

func makePlan(o options) (plan, error) {
	// A warm-up takes less than a period when the load exceeds the
	// limit; the hard deadline covers one that takes its longest.
	p := plan{
		accuracy: time.Duration(1+o.windows) * o.period,
		contrast: time.Duration(1+contrastWindows) * o.period,
		warmup:   2 * time.Second,
	}
	// Each wrk run costs about half a second of start-up and reporting,
	// and each reads the counters before and after.
	left := o.total - p.accuracy - p.contrast - 3*p.warmup
	p.run = (left/time.Duration(throughputModes*o.rounds) - time.Second).Round(time.Second)
	if p.run < 3*time.Second {
		return p, fmt.Errorf("-time %s leaves %s per throughput run after %s of accuracy windows: raise -time, or lower -windows, -period or -rounds",
			o.total, max(p.run, 0), p.accuracy+p.contrast)
	}
	return p, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scaleout: "+format+"\n", args...)
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

// setup is what run started: the servers and their addresses.
type setup struct {
	servers  *procs.Group
	dir      string
	redis    string
	redisPID int
	upstream string
	gateways []string // the proxies' host:port
	admins   []string // their admin servers'
	pids     []int
}

func run(ctx context.Context, o options) error {
	rep := &Report{Started: time.Now(), Command: command(o), Machine: machine(), Load: []LoadSample{{"start", loadAverage()}}}
	p, err := makePlan(o)
	if err != nil {
		return err
	}
	if err := apt.Ensure(ctx, tools, o.install, logf); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "flexgate-scaleout-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("configs and logs stay in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	s := &setup{servers: &procs.Group{}, dir: dir}
	defer s.servers.StopAll()
	if err := s.start(ctx, o, rep); err != nil {
		return err
	}
	// A safety net under the plan: whatever hangs, the run ends.
	ctx, cancel := context.WithTimeout(ctx, o.total+o.total/2+time.Minute)
	defer cancel()

	logf("accuracy: %d windows of %s after a warm-up, limit %d per window for each of %d clients, %d workers",
		o.windows, o.period, o.limit, o.clients, o.workers)
	rep.Load = append(rep.Load, LoadSample{"accuracy", loadAverage()})
	if rep.Accuracy, err = s.accuracy(ctx, o, pathAccuracy, o.windows); err != nil {
		return err
	}
	logf("accuracy: admitted %d, expected %.0f (%+.2f %%); %.2f Redis calls per request",
		rep.Accuracy.Total.Admitted, rep.Accuracy.Total.Expected, 100*rep.Accuracy.Total.Deviation, rep.Accuracy.CallsPerRequest)
	if ctx.Err() == nil {
		logf("per replica: %d windows, same limit with clusterizable: false", contrastWindows)
		if rep.PerReplica, err = s.accuracy(ctx, o, pathAccuracyPerReplica, contrastWindows); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		logf("throughput: %d rounds of a %s wrk run per mode, %d connections", o.rounds, p.run, o.conns)
		rep.Load = append(rep.Load, LoadSample{"throughput", loadAverage()})
		if err := s.throughput(ctx, o, p, rep); err != nil {
			return err
		}
	}
	rep.Load = append(rep.Load, LoadSample{"end", loadAverage()})
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the run was interrupted: figures are from the parts that finished")
	}
	rep.Finished = time.Now()
	rep.Options = o
	procs.Redact(rep.Notes, dir)
	return rep.Write(o.outDir)
}

// command is the command line that reproduces the run.
func command(o options) string {
	parts := []string{"go run ./bench/scaleout"}
	for _, a := range o.args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// start builds and starts redis-server, the upstream and three gateways.
func (s *setup) start(ctx context.Context, o options, rep *Report) error {
	binDir := filepath.Join(s.dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	logf("building bench/upstream and flexgate")
	upBin, err := procs.GoBuild(ctx, binDir, "./bench/upstream", "upstream")
	if err != nil {
		return err
	}
	fgBin := o.flexgate
	if fgBin == "" {
		if fgBin, err = procs.GoBuild(ctx, binDir, "./cmd/flexgate", "flexgate"); err != nil {
			return err
		}
	} else if fgBin, err = filepath.Abs(fgBin); err != nil {
		return err
	}
	for _, v := range [][]string{{fgBin, "version"}, {"redis-server", "--version"}, {"wrk", "-v"}, {"go", "version"}} {
		// wrk -v prints its version and exits 1.
		if line, _ := procs.FirstLine(ctx, v[0], v[1:]...); line != "" {
			rep.Versions = append(rep.Versions, line)
		}
	}

	if s.redis, err = procs.FreeAddr(); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(s.redis)
	rp, err := s.servers.Start("redis", s.dir, "redis-server", []string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no", "--dir", s.dir, "--logfile", ""}, nil)
	if err != nil {
		return err
	}
	if err := rp.WaitReady(s.redis, false, 15*time.Second); err != nil {
		return err
	}
	s.redisPID = rp.PID()
	if s.upstream, err = procs.FreeAddr(); err != nil {
		return err
	}
	up, err := s.servers.Start("upstream", s.dir, upBin, []string{"-listen", s.upstream}, nil)
	if err != nil {
		return err
	}
	if err := up.WaitReady(s.upstream, false, 15*time.Second); err != nil {
		return err
	}

	params := gatewayParams{Redis: s.redis, Upstream: s.upstream, Limit: o.limit, Period: yamlSeconds(o.period), HighLimit: highLimit}
	if o.storeTimeout > 0 {
		params.StoreTimeout = o.storeTimeout.String()
	}
	conf, err := renderGateway(params)
	if err != nil {
		return err
	}
	confPath := filepath.Join(s.dir, "gateway.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	rep.Config = conf
	for i := range 3 {
		addr, err := procs.FreeAddr()
		if err != nil {
			return err
		}
		admin, err := procs.FreeAddr()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("gateway-%d", i+1)
		// No drain delay: nothing routes traffic here, and stopping must
		// be quick.
		g, err := s.servers.Start(name, s.dir, fgBin, []string{"run", "--config", confPath, "--listen", addr, "--admin-addr", admin,
			"--log-level", "warn", "--drain-delay", "0s", "--shutdown-timeout", "2s"}, []string{fmt.Sprintf("FLEXGATE_MAX_REPLICAS=%d", replicas)})
		if err != nil {
			return err
		}
		if err := g.WaitReady(addr, false, 15*time.Second); err != nil {
			return err
		}
		if err := waitStoreUp(ctx, g, admin, 15*time.Second); err != nil {
			return err
		}
		s.gateways, s.admins, s.pids = append(s.gateways, addr), append(s.admins, admin), append(s.pids, g.PID())
	}
	logf("redis %s, upstream %s, gateways %s", s.redis, s.upstream, strings.Join(s.gateways, " "))
	return nil
}

// waitStoreUp waits until the gateway says its shared storage answers.
func waitStoreUp(ctx context.Context, g *procs.Proc, admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		text, err := scrape(ctx, admin)
		if v, ok := sumMetric(text, metricStoreUp); err == nil && ok && v == 1 {
			return nil
		}
		if g.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s is not 1 after %s (is Redis reachable?): %v\n%s", g.Name, metricStoreUp, timeout, err, g.Tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// accuracy runs the Go load generator against path for windows windows
// and holds what it counted against the limit.
func (s *setup) accuracy(ctx context.Context, o options, path string, windows int) (*AccuracyResult, error) {
	before, err := readCounters(ctx, s.admins, s.redis)
	if err != nil {
		return nil, err
	}
	res := accuracyLoad{gateways: s.gateways, path: path, workers: o.workers, clients: o.clients,
		period: o.period, windows: windows, maxWarmup: maxWarmup(o.period)}.run(ctx)
	// An interrupted run still reports what it measured.
	after, err := readCounters(context.WithoutCancel(ctx), s.admins, s.redis)
	if err != nil {
		return nil, err
	}
	d := after.sub(before)
	r := &AccuracyResult{Accuracy: res.tally.accuracy(float64(o.limit)), Path: path, WindowCount: windows,
		Warmup: res.Warmup, Drained: res.Drained, Requests: res.Requests, Errors: res.Errors, FirstError: res.FirstError, AdmittedLatency: res.Admitted, RefusedLatency: res.Refused,
		Counters: d}
	if res.Requests > 0 {
		r.CallsPerRequest = d.Calls / float64(res.Requests)
		r.RedisCommandsPerRequest = d.RedisCommands / float64(res.Requests)
	}
	if n := r.Total.Admitted; n > 0 {
		r.CallsPerAdmitted = d.Calls / float64(n)
	}
	if res.Errors > 0 && res.Requests == 0 {
		return r, fmt.Errorf("the accuracy run got no answer: %s", res.FirstError)
	}
	return r, nil
}

// throughput alternates wrk runs between the clusterizable routes and the
// per-replica one, A B C then C B A, so that drift on a shared machine hits
// all alike.
func (s *setup) throughput(ctx context.Context, o options, p plan, rep *Report) error {
	text, err := renderWrkScript(s.gateways, o.clients)
	if err != nil {
		return err
	}
	script := filepath.Join(s.dir, "scaleout.lua")
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		return err
	}
	modes := []struct{ name, path string }{{ModeCluster, pathCluster}, {ModeClusterNoLease, pathClusterNoLease}, {ModePerReplica, pathPerReplica}}
	for _, m := range modes {
		if _, err := runWrk(ctx, script, s.gateways, m.path, o.conns, p.warmup); err != nil && ctx.Err() == nil {
			logf("warm-up of %s: %v", m.name, err)
		}
	}
	for r := range o.rounds {
		order := []int{0, 1, 2}
		if r%2 == 1 {
			order = []int{2, 1, 0}
		}
		for _, i := range order {
			if ctx.Err() != nil {
				return nil
			}
			m := modes[i]
			before, err := readCounters(ctx, s.admins, s.redis)
			if err != nil {
				return err
			}
			cpu0 := s.cpu()
			res, err := runWrk(ctx, script, s.gateways, m.path, o.conns, p.run)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			cpu1 := s.cpu()
			after, err := readCounters(context.WithoutCancel(ctx), s.admins, s.redis)
			if err != nil {
				return err
			}
			smp := Sample{Round: r + 1, Mode: m.name, Result: res, Counters: after.sub(before), Load: loadAverage()}
			if res.Requests > 0 {
				smp.CallsPerRequest = smp.Counters.Calls / float64(res.Requests)
				smp.GatewayCPUPer100k = (cpu1.gateways - cpu0.gateways) / float64(res.Requests) * 1e5
				smp.RedisCPUPer100k = (cpu1.redis - cpu0.redis) / float64(res.Requests) * 1e5
			}
			rep.Samples = append(rep.Samples, smp)
			logf("round %d %-12s %8.0f req/s (2xx %8.0f/s)  p99 %6.2f ms  %.3f Redis calls/req  load %s",
				r+1, m.name, res.RPS(), res.OKPS(), float64(res.P99US)/1000, smp.CallsPerRequest, smp.Load)
		}
	}
	return nil
}

type cpuTimes struct{ gateways, redis float64 }

// cpu is the CPU time the three gateways and Redis have used so far.
func (s *setup) cpu() cpuTimes {
	var c cpuTimes
	for _, pid := range s.pids {
		v, _ := procs.CPUSeconds(pid)
		c.gateways += v
	}
	c.redis, _ = procs.CPUSeconds(s.redisPID)
	return c
}
