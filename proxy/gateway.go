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
	// DrainTimeout bounds how long a listener that a reload removes or
	// rebuilds waits for its requests in flight; the connections still
	// open then are closed. Zero means 30 seconds.
	DrainTimeout time.Duration
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
	// parkAfter replaces parkAfter in tests; negative turns parking off.
	parkAfter time.Duration
	// adminConns and adminConnsPerClient replace adminMaxConns and
	// adminMaxConnsPerClient in tests, when positive.
	adminConns, adminConnsPerClient int
}

// Gateway is a running flexgate. Its methods are safe for concurrent use.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	metrics  *metrics.Set
	compiler *compiler

	mu       sync.Mutex // serialises Start, Apply and Shutdown
	started  bool       // guarded by mu
	plan     atomic.Pointer[plan]
	retiring chan struct{} // closed when the latest retirement is done; guarded by mu
	// tickets are the session ticket keys of every listener address
	// configured so far (ticketConfig); written in New and under mu.
	tickets map[string]*ticketConfig

	pendingMu sync.Mutex
	pending   map[*plan]struct{} // replaced plans whose policies are not closed yet

	// lnMu guards listeners and leaving; listeners changes only under mu.
	lnMu      sync.Mutex
	listeners []*listener            // serving, in the config's order
	leaving   map[*listener]struct{} // draining after a reload took them out
	conns     *connLimiter
	parker    *parker       // nil when idle connections do not park
	parkAfter time.Duration // see parkAfter
	// tunnels are the WebSocket connections open: hijacked, fasthttp no
	// longer sees them, and Shutdown closes them.
	tunnels tunnelSet
	admin   *fasthttp.Server
	adminLn net.Listener
	access  *accessLog

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
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	set := metrics.NewSet()
	g := &Gateway{opts: opts, log: opts.Logger, metrics: set,
		compiler: newCompiler(set, opts.Logger, opts.dial, opts.resolve), stop: make(chan struct{}),
		leaving: map[*listener]struct{}{}}
	g.compiler.done = g.stop
	g.parkAfter = parkAfter
	if opts.parkAfter != 0 {
		g.parkAfter = opts.parkAfter
	}
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
	lim := g.serverLimits(cfg)
	g.conns = newConnLimiter(g, lim.maxConns)
	for _, spec := range g.listenerSpecs(cfg) {
		l, err := newListener(g, &spec, lim)
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

// listenerSpecs returns the listeners cfg declares, or the plain-HTTP one
// on Options.Listen when it declares none.
func (g *Gateway) listenerSpecs(cfg *config.Config) []config.Listener {
	if len(cfg.Listeners) == 0 {
		return []config.Listener{{Name: "http", Address: g.opts.Listen, Protocol: "HTTP"}}
	}
	return cfg.Listeners
}

// serverLimits are the limits cfg builds listeners with; Options.MaxConns
// lowers the connection cap to what the process's memory allows.
func (g *Gateway) serverLimits(cfg *config.Config) serverLimits {
	l := cfg.Limits
	lim := serverLimits{maxHeaderBytes: l.MaxHeaderBytes, read: l.ReadTimeout, write: l.WriteTimeout,
		idle: l.IdleTimeout, maxConns: l.MaxConns}
	if m := g.opts.MaxConns; m > 0 && m < lim.maxConns {
		if g.conns == nil || g.conns.max.Load() != int64(m) {
			g.log.Info("connection cap lowered to what the process's memory allows",
				"limits.maxConnections", lim.maxConns, "maxConnections", m)
		}
		lim.maxConns = m
	}
	return lim
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
	g.mu.Lock()
	defer g.mu.Unlock()
	var opened []*socket
	for _, l := range g.listeners {
		s, err := g.openSocket(&l.spec)
		if err != nil {
			closeSockets(opened)
			return err
		}
		opened = append(opened, s)
		l.attach(s)
	}
	if g.opts.AdminAddr != "" {
		ln, err := g.listen(g.opts.AdminAddr)
		if err != nil {
			closeSockets(opened)
			return fmt.Errorf("cannot listen on admin address %s: %w", g.opts.AdminAddr, err)
		}
		maxConns, perClient := adminMaxConns, adminMaxConnsPerClient
		if g.opts.adminConns > 0 {
			maxConns, perClient = g.opts.adminConns, g.opts.adminConnsPerClient
		}
		g.adminLn = newAdminListener(g, newPatientListener(ln, g.log), maxConns, perClient)
		g.admin = g.newAdminServer()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			_ = g.admin.Serve(g.adminLn)
		}()
		g.log.Info("listening", "listener", "admin", "addr", ln.Addr().String())
	}
	if g.parkAfter > 0 {
		g.parker = newParker()
	}
	g.lnMu.Lock()
	for _, l := range g.listeners {
		g.openConnGauge(l.name)
	}
	g.lnMu.Unlock()
	for _, l := range g.listeners {
		l.serve()
		l.sock.start()
		g.log.Info("listening", "listener", l.name, "addr", l.sock.ln.Addr().String(), "protocol", l.protocol)
	}
	g.started = true
	g.ready.Store(true)
	return nil
}

func closeSockets(socks []*socket) {
	for _, s := range socks {
		s.close()
	}
}

// Addrs maps each serving listener's name (and "admin") to its bound
// address.
func (g *Gateway) Addrs() map[string]string {
	m := map[string]string{}
	g.lnMu.Lock()
	for _, l := range g.listeners {
		if l.sock != nil {
			m[l.name] = l.sock.ln.Addr().String()
		}
	}
	g.lnMu.Unlock()
	if g.adminLn != nil {
		m["admin"] = g.adminLn.Addr().String()
	}
	return m
}

// Config returns the config in force.
func (g *Gateway) Config() *config.Config { return g.plan.Load().cfg }

// Apply replaces the config in force with cfg. cfg is compiled in full
// and the sockets of new listeners are bound first; on any error the old
// config keeps serving, every listener as it was, and the error is
// returned (and counted). Requests in flight finish on the old config,
// whose retired policies and upstream clients are closed once it has
// drained. Listeners follow cfg: new ones serve, removed ones stop
// accepting and drain (see Options.DrainTimeout), changed certificates and
// TLS settings serve new handshakes.
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
	if !g.started {
		return errors.New("the gateway has not started; the new config is not applied")
	}
	// Every certificate loaded and every new socket bound before anything
	// changes, so that a failure leaves every listener as it was.
	ch, err := g.prepareListeners(cfg)
	if err != nil {
		return err
	}
	old := g.plan.Load()
	p, err := g.compiler.compile(cfg, old)
	if err != nil {
		closeSockets(ch.opened)
		return err
	}
	unused := g.compiler.adopt(p)
	g.conns.max.Store(int64(ch.limits.maxConns))
	// The new plan first: a new listener's first request finds its routes.
	g.swap(p)
	g.commitListeners(ch)
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

// listenerChange is what a reload does to the listeners, prepared in full
// before any of it is done.
type listenerChange struct {
	limits serverLimits
	next   []*listener // the listeners serving once committed, in config order
	tls    []func()    // new certificates and TLS settings of kept listeners
	start  []*listener // new listeners, on a new socket or one they take over
	retire []*listener // listeners that stop serving
	closed []*socket   // sockets no listener serves any more
	opened []*socket   // sockets bound for new listeners
	// reproto are sockets taken over by a listener of the other protocol
	// (HTTP, HTTPS): their parked connections close, since none can go on
	// under the new protocol.
	reproto []*socket
}

// prepareListeners matches cfg's listeners to those serving, by address as
// configured: the same name, protocol and server limits keep the listener
// (its TLS is reloaded in place); anything else on the same address builds
// a new listener that takes over the socket, so that the port never closes;
// an address no listener had is bound now. Nothing serves differently until
// commitListeners; on error whatever was bound is closed again.
func (g *Gateway) prepareListeners(cfg *config.Config) (*listenerChange, error) {
	ch := &listenerChange{limits: g.serverLimits(cfg)}
	byAddr := make(map[string]*listener, len(g.listeners))
	for _, l := range g.listeners {
		byAddr[l.address] = l
	}
	taken := map[*listener]bool{}
	fail := func(err error) (*listenerChange, error) {
		closeSockets(ch.opened)
		return nil, err
	}
	seen := map[string]string{}
	for _, spec := range g.listenerSpecs(cfg) {
		if other, dup := seen[spec.Address]; dup {
			return fail(fmt.Errorf("%s: listeners %q and %q both listen on %s; give each its own port", spec.Pos, other, spec.Name, spec.Address))
		}
		seen[spec.Address] = spec.Name
		old := byAddr[spec.Address]
		if old != nil && old.name == spec.Name && old.protocol == spec.Protocol && old.limits == ch.limits {
			commit, err := old.prepareTLS(&spec)
			if err != nil {
				return fail(err)
			}
			taken[old] = true
			ch.tls = append(ch.tls, commit)
			ch.next = append(ch.next, old)
			continue
		}
		l, err := newListener(g, &spec, ch.limits)
		if err != nil {
			return fail(err)
		}
		if old != nil {
			taken[old] = true
			l.attach(old.sock)
			if old.protocol != spec.Protocol {
				ch.reproto = append(ch.reproto, old.sock)
			}
			ch.retire = append(ch.retire, old)
		} else {
			s, err := g.openSocket(&spec)
			if err != nil {
				return fail(err)
			}
			ch.opened = append(ch.opened, s)
			l.attach(s)
		}
		ch.start = append(ch.start, l)
		ch.next = append(ch.next, l)
	}
	for _, l := range g.listeners {
		if !taken[l] {
			ch.retire = append(ch.retire, l)
			ch.closed = append(ch.closed, l.sock)
		}
	}
	return ch, nil
}

// commitListeners does what prepareListeners prepared: removed listeners'
// ports stop accepting, new listeners serve, and the listeners they
// replace drain in the background.
func (g *Gateway) commitListeners(ch *listenerChange) {
	for _, commit := range ch.tls {
		commit()
	}
	closeSockets(ch.closed)
	for _, l := range ch.start {
		l.serve()
	}
	for _, s := range ch.reproto {
		g.parker.closeSocket(s)
	}
	for _, s := range ch.opened {
		s.start()
	}
	g.lnMu.Lock()
	g.listeners = ch.next
	for _, l := range ch.retire {
		g.leaving[l] = struct{}{}
	}
	for _, l := range ch.start {
		g.openConnGauge(l.name)
	}
	g.lnMu.Unlock()
	for _, l := range ch.start {
		g.log.Info("listening", "listener", l.name, "addr", l.sock.ln.Addr().String(), "protocol", l.protocol)
	}
	for _, l := range ch.retire {
		g.drainListener(l)
	}
}

// drainListener lets a listener a reload took out finish its requests,
// for at most Options.DrainTimeout (less when the gateway shuts down), and
// then forgets it.
func (g *Gateway) drainListener(l *listener) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.DrainTimeout)
		defer cancel()
		go func() {
			select {
			case <-g.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := l.drain(ctx)
		select {
		case <-l.sock.closed:
			// The port is gone with the listener: so are its WebSocket
			// connections. (A listener built anew on its socket keeps them.)
			g.tunnels.closeListener(l)
		default:
		}
		g.lnMu.Lock()
		delete(g.leaving, l)
		used := false
		for _, o := range g.listeners {
			used = used || o.name == l.name
		}
		for o := range g.leaving {
			used = used || o.name == l.name
		}
		if !used {
			g.metrics.UnregisterMetric(openConnsMetric(l.name))
			g.metrics.UnregisterMetric(parkedConnsMetric(l.name))
		}
		g.lnMu.Unlock()
		if err != nil {
			g.log.Warn("listener drained with requests still running; their connections were closed",
				"listener", l.name, "addr", l.sock.ln.Addr().String(), "drainTimeout", g.opts.DrainTimeout.String())
			return
		}
		g.log.Info("listener drained", "listener", l.name, "addr", l.sock.ln.Addr().String())
	}()
}

// Ready reports whether the gateway is serving and not draining.
func (g *Gateway) Ready() bool { return g.ready.Load() && !g.draining.Load() }

// Shutdown drains the gateway: /readyz answers 503 at once, the listeners
// keep serving for the drain delay so that load balancers stop sending,
// then WebSocket connections close, the listeners stop accepting and the
// requests in flight finish, until ctx ends. The admin server stops last.
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
	// A WebSocket connection has no end a drain could wait for: its ends
	// are told the gateway is going away, and its clients reconnect, to
	// the replicas still ready.
	g.tunnels.closeAll(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	g.lnMu.Lock()
	live := append([]*listener(nil), g.listeners...)
	g.lnMu.Unlock()
	for _, l := range live {
		if l.sock == nil {
			continue
		}
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			l.sock.close()
			if err := l.drain(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("listener %s: %w", l.name, err))
				errMu.Unlock()
			}
		}(l)
	}
	wg.Wait()
	g.parker.stop()
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
