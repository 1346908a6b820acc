package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/internal/match"
	"github.com/flexgate/flexgate/proxy/router"
)

// A route comes together from pieces that do not depend on how a document
// kind writes it: routePath and routeMethod check one path pattern or
// method where it was written, claimRouteID reserves an id, and addRoute
// checks the finished route against the routes before it and adds it to
// the config. The Gateway kind's route below assembles them from one
// mapping; a kind that spreads a route over several fields or documents
// calls them where it finds each part.

// knownMethods are the methods a route may list: the router's, but
// CONNECT, since the gateway opens no tunnels and answers it 405 on every
// route.
var knownMethods = slices.DeleteFunc(slices.Clone(router.Methods), func(m string) bool { return m == "CONNECT" })

// route maps one entry of a Gateway's spec.routes and returns the number
// of policies it lists.
func (l *loader) route(d *decoder, n *yaml.Node) int {
	r := Route{Pos: d.pos(n)}
	m := d.mark()
	// Every problem, skipped ones too: one that left the path list empty
	// says enough about it.
	reported := d.errs.len()
	var idNode, pathNode, upstreamNode *yaml.Node
	var pathPos []Pos
	var without []strEntry
	if !d.mapping(n, "route", map[string]field{
		"id": func(_, v *yaml.Node) {
			idNode = v
			r.ID, _ = d.requiredStr(v, "route id")
		},
		"path": func(_, v *yaml.Node) {
			pathNode = v
			for _, e := range d.strEntries(v, "route path", true) {
				if d.routePath(e.node, "route path", e.val) {
					r.Paths = append(r.Paths, e.val)
					pathPos = append(pathPos, d.pos(e.node))
				}
			}
		},
		"methods": func(_, v *yaml.Node) {
			entries := d.strEntries(v, "route methods", false)
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				// An empty allow-list reads as "nothing", yet would
				// mean "everything".
				d.errorf(v, "methods is empty: list the methods the route allows, or remove methods to allow every method")
			}
			for _, e := range entries {
				if method, ok := d.routeMethod(e.node, e.val, r.Methods); ok {
					r.Methods = append(r.Methods, method)
				}
			}
		},
		"upstream": func(_, v *yaml.Node) {
			upstreamNode = v
			r.Upstream, _ = d.upstream(v)
		},
		"maxRequestBodySize": func(_, v *yaml.Node) {
			r.MaxRequestBodySize, _ = d.size(v, "maxRequestBodySize")
		},
		"policies": func(_, v *yaml.Node) {
			d.list(v, "policies", func(p *yaml.Node) {
				spec, _ := d.policy(p)
				r.Policies = append(r.Policies, spec)
			})
		},
		"hosts": func(_, v *yaml.Node) {
			r.Hosts = d.routeHosts(v)
		},
		"headers": func(_, v *yaml.Node) {
			r.Headers = d.routeHeaders(v)
		},
		"websocket": func(_, v *yaml.Node) {
			r.WebSocket = d.websocket(v)
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
				break
			}
		}
	}
	if idNode == nil {
		d.errorf(n, "route has no id; add `id: <unique name>`")
	} else if r.ID != "" {
		l.claimRouteID(d, idNode, r.ID)
	}
	if pathNode == nil {
		d.errorf(n, "route %q has no path; add `path: /prefix/*`", r.ID)
	} else if len(r.Paths) == 0 && d.errs.len() == reported {
		d.errorf(pathNode, "route %q has an empty path list; give at least one path", r.ID)
	}
	if upstreamNode == nil {
		d.errorf(n, "route %q has no upstream; add `upstream: {url: http://service:port}`", r.ID)
	}
	if !d.failed(m) {
		l.addRoute(d, r, pathPos)
	}
	return len(r.Policies)
}

// websocket reads a route's websocket: true or false, or a mapping of its
// settings, which turns it on.
func (d *decoder) websocket(n *yaml.Node) *WebSocket {
	ws := &WebSocket{IdleTimeout: DefaultWebSocketIdleTimeout, Pos: d.pos(n)}
	switch {
	case n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, "true"):
		return ws
	case n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, "false"):
		return nil
	case n.Kind != yaml.MappingNode:
		d.errorf(n, "websocket must be true, false or a mapping with fields idleTimeout, not %s", Describe(n))
		return nil
	}
	d.mapping(n, "websocket", map[string]field{
		"idleTimeout": func(_, v *yaml.Node) {
			if t, ok := d.duration(v, "websocket idleTimeout"); ok {
				ws.IdleTimeout = t
			}
		},
	})
	return ws
}

// checkPattern reports why p is not a route path pattern, or "" when it is
// one; the router owns the grammar.
func checkPattern(p string) string {
	if err := router.CheckPattern(p); err != nil {
		return err.Error()
	}
	return ""
}

// routePath checks the path pattern p, written at n; what names it in the
// message ("route path").
func (d *decoder) routePath(n *yaml.Node, what, p string) bool {
	why := checkPattern(p)
	if why == "" {
		why = templateSegment(p)
	}
	if why != "" {
		d.errorf(n, "%s %q is invalid: %s", what, p, why)
		return false
	}
	return true
}

// templateSegment reports a segment of the pattern p written as a path
// template, {id} or :id, as other gateways and frameworks write a
// parameter. The router would match it as literal text, so a route meant
// to guard /api/{id}/secret would guard nothing while /api/123/secret went
// to a broader route.
func templateSegment(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		open := strings.IndexByte(s, '{')
		if !strings.HasPrefix(s, ":") && (open < 0 || !strings.Contains(s[open:], "}")) {
			continue
		}
		star := slices.Clone(segs)
		star[i] = "*"
		msg := fmt.Sprintf("segment %q is a path template, which routes do not expand: it would match only that literal text; "+
			"write * for any one segment (%s)", s, strings.Join(star, "/"))
		if open >= 0 {
			msg += ", or %7B and %7D to match the braces literally"
		}
		return msg
	}
	return ""
}

// routeMethod checks the method m, written at n, for a route that already
// allows the methods in have, and returns it in upper case.
func (d *decoder) routeMethod(n *yaml.Node, m string, have []string) (string, bool) {
	up := strings.ToUpper(m)
	switch {
	case up == "CONNECT":
		d.errorf(n, "method CONNECT cannot be routed: the gateway opens no tunnels and answers CONNECT with 405; remove it")
	case !slices.Contains(knownMethods, up):
		d.errorf(n, "unknown HTTP method %q; known methods: %s", m, strings.Join(knownMethods, ", "))
	case slices.Contains(have, up):
		d.errorf(n, "method %s is listed twice", up)
	default:
		return up, true
	}
	return "", false
}

// routeHosts reads a route's hosts: a name or a list of names, each a
// host ("api.example.com") or a wildcard for the names under one
// ("*.example.com").
func (d *decoder) routeHosts(n *yaml.Node) []string {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errorf(n, "hosts is empty: list the hosts the route serves, or remove hosts to serve every host")
		return nil
	}
	var hosts []string
	seen := map[string]bool{}
	for _, e := range d.strEntries(n, "route hosts", true) {
		if err := match.CheckHost(e.val); err != nil {
			d.errorf(e.node, "host %q is invalid: %s", e.val, err)
			continue
		}
		h := strings.ToLower(e.val)
		if seen[h] {
			d.errorf(e.node, "host %q is listed twice", e.val)
			continue
		}
		seen[h] = true
		hosts = append(hosts, h)
	}
	return hosts
}

// routeHeaders reads a route's headers: a mapping of header names to the
// values the request's headers must equal.
func (d *decoder) routeHeaders(n *yaml.Node) []HeaderMatch {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		d.errorf(n, "headers must be a mapping of header names to the values they must have, such as {x-canary: \"true\"}, not %s", Describe(n))
		return nil
	}
	var hs []HeaderMatch
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if err := match.CheckHeaderName(k.Value); err != nil {
			d.errorf(k, "header name %q is invalid: %s", k.Value, err)
			continue
		}
		if first, dup := seen[strings.ToLower(k.Value)]; dup {
			d.errorf(k, "header %q is given twice (first at line %d); header names are compared in any case", k.Value, first)
			continue
		}
		seen[strings.ToLower(k.Value)] = k.Line
		if v.Kind != yaml.ScalarNode || IsNull(v) || v.Value == "" {
			d.errorf(v, "header %q must have a value to match, not %s", k.Value, Describe(v))
			continue
		}
		hs = append(hs, HeaderMatch{Name: k.Value, Value: v.Value})
	}
	return hs
}

// claimRouteID reserves the route id, written at n, or reports where it was
// reserved first: ids are unique across every document and file.
func (l *loader) claimRouteID(d *decoder, n *yaml.Node, id string) bool {
	if first, dup := l.routeIDs[id]; dup {
		d.errorf(n, "route id %q is already used at %s; route ids must be unique across all files", id, first)
		return false
	}
	l.routeIDs[id] = d.pos(n)
	return true
}

// addRoute adds r, a complete and valid route whose paths were written at
// the places in at, to the config, unless one of its paths is ambiguous: the
// same pattern as a route added before, for a method that both allow, and
// conditions (listeners, hosts, headers, rules) that do not tell which of
// the two serves a request both could take (see match.Ambiguous).
func (l *loader) addRoute(d *decoder, r Route, at []Pos) bool {
	m := d.mark()
	cond := r.Conditions()
	for i, p := range r.Paths {
		for _, u := range l.patterns[p] {
			common := overlap(u.methods, r.Methods)
			if common == "" || !match.Ambiguous(&u.cond, &cond) {
				continue
			}
			if len(cond.Hosts)+len(cond.Headers)+len(u.cond.Hosts)+len(u.cond.Headers) == 0 {
				d.errs.add(at[i], "route %q: path %q for %s is ambiguous with route %q at %s; change one path or give the routes different methods",
					r.ID, p, common, u.route, u.pos)
				continue
			}
			d.errs.add(at[i], "route %q: path %q for %s is ambiguous with route %q at %s: a request can match the hosts and headers of both, "+
				"and neither narrows the other; give them hosts or header values that cannot both match, or make one's hosts and headers "+
				"a narrowing of the other's (a route with headers {x-canary: \"true\"} next to one without headers)",
				r.ID, p, common, u.route, u.pos)
		}
		l.patterns[p] = append(l.patterns[p], patternUse{route: r.ID, methods: r.Methods, cond: cond, pos: at[i]})
	}
	if d.failed(m) {
		return false
	}
	l.cfg.Routes = append(l.cfg.Routes, r)
	return true
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
		case IsNull(v):
		case v.Kind == yaml.MappingNode:
			spec.Params = v
		default:
			d.errorf(n, "policy %q: parameters must be a mapping of names to values, not %s", k.Value, Describe(v))
			return spec, false
		}
		return spec, true
	}
	d.errorf(n, "policy entry must not be %s; %s", Describe(n), shape)
	return PolicySpec{}, false
}
