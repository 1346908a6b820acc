package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/internal/metriclabel"
	"github.com/flexgate/flexgate/proxy/router"
)

// plan is one compiled config generation: what the request path reads.
// It is immutable once built and safe for concurrent use.
type plan struct {
	cfg     *config.Config
	router  *router.Router
	routes  []*route
	chains  *chain.Set
	trusted trustedSet
	noRoute *routeMetrics
	// stripParams: ';' path parameters are stripped, not refused.
	stripParams bool
	// preflight: a route's chain answers CORS preflights, so preflights
	// are routed as the request they announce (see preflightRoute).
	preflight bool
	// ruleHeaders are the headers the routes' headers and rules read: a
	// request that carries one ambiguously is refused before routing.
	ruleHeaders []ruleHeader
	inflight    atomic.Int64
}

// route is a config route compiled for the request path.
type route struct {
	id          string
	chain       *chain.Chain
	up          *upstream
	dest        []byte // between the target's base path and the request's path (Route.DestinationPath)
	hostHeader  []byte
	maxBodySize int64
	m           *routeMetrics
	// allow is the Allow header of the route's 405: its methods, or, when
	// it lists none, every method it forwards.
	allow []byte
	// trace: the route lists TRACE, the one way to have TRACE forwarded.
	trace bool
	// ws: the route proxies WebSocket upgrades; nil: it does not.
	ws *wsRoute
	// whenHeaders are the headers its policies' rules read, beyond the
	// plan's ruleHeaders: a request that carries one ambiguously is
	// refused before any policy runs.
	whenHeaders []ruleHeader
}

// ruleHeader is a request header that rules read (a route's headers and
// rules, a policy's when): they read its first value under the name as
// written. An upstream may read another copy, or another spelling ('_'
// for '-', as CGI-style upstreams do), so a request carrying either could
// take a route, or skip a policy, by a value the upstream does not see:
// a policy applied to X-Api-Version 2 skipped by "X_Api_Version: 2". Such
// a request is refused (dup).
type ruleHeader struct {
	name chain.HeaderName
	dup  *chain.Rejection
}

// addRuleHeaders adds to list the headers of hs not in it or in skip; by
// says what reads them, for the rejection's message.
func addRuleHeaders(list, skip []ruleHeader, hs []config.HeaderMatch, by string) ([]ruleHeader, error) {
	for _, h := range hs {
		name := string(fasthttp.AppendNormalizedHeaderKey(nil, h.Name))
		has := func(r ruleHeader) bool { return r.name.String() == name }
		if slices.ContainsFunc(list, has) || slices.ContainsFunc(skip, has) {
			continue
		}
		hn, err := chain.NewHeaderName(name)
		if err != nil {
			return nil, err
		}
		msg := "the request carries the " + name + " header more than once"
		if len(hn.Spellings()) > 1 {
			msg += ", or in another spelling such as " + chain.OtherSpelling(name) + " (many upstreams read '-' and '_' alike)"
		}
		dup := *errAmbiguousHeader
		dup.Message = msg + ", and " + by + " read it: send it once, as " + name
		list = append(list, ruleHeader{name: hn, dup: &dup})
	}
	return list, nil
}

// readRuleHeaders sets p's ruleHeaders and returns the whenHeaders of each
// route of cfg, in its order.
func (p *plan) readRuleHeaders(cfg *config.Config) (whens [][]ruleHeader, err error) {
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if p.ruleHeaders, err = addRuleHeaders(p.ruleHeaders, nil, r.Headers, "the routes' headers"); err != nil {
			return nil, fmt.Errorf("%s: route %q: %w", r.Pos, r.ID, err)
		}
		for _, rule := range r.Rules {
			if p.ruleHeaders, err = addRuleHeaders(p.ruleHeaders, nil, rule.Headers, "the routes' rules"); err != nil {
				return nil, fmt.Errorf("%s: route %q: %w", rule.Pos, r.ID, err)
			}
		}
	}
	whens = make([][]ruleHeader, len(cfg.Routes))
	for i := range cfg.Routes {
		for _, ps := range cfg.Routes[i].Policies {
			for _, rule := range ps.When {
				if whens[i], err = addRuleHeaders(whens[i], p.ruleHeaders, rule.Headers, "the rules of the route's policy "+ps.Name); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", rule.Pos, ps.Name, err)
				}
			}
		}
	}
	return whens, nil
}

// ambiguousHeader returns the rejection of the first of hs that h carries
// more than once or in another spelling, or nil. It does not allocate.
func ambiguousHeader(hs []ruleHeader, h *fasthttp.RequestHeader) *chain.Rejection {
	for i := range hs {
		if !hs[i].name.Unambiguous(h) {
			return hs[i].dup
		}
	}
	return nil
}

// forwards reports whether the route forwards a request with method m,
// which the router has matched to it. CONNECT never: the gateway opens no
// tunnels. TRACE only when the route lists it: it echoes the request,
// credentials and the headers the gateway adds, back to the client.
func (r *route) forwards(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodConnect:
		return false
	case fasthttp.MethodTrace:
		return r.trace
	}
	return true
}

// forwardedByDefault are the methods a route without methods forwards:
// every standard one but CONNECT and TRACE (see forwards).
var forwardedByDefault = slices.DeleteFunc(slices.Clone(router.Methods), func(m string) bool {
	return m == fasthttp.MethodConnect || m == fasthttp.MethodTrace
})

// allowValue is the Allow header of a route with the given methods.
func allowValue(methods []string) []byte {
	if len(methods) == 0 {
		return router.Allow(forwardedByDefault)
	}
	return router.Allow(methods)
}

// routeMetrics are a route's series, looked up once at compile time so the
// request path only increments.
type routeMetrics struct {
	byClass        [6]*metrics.Counter // index status/100; 0 unused
	duration       *metrics.PrometheusHistogram
	upstreamTime   *metrics.PrometheusHistogram
	upstreamErrors [numFailures]*metrics.Counter // failures before the answer began
	bodyErrors     [numFailures]*metrics.Counter // failures while the answer's body streamed
	errors         map[string]*metrics.Counter   // by reason; filled at creation, read-only after
	rejections     sync.Map                      // *chain.Rejection → *metrics.Counter
	set            *metrics.Set
	label          string
	// ws is created for the first config whose route of this id proxies
	// WebSocket; read by the compiler only.
	ws *wsMetrics
}

// Every reason the gateway or an upstream failure can give, so that their
// counters exist (at zero) before the first error and the request path
// only looks them up.
var (
	gatewayReasons = []*chain.Rejection{errNoRoute, errMethodNotAllowed, errUnreachable, errTimeout,
		errUpstreamProtocol, errUpstreamReset, errUpstreamTLS, errUpstreamHeaderTooLarge, errBodyTooLarge,
		errBadRequest, errHeaderTooLarge, errNoFreeConns, errClientBody, errOverloaded, errPathParameters,
		errClientConnLimit, errUpstreamOverloaded, errWebSocketHandshake, errTrailerFieldsRejection, errAmbiguousHeader, errHTTPVersion}
)

func newRouteMetrics(set *metrics.Set, id string) *routeMetrics {
	label := metriclabel.Quote(id)
	m := &routeMetrics{set: set, label: label}
	for c := 1; c <= 5; c++ {
		m.byClass[c] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_requests_total{route=%s,status="%dxx"}`, label, c))
	}
	m.duration = set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`flexgate_request_duration_seconds{route=%s}`, label))
	m.upstreamTime = set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`flexgate_upstream_duration_seconds{route=%s}`, label))
	m.errors = map[string]*metrics.Counter{}
	for _, e := range gatewayReasons {
		m.errors[e.Reason] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_errors_total{route=%s,reason="%s"}`, label, e.Reason))
	}
	for f := range numFailures {
		m.upstreamErrors[f] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_upstream_errors_total{route=%s,reason="%s"}`, label, f))
		m.bodyErrors[f] = set.GetOrCreateCounter(fmt.Sprintf(`flexgate_upstream_errors_total{route=%s,reason="body_%s"}`, label, f))
	}
	return m
}

func (m *routeMetrics) countStatus(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 5
	}
	m.byClass[c].Inc()
}

func (m *routeMetrics) gatewayError(reason string) { m.errors[reason].Inc() }

func (m *routeMetrics) upstreamError(f failure) { m.upstreamErrors[f].Inc() }

func (m *routeMetrics) bodyError(f failure) { m.bodyErrors[f].Inc() }

// rejection counts a policy's rejection. Rejections are built once per
// policy, so the first of each creates its series and later ones only
// look it up by pointer.
func (m *routeMetrics) rejection(r *chain.Rejection) {
	if c, ok := m.rejections.Load(r); ok {
		c.(*metrics.Counter).Inc()
		return
	}
	c := m.set.GetOrCreateCounter(fmt.Sprintf(`flexgate_policy_rejections_total{route=%s,policy=%s,reason=%s}`,
		m.label, metriclabel.Quote(r.Policy), metriclabel.Quote(r.Reason)))
	m.rejections.Store(r, c)
	c.Inc()
}

// compiler builds plans; it keeps the upstream clients and route metrics
// that plans share across reloads. Not safe for concurrent use: the
// gateway serialises reloads.
type compiler struct {
	dial      fasthttp.DialFuncWithTimeout // nil: TCP
	resolve   resolveFunc                  // nil: the system's resolver
	metrics   *metrics.Set
	logger    *slog.Logger
	series    *seriesRefs
	pools     *poolRegistry
	done      <-chan struct{} // the gateway's shutdown
	upstreams map[string]*upstream
	routeMets map[string]*routeMetrics
}

func newCompiler(set *metrics.Set, logger *slog.Logger, dial fasthttp.DialFuncWithTimeout, resolve resolveFunc) *compiler {
	return &compiler{metrics: set, logger: logger, dial: dial, resolve: resolve,
		series: newSeriesRefs(set), pools: newPoolRegistry(),
		upstreams: map[string]*upstream{}, routeMets: map[string]*routeMetrics{}}
}

func (c *compiler) routeMetrics(id string) *routeMetrics {
	m, ok := c.routeMets[id]
	if !ok {
		m = newRouteMetrics(c.metrics, id)
		c.routeMets[id] = m
	}
	return m
}

// compile turns cfg into a plan, carrying policy state over from old (nil
// on first load). Nothing of old changes, whatever the outcome.
func (c *compiler) compile(cfg *config.Config, old *plan) (*plan, error) {
	rt, err := buildRouter(cfg)
	if err != nil {
		return nil, err
	}
	var oldChains *chain.Set
	if old != nil {
		oldChains = old.chains
	}
	chains, err := chain.CompileAll(cfg, oldChains, chain.Options{Provision: true, Metrics: c.metrics, Logger: c.logger})
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, router: rt, chains: chains, trusted: newTrustedSet(cfg.TrustedProxies),
		noRoute: c.routeMetrics(""), stripParams: cfg.Limits.PathParameters == config.PathParametersStrip}
	opts := upstreamOptions{dial: c.dial, resolve: c.resolve, metrics: c.metrics, log: c.logger,
		maxResponseHeader: cfg.Limits.MaxResponseHeaderBytes, series: c.series, pools: c.pools, serving: old != nil,
		done: c.done}
	fresh := map[string]*upstream{}
	// The targets in force by URL, for a changed upstream to take their
	// health over.
	var inForce map[string]*target
	prior := func(url string) *target {
		if inForce == nil {
			inForce = map[string]*target{}
			for _, up := range c.upstreams {
				if s := up.set.Load(); s != nil {
					for _, t := range s.targets {
						inForce[t.url] = t
					}
				}
			}
		}
		return inForce[url]
	}
	whens, err := p.readRuleHeaders(cfg)
	if err != nil {
		_ = chains.Retire(oldChains)
		return nil, err
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		key := upstreamKey(&r.Upstream, opts)
		up, ok := fresh[key]
		if !ok {
			if up, ok = c.upstreams[key]; ok {
				// A reload is when an operator expects files to be read
				// again: a rotated trust bundle among them.
				up.reloadCA()
			} else if up, err = newUpstream(&r.Upstream, opts, prior); err != nil {
				// The upstreams built for this plan go with it.
				for k, f := range fresh {
					if _, kept := c.upstreams[k]; !kept {
						f.close()
					}
				}
				_ = chains.Retire(oldChains)
				return nil, err
			}
			fresh[key] = up
		}
		limit := r.MaxRequestBodySize
		if limit <= 0 {
			limit = cfg.Limits.MaxRequestBodySize
		}
		m := c.routeMetrics(r.ID)
		rt := &route{id: r.ID, chain: chains.Chains[i], up: up,
			dest:        []byte(r.DestinationPath),
			hostHeader:  []byte(r.Upstream.HostHeader),
			maxBodySize: limit, m: m,
			allow: allowValue(r.Methods), trace: slices.Contains(r.Methods, fasthttp.MethodTrace)}
		rt.whenHeaders = whens[i]
		if ws := r.WebSocket; ws != nil {
			if m.ws == nil {
				m.ws = newWSMetrics(c.metrics, m.label)
			}
			rt.ws = &wsRoute{idle: ws.IdleTimeout, m: m.ws}
			if rt.ws.idle <= 0 {
				rt.ws.idle = config.DefaultWebSocketIdleTimeout
			}
		}
		p.routes = append(p.routes, rt)
		p.preflight = p.preflight || chains.Chains[i].Preflight
	}
	return p, nil
}

// adopt makes p's upstreams the compiler's own and returns the ones no
// longer used, for the caller to close once the old plan has drained.
func (c *compiler) adopt(p *plan) (unused []*upstream) {
	used := map[string]*upstream{}
	for _, r := range p.routes {
		used[r.up.key] = r.up
	}
	for k, up := range c.upstreams {
		if _, ok := used[k]; !ok {
			unused = append(unused, up)
		}
	}
	c.upstreams = used
	return unused
}

// defaultListener names the listener of a config that declares none.
const defaultListener = "http"

func buildRouter(cfg *config.Config) (*router.Router, error) {
	listeners := map[string]bool{}
	for _, l := range cfg.Listeners {
		listeners[l.Name] = true
	}
	if len(cfg.Listeners) == 0 {
		listeners[defaultListener] = true
	}
	entries := make([]router.Entry, len(cfg.Routes))
	var errs []error
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		for _, name := range r.Listeners {
			if !listeners[name] {
				errs = append(errs, fmt.Errorf("%s: route %q serves on listener %q, which the config does not declare", r.Pos, r.ID, name))
			}
		}
		// The loaders check what they read; this names the route of a
		// condition that is still wrong, where the router could only
		// number it.
		if _, err := match.Compile(r.Conditions()); err != nil {
			errs = append(errs, fmt.Errorf("%s: route %q: %w", r.Pos, r.ID, err))
		}
		entries[i] = r.RouterEntry(i)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt, err := router.New(entries)
	if err != nil {
		return nil, fmt.Errorf("cannot build the router: %w", err)
	}
	return rt, nil
}
