// Command compare measures flexgate side by side with nginx, HAProxy, Caddy
// and Traefik on this machine, in one run, and writes
// bench/results/latest.md, latest.svg and latest.json.
//
// It installs what is missing (wrk, nginx, haproxy from Debian's packages),
// builds flexgate, bench/upstream, and Caddy and Traefik from their Go
// modules at pinned versions (cached), starts everything on 127.0.0.1 on
// ports it picks, and runs these phases (-phases selects them):
//
//   - rounds: closed-loop wrk runs that visit the targets in turn
//     (A B C … A B C …) so that drift on a shared machine hits all of them
//     alike, reporting the median of the rounds; 64 connections for every
//     target, 256 and 1,024 for the passthrough ones;
//   - openloop: a constant request rate at 50 % and 80 % of nginx's measured
//     maximum (vegeta), latencies from the intended send time;
//   - tls: TLS handshakes per second with a new connection per request, full
//     and resumed, flexgate against nginx;
//   - idle: 100,000 idle keep-alive connections per plain target, memory per
//     connection and wrk throughput while they are held.
//
// It stops everything it started by PID, also on Ctrl-C. The measuring is
// bounded by BENCH_TIME (default 15m).
//
// Usage:
//
//	go run ./bench/compare [-time 15m] [-phases rounds,openloop,tls,idle]
//	    [-conns 64] [-scale-conns 256,1024] [-rounds 3] [-bodies small,large]
//	    [-targets nginx,flexgate] [-openloop 50,80] [-idle 100000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flexgate/flexgate/bench/apt"
	"github.com/flexgate/flexgate/bench/benchtls"
	"github.com/flexgate/flexgate/bench/procs"
	"github.com/flexgate/flexgate/bench/wrk"
)

// options are the knobs of one run; flags win over the BENCH_* environment.
type options struct {
	total time.Duration
	// phases are the parts of the run to do: rounds, openloop, tls, idle.
	phases map[string]bool
	conns  []int
	// scaleConns are the extra connection counts of the passthrough
	// targets, first body only.
	scaleConns []int
	// openLoop are the percentages of nginx's maximum the open-loop phase
	// offers.
	openLoop  []int
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
	total := fs.String("time", envOr("BENCH_TIME", "15m"), "whole run's budget, setup aside (env BENCH_TIME)")
	phases := fs.String("phases", envOr("BENCH_PHASES", strings.Join(allPhases, ",")), "parts of the run: "+strings.Join(allPhases, ", ")+" (env BENCH_PHASES)")
	conns := fs.String("conns", envOr("BENCH_CONNS", "64"), "comma-separated wrk connection counts of every target (env BENCH_CONNS)")
	scale := fs.String("scale-conns", envOr("BENCH_SCALE_CONNS", "256,1024"), "more connection counts for the passthrough targets, first body only; \"\" for none (env BENCH_SCALE_CONNS)")
	openLoop := fs.String("openloop", envOr("BENCH_OPENLOOP", "50,80"), "open-loop rates in percent of nginx's maximum (env BENCH_OPENLOOP)")
	rounds := fs.Int("rounds", 3, "rounds per connection count and body; the report shows their median")
	bodies := fs.String("bodies", envOr("BENCH_BODIES", "small,large"), "upstream bodies: small (~100 B JSON), large (1 KiB JSON)")
	targets := fs.String("targets", envOr("BENCH_TARGETS", ""), "comma-separated target names to run (default all)")
	idle := fs.Int("idle", 100000, "idle keep-alive connections for the connection-scale run (0 skips it)")
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
	if o.phases, err = parsePhases(*phases); err != nil {
		return o, err
	}
	if o.conns, err = parseInts(*conns, 1, 10000, false); err != nil {
		return o, fmt.Errorf("-conns/BENCH_CONNS %q: want connection counts 1..10000 separated by commas, such as 64,256", *conns)
	}
	if o.scaleConns, err = parseInts(*scale, 1, 10000, true); err != nil {
		return o, fmt.Errorf("-scale-conns/BENCH_SCALE_CONNS %q: want connection counts 1..10000 separated by commas, such as 256,1024, or nothing", *scale)
	}
	if o.openLoop, err = parseInts(*openLoop, 1, 100, true); err != nil {
		return o, fmt.Errorf("-openloop/BENCH_OPENLOOP %q: want percentages 1..100 separated by commas, such as 50,80, or nothing", *openLoop)
	}
	if o.idle < 0 || o.idle > 1000000 {
		return o, fmt.Errorf("-idle %d: want 0..1000000 idle connections", o.idle)
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

// allPhases are the parts of a run, in the order they run.
var allPhases = []string{"rounds", "openloop", "tls", "idle"}

func parsePhases(s string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("-phases/BENCH_PHASES: unknown phase %q (known: %s)", p, strings.Join(allPhases, ", "))
		}
		m[p] = true
	}
	return m, nil
}

// parseInts reads a comma-separated list of integers in [lo, hi]; empty is
// an empty list where allowEmpty, an error otherwise. Duplicates are errors:
// they would measure the same case twice under two names.
func parseInts(s string, lo, hi int, allowEmpty bool) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		if allowEmpty {
			return nil, nil
		}
		return nil, fmt.Errorf("empty list")
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi || slices.Contains(out, n) {
			return nil, fmt.Errorf("bad list %q", s)
		}
		out = append(out, n)
	}
	return out, nil
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
	if err := apt.Ensure(ctx, tools, o.install, logf); err != nil {
		return err
	}
	nofile := raiseFileLimit(max(1<<17, uint64(2*o.idle+8192)))

	dir, err := os.MkdirTemp("", "flexgate-bench-")
	if err != nil {
		return err
	}
	if o.keepTemps {
		logf("configs and logs stay in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	servers := &procs.Group{}
	defer servers.StopAll()
	// Ctrl-C cancels ctx; the deferred StopAll then runs before exit.

	rep := &Report{Started: started, Options: o, NoFile: nofile, Versions: versions(ctx), Machine: machine()}
	if fit := idleThatFits(nofile); o.phases["idle"] && o.idle > fit {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the open-file limit is %d and could not be raised (raising the hard limit needs CAP_SYS_RESOURCE: "+
			"`ulimit -Hn` as root, or the container's nofile ulimit), so the connection-scale run opens %d idle connections, not %d: "+
			"every server here is one process (nginx and HAProxy: per worker), and so is the harness holding the client ends", nofile, fit, o.idle))
		o.idle = fit
		rep.Options.idle = fit
	}
	logf("building bench/upstream and flexgate")
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	upBin, err := procs.GoBuild(ctx, binDir, "./bench/upstream", "upstream")
	if err != nil {
		return err
	}
	e := &env{servers: servers, dir: dir, nofile: int(nofile), maxConns: o.idle + 4096, notef: func(format string, args ...any) {
		rep.Notes = append(rep.Notes, fmt.Sprintf(format, args...))
	}}
	if o.flexgate != "" {
		e.flexgate, _ = filepath.Abs(o.flexgate)
	} else if bin, err := procs.GoBuild(ctx, binDir, "./cmd/flexgate", "flexgate"); err != nil {
		rep.Notes = append(rep.Notes, "flexgate did not build, so its targets were skipped: "+firstLine(err.Error()))
		logf("%v", err)
	} else {
		e.flexgate = bin
	}
	if e.flexgate != "" {
		if out, err := procs.FirstLine(ctx, e.flexgate, "version"); err == nil {
			if !strings.HasPrefix(out, "flexgate") {
				out = "flexgate " + out
			}
			rep.Versions = append([]string{out}, rep.Versions...)
		}
	}
	buildModulePeers(ctx, o, e, rep)
	if e.certFile, e.keyFile, err = benchtls.WriteSelfSigned(dir); err != nil {
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

	p := makePlan(o, shapeOf(o, targets))
	rep.RunDuration = p.run
	rep.Plan = p
	// A safety net under the plan: whatever hangs, the run ends.
	ctx, cancel := context.WithTimeout(ctx, p.deadline(o))
	defer cancel()
	logf("plan: %s", p)

	script := filepath.Join(dir, "report.lua")
	if err := os.WriteFile(script, []byte(wrk.DoneHook), 0o644); err != nil {
		return err
	}
	if o.phases["rounds"] {
		if err := measure(ctx, rep, targets, script, p); err != nil {
			return err
		}
		for _, t := range targets {
			if u, err := treeUsage(t.proc.PID()); err == nil {
				rep.PeakRSS = setKey(rep.PeakRSS, t.Name, u.PeakRSSKiB)
			}
		}
	}
	if o.phases["openloop"] && len(o.openLoop) > 0 && ctx.Err() == nil {
		openLoopPhase(ctx, rep, targets, script, p)
	}
	if o.phases["tls"] && ctx.Err() == nil {
		handshakePhase(ctx, rep, targets, p)
	}
	if o.phases["idle"] && o.idle > 0 && ctx.Err() == nil {
		for _, t := range targets {
			if !t.plain() || ctx.Err() != nil {
				continue
			}
			ir, err := idleRun(ctx, t, o.idle, script, p)
			if err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("connection-scale run of %s: %s", t.Name, firstLine(err.Error())))
				logf("idle %s: %v", t.Name, err)
			}
			if ir.Open > 0 {
				rep.Idle = append(rep.Idle, ir)
			}
		}
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the run was interrupted or hit its deadline: figures are from the parts that finished")
	}
	rep.Finished = time.Now()
	procs.Redact(rep.Notes, dir)
	return rep.Write(o.outDir)
}

// buildModulePeers builds Caddy and Traefik from their Go modules when a
// target needs them; a peer that does not build is skipped with a note.
func buildModulePeers(ctx context.Context, o options, e *env, rep *Report) {
	want := func(prefix string) bool {
		for _, t := range allTargets() {
			if strings.HasPrefix(t.Name, prefix) && (o.targets == nil || o.targets[t.Name]) {
				return true
			}
		}
		return false
	}
	cache, err := cacheDir()
	if err != nil {
		rep.Notes = append(rep.Notes, err.Error())
		return
	}
	for _, m := range []struct {
		peer modulePeer
		bin  *string
	}{{caddyModule, &e.caddy}, {traefikModule, &e.traefik}} {
		if !want(m.peer.name) {
			continue
		}
		// Building Traefik takes about 17 CPU minutes (some 9 minutes on
		// two quiet cores); bound it all the same.
		bctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
		bin, err := m.peer.build(bctx, cache)
		cancel()
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s %s did not build from its Go module, so its targets were skipped: %s",
				m.peer.name, m.peer.version, firstLine(err.Error())))
			logf("%s: %v", m.peer.name, err)
			continue
		}
		*m.bin = bin
		// The pinned version, not the binary's word: a module built with
		// go install reports "unknown" from caddy version.
		rep.Versions = append(rep.Versions, fmt.Sprintf("%s %s (built from %s/%s@%s)", m.peer.name, m.peer.version, m.peer.module, m.peer.pkg, m.peer.version))
	}
}

// shape counts the targets each phase visits, for the plan.
type shape struct {
	all, plain, openLoop, tls int
	// handshakes is how many handshake runs the TLS targets take.
	handshakes int
}

func shapeOf(o options, ts []*Target) shape {
	var s shape
	for _, t := range ts {
		s.all++
		if t.plain() {
			s.plain++
		}
		if t.openLoop() {
			s.openLoop++
		}
		if t.TLS {
			s.tls++
		}
	}
	s.handshakes = len(handshakeCases(ts))
	return s
}

// idleThatFits is how many idle connections a process with nofile open
// files can hold with room for wrk's connections, the upstream pool,
// listeners and logs.
func idleThatFits(nofile uint64) int {
	const room = 3000
	if nofile <= room {
		return 0
	}
	return int(nofile - room)
}

// plan splits the budget between the phases.
type plan struct {
	// runs wrk runs of run each in the rounds, after a warmup per target.
	runs   int
	run    time.Duration
	warmup time.Duration
	// openLoop is one vegeta run's length; openLoopRuns how many.
	openLoop     time.Duration
	openLoopRuns int
	// handshake is one TLS handshake run's length; handshakeRuns how many.
	handshake     time.Duration
	handshakeRuns int
	// idle is the wrk run alongside the idle connections; idleOpen bounds
	// the opening of the idle connections of one target; idleRuns is how
	// many targets get the run.
	idle, idleOpen time.Duration
	idleRuns       int
}

func (p plan) String() string {
	return fmt.Sprintf("%d wrk runs of %s; %d open-loop runs of %s; %d handshake runs of %s; %d idle runs of %s (opening bounded by %s)",
		p.runs, p.run, p.openLoopRuns, p.openLoop, p.handshakeRuns, p.handshake, p.idleRuns, p.idle, p.idleOpen)
}

// deadline is when the safety net stops whatever is left: the budget and
// half again, the opening of the idle connections and their wait before
// the second memory reading (not in the budget: they are bounded per
// target), and a minute.
func (p plan) deadline(o options) time.Duration {
	return o.total + o.total/2 + time.Minute + time.Duration(p.idleRuns)*(p.idleOpen+idleSettle)
}

// Shares of the budget, in parts: each phase that runs gets its parts of
// the sum of the running phases' parts, so a phase run alone has the whole
// budget. The rounds take what the others leave.
const (
	roundsParts    = 65
	openLoopParts  = 15
	handshakeParts = 10
	idleParts      = 10
)

func makePlan(o options, s shape) plan {
	p := plan{warmup: time.Second}
	budget := o.total
	runOpen := o.phases["openloop"] && len(o.openLoop) > 0 && s.openLoop > 0
	runTLS := o.phases["tls"] && s.tls > 0
	runIdle := o.phases["idle"] && o.idle > 0 && s.plain > 0
	parts := 0
	for _, ph := range []struct {
		on bool
		n  int
	}{{o.phases["rounds"], roundsParts}, {runOpen, openLoopParts}, {runTLS, handshakeParts}, {runIdle, idleParts}} {
		if ph.on {
			parts += ph.n
		}
	}
	share := func(n int) time.Duration { return o.total * time.Duration(n) / time.Duration(max(1, parts)) }
	clamp := func(d, lo, hi time.Duration) time.Duration { return min(hi, max(lo, d.Truncate(time.Second))) }
	if runOpen {
		p.openLoopRuns = len(o.openLoop) * s.openLoop
		p.openLoop = clamp(share(openLoopParts)/time.Duration(p.openLoopRuns)-time.Second, 2*time.Second, 30*time.Second)
		budget -= time.Duration(p.openLoopRuns) * (p.openLoop + time.Second)
	}
	if runTLS {
		p.handshakeRuns = s.handshakes
		p.handshake = clamp(share(handshakeParts)/time.Duration(p.handshakeRuns), 2*time.Second, 20*time.Second)
		budget -= time.Duration(p.handshakeRuns) * p.handshake
	}
	if runIdle {
		p.idleRuns = s.plain
		p.idle = clamp(share(idleParts)/time.Duration(p.idleRuns), 2*time.Second, 20*time.Second)
		// Opening runs at thousands of connections a second on a quiet
		// machine; the bound allows 500 a second.
		p.idleOpen = max(time.Minute, time.Duration(o.idle/500)*time.Second)
		budget -= time.Duration(p.idleRuns) * p.idle
	}
	if o.phases["rounds"] {
		p.runs = o.rounds * (len(o.bodies)*len(o.conns)*s.all + len(o.scaleConns)*s.plain)
		budget -= time.Duration(s.all) * p.warmup
		// Each wrk run costs about half a second of start-up and reporting.
		if p.runs > 0 {
			p.run = budget/time.Duration(p.runs) - 500*time.Millisecond
		}
		// wrk takes whole seconds; rounding down keeps the run within its budget.
		p.run = max(time.Second, p.run.Truncate(time.Second))
	}
	return p
}

// Sample is one wrk run's result with the target's CPU use during it.
type Sample struct {
	wrk.Result
	CPUSeconds float64
}

// runWrk runs one wrk with -t1 (the load generator must not take the cores
// the proxies need) and script, which holds wrk.DoneHook. Only one wrk ever
// runs at a time; the callers guarantee that by calling it from one
// goroutine.
func runWrk(ctx context.Context, script string, l wrk.Load) (wrk.Result, error) {
	l.Script, l.Threads = script, 1
	return wrk.Run(ctx, l)
}

// measure runs the rounds. Only one wrk runs at a time.
func measure(ctx context.Context, rep *Report, targets []*Target, script string, p plan) error {
	o := rep.Options
	// Warm up connection pools, TLS session caches and the introspection
	// cache, unmeasured.
	for _, t := range targets {
		if _, err := runWrk(ctx, script, wrk.Load{URL: t.URL(pathFor(o.bodies[0])), Headers: benchHeaders, Conns: o.conns[0], Duration: p.warmup}); err != nil && ctx.Err() == nil {
			logf("warm-up of %s: %v", t.Name, err)
		}
	}
	for _, c := range roundCases(o) {
		for r := 0; r < o.rounds; r++ {
			for _, t := range targets {
				if ctx.Err() != nil {
					return nil
				}
				if !slices.Contains(o.conns, c.Conns) && !t.plain() {
					continue // the higher counts are for the passthrough targets
				}
				before, _ := treeUsage(t.proc.PID())
				res, err := runWrk(ctx, script, wrk.Load{URL: t.URL(pathFor(c.Body)), Headers: benchHeaders, Conns: c.Conns, Duration: p.run})
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s, %s: a wrk run failed: %s", t.Name, c, firstLine(err.Error())))
					logf("%s %s: %v", t.Name, c, err)
					continue
				}
				after, _ := treeUsage(t.proc.PID())
				s := Sample{Result: res, CPUSeconds: after.CPUSeconds - before.CPUSeconds}
				rep.add(c, t.Name, s)
				logf("%s round %d %-15s %9.0f req/s  p99 %6.2f ms  2xx %.3f", c, r+1, t.Name, res.RPS(), float64(res.P99US)/1000, res.OKRatio())
			}
		}
	}
	return nil
}

// roundCases are the cases of the rounds: every body at every -conns count
// for all targets, then the first body at each -scale-conns count for the
// passthrough targets.
func roundCases(o options) []Case {
	var cs []Case
	for _, body := range o.bodies {
		for _, n := range o.conns {
			cs = append(cs, Case{Body: body, Conns: n})
		}
	}
	for _, n := range o.scaleConns {
		if !slices.Contains(o.conns, n) {
			cs = append(cs, Case{Body: o.bodies[0], Conns: n})
		}
	}
	return cs
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
