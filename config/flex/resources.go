package flex

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// instance is an ApiInstance: an API served at an address, with its
// upstream services and policies.
type instance struct {
	resource
	scheme string // "http" or "https"
	host   string // bind host ("0.0.0.0")
	port   int
	// basePath is the address's path without its trailing slash ("" or
	// "/shop"): it selects the instance on a shared port and is removed
	// before rules match and the request goes upstream.
	basePath string
	addrPos  config.Pos
	// services are the inline services, in the order written.
	services []*service
	// policies are the inline policies, in the order written.
	policies []*binding
	// bound are the PolicyBindings that target the instance, by name or
	// Selector (Finish).
	bound []*binding
}

// service is a Service, or an inline service of an ApiInstance (named
// <instance>-<key>, as Flex Gateway names it).
type service struct {
	resource
	upstream config.Upstream
	// inline is the instance that defines the service, with its key there
	// and its routes (none: one route takes every request).
	inline *instance
	key    string
	routes []svcRoute
	// outbound policies bound to the service (Finish).
	tls     *binding
	breaker *binding
	idle    *binding
}

// svcRoute is one route of an inline service.
type svcRoute struct {
	rules []config.MatchRule
	// dest is config.destinationPath, prefixed to the upstream path.
	dest string
	pos  config.Pos
}

// apiInstance reads an ApiInstance's spec.
func (l *load) apiInstance(d *config.Decoder, r resource, spec *yaml.Node) string {
	in := &instance{resource: r}
	m := d.Mark()
	var addrNode *yaml.Node
	if !d.Mapping(spec, "ApiInstance spec", map[string]func(k, v *yaml.Node){
		"address": func(_, v *yaml.Node) {
			addrNode = v
			if expandEnv(d, v) {
				l.address(d, v, in)
			}
		},
		"services": func(_, v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				d.Errorf(v, "services must be a mapping of service names to {address, routes}, not %s", config.Describe(v))
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				l.inlineService(d, in, v.Content[i], resolveAlias(v.Content[i+1]))
			}
		},
		"policies": func(_, v *yaml.Node) {
			d.List(v, "policies", func(p *yaml.Node) {
				b := &binding{resource: r, inline: in, order: DefaultOrder}
				if l.policyEntry(d, p, b, false) {
					in.policies = append(in.policies, b)
				} else if b.name == policyTLS {
					l.brokenTLS = true
				}
			})
		},
	}) {
		return ""
	}
	if addrNode == nil {
		d.Errorf(spec, "ApiInstance %s has no address; add `address: http://0.0.0.0:8081` (protocol, host, port and an optional base path)", r.ref)
	}
	if d.Failed(m) {
		return ""
	}
	l.instances = append(l.instances, in)
	summary := KindAPIInstance + " " + r.ref.String() + " at " + in.scheme + "://" + in.host + ":" + strconv.Itoa(in.port) + in.basePath
	var has []string
	if len(in.services) > 0 {
		has = append(has, plural(len(in.services), "service", "services"))
	}
	if len(in.policies) > 0 {
		has = append(has, plural(len(in.policies), "inline policy", "inline policies"))
	}
	if len(has) > 0 {
		summary += " (" + strings.Join(has, ", ") + ")"
	}
	return summary
}

// address reads an ApiInstance's address: http or https, a host to bind,
// a port and an optional base path.
func (l *load) address(d *config.Decoder, n *yaml.Node, in *instance) bool {
	s, ok := d.RequiredStr(n, "ApiInstance address")
	if !ok {
		return false
	}
	bad := func(why string) bool {
		d.Errorf(n, "ApiInstance address %q %s", s, why)
		return false
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return bad("is not a URL; write it as http://0.0.0.0:8081/base-path")
	case u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "":
		return bad("must start with http:// or https://")
	case u.User != nil:
		return bad("must not contain user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return bad("must not have a query or fragment")
	case u.Hostname() == "":
		return bad("has no host to listen on; write 0.0.0.0 for every address")
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		v, err := strconv.Atoi(p)
		switch {
		case err != nil || v < 0 || v > 65535:
			return bad("has an invalid port; use 1-65535")
		case v == 0 && !d.EphemeralPorts():
			return bad("has port 0: the gateway would listen on a port the kernel picks, which its clients cannot know; use a port from 1 to 65535")
		}
		port = v
	}
	base := strings.TrimRight(u.EscapedPath(), "/")
	if why := config.CheckPathPattern(base + "/*"); base != "" && why != "" {
		return bad("has a base path that cannot be routed: " + why)
	}
	in.scheme, in.host, in.port, in.basePath, in.addrPos = u.Scheme, u.Hostname(), port, base, d.Pos(n)
	return true
}

// inlineService reads one entry of an ApiInstance's spec.services.
func (l *load) inlineService(d *config.Decoder, in *instance, k, v *yaml.Node) {
	svc := &service{resource: resource{kind: KindService, ref: ref{namespace: in.namespace, name: in.name + "-" + k.Value},
		pos: d.Pos(k), seq: in.seq}, inline: in, key: k.Value}
	m := d.Mark()
	var addrNode *yaml.Node
	if !d.Mapping(v, "service", map[string]func(k, v *yaml.Node){
		"address": func(_, v *yaml.Node) {
			addrNode = v
			if expandEnv(d, v) {
				svc.upstream, _ = d.Upstream(v, "service address")
			}
		},
		"routes": func(_, v *yaml.Node) {
			d.List(v, "routes", func(rn *yaml.Node) {
				if r, ok := l.svcRoute(d, rn); ok {
					svc.routes = append(svc.routes, r)
				}
			})
		},
	}) {
		return
	}
	if addrNode == nil {
		d.Errorf(v, "service %q has no address; add `address: http://host:port`", k.Value)
	}
	if !l.claim(d, svc.resource, k) {
		return
	}
	if d.Failed(m) {
		l.broken[key(KindService, svc.ref)] = true
		return
	}
	in.services = append(in.services, svc)
	l.services = append(l.services, svc)
}

// svcRoute reads one route of an inline service: its rules and its
// config.destinationPath.
func (l *load) svcRoute(d *config.Decoder, n *yaml.Node) (svcRoute, bool) {
	r := svcRoute{pos: d.Pos(n)}
	m := d.Mark()
	if config.IsNull(n) {
		return r, true
	}
	ok := d.Mapping(n, "route", map[string]func(k, v *yaml.Node){
		"rules": func(_, v *yaml.Node) { r.rules = rules(d, v, "route rules") },
		"config": func(_, v *yaml.Node) {
			if !expandEnv(d, v) {
				return
			}
			d.Mapping(v, "route config", map[string]func(k, v *yaml.Node){
				"destinationPath": func(_, v *yaml.Node) { r.dest = destinationPath(d, v) },
			})
		},
	})
	return r, ok && !d.Failed(m)
}

// destinationPath reads a path prefixed to the path sent upstream; "/" and
// "" prefix nothing.
func destinationPath(d *config.Decoder, n *yaml.Node) string {
	s, ok := d.Str(n, "destinationPath")
	if !ok || s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || !strings.HasPrefix(s, "/") || u.Path == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		u.Host != "" || strings.ContainsAny(s, " #") {
		d.Errorf(n, "destinationPath %q must be a path starting with /, without query or fragment (e.g. /api/v1)", s)
		return ""
	}
	return strings.TrimRight(s, "/")
}

// service reads a Service's spec: the address of an upstream.
func (l *load) service(d *config.Decoder, r resource, spec *yaml.Node) string {
	svc := &service{resource: r}
	var addrNode *yaml.Node
	m := d.Mark()
	if !d.Mapping(spec, "Service spec", map[string]func(k, v *yaml.Node){
		"address": func(_, v *yaml.Node) {
			addrNode = v
			if expandEnv(d, v) {
				svc.upstream, _ = d.Upstream(v, "Service address")
			}
		},
	}) {
		return ""
	}
	if addrNode == nil {
		d.Errorf(spec, "Service %s has no address; add `address: http://host:port`", r.ref)
	}
	if d.Failed(m) {
		return ""
	}
	l.services = append(l.services, svc)
	return KindService + " " + r.ref.String() + " at " + svc.upstream.URL()
}

// policyBinding reads a PolicyBinding's spec: a policy, its config, and
// what it applies to.
func (l *load) policyBinding(d *config.Decoder, r resource, spec *yaml.Node) string {
	b := &binding{resource: r, order: DefaultOrder}
	if !l.policyEntry(d, spec, b, true) {
		l.brokenTLS = l.brokenTLS || b.name == policyTLS
		return ""
	}
	l.bindings = append(l.bindings, b)
	return KindPolicyBinding + " " + r.ref.String() + ": " + b.name + " on " + b.target.String()
}

// timeouts are a Configuration's spec.timeouts.
type timeouts struct {
	responseSeconds int
	idleSeconds     int
	pos             config.Pos
	// written holds the fields as written, to compare two Configurations.
	written string
}

// configuration reads a Configuration's spec.
func (l *load) configuration(d *config.Decoder, r resource, spec *yaml.Node) string {
	var parts []string
	if !expandEnv(d, spec) {
		return ""
	}
	unsupported := func(what string) func(k, v *yaml.Node) {
		return func(k, _ *yaml.Node) {
			parts = append(parts, k.Value+" (ignored)")
			d.Warn(k, "Configuration %s (%s) is not supported yet and is ignored", k.Value, what)
		}
	}
	d.Mapping(spec, "Configuration spec", map[string]func(k, v *yaml.Node){
		"sharedStorage": func(k, v *yaml.Node) {
			parts = append(parts, "sharedStorage")
			l.sharedStorage(d, k, v)
		},
		"logging": func(_, v *yaml.Node) {
			parts = append(parts, "logging")
			l.logging(d, v)
		},
		"timeouts": func(k, v *yaml.Node) {
			parts = append(parts, "timeouts")
			l.timeoutsOf(d, k, v)
		},
		"forwardProxy":   unsupported("an HTTPS proxy for outbound connections; flexgate connects to upstreams directly"),
		"proxyProtocol":  unsupported("the PROXY protocol on listeners; a load balancer sending it makes every request fail to parse"),
		"defaultTLS":     unsupported("TLS settings for policies' outbound calls; flexgate verifies them with the system's roots"),
		"tracing":        unsupported("distributed tracing export; flexgate passes traceparent on but exports no spans"),
		"circuitBreaker": unsupported("a gateway-wide circuit breaker; bind circuit-breaker-flex to a Service instead"),
		"tls":            unsupported("gateway-wide TLS settings; bind the tls policy to each https ApiInstance"),
	})
	return KindConfiguration + " " + r.ref.String() + ": " + strings.Join(parts, ", ")
}

// sharedStorage reads spec.sharedStorage: redis, as the Gateway kind's
// spec.sharedStorage (every spelling Flex uses), or local, which is what
// flexgate does without redis (each replica in memory).
func (l *load) sharedStorage(d *config.Decoder, k, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		d.SharedStorage(k, v)
		return
	}
	rest := *v
	rest.Content = nil
	var local *yaml.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		if v.Content[i].Value == "local" {
			local = v.Content[i]
			d.Mapping(v.Content[i+1], "sharedStorage local", map[string]func(k, v *yaml.Node){
				"enabled": func(_, v *yaml.Node) {
					if on, ok := d.Boolean(v, "sharedStorage local enabled"); ok && !on {
						d.Warn(v, "sharedStorage local enabled: false has no effect: without redis, flexgate keeps what its policies share "+
							"(rate-limit budgets, cache entries) in each replica's memory, and that cannot be turned off; remove local")
					}
				},
			})
			continue
		}
		rest.Content = append(rest.Content, v.Content[i], v.Content[i+1])
	}
	switch {
	case local != nil && len(rest.Content) > 0:
		d.Errorf(local, "sharedStorage has both local and %s; keep the one the gateway should use", rest.Content[0].Value)
	case len(rest.Content) > 0 || local == nil:
		d.SharedStorage(k, &rest)
	}
}

// logging reads spec.logging: the log level applies; Fluent Bit outputs
// are warned of.
func (l *load) logging(d *config.Decoder, n *yaml.Node) {
	outputs := func(what string) func(k, v *yaml.Node) {
		return func(k, v *yaml.Node) {
			if v.Kind == yaml.MappingNode {
				// v1beta1: outputs: {anypoint: disabled}. flexgate sends
				// nothing to Anypoint: disabled is what it does.
				for i := 0; i+1 < len(v.Content); i += 2 {
					key, val := v.Content[i], resolveAlias(v.Content[i+1])
					if key.Value != "anypoint" {
						d.Errorf(key, "unknown %s output %q; the v1beta1 form names anypoint only (anypoint: disabled)", what, key.Value)
						continue
					}
					if s, ok := d.Str(val, what+" outputs anypoint"); ok && s != "disabled" {
						d.Warn(val, "%s outputs anypoint: %s is ignored: flexgate sends no logs to Anypoint", what, s)
					}
				}
				return
			}
			d.Warn(k, "%s outputs are not supported and are ignored: flexgate writes its logs as JSON lines on stdout%s", what,
				map[bool]string{true: " (access logs with --access-log)", false: ""}[what == "accessLogs"])
		}
	}
	d.Mapping(n, "logging", map[string]func(k, v *yaml.Node){
		"outputs": func(k, _ *yaml.Node) {
			d.Warn(k, "logging outputs (Fluent Bit) are not supported and are ignored: flexgate writes its logs as JSON lines on stdout; collect them from there")
		},
		"runtimeLogs": func(_, v *yaml.Node) {
			d.Mapping(v, "runtimeLogs", map[string]func(k, v *yaml.Node){
				"logLevel": func(_, v *yaml.Node) { l.logLevelOf(d, v) },
				"outputs":  outputs("runtimeLogs"),
			})
		},
		"accessLogs": func(_, v *yaml.Node) {
			d.Mapping(v, "accessLogs", map[string]func(k, v *yaml.Node){
				"outputs": outputs("accessLogs"),
			})
		},
	})
}

// logLevels maps Flex Gateway's log levels to flexgate's; flexgate has no
// fatal messages, so fatal logs errors.
var logLevels = map[string]string{"debug": "debug", "info": "info", "warn": "warn", "error": "error", "fatal": "error"}

func (l *load) logLevelOf(d *config.Decoder, n *yaml.Node) {
	s, ok := d.RequiredStr(n, "logLevel")
	if !ok {
		return
	}
	level, known := logLevels[strings.ToLower(s)]
	switch {
	case !known:
		d.Errorf(n, "logLevel %q is not a log level; use debug, info, warn, error or fatal", s)
	case l.logLevel != "" && l.logLevel != level:
		d.Errorf(n, "logLevel %s differs from the logLevel %s set at %s; set it in one Configuration only", s, l.logLevel, l.logLevelPos)
	case l.logLevel == "":
		l.logLevel, l.logLevelPos = level, d.Pos(n)
	}
}

// timeoutsOf reads spec.timeouts: upstreamResponseSeconds is the response
// timeout of every upstream the Flex resources define; the others are
// warned of.
func (l *load) timeoutsOf(d *config.Decoder, k, n *yaml.Node) {
	t := &timeouts{pos: d.Pos(k)}
	seconds := func(key, v *yaml.Node) int {
		i, ok := d.WholeNumber(v, "timeouts "+key.Value, 1, 86400, " (seconds)")
		if !ok {
			return 0
		}
		t.written += key.Value + "=" + strconv.FormatInt(i, 10) + ";"
		return int(i)
	}
	m := d.Mark()
	if !d.Mapping(n, "timeouts", map[string]func(k, v *yaml.Node){
		"upstreamResponseSeconds": func(k, v *yaml.Node) { t.responseSeconds = seconds(k, v) },
		"upstreamConnectionIdleSeconds": func(k, v *yaml.Node) {
			if s := seconds(k, v); time.Duration(s)*time.Second > config.MaxIdleTimeout {
				d.Errorf(v, "timeouts upstreamConnectionIdleSeconds is %d; flexgate keeps an idle upstream connection at most %d seconds", s, int(config.MaxIdleTimeout.Seconds()))
			} else {
				t.idleSeconds = s
			}
		},
		"streamIdleSeconds": func(k, v *yaml.Node) {
			seconds(k, v)
			d.Warn(k, "timeouts streamIdleSeconds is not applied: flexgate bounds each wait for an upstream's bytes with "+
				"upstreamResponseSeconds and each wait for a client's with limits.readTimeout of a kind: Gateway document")
		},
	}) || d.Failed(m) {
		return
	}
	if l.timeouts != nil {
		if l.timeouts.written != t.written {
			d.Errorf(k, "timeouts differ from the timeouts set at %s; set them in one Configuration only", l.timeouts.pos)
		}
		return
	}
	l.timeouts = t
}
