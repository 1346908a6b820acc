package flex

import (
	"bytes"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// ListenerName names the listener of a port: stable across reloads, so
// that a reload which keeps the port keeps the listener.
func ListenerName(port int) string { return "flex-" + strconv.Itoa(port) }

// Finish resolves the references between the documents read and adds
// their listeners and routes to the config.
func (l *load) Finish(b *config.Build) {
	cfg := b.Config()
	if l.logLevel != "" {
		cfg.LogLevel = l.logLevel
	}
	instances := map[ref]*instance{}
	for _, in := range l.instances {
		instances[in.ref] = in
	}
	services := map[ref]*service{}
	for _, s := range l.services {
		services[s.ref] = s
	}
	l.attach(b, instances, services)
	l.env = readEnv(b)
	for _, s := range l.services {
		l.outbound(b, s)
	}
	// Routes of other kinds, and their listeners, before this format adds
	// its own.
	others, otherListeners := len(cfg.Routes), listenerNames(cfg.Listeners)
	ports := l.listeners(b)
	for _, in := range l.instances {
		l.routes(b, in, services)
	}
	if len(ports) == 0 || others == 0 {
		return
	}
	// With ApiInstances, only the listeners written are opened (no
	// --listen): a Gateway's routes serve on the Gateway's listeners, not
	// on the ApiInstances' ports, where they would mix with their routes.
	for i := range cfg.Routes[:others] {
		r := &cfg.Routes[i]
		if len(r.Listeners) > 0 {
			continue
		}
		if len(otherListeners) == 0 {
			b.Errorf(r.Pos, "route %q has no listener: with ApiInstances in the config, flexgate opens only the listeners written "+
				"(the ApiInstances' ports, and a Gateway's spec.listeners), not --listen; add spec.listeners to a Gateway document", r.ID)
			continue
		}
		r.Listeners = otherListeners
	}
}

func listenerNames(ls []config.Listener) []string {
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	return names
}

// attach hands each PolicyBinding to what it targets.
func (l *load) attach(b *config.Build, instances map[ref]*instance, services map[ref]*service) {
	for _, bd := range l.bindings {
		t := bd.target
		binds := structural[bd.name]
		switch t.kind {
		case "Selector":
			if binds == KindService {
				b.Errorf(bd.namePos, "%s applies to a Service's connections; bind it with targetRef {kind: Service, name: <service>}", bd.name)
				continue
			}
			n := 0
			for _, in := range l.instances {
				if selects(t.labels, in.labels) {
					in.bound = append(in.bound, bd)
					n++
				}
			}
			if n == 0 {
				b.Warn(t.pos, "PolicyBinding %s selects no ApiInstance (%s), so %s applies nowhere", bd.ref, t, bd.name)
			}
		case KindAPIInstance:
			if binds == KindService {
				b.Errorf(bd.namePos, "%s applies to a Service's connections; set targetRef kind: Service and name the Service", bd.name)
				continue
			}
			in, ok := instances[t.ref]
			if !ok && l.broken[key(KindAPIInstance, t.ref)] {
				continue
			}
			if !ok {
				b.Errorf(t.pos, "PolicyBinding %s targets ApiInstance %s, which is not defined%s", bd.ref, t.ref, known(l.instanceRefs()))
				continue
			}
			in.bound = append(in.bound, bd)
		case KindService:
			svc, ok := services[t.ref]
			if !ok && l.broken[key(KindService, t.ref)] {
				continue
			}
			if !ok {
				b.Errorf(t.pos, "PolicyBinding %s targets Service %s, which is not defined%s", bd.ref, t.ref, known(l.serviceRefs()))
				continue
			}
			slot := &svc.tls
			switch bd.name {
			case policyTLSOutbound:
			case policyCircuitBreaker:
				slot = &svc.breaker
			case policyIdleTimeout:
				slot = &svc.idle
			default:
				b.Errorf(bd.namePos, "%s runs on requests, which a Service does not see; bind it to an ApiInstance "+
					"(only tls-outbound, circuit-breaker-flex and idle-timeout-flex apply to a Service)", bd.name)
				continue
			}
			if *slot != nil {
				b.Errorf(bd.namePos, "Service %s already has %s from PolicyBinding %s at %s; bind one", t.ref, bd.name, (*slot).ref, (*slot).namePos)
				continue
			}
			*slot = bd
		}
	}
}

// selects reports whether labels carry every one of want.
func selects(want, labels map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (l *load) instanceRefs() []string {
	var out []string
	for _, in := range l.instances {
		out = append(out, in.ref.String())
	}
	return out
}

func (l *load) serviceRefs() []string {
	var out []string
	for _, s := range l.services {
		out = append(out, s.ref.String())
	}
	return out
}

// known lists the names defined, for a dangling reference's message.
func known(refs []string) string {
	if len(refs) == 0 {
		return "; define it (namespace/name)"
	}
	sort.Strings(refs)
	return "; define it, or name one that is (namespace/name): " + strings.Join(refs, ", ")
}

// outbound names a Service's upstream after it and applies its outbound
// policies, and the Configuration's timeouts, to it.
// defaultMaxPending bounds the requests waiting for a connection of a
// Service whose circuit-breaker-flex sets maxConnections without
// maxPendingRequests: Envoy's default, which Flex Gateway runs on.
const defaultMaxPending = 1024

func (l *load) outbound(b *config.Build, s *service) {
	u := &s.upstream
	// Metrics and /config name the upstream after the Service, and two
	// Services at one address stay two upstreams, each with its breaker.
	u.Name = s.ref.String()
	// Flex Gateway's timeouts, not the Gateway kind's: its defaults or its
	// environment's, under a Configuration's, under idle-timeout-flex.
	u.ResponseTimeout, u.IdleTimeout = l.env.response, l.env.idle
	if l.timeouts != nil && l.timeouts.responseSeconds > 0 {
		u.ResponseTimeout = time.Duration(l.timeouts.responseSeconds) * time.Second
	}
	if l.timeouts != nil && l.timeouts.idleSeconds > 0 {
		u.IdleTimeout = time.Duration(l.timeouts.idleSeconds) * time.Second
	}
	if bd := s.idle; bd != nil && bd.idle > 0 {
		u.IdleTimeout = bd.idle
	}
	if bd := s.tls; bd != nil {
		t := bd.outTLS
		switch {
		case t == nil:
		case u.Targets[0].Scheme != "https":
			b.Errorf(bd.namePos, "tls-outbound is bound to Service %s, whose address is %s; TLS applies to an https:// address", s.ref, u.URL())
		default:
			u.InsecureSkipVerify = t.SkipValidation
			u.CAPEM = t.TrustedCA
			if t.Certificate != "" {
				key, err := t.KeyPEM()
				if err != nil {
					b.Errorf(bd.namePos, "tls-outbound certificate: %v", err)
					break
				}
				u.ClientCert = &config.Certificate{CertPEM: []byte(t.Certificate), KeyPEM: key, Pos: bd.namePos}
			}
			u.TLSMinVersion, u.TLSMaxVersion, u.TLSCiphers = t.MinVersion, t.MaxVersion, t.Ciphers
			if len(t.ALPN) > 0 {
				b.Warn(bd.namePos, "tls-outbound alpn is not applied: flexgate's upstream connections offer http/1.1")
			}
		}
	}
	if bd := s.breaker; bd != nil && bd.breaker != nil {
		cb := bd.breaker
		u.CircuitBreaker = cb.limits
		at := func(k *yaml.Node) config.Pos { return config.Pos{File: bd.namePos.File, Line: k.Line, Col: k.Column} }
		if n := cb.limits.MaxConnections; n > 0 {
			// Envoy queues the requests over maxConnections as pending
			// requests, bounded by maxPendingRequests: the pool's cap does
			// the same (the proxy counts a request waiting at it against
			// maxPendingRequests). A Service is one address, so the pool's
			// cap is the Service's. The breaker's own maxConnections, which
			// answers 503 at once, is not set beside it: a connection that
			// closes hands its place to a waiting request before the
			// breaker counts it closed, which would refuse that request.
			u.MaxConns, u.CircuitBreaker.MaxConnections = n, 0
			// Flex keeps a pending request queued until its response
			// timeout.
			u.MaxConnWait = u.ResponseTimeout
			if u.CircuitBreaker.MaxPendingRequests == 0 {
				// Envoy's default: without it, any number of requests
				// would wait, each holding its client's connection.
				u.CircuitBreaker.MaxPendingRequests = defaultMaxPending
			}
		}
		if cb.pools != nil {
			b.Warn(at(cb.pools), "circuit-breaker-flex thresholds maxConnectionPools is not applied: flexgate keeps one connection pool "+
				"per address of a Service, so their number is the number of its addresses")
		}
	}
}

// portGroup is the ApiInstances that share a port.
type portGroup struct {
	port      int
	instances []*instance
}

// listeners adds one listener per port of the ApiInstances, with the TLS
// of the tls policies bound to them, and checks that the instances of a
// port can share it.
func (l *load) listeners(b *config.Build) []*portGroup {
	var groups []*portGroup
	byPort := map[int]*portGroup{}
	for _, in := range l.instances {
		g, ok := byPort[in.port]
		if !ok {
			g = &portGroup{port: in.port}
			byPort[in.port] = g
			groups = append(groups, g)
		}
		g.instances = append(g.instances, in)
	}
	for _, g := range groups {
		first := g.instances[0]
		ok := true
		for i, in := range g.instances {
			switch {
			case in.scheme != first.scheme:
				b.Errorf(in.addrPos, "ApiInstance %s is %s on port %d, and ApiInstance %s at %s is %s there; the instances of a port share its protocol",
					in.ref, in.scheme, g.port, first.ref, first.addrPos, first.scheme)
				ok = false
			case in.host != first.host:
				b.Errorf(in.addrPos, "ApiInstance %s listens on %s port %d, and ApiInstance %s at %s on %s; the instances of a port share its address",
					in.ref, in.host, g.port, first.ref, first.addrPos, first.host)
				ok = false
			}
			for _, other := range g.instances[:i] {
				if clash(in.basePath, other.basePath) {
					b.Errorf(in.addrPos, "ApiInstance %s (base path %q) clashes with ApiInstance %s at %s (base path %q) on port %d: "+
						"the instances of a port need base paths of which none is the other or a prefix of it (/cats and /dogs, not /cats and /cats/dogs)",
						in.ref, display(in.basePath), other.ref, other.addrPos, display(other.basePath), g.port)
					ok = false
				}
			}
		}
		lis := config.Listener{Name: ListenerName(g.port), Address: net.JoinHostPort(first.host, strconv.Itoa(g.port)),
			Protocol: "HTTP", Pos: first.addrPos}
		if tls, good := l.portTLS(b, g); !good {
			ok = false
		} else if tls != nil {
			lis.Protocol, lis.TLS = "HTTPS", tls
		}
		if ok {
			b.AddListener(lis, first.host, g.port, first.addrPos)
		}
	}
	return groups
}

// clash reports whether two base paths on one port overlap.
func clash(a, b string) bool {
	return a == b || a == "" || b == "" || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

func display(base string) string {
	if base == "" {
		return "/"
	}
	return base
}

// portTLS is the TLS of a port: the tls policy bound to its instances (one
// TLS context per port, as Flex Gateway has).
func (l *load) portTLS(b *config.Build, g *portGroup) (*config.TLS, bool) {
	var chosen *binding
	ok := true
	for _, in := range g.instances {
		for _, bd := range append(append([]*binding(nil), in.policies...), in.bound...) {
			if bd.name != policyTLS || bd.tls == nil {
				continue
			}
			switch {
			case in.scheme != "https":
				b.Errorf(bd.namePos, "tls is bound to ApiInstance %s, whose address is http://; write https:// to serve TLS, or remove the binding", in.ref)
				ok = false
			case chosen == nil:
				chosen = bd
			case chosen != bd && !chosen.tls.same(bd.tls):
				b.Errorf(bd.namePos, "port %d already has the tls policy at %s, and TLS is one per port; bind the same tls policy to every instance of the port",
					g.port, chosen.namePos)
				ok = false
			}
		}
	}
	first := g.instances[0]
	if first.scheme != "https" || !ok {
		return nil, ok
	}
	if chosen == nil {
		if l.brokenTLS {
			return nil, false
		}
		b.Errorf(first.addrPos, "ApiInstance %s is https but no tls policy is bound to it; bind one with its certificate: "+
			"a PolicyBinding {targetRef: {name: %s}, policyRef: {name: tls}, config: {certificate: {crt: ..., key: ...}}}", first.ref, first.name)
		return nil, false
	}
	if h2 := chosen.tls.h2; h2 != nil {
		b.Warn(config.Pos{File: chosen.namePos.File, Line: h2.Line, Col: h2.Column},
			"tls alpn h2 is not offered: flexgate serves HTTP/1.1 (clients fall back to it)")
	}
	t, err := chosen.tls.listenerTLS(chosen.namePos)
	if err != nil {
		b.Errorf(chosen.namePos, "tls certificate: %v", err)
		return nil, false
	}
	return t, true
}

// entry is a policy of an instance's chain with what orders it.
type entry struct {
	b        *binding
	selector bool
}

// chain returns the instance's policies in Flex Gateway's order: the
// Selector (automated) policies, then the others, each by order (lower
// first), ties in the order read. CORS runs before all of them, as in Flex
// Gateway: its package registers it to run first, which the chain compiler
// honours for every route, not only Flex's.
func (in *instance) chain() []entry {
	var out []entry
	for _, bd := range in.policies {
		if _, s := structural[bd.name]; !s {
			out = append(out, entry{b: bd})
		}
	}
	for _, bd := range in.bound {
		if _, s := structural[bd.name]; !s {
			out = append(out, entry{b: bd, selector: bd.target.kind == "Selector"})
		}
	}
	rank := func(e entry) int {
		if e.selector {
			return 0
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, c := out[i], out[j]
		if ra, rc := rank(a), rank(c); ra != rc {
			return ra < rc
		}
		if a.b.order != c.b.order {
			return a.b.order < c.b.order
		}
		return a.b.seq < c.b.seq
	})
	return out
}

// routes adds the routes of an instance: one per route of its services, or
// one per route policy bound to it.
func (l *load) routes(b *config.Build, in *instance, services map[ref]*service) {
	var routeBindings []*binding
	for _, bd := range append(append([]*binding(nil), in.policies...), in.bound...) {
		if bd.name == policyRoute || bd.name == policyRouteWeighted {
			routeBindings = append(routeBindings, bd)
		}
	}
	sort.SliceStable(routeBindings, func(i, j int) bool {
		if routeBindings[i].order != routeBindings[j].order {
			return routeBindings[i].order < routeBindings[j].order
		}
		return routeBindings[i].seq < routeBindings[j].seq
	})
	if len(in.services) > 0 && len(routeBindings) > 0 {
		b.Errorf(routeBindings[0].namePos, "ApiInstance %s has services, which route its requests, so %s would never apply; "+
			"use services or route policies, not both", in.ref, routeBindings[0].name)
		return
	}
	policies := in.chain()
	var specs []config.PolicySpec
	var sources []config.Pos
	for _, e := range policies {
		specs = append(specs, config.PolicySpec{Name: e.b.name, Params: e.b.params, When: e.b.rules, Pos: e.b.namePos})
		if e.b.inline == nil {
			sources = append(sources, e.b.pos)
		}
	}
	// The routes of an instance share its policies' state (one budget,
	// one cache), as its policies apply to the API, not a route.
	base := config.Route{Paths: []string{in.basePath + "/*"}, Listeners: []string{ListenerName(in.port)},
		StripPrefix: in.basePath, Policies: specs, ReverseResponse: true, PolicyScope: in.ref.String()}
	add := func(r config.Route, id string, from ...config.Pos) {
		r.ID = in.ref.String() + "/" + id
		r.Sources = append(append([]config.Pos{in.pos}, from...), sources...)
		for _, rule := range r.Rules {
			if in.basePath != "" && (rule.Path == in.basePath || strings.HasPrefix(rule.Path, in.basePath+"/")) {
				b.Warn(rule.Pos, "rule path %q starts with the base path %s of ApiInstance %s, but rules match the path after it, "+
					"so it matches %s%s; leave the base path out", rule.Path, in.basePath, in.ref, in.basePath, rule.Path)
			}
		}
		b.AddRoute(r, r.Pos)
	}
	switch {
	case len(in.services) > 0:
		for _, svc := range in.services {
			if len(svc.routes) == 0 {
				r := base
				r.Upstream, r.Pos = svc.upstream, svc.pos
				add(r, svc.key, svc.pos)
				continue
			}
			for i, sr := range svc.routes {
				if len(sr.rules) == 0 && i < len(svc.routes)-1 {
					b.Warn(sr.pos, "this route of service %q has no rules, so it takes every request and the routes after it never apply; "+
						"give it rules or move it last", svc.key)
				}
				r := base
				r.Upstream, r.DestinationPath, r.Pos, r.Rules = svc.upstream, sr.dest, sr.pos, sr.rules
				add(r, svc.key+"/"+strconv.Itoa(i+1), svc.pos)
			}
		}
	case len(routeBindings) > 0:
		for i, bd := range routeBindings {
			r := base
			from, ok := l.destinations(b, bd, services, &r)
			if !ok {
				continue
			}
			r.Pos, r.Rules = bd.namePos, bd.rules
			id := bd.name + "-" + strconv.Itoa(i+1)
			if bd.inline == nil {
				id = bd.resource.name
				if bd.namespace != in.namespace {
					id = bd.ref.String()
				}
				from = append([]config.Pos{bd.pos}, from...)
			}
			add(r, id, from...)
		}
	default:
		b.Warn(in.pos, "ApiInstance %s has no services and no route or route-weighted policy, so every request to it is answered 404; "+
			"add spec.services or bind a route policy", in.ref)
	}
}

// destinations sets the upstream of r, the route of a route or
// route-weighted binding, and returns the places of the Services it sends
// to. One destination (or several alike) is its Service's upstream, which
// every route to the Service shares, with its destinationPath on the route.
// Several are the targets of one upstream of their own, each with its
// weight and its destinationPath after its base path, picked at random by
// weight for each request, as Flex Gateway does.
func (l *load) destinations(b *config.Build, bd *binding, services map[ref]*service, r *config.Route) ([]config.Pos, bool) {
	if len(bd.dests) == 0 {
		return nil, false
	}
	svcs := make([]*service, len(bd.dests))
	ok := true
	for i, dst := range bd.dests {
		svc, found := services[dst.ref]
		switch {
		case found:
			svcs[i] = svc
		case l.broken[key(KindService, dst.ref)]:
			ok = false
		default:
			b.Errorf(dst.refPos, "%s destinationRef names Service %s, which is not defined%s", bd.name, dst.ref, known(l.serviceRefs()))
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	var from []config.Pos
	seen := map[*service]bool{}
	for _, svc := range svcs {
		if !seen[svc] {
			seen[svc] = true
			from = append(from, svc.pos)
		}
	}
	alike := true
	for _, dst := range bd.dests[1:] {
		alike = alike && dst.ref == bd.dests[0].ref && dst.path == bd.dests[0].path
	}
	if alike {
		r.Upstream, r.DestinationPath = svcs[0].upstream, bd.dests[0].path
		return from, true
	}
	u, ok := weighted(b, bd, svcs)
	r.Upstream = u
	return from, ok
}

// weighted is the upstream of a route-weighted binding whose destinations
// differ: their Services' targets, each with its destination's weight and
// destinationPath. Settings that are one per upstream come from the
// Services: their https trust must agree (an error otherwise: trusting what
// one Service trusts for another could accept a certificate it must not),
// and the circuit breaker is the first one bound to a destination's Service,
// applied to the destinations together (a warning says so when another
// Service's differs). Timeouts are the Configuration's, the same for all.
func weighted(b *config.Build, bd *binding, svcs []*service) (config.Upstream, bool) {
	u := svcs[0].upstream
	u.Targets, u.LoadBalancing, u.Pos = nil, config.Random, bd.namePos
	var names []string
	index := map[string]int{} // target URL → index in u.Targets
	var tlsFrom *service
	for i, dst := range bd.dests {
		svc := svcs[i]
		if !slices.Contains(names, svc.ref.String()) {
			names = append(names, svc.ref.String())
		}
		for _, t := range svc.upstream.Targets {
			t.BasePath, t.Weight, t.Pos = joinPath(t.BasePath, dst.path), dst.weight, dst.pos
			if j, dup := index[t.URL()]; dup {
				// The same Service and path twice: one target with both
				// shares.
				u.Targets[j].Weight += t.Weight
				continue
			}
			index[t.URL()] = len(u.Targets)
			u.Targets = append(u.Targets, t)
			if t.Scheme == "https" && tlsFrom == nil {
				tlsFrom = svc
			}
		}
	}
	u.Name = strings.Join(names, ", ")
	ok := true
	if tlsFrom != nil {
		want := tlsFrom.upstream
		u.InsecureSkipVerify, u.CAPEM, u.ClientCert = want.InsecureSkipVerify, want.CAPEM, want.ClientCert
		u.TLSMinVersion, u.TLSMaxVersion, u.TLSCiphers = want.TLSMinVersion, want.TLSMaxVersion, want.TLSCiphers
		for _, svc := range svcs {
			got := svc.upstream
			if got.Targets[0].Scheme != "https" || svc == tlsFrom || sameOutboundTLS(&got, &want) {
				continue
			}
			b.Errorf(bd.namePos, "route-weighted sends to Services %s (%s) and %s (%s), whose https connections are verified differently; "+
				"the destinations of a route-weighted policy share one TLS setting: bind the same tls-outbound to each https Service",
				tlsFrom.ref, outboundTLS(tlsFrom), svc.ref, outboundTLS(svc))
			ok = false
			break
		}
	}
	var cbFrom *service
	for _, svc := range svcs {
		if svc.breaker != nil {
			cbFrom = svc
			break
		}
	}
	u.CircuitBreaker, u.MaxConns = config.CircuitBreaker{}, config.DefaultMaxConns
	if cbFrom != nil {
		u.CircuitBreaker, u.MaxConns = cbFrom.upstream.CircuitBreaker, cbFrom.upstream.MaxConns
		var others []string
		for _, svc := range svcs {
			if svc.upstream.CircuitBreaker == u.CircuitBreaker && svc.upstream.MaxConns == u.MaxConns || slices.Contains(others, svc.ref.String()) {
				continue
			}
			others = append(others, svc.ref.String())
		}
		if len(others) > 0 {
			b.Warn(bd.namePos, "route-weighted applies one circuit breaker to its destinations together: the thresholds of Service %s "+
				"(circuit-breaker-flex at %s) count this route's requests to every one of them; Service %s has other thresholds, or none, "+
				"which this route does not apply", cbFrom.ref, cbFrom.breaker.namePos, strings.Join(others, ", "))
		}
	}
	return u, ok
}

// sameOutboundTLS reports whether two upstreams verify https targets and
// present themselves alike.
func sameOutboundTLS(a, c *config.Upstream) bool {
	if a.InsecureSkipVerify != c.InsecureSkipVerify || a.CAPEM != c.CAPEM || (a.ClientCert == nil) != (c.ClientCert == nil) ||
		a.TLSMinVersion != c.TLSMinVersion || a.TLSMaxVersion != c.TLSMaxVersion || !slices.Equal(a.TLSCiphers, c.TLSCiphers) {
		return false
	}
	return a.ClientCert == nil ||
		bytes.Equal(a.ClientCert.CertPEM, c.ClientCert.CertPEM) && bytes.Equal(a.ClientCert.KeyPEM, c.ClientCert.KeyPEM)
}

// outboundTLS describes how a Service's https connections are verified,
// for messages.
func outboundTLS(s *service) string {
	if s.tls == nil {
		return "no tls-outbound: the system's CAs, no client certificate"
	}
	return "tls-outbound at " + s.tls.namePos.String()
}
