// Package proxy serves a compiled config: listeners with optional TLS
// termination, the route trie, the policy chains and the pooled upstream
// clients, plus the admin server with probes, metrics and the config in
// force. A config change is compiled in full before it is swapped in
// atomically; requests in flight finish on the config they started with.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/metriclabel"
)

// Options are the command line's settings of a Gateway.
type Options struct {
	// Listen is the address of the plain-HTTP listener used when the
	// config declares none.
	Listen string
	// AdminAddr is the admin server's address; empty disables it.
	AdminAddr string
	// Logger receives the gateway's events; nil means slog.Default().
	Logger *slog.Logger
	// AccessLog, when set, receives one JSON line per request, written by a
	// background goroutine so that a slow writer never blocks a request.
	AccessLog io.Writer
	// DrainDelay is how long listeners keep serving after Shutdown starts,
	// with /readyz answering 503, so that load balancers stop sending.
	DrainDelay time.Duration
	// Version is the build's version, reported in /metrics as
	// flexgate_build_info{version="..."} 1.
	Version string
	// ListenerAddr, when set, picks the address each configured listener
	// binds instead of its configured one (tests bind 127.0.0.1:0).
	ListenerAddr func(config.Listener) string
	// CertPollInterval is how often certificate files are re-read; zero
	// means every 2 seconds.
	CertPollInterval time.Duration
	// MaxConns, when positive, caps limits.maxConnections: it is what the
	// process's memory allows (the command line's --max-connections), and
	// a config cannot raise it.
	MaxConns int
	// Pprof serves Go's profiler at /debug/pprof/ on the admin server.
	Pprof bool

	// listen and dial replace the network in this package's benchmarks,
	// which measure the gateway over in-memory connections; resolve
	// replaces DNS in the tests of discovery.
	listen  func(addr string) (net.Listener, error)
	dial    fasthttp.DialFuncWithTimeout
	resolve resolveFunc
}

// Gateway is a running flexgate. Its methods are safe for concurrent use.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	metrics  *metrics.Set
	compiler *compiler

	mu       sync.Mutex // serialises Apply and Shutdown
	plan     atomic.Pointer[plan]
	retiring chan struct{} // closed when the latest retirement is done; guarded by mu

	pendingMu sync.Mutex
	pending   map[*plan]struct{} // replaced plans whose policies are not closed yet
	listeners []*listener
	conns     *connLimiter
	admin     *fasthttp.Server
	adminLn   net.Listener
	access    *accessLog

	ready        atomic.Bool
	draining     atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
	stop         chan struct{}
	wg           sync.WaitGroup

	reloadOK, reloadFailed *metrics.Counter
	lastReload             atomic.Int64
	configInfo             *metrics.Gauge
}

// New compiles cfg and prepares the listeners it declares, without opening
// them: a config that fails to compile, or a certificate that cannot be
// read, is an error here, before anything serves.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = config.DefaultListen
	}
	if opts.CertPollInterval <= 0 {
		opts.CertPollInterval = 2 * time.Second
	}
	set := metrics.NewSet()
	g := &Gateway{opts: opts, log: opts.Logger, metrics: set,
		compiler: newCompiler(set, opts.Logger, opts.dial, opts.resolve), stop: make(chan struct{})}
	g.compiler.done = g.stop
	g.reloadOK = set.NewCounter(`flexgate_config_reloads_total{result="ok"}`)
	g.reloadFailed = set.NewCounter(`flexgate_config_reloads_total{result="failed"}`)
	set.NewGauge(`flexgate_config_last_reload_success_timestamp_seconds`, func() float64 {
		return float64(g.lastReload.Load())
	})
	set.NewGauge(`flexgate_build_info{version=`+metriclabel.Quote(opts.Version)+`}`, func() float64 { return 1 })
	if opts.AccessLog != nil {
		g.access = newAccessLog(opts.AccessLog, opts.Logger)
	}
	p, err := g.compiler.compile(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.compiler.adopt(p)
	// The cap is fixed at start, like the listeners it spans.
	maxConns := cfg.Limits.MaxConns
	if opts.MaxConns > 0 && opts.MaxConns < maxConns {
		g.log.Info("connection cap lowered to what the process's memory allows",
			"limits.maxConnections", maxConns, "maxConnections", opts.MaxConns)
		maxConns = opts.MaxConns
	}
	g.conns = newConnLimiter(g, maxConns)
	specs := cfg.Listeners
	if len(specs) == 0 {
		specs = []config.Listener{{Name: "http", Address: opts.Listen, Protocol: "HTTP"}}
	}
	for i := range specs {
		spec := specs[i]
		if opts.ListenerAddr != nil {
			spec.Address = opts.ListenerAddr(spec)
		}
		l, err := newListener(g, &spec, cfg.Limits, maxConns)
		if err != nil {
			_ = p.chains.Retire(nil)
			return nil, err
		}
		g.listeners = append(g.listeners, l)
	}
	g.swap(p)
	g.logWarnings(cfg)
	return g, nil
}

// logWarnings logs, one line each, what in cfg is likely a mistake.
func (g *Gateway) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		g.log.Warn("config warning", "at", w.Pos.String(), "warning", w.Message)
	}
}

func (g *Gateway) swap(p *plan) {
	g.plan.Store(p)
	g.lastReload.Store(time.Now().Unix())
	name := fmt.Sprintf(`flexgate_config_info{hash="%s"}`, p.cfg.Hash)
	if g.configInfo != nil {
		g.metrics.UnregisterMetric(g.configInfoName())
	}
	g.configInfo = g.metrics.GetOrCreateGauge(name, func() float64 { return 1 })
}

func (g *Gateway) configInfoName() string {
	for _, n := range g.metrics.ListMetricNames() {
		if strings.HasPrefix(n, "flexgate_config_info{") {
			return n
		}
	}
	return ""
}

// Start opens every listener and the admin server and serves until
// Shutdown. It returns once all sockets are bound.
func (g *Gateway) Start() error {
	for _, l := range g.listeners {
		if err := l.listen(); err != nil {
			g.closeListeners()
			return err
		}
	}
	if g.opts.AdminAddr != "" {
		ln, err := net.Listen("tcp", g.opts.AdminAddr)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("cannot listen on admin address %s: %w", g.opts.AdminAddr, err)
		}
		g.adminLn = ln
		g.admin = g.newAdminServer()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			_ = g.admin.Serve(ln)
		}()
		g.log.Info("listening", "listener", "admin", "addr", ln.Addr().String())
	}
	for _, l := range g.listeners {
		l.serve()
		g.log.Info("listening", "listener", l.name, "addr", l.ln.Addr().String(), "protocol", l.protocol)
	}
	g.ready.Store(true)
	return nil
}

func (g *Gateway) closeListeners() {
	for _, l := range g.listeners {
		if l.ln != nil {
			_ = l.ln.Close()
		}
	}
}

// Addrs maps each listener's name (and "admin") to its bound address.
func (g *Gateway) Addrs() map[string]string {
	m := map[string]string{}
	for _, l := range g.listeners {
		if l.ln != nil {
			m[l.name] = l.ln.Addr().String()
		}
	}
	if g.adminLn != nil {
		m["admin"] = g.adminLn.Addr().String()
	}
	return m
}

// Config returns the config in force.
func (g *Gateway) Config() *config.Config { return g.plan.Load().cfg }

// Apply replaces the config in force with cfg. cfg is compiled in full
// first; on any error the old config keeps serving and the error is
// returned (and counted). Requests in flight finish on the old config,
// whose retired policies and upstream clients are closed once it has
// drained.
func (g *Gateway) Apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.apply(cfg); err != nil {
		g.reloadFailed.Inc()
		g.log.Error("config reload failed; the previous config keeps serving", "error", err.Error())
		return err
	}
	g.reloadOK.Inc()
	g.log.Info("config reloaded", "hash", cfg.Hash, "routes", len(cfg.Routes))
	g.logWarnings(cfg)
	return nil
}

func (g *Gateway) apply(cfg *config.Config) error {
	if g.draining.Load() {
		return errors.New("the gateway is shutting down; the new config is not applied")
	}
	if err := g.sameServerLimits(cfg); err != nil {
		return err
	}
	if err := g.sameListeners(cfg); err != nil {
		return err
	}
	// Certificates first, all of them, so that a failing one leaves every
	// listener as it was.
	var commits []func()
	for _, l := range g.listeners {
		commit, err := l.prepareCerts(cfg)
		if err != nil {
			return err
		}
		commits = append(commits, commit)
	}
	old := g.plan.Load()
	p, err := g.compiler.compile(cfg, old)
	if err != nil {
		return err
	}
	for _, commit := range commits {
		commit()
	}
	unused := g.compiler.adopt(p)
	g.swap(p)
	g.pendingMu.Lock()
	if g.pending == nil {
		g.pending = map[*plan]struct{}{}
	}
	g.pending[old] = struct{}{}
	g.pendingMu.Unlock()
	// Retirements run one after another, in the order of the configs:
	// an instance shared by two old configs is closed only after both
	// have drained.
	prev, done := g.retiring, make(chan struct{})
	g.retiring = done
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer close(done)
		if prev != nil {
			select {
			case <-prev:
			case <-g.stop:
				return
			}
		}
		g.retire(old, p, unused)
	}()
	return nil
}

// retire waits for the requests still running on old, then closes what the
// new plan did not take over. At shutdown it gives up: Shutdown closes
// everything itself.
func (g *Gateway) retire(old, next *plan, unused []*upstream) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for old.inflight.Load() > 0 {
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
	}
	if err := old.chains.Retire(next.chains); err != nil {
		g.log.Warn("closing retired policies", "error", err.Error())
	}
	g.pendingMu.Lock()
	delete(g.pending, old)
	g.pendingMu.Unlock()
	for _, up := range unused {
		up.close()
	}
}

// sameServerLimits refuses a reload that changes the limits the listening
// servers were built with: like the listeners, they take a restart. The
// other limits (body sizes, the upstreams' header limit, connections per
// client, path parameters) reload live.
func (g *Gateway) sameServerLimits(cfg *config.Config) error {
	was, now := g.plan.Load().cfg.Limits, cfg.Limits
	var diff []string
	changed := func(name string, a, b any) {
		if a != b {
			diff = append(diff, fmt.Sprintf("%s from %v to %v", name, a, b))
		}
	}
	changed("maxHeaderSize", was.MaxHeaderBytes, now.MaxHeaderBytes)
	changed("readTimeout", was.ReadTimeout, now.ReadTimeout)
	changed("writeTimeout", was.WriteTimeout, now.WriteTimeout)
	changed("idleTimeout", was.IdleTimeout, now.IdleTimeout)
	changed("maxConnections", was.MaxConns, now.MaxConns)
	if len(diff) > 0 {
		return fmt.Errorf("the new config changes limits (%s) that are fixed when flexgate starts: "+
			"restart flexgate to apply them", strings.Join(diff, "; "))
	}
	return nil
}

// sameListeners refuses a reload that changes the listeners themselves:
// sockets are opened once; certificates, routes and policies reload live.
func (g *Gateway) sameListeners(cfg *config.Config) error {
	specs := cfg.Listeners
	if len(specs) == 0 {
		specs = []config.Listener{{Name: "http", Address: g.opts.Listen, Protocol: "HTTP"}}
	}
	var diff []string
	if len(specs) != len(g.listeners) {
		diff = append(diff, fmt.Sprintf("%d listeners instead of %d", len(specs), len(g.listeners)))
	} else {
		for i, s := range specs {
			l := g.listeners[i]
			if g.opts.ListenerAddr != nil {
				s.Address = g.opts.ListenerAddr(s)
			}
			if s.Name != l.name || s.Address != l.address || s.Protocol != l.protocol {
				diff = append(diff, fmt.Sprintf("listener %q (%s %s) instead of %q (%s %s)",
					s.Name, s.Protocol, s.Address, l.name, l.protocol, l.address))
			}
		}
	}
	if len(diff) > 0 {
		return fmt.Errorf("the new config changes the listeners (%s): listeners are opened at start, so restart flexgate to apply this change",
			strings.Join(diff, "; "))
	}
	return nil
}

// Ready reports whether the gateway is serving and not draining.
func (g *Gateway) Ready() bool { return g.ready.Load() && !g.draining.Load() }

// Shutdown drains the gateway: /readyz answers 503 at once, the listeners
// keep serving for the drain delay so that load balancers stop sending,
// then they stop accepting and the requests in flight finish, until ctx
// ends. The admin server stops last.
// Calling it again waits for the first call and returns its result.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.shutdownOnce.Do(func() { g.shutdownErr = g.shutdown(ctx) })
	return g.shutdownErr
}

func (g *Gateway) shutdown(ctx context.Context) error {
	g.draining.Store(true)
	g.log.Info("draining", "delay", g.opts.DrainDelay.String())
	select {
	case <-time.After(g.opts.DrainDelay):
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range g.listeners {
		if l.srv == nil || l.ln == nil {
			continue
		}
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if err := l.srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("listener %s: %w", l.name, err))
				errMu.Unlock()
			}
			// A Serve that had not yet registered its listener when the
			// shutdown began would otherwise accept forever.
			_ = l.ln.Close()
		}(l)
	}
	wg.Wait()
	close(g.stop)
	if g.admin != nil {
		_ = g.admin.ShutdownWithContext(ctx)
		_ = g.adminLn.Close()
	}
	// Close every policy still open: the current plan's and those of
	// replaced plans whose retirement the shutdown cut short, each once.
	closed := map[chain.Policy]bool{}
	plans := []*plan{g.plan.Load()}
	g.pendingMu.Lock()
	for old := range g.pending {
		plans = append(plans, old)
	}
	g.pendingMu.Unlock()
	for _, p := range plans {
		for _, c := range p.chains.Chains {
			for _, inst := range c.Policies {
				if !closed[inst.Policy] {
					closed[inst.Policy] = true
					if err := inst.Policy.Close(); err != nil {
						errs = append(errs, fmt.Errorf("route %q: policy %s: %w", c.RouteID, inst.Name, err))
					}
				}
			}
		}
	}
	for _, up := range g.compiler.upstreams {
		up.close()
	}
	// Pools whose targets still had requests in flight, and those of
	// upstreams whose retirement the shutdown cut short.
	g.compiler.pools.closeAll(g.compiler.series)
	if g.access != nil {
		g.access.close()
	}
	g.wg.Wait()
	return errors.Join(errs...)
}

// CountFailedReload counts a reload that failed before it reached Apply
// (a config that did not load).
func (g *Gateway) CountFailedReload() { g.reloadFailed.Inc() }
