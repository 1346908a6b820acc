package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// gateway maps the spec of a `kind: Gateway` document.
func (l *loader) gateway(d *decoder, meta metadata, spec *yaml.Node) string {
	var listeners, routes, policies int
	d.mapping(spec, "spec", map[string]field{
		"listeners": func(_, v *yaml.Node) {
			d.list(v, "listeners", func(n *yaml.Node) {
				listeners++
				l.listener(d, n)
			})
		},
		"routes": func(_, v *yaml.Node) {
			d.list(v, "routes", func(n *yaml.Node) {
				routes++
				policies += l.route(d, n)
			})
		},
		"trustedProxies": func(_, v *yaml.Node) { l.trustedProxies(d, v) },
		"clients": func(_, v *yaml.Node) {
			d.list(v, "clients", func(n *yaml.Node) {
				if c, ok := d.client(n); ok {
					l.addClient(d, c, l.clients)
				}
			})
		},
		"limits": func(k, v *yaml.Node) { l.limits(d, k, v) },

		"sharedStorage": func(k, v *yaml.Node) { l.sharedStorage(d, k, v) },
	})
	name := "(unnamed)"
	if meta.name != "" {
		name = strconv.Quote(meta.name)
	}
	return fmt.Sprintf("Gateway %s: %s, %s, %s", name,
		plural(listeners, "listener", "listeners"), plural(routes, "route", "routes"),
		plural(policies, "policy", "policies"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func (l *loader) listener(d *decoder, n *yaml.Node) {
	lis := Listener{Pos: d.pos(n)}
	var nameNode, portNode, protoNode, tlsNode *yaml.Node
	var host string
	port, ok := 0, true
	if !d.mapping(n, "listener", map[string]field{
		"name": func(_, v *yaml.Node) {
			nameNode = v
			var good bool
			lis.Name, good = d.requiredStr(v, "listener name")
			ok = ok && good
		},
		"port": func(_, v *yaml.Node) {
			portNode = v
			var good bool
			port, good = d.positiveInt(v, "listener port", 65535)
			ok = ok && good
		},
		"address": func(_, v *yaml.Node) {
			var good bool
			host, good = d.bindHost(v)
			ok = ok && good
		},
		"protocol": func(_, v *yaml.Node) {
			protoNode = v
			p, good := d.requiredStr(v, "listener protocol")
			ok = ok && good
			lis.Protocol = strings.ToUpper(p)
			if good && lis.Protocol != "HTTP" && lis.Protocol != "HTTPS" {
				d.errorf(v, "listener protocol %q is not supported; use HTTP or HTTPS", p)
				ok = false
			}
		},
		"tls": func(_, v *yaml.Node) {
			tlsNode = v
			var good bool
			lis.TLS, good = d.tls(v)
			ok = ok && good
		},
	}) {
		return
	}
	if nameNode == nil {
		d.errorf(n, "listener has no name; add `name: <unique name>`")
		ok = false
	}
	if portNode == nil {
		d.errorf(n, "listener has no port; add `port: <1-65535>`")
		ok = false
	}
	switch {
	case protoNode == nil && tlsNode != nil:
		lis.Protocol = "HTTPS"
	case protoNode == nil:
		lis.Protocol = "HTTP"
	case lis.Protocol == "HTTPS" && tlsNode == nil:
		d.errorf(protoNode, "HTTPS listener %q has no tls; add tls.certificates with certFile and keyFile", lis.Name)
		ok = false
	case lis.Protocol == "HTTP" && tlsNode != nil:
		d.errorf(tlsNode, "HTTP listener %q has tls settings; set `protocol: HTTPS` or remove tls", lis.Name)
		ok = false
	}
	if nameNode != nil && lis.Name != "" {
		if first, dup := l.listenerNames[lis.Name]; dup {
			d.errorf(nameNode, "listener name %q is already used at %s; listener names must be unique", lis.Name, first)
			ok = false
		} else {
			l.listenerNames[lis.Name] = d.pos(nameNode)
		}
	}
	if portNode != nil && port > 0 {
		for _, u := range l.listenerPorts[port] {
			// Two binds of one port clash unless both name different
			// addresses; a wildcard (0.0.0.0, ::) takes every address.
			if isWildcard(u.host) || isWildcard(host) || u.host == host {
				d.errorf(portNode, "port %d is already used by the listener at %s; give each listener its own port", port, u.pos)
				ok = false
				break
			}
		}
		l.listenerPorts[port] = append(l.listenerPorts[port], portUse{host: host, pos: d.pos(portNode)})
	}
	if !ok {
		return
	}
	lis.Address = net.JoinHostPort(host, strconv.Itoa(port))
	l.cfg.Listeners = append(l.cfg.Listeners, lis)
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::" || host == "[::]"
}

// bindHost reads a listener address: an IP or a host name, without port.
func (d *decoder) bindHost(n *yaml.Node) (string, bool) {
	s, ok := d.str(n, "listener address")
	if !ok || s == "" {
		return "", ok
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s, true
	}
	if strings.ContainsAny(s, ":/ ") {
		d.errorf(n, "listener address %q must be an IP address or host name without a port; set the port with `port:`", s)
		return "", false
	}
	return s, true
}

func (d *decoder) tls(n *yaml.Node) (*TLS, bool) {
	t := &TLS{Mode: "TERMINATE", MinVersion: "1.2"}
	ok := true
	var certsNode *yaml.Node
	if !d.mapping(n, "tls", map[string]field{
		"mode": func(_, v *yaml.Node) {
			m, good := d.requiredStr(v, "tls mode")
			if good && !strings.EqualFold(m, "TERMINATE") {
				d.errorf(v, "tls mode %q is not supported; only TERMINATE is supported (the gateway ends TLS and proxies plain requests)", m)
				good = false
			}
			ok = ok && good
		},
		"certificates": func(_, v *yaml.Node) {
			certsNode = v
			d.list(v, "tls certificates", func(c *yaml.Node) {
				cert, good := d.certificate(c)
				if good {
					t.Certificates = append(t.Certificates, cert)
				}
				ok = ok && good
			})
		},
		"minVersion": func(_, v *yaml.Node) {
			s, good := d.requiredStr(v, "tls minVersion")
			if good && s != "1.2" && s != "1.3" {
				d.errorf(v, "tls minVersion %q is not supported; use \"1.2\" or \"1.3\"", s)
				good = false
			}
			if good {
				t.MinVersion = s
			}
			ok = ok && good
		},
	}) {
		return nil, false
	}
	if ok && len(t.Certificates) == 0 {
		at := n
		if certsNode != nil {
			at = certsNode
		}
		d.errorf(at, "tls needs at least one certificate; add certificates: [{certFile: ..., keyFile: ...}]")
		ok = false
	}
	return t, ok
}

func (d *decoder) certificate(n *yaml.Node) (Certificate, bool) {
	c := Certificate{Pos: d.pos(n)}
	ok := true
	var hasCert, hasKey bool
	if !d.mapping(n, "certificate", map[string]field{
		"certFile": func(_, v *yaml.Node) {
			hasCert = true
			var good bool
			c.CertFile, good = d.filePath(v, "certFile")
			ok = ok && good
		},
		"keyFile": func(_, v *yaml.Node) {
			hasKey = true
			var good bool
			c.KeyFile, good = d.filePath(v, "keyFile")
			ok = ok && good
		},
	}) {
		return c, false
	}
	if !hasCert {
		d.errorf(n, "certificate has no certFile; add the path of the PEM certificate chain")
		ok = false
	}
	if !hasKey {
		d.errorf(n, "certificate has no keyFile; add the path of the PEM private key")
		ok = false
	}
	return c, ok
}

// knownMethods are the methods a route may list. CONNECT is not among them:
// the gateway opens no tunnels and answers it 405 on every route.
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

func isKnownMethod(m string) bool {
	for _, k := range knownMethods {
		if k == m {
			return true
		}
	}
	return false
}

// route maps one route and returns the number of policies it lists.
func (l *loader) route(d *decoder, n *yaml.Node) int {
	r := Route{Pos: d.pos(n)}
	ok := true
	before := d.errs.len()
	var idNode, pathNode, upstreamNode *yaml.Node
	var pathPos []Pos
	var without []strEntry
	if !d.mapping(n, "route", map[string]field{
		"id": func(_, v *yaml.Node) {
			idNode = v
			var good bool
			r.ID, good = d.requiredStr(v, "route id")
			ok = ok && good
		},
		"path": func(_, v *yaml.Node) {
			pathNode = v
			for _, e := range d.strEntries(v, "route path", true) {
				if why := checkPattern(e.val); why != "" {
					d.errorf(e.node, "route path %q is invalid: %s", e.val, why)
					ok = false
					continue
				}
				r.Paths = append(r.Paths, e.val)
				pathPos = append(pathPos, d.pos(e.node))
			}
		},
		"methods": func(_, v *yaml.Node) {
			entries := d.strEntries(v, "route methods", false)
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				// An empty allow-list reads as "nothing", yet would
				// mean "everything".
				d.errorf(v, "methods is empty: list the methods the route allows, or remove methods to allow every method")
				ok = false
			}
			seen := map[string]bool{}
			for _, e := range entries {
				m := strings.ToUpper(e.val)
				if m == "CONNECT" {
					d.errorf(e.node, "method CONNECT cannot be routed: the gateway opens no tunnels and answers CONNECT with 405; remove it")
					ok = false
					continue
				}
				if !isKnownMethod(m) {
					d.errorf(e.node, "unknown HTTP method %q; known methods: %s", e.val, strings.Join(knownMethods, ", "))
					ok = false
					continue
				}
				if seen[m] {
					d.errorf(e.node, "method %s is listed twice", m)
					ok = false
					continue
				}
				seen[m] = true
				r.Methods = append(r.Methods, m)
			}
		},
		"upstream": func(_, v *yaml.Node) {
			upstreamNode = v
			var good bool
			r.Upstream, good = d.upstream(v)
			ok = ok && good
		},
		"maxRequestBodySize": func(_, v *yaml.Node) {
			var good bool
			r.MaxRequestBodySize, good = d.size(v, "maxRequestBodySize")
			ok = ok && good
		},
		"policies": func(_, v *yaml.Node) {
			d.list(v, "policies", func(p *yaml.Node) {
				spec, good := d.policy(p)
				ok = ok && good
				r.Policies = append(r.Policies, spec)
			})
		},
		"withoutPolicies": func(_, v *yaml.Node) {
			without = d.strEntries(v, "route withoutPolicies", false)
			for _, e := range without {
				r.WithoutPolicies = append(r.WithoutPolicies, e.val)
			}
		},
	}) {
		return 0
	}
	for _, e := range without {
		for _, p := range r.Policies {
			if p.Name == e.val {
				d.errorf(e.node, "route %q runs policy %q and also lists it in withoutPolicies; remove one of the two", r.ID, e.val)
				ok = false
				break
			}
		}
	}
	if idNode == nil {
		d.errorf(n, "route has no id; add `id: <unique name>`")
		ok = false
	} else if r.ID != "" {
		if first, dup := l.routeIDs[r.ID]; dup {
			d.errorf(idNode, "route id %q is already used at %s; route ids must be unique across all files", r.ID, first)
			ok = false
		} else {
			l.routeIDs[r.ID] = d.pos(idNode)
		}
	}
	if pathNode == nil {
		d.errorf(n, "route %q has no path; add `path: /prefix/*`", r.ID)
		ok = false
	} else if len(r.Paths) == 0 && d.errs.len() == before {
		d.errorf(pathNode, "route %q has an empty path list; give at least one path", r.ID)
		ok = false
	}
	if upstreamNode == nil {
		d.errorf(n, "route %q has no upstream; add `upstream: {url: http://service:port}`", r.ID)
		ok = false
	}
	if !ok {
		return len(r.Policies)
	}
	for i, p := range r.Paths {
		pos := pathPos[i]
		for _, u := range l.patterns[p] {
			if common := overlap(u.methods, r.Methods); common != "" {
				d.errs.add(pos, "route %q: path %q for %s is ambiguous with route %q at %s; change one path or give the routes different methods",
					r.ID, p, common, u.route, u.pos)
				ok = false
			}
		}
		l.patterns[p] = append(l.patterns[p], patternUse{route: r.ID, methods: r.Methods, pos: pos})
	}
	if ok {
		l.cfg.Routes = append(l.cfg.Routes, r)
	}
	return len(r.Policies)
}

// overlap describes the methods both lists accept ("" when none); an empty
// list accepts every method.
func overlap(a, b []string) string {
	switch {
	case len(a) == 0 && len(b) == 0:
		return "any method"
	case len(a) == 0:
		return strings.Join(b, ", ")
	case len(b) == 0:
		return strings.Join(a, ", ")
	}
	var common []string
	for _, m := range a {
		for _, o := range b {
			if m == o {
				common = append(common, m)
				break
			}
		}
	}
	return strings.Join(common, ", ")
}

func (d *decoder) upstream(n *yaml.Node) (Upstream, bool) {
	u := Upstream{Pos: d.pos(n), ConnectTimeout: DefaultConnectTimeout,
		ResponseTimeout: DefaultResponseTimeout, MaxConns: DefaultMaxConns}
	ok := true
	var urlNode, caNode, insecureNode *yaml.Node
	good := func(g bool) {
		ok = ok && g
	}
	if !d.mapping(n, "upstream", map[string]field{
		"url": func(_, v *yaml.Node) {
			urlNode = v
			good(d.upstreamURL(v, &u))
		},
		"connectTimeout": func(_, v *yaml.Node) {
			var g bool
			u.ConnectTimeout, g = d.duration(v, "upstream connectTimeout")
			good(g)
		},
		"responseTimeout": func(_, v *yaml.Node) {
			var g bool
			u.ResponseTimeout, g = d.duration(v, "upstream responseTimeout")
			good(g)
		},
		"host": func(_, v *yaml.Node) {
			var g bool
			u.HostHeader, g = d.requiredStr(v, "upstream host")
			good(g)
		},
		"maxConnections": func(_, v *yaml.Node) {
			var g bool
			u.MaxConns, g = d.positiveInt(v, "upstream maxConnections", math.MaxInt32)
			good(g)
		},
		"caFile": func(_, v *yaml.Node) {
			caNode = v
			var g bool
			u.CAFile, g = d.filePath(v, "upstream caFile")
			good(g)
		},
		"insecureSkipVerify": func(_, v *yaml.Node) {
			insecureNode = v
			var g bool
			u.InsecureSkipVerify, g = d.boolean(v, "upstream insecureSkipVerify")
			good(g)
		},
	}) {
		return u, false
	}
	if urlNode == nil {
		d.errorf(n, "upstream has no url; add `url: http://service:port`")
		return u, false
	}
	if u.Scheme == "http" {
		if caNode != nil {
			d.errorf(caNode, "upstream caFile applies only to https upstreams; use an https:// url or remove caFile")
			ok = false
		}
		if insecureNode != nil && u.InsecureSkipVerify {
			d.errorf(insecureNode, "upstream insecureSkipVerify applies only to https upstreams; use an https:// url or remove it")
			ok = false
		}
	}
	return u, ok
}

func (d *decoder) upstreamURL(n *yaml.Node, u *Upstream) bool {
	s, ok := d.requiredStr(n, "upstream url")
	if !ok {
		return false
	}
	bad := func(why string) bool {
		d.errorf(n, "upstream url %q %s", s, why)
		return false
	}
	p, err := url.Parse(s)
	if err != nil {
		return bad("is not a valid URL; write it as http://host:port/base-path")
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Opaque != "" {
		return bad("must start with http:// or https://")
	}
	if p.User != nil {
		return bad("must not contain user info; send credentials with a policy such as request-headers-set")
	}
	if p.RawQuery != "" || p.ForceQuery {
		return bad("must not have a query (?...); the client's query is forwarded as it is")
	}
	if p.Fragment != "" || strings.Contains(s, "#") {
		return bad("must not have a fragment (#...)")
	}
	host := p.Hostname()
	if host == "" {
		return bad("has no host; write it as http://host:port")
	}
	port := p.Port()
	switch {
	case port == "" && p.Scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	default:
		if v, err := strconv.Atoi(port); err != nil || v < 1 || v > 65535 {
			return bad("has an invalid port; use 1-65535")
		}
	}
	u.Scheme = p.Scheme
	u.Host = net.JoinHostPort(host, port)
	u.BasePath = strings.TrimRight(p.EscapedPath(), "/")
	return true
}

// policy maps one entry of a route's policies list: a bare name, or a
// mapping of the name to its parameters.
func (d *decoder) policy(n *yaml.Node) (PolicySpec, bool) {
	const shape = "write a policy name (`- client-id-enforcement`) or the name with its parameters indented under it (`- rate-limiting:` then `limit: 100`)"
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			d.errorf(n, "policy entry is empty; %s", shape)
			return PolicySpec{}, false
		}
		return PolicySpec{Name: n.Value, Pos: d.pos(n)}, true
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			keys := make([]string, 0, len(n.Content)/2)
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
			}
			d.errorf(n, "policy entry must have exactly one key, the policy name, but has %d (%s); %s",
				len(keys), strings.Join(keys, ", "), shape)
			return PolicySpec{}, false
		}
		k, v := n.Content[0], resolve(n.Content[1])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(n, "policy entry must start with the policy name; %s", shape)
			return PolicySpec{}, false
		}
		spec := PolicySpec{Name: k.Value, Pos: d.pos(k)}
		switch {
		case isNull(v):
		case v.Kind == yaml.MappingNode:
			spec.Params = v
		default:
			d.errorf(n, "policy %q: parameters must be a mapping of names to values, not %s", k.Value, describe(v))
			return spec, false
		}
		return spec, true
	}
	d.errorf(n, "policy entry must not be %s; %s", describe(n), shape)
	return PolicySpec{}, false
}

func (l *loader) trustedProxies(d *decoder, n *yaml.Node) {
	d.list(n, "trustedProxies", func(v *yaml.Node) {
		s, ok := d.requiredStr(v, "trustedProxies entry")
		if !ok {
			return
		}
		p, ok := parseProxy(s)
		if !ok {
			d.errorf(v, "trustedProxies entry %q is not an IP address or CIDR; write 10.0.0.0/8, 192.168.1.10 or fd00::/8", s)
			return
		}
		for _, have := range l.cfg.TrustedProxies {
			if have == p {
				return
			}
		}
		l.cfg.TrustedProxies = append(l.cfg.TrustedProxies, p)
	})
}

func parseProxy(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	// Peers arrive as plain IPv4; a mapped address would never match.
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// client maps one {id, secret | secretHash} entry.
func (d *decoder) client(n *yaml.Node) (clientEntry, bool) {
	c := clientEntry{Client: Client{Pos: d.pos(n)}}
	ok := true
	var secretNode, hashNode *yaml.Node
	if !d.mapping(n, "client", map[string]field{
		"id": func(_, v *yaml.Node) {
			c.idNode = v
			var good bool
			c.ID, good = d.requiredStr(v, "client id")
			ok = ok && good
		},
		"secret": func(_, v *yaml.Node) {
			secretNode = v
			var good bool
			c.Secret, good = d.requiredStr(v, "client secret")
			ok = ok && good
		},
		"secretHash": func(_, v *yaml.Node) {
			hashNode = v
			s, good := d.requiredStr(v, "client secretHash")
			if good {
				h, err := hex.DecodeString(strings.TrimPrefix(s, "sha256:"))
				if !strings.HasPrefix(s, "sha256:") || err != nil || len(h) != 32 {
					d.errorf(v, "client secretHash must be \"sha256:\" followed by 64 hex digits (the SHA-256 of the secret, e.g. from `printf %%s \"$SECRET\" | sha256sum`)")
					good = false
				}
				c.SecretHash = h
			}
			ok = ok && good
		},
	}) {
		return c, false
	}
	if c.idNode == nil {
		d.errorf(n, "client has no id; add `id: <client id>`")
		ok = false
	}
	switch {
	case secretNode != nil && hashNode != nil:
		d.errorf(hashNode, "client %q has both secret and secretHash; keep one", c.ID)
		ok = false
	case secretNode == nil && hashNode == nil:
		d.errorf(n, "client %q has no secret; add `secret: $env.NAME` or `secretHash: sha256:<hex>`", c.ID)
		ok = false
	}
	return c, ok
}

// clientEntry is a decoded client and where its id was written.
type clientEntry struct {
	Client
	idNode *yaml.Node
}

// addClient appends c unless its id was seen before; seen maps ids to
// where they were first defined.
func (l *loader) addClient(d *decoder, c clientEntry, seen map[string]Pos) {
	if first, dup := seen[c.ID]; dup {
		d.errorf(c.idNode, "client id %q is already used at %s; client ids must be unique", c.ID, first)
		return
	}
	seen[c.ID] = d.pos(c.idNode)
	l.cfg.Clients = append(l.cfg.Clients, c.Client)
}

func (l *loader) limits(d *decoder, k, n *yaml.Node) {
	// -1 until set: 0 is a value (no per-client limit), not "the default".
	lim := Limits{MaxConnsPerClient: -1}
	ok := true
	good := func(g bool) {
		ok = ok && g
	}
	if !d.mapping(n, "limits", map[string]field{
		"maxRequestBodySize": func(_, v *yaml.Node) {
			var g bool
			lim.MaxRequestBodySize, g = d.size(v, "limits maxRequestBodySize")
			good(g)
		},
		"maxHeaderSize": func(_, v *yaml.Node) {
			s, g := d.size(v, "limits maxHeaderSize")
			if g && s > math.MaxInt32 {
				d.errorf(v, "limits maxHeaderSize must be at most 2GiB")
				g = false
			}
			lim.MaxHeaderBytes = int(s)
			good(g)
		},
		"maxResponseHeaderSize": func(_, v *yaml.Node) {
			s, g := d.size(v, "limits maxResponseHeaderSize")
			if g && (s < 1<<10 || s > 16<<20) {
				d.errorf(v, "limits maxResponseHeaderSize must be between 1KiB and 16MiB (default 32KiB)")
				g = false
			}
			lim.MaxResponseHeaderBytes = int(s)
			good(g)
		},
		"readTimeout": func(_, v *yaml.Node) {
			var g bool
			lim.ReadTimeout, g = d.duration(v, "limits readTimeout")
			good(g)
		},
		"writeTimeout": func(_, v *yaml.Node) {
			var g bool
			lim.WriteTimeout, g = d.duration(v, "limits writeTimeout")
			good(g)
		},
		"idleTimeout": func(_, v *yaml.Node) {
			var g bool
			lim.IdleTimeout, g = d.duration(v, "limits idleTimeout")
			good(g)
		},
		"maxConnections": func(_, v *yaml.Node) {
			c, g := d.integer(v, "limits maxConnections")
			if g && (c < 0 || c > math.MaxInt32) {
				d.errorf(v, "limits maxConnections must be between 0 (the default, %d) and %d", DefaultLimits.MaxConns, math.MaxInt32)
				g = false
			}
			lim.MaxConns = int(c)
			good(g)
		},
		"pathParameters": func(_, v *yaml.Node) {
			s, g := d.requiredStr(v, "limits pathParameters")
			if g && s != string(PathParametersReject) && s != string(PathParametersStrip) {
				d.errorf(v, "limits pathParameters %q is not supported; use reject (the default: answer 400 to a path with ';' in it) "+
					"or strip (remove ';' and the rest of each segment before routing, as Java servlet containers do)", s)
				g = false
			}
			lim.PathParameters = PathParameters(s)
			good(g)
		},
		"maxConnectionsPerClient": func(_, v *yaml.Node) {
			c, g := d.integer(v, "limits maxConnectionsPerClient")
			if g && (c < 0 || c > math.MaxInt32) {
				d.errorf(v, "limits maxConnectionsPerClient must be between 0 (no per-client limit) and %d; the default is %d", math.MaxInt32, DefaultLimits.MaxConnsPerClient)
				g = false
			}
			lim.MaxConnsPerClient = int(c)
			good(g)
		},
	}) || !ok {
		return
	}
	lim = withDefaults(lim)
	if l.limitsSet {
		if lim != l.cfg.Limits {
			d.errorf(k, "limits differ from the limits set at %s; set limits in one document only", l.limitsPos)
		}
		return
	}
	l.limitsSet, l.limitsPos, l.cfg.Limits = true, d.pos(k), lim
}

func withDefaults(l Limits) Limits {
	def := DefaultLimits
	if l.MaxRequestBodySize == 0 {
		l.MaxRequestBodySize = def.MaxRequestBodySize
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if l.MaxResponseHeaderBytes == 0 {
		l.MaxResponseHeaderBytes = def.MaxResponseHeaderBytes
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = def.ReadTimeout
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = def.WriteTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = def.IdleTimeout
	}
	if l.MaxConns == 0 {
		l.MaxConns = def.MaxConns
	}
	if l.PathParameters == "" {
		l.PathParameters = def.PathParameters
	}
	if l.MaxConnsPerClient < 0 {
		l.MaxConnsPerClient = def.MaxConnsPerClient
	}
	return l
}
