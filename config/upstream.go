package config

import (
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// newUpstream returns an upstream written at pos with the default
// settings. A kind's decoder sets its URL with upstreamURL and fills in what
// its documents say.
func newUpstream(pos Pos) Upstream {
	return Upstream{Pos: pos, ConnectTimeout: DefaultConnectTimeout,
		ResponseTimeout: DefaultResponseTimeout, MaxConns: DefaultMaxConns}
}

// upstream maps a Gateway route's upstream.
func (d *decoder) upstream(n *yaml.Node) (Upstream, bool) {
	u := newUpstream(d.pos(n))
	m := d.mark()
	var urlNode, caNode, insecureNode *yaml.Node
	if !d.mapping(n, "upstream", map[string]field{
		"url": func(_, v *yaml.Node) {
			urlNode = v
			d.upstreamURL(v, "upstream url", &u)
		},
		"connectTimeout": func(_, v *yaml.Node) {
			u.ConnectTimeout, _ = d.duration(v, "upstream connectTimeout")
		},
		"responseTimeout": func(_, v *yaml.Node) {
			u.ResponseTimeout, _ = d.duration(v, "upstream responseTimeout")
		},
		"host": func(_, v *yaml.Node) {
			u.HostHeader, _ = d.requiredStr(v, "upstream host")
		},
		"maxConnections": func(_, v *yaml.Node) {
			u.MaxConns, _ = d.positiveInt(v, "upstream maxConnections", math.MaxInt32)
		},
		"caFile": func(_, v *yaml.Node) {
			caNode = v
			u.CAFile, _ = d.filePath(v, "upstream caFile")
		},
		"insecureSkipVerify": func(_, v *yaml.Node) {
			insecureNode = v
			u.InsecureSkipVerify, _ = d.boolean(v, "upstream insecureSkipVerify")
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
		}
		if insecureNode != nil && u.InsecureSkipVerify {
			d.errorf(insecureNode, "upstream insecureSkipVerify applies only to https upstreams; use an https:// url or remove it")
		}
	}
	return u, !d.failed(m)
}

// upstreamURL reads the URL at n into u's Scheme, Host and BasePath: http
// or https, a host, an optional port (80 or 443 when left out) and base
// path; no user info, query or fragment. what names it in messages
// ("upstream url").
func (d *decoder) upstreamURL(n *yaml.Node, what string, u *Upstream) bool {
	s, ok := d.requiredStr(n, what)
	if !ok {
		return false
	}
	bad := func(why string) bool {
		d.errorf(n, "%s %q %s", what, s, why)
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
