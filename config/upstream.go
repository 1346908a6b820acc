package config

import (
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// newUpstream returns an upstream written at pos with the default
// settings and no targets. A kind's decoder adds targets read with
// upstreamURL and fills in what its documents say.
func newUpstream(pos Pos) Upstream {
	return Upstream{Pos: pos, ConnectTimeout: DefaultConnectTimeout,
		ResponseTimeout: DefaultResponseTimeout, IdleTimeout: DefaultIdleTimeout, MaxConns: DefaultMaxConns,
		Discovery: DiscoveryStatic, LoadBalancing: LeastRequest,
		Outlier: Outlier{ConsecutiveFailures: DefaultConsecutiveFailures, BaseEjectionTime: DefaultBaseEjectionTime,
			MaxEjectionTime: DefaultMaxEjectionTime, MaxEjectionPercent: DefaultMaxEjectionPercent}}
}

// loadBalancings and retryOns are the accepted values, in the order
// messages list them.
var (
	loadBalancings = []LoadBalancing{LeastRequest, RoundRobin, Random}
	retryOns       = []RetryOn{RetryConnectFailure, RetryReset, RetryGatewayError, Retry5xx}
)

// upstream maps a Gateway route's upstream.
func (d *decoder) upstream(n *yaml.Node) (Upstream, bool) {
	u := newUpstream(d.pos(n))
	m := d.mark()
	var urlNode, targetsNode, caNode, insecureNode, refreshNode, perTryNode *yaml.Node
	if !d.mapping(n, "upstream", map[string]field{
		"url": func(_, v *yaml.Node) {
			urlNode = v
			t := Target{Weight: 1, Pos: d.pos(v)}
			if d.upstreamURL(v, "upstream url", &t) {
				u.Targets = append(u.Targets, t)
			}
		},
		"targets": func(_, v *yaml.Node) {
			targetsNode = v
			u.Targets = append(u.Targets, d.targets(v)...)
		},
		"discovery": func(_, v *yaml.Node) {
			s, ok := d.str(v, "upstream discovery")
			switch Discovery(s) {
			case DiscoveryStatic, DiscoveryDNS:
				u.Discovery = Discovery(s)
			default:
				if ok {
					d.errorf(v, "upstream discovery %q is unknown; use static (a target is one address) or dns "+
						"(every address its name resolves to is a target, as for a headless Service)", s)
				}
			}
		},
		"dnsRefresh": func(_, v *yaml.Node) {
			refreshNode = v
			u.DNSRefresh, _ = d.minDuration(v, "upstream dnsRefresh", MinDNSRefresh)
		},
		"connectTimeout": func(_, v *yaml.Node) {
			u.ConnectTimeout, _ = d.duration(v, "upstream connectTimeout")
		},
		"responseTimeout": func(_, v *yaml.Node) {
			u.ResponseTimeout, _ = d.duration(v, "upstream responseTimeout")
		},
		"idleTimeout": func(_, v *yaml.Node) {
			if t, ok := d.duration(v, "upstream idleTimeout"); ok {
				if t > MaxIdleTimeout {
					d.errorf(v, "upstream idleTimeout %s is longer than %s; an idle connection is kept at most that long", t, MaxIdleTimeout)
					return
				}
				u.IdleTimeout = t
			}
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
		"loadBalancing": func(_, v *yaml.Node) {
			s, ok := d.str(v, "upstream loadBalancing")
			for _, lb := range loadBalancings {
				if LoadBalancing(s) == lb {
					u.LoadBalancing = lb
					return
				}
			}
			if ok {
				d.errorf(v, "upstream loadBalancing %q is unknown; use least-request (the default), round-robin or random", s)
			}
		},
		"slowStart": func(_, v *yaml.Node) {
			u.SlowStart, _ = d.duration(v, "upstream slowStart")
		},
		"healthCheck": func(_, v *yaml.Node) {
			if hc, ok := d.healthCheck(v); ok {
				u.HealthCheck = &hc
			}
		},
		"outlierDetection": func(_, v *yaml.Node) {
			d.outlier(v, &u.Outlier)
		},
		"circuitBreaker": func(_, v *yaml.Node) {
			d.circuitBreaker(v, &u.CircuitBreaker)
		},
		"retries": func(_, v *yaml.Node) {
			if r, ok := d.retries(v, &perTryNode); ok {
				u.Retries = &r
			}
		},
	}) {
		return u, false
	}
	switch {
	case urlNode == nil && targetsNode == nil:
		d.errorf(n, "upstream has no url; add `url: http://service:port`, or `targets:` with a url and weight each")
		return u, false
	case urlNode != nil && targetsNode != nil:
		d.errorf(targetsNode, "upstream has both url and targets; use url for one target or targets for several, not both")
	}
	if refreshNode != nil && u.Discovery != DiscoveryDNS {
		d.errorf(refreshNode, "upstream dnsRefresh applies only with `discovery: dns`; add it or remove dnsRefresh")
	}
	if u.Discovery == DiscoveryDNS && u.DNSRefresh == 0 {
		u.DNSRefresh = DefaultDNSRefresh
	}
	https := false
	for _, t := range u.Targets {
		https = https || t.Scheme == "https"
	}
	if !https {
		if caNode != nil {
			d.errorf(caNode, "upstream caFile applies only to https targets; use an https:// url or remove caFile")
		}
		if insecureNode != nil && u.InsecureSkipVerify {
			d.errorf(insecureNode, "upstream insecureSkipVerify applies only to https targets; use an https:// url or remove it")
		}
	}
	if r := u.Retries; r != nil && r.PerTryTimeout > u.ResponseTimeout {
		d.errorf(perTryNode, "upstream retries perTryTimeout %s is longer than responseTimeout %s, which bounds every attempt; shorten perTryTimeout or lengthen responseTimeout",
			r.PerTryTimeout, u.ResponseTimeout)
	}
	return u, !d.failed(m)
}

// targets maps an upstream's targets list: a url and an optional weight
// each, no url twice.
func (d *decoder) targets(n *yaml.Node) []Target {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.errorf(n, "upstream targets must be a list of `{url: http://host:port, weight: 1}` entries, not %s", Describe(n))
		return nil
	}
	var out []Target
	seen := map[string]Pos{}
	for _, e := range n.Content {
		e = resolve(e)
		t := Target{Weight: 1, Pos: d.pos(e)}
		var urlNode *yaml.Node
		m := d.mark()
		if !d.mapping(e, "upstream target", map[string]field{
			"url": func(_, v *yaml.Node) {
				urlNode = v
				d.upstreamURL(v, "upstream target url", &t)
			},
			"weight": func(_, v *yaml.Node) {
				t.Weight, _ = d.positiveInt(v, "upstream target weight", MaxWeight)
			},
		}) {
			continue
		}
		if urlNode == nil {
			d.errorf(e, "upstream target has no url; add `url: http://host:port`")
			continue
		}
		if d.failed(m) {
			continue
		}
		if first, dup := seen[t.URL()]; dup {
			d.errorf(urlNode, "upstream target %s is listed twice (first at %s); list each target once and give it the weight of both", t.URL(), first)
			continue
		}
		seen[t.URL()] = t.Pos
		out = append(out, t)
	}
	return out
}

// healthCheck maps an upstream's healthCheck.
func (d *decoder) healthCheck(n *yaml.Node) (HealthCheck, bool) {
	hc := HealthCheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold,
		ExpectStatus: []StatusRange{{200, 399}}, Pos: d.pos(n)}
	m := d.mark()
	var pathNode, timeoutNode *yaml.Node
	if !d.mapping(n, "upstream healthCheck", map[string]field{
		"path": func(_, v *yaml.Node) {
			pathNode = v
			s, ok := d.requiredStr(v, "healthCheck path")
			if ok && (!strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \r\n\t#")) {
				d.errorf(v, "healthCheck path %q must start with / and hold no spaces or fragment, such as /healthz", s)
				return
			}
			hc.Path = s
		},
		"interval": func(_, v *yaml.Node) {
			hc.Interval, _ = d.duration(v, "healthCheck interval")
		},
		"timeout": func(_, v *yaml.Node) {
			timeoutNode = v
			hc.Timeout, _ = d.duration(v, "healthCheck timeout")
		},
		"healthyThreshold": func(_, v *yaml.Node) {
			hc.HealthyThreshold, _ = d.positiveInt(v, "healthCheck healthyThreshold", 100)
		},
		"unhealthyThreshold": func(_, v *yaml.Node) {
			hc.UnhealthyThreshold, _ = d.positiveInt(v, "healthCheck unhealthyThreshold", 100)
		},
		"expectStatus": func(_, v *yaml.Node) {
			hc.ExpectStatus = d.statusRanges(v)
		},
	}) {
		return hc, false
	}
	if pathNode == nil {
		d.errorf(n, "upstream healthCheck has no path; add `path: /healthz` (the URL each target is probed at)")
	}
	if timeoutNode != nil && hc.Timeout > hc.Interval {
		d.errorf(timeoutNode, "healthCheck timeout %s is longer than its interval %s; a probe must end before the next one", hc.Timeout, hc.Interval)
	}
	return hc, !d.failed(m)
}

// statusRanges reads expectStatus: a status (200), a range ("200-299"), or
// a list of them.
func (d *decoder) statusRanges(n *yaml.Node) []StatusRange {
	entries := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		entries = n.Content
		if len(entries) == 0 {
			d.errorf(n, "healthCheck expectStatus is empty; list statuses or ranges such as [200, \"300-399\"], or remove it for 200-399")
		}
	}
	var out []StatusRange
	for _, e := range entries {
		e = resolve(e)
		s, ok := d.requiredStr(e, "healthCheck expectStatus entry")
		if !ok {
			continue
		}
		from, to, isRange := strings.Cut(s, "-")
		if !isRange {
			to = from
		}
		a, errA := strconv.Atoi(strings.TrimSpace(from))
		b, errB := strconv.Atoi(strings.TrimSpace(to))
		if errA != nil || errB != nil || a < 100 || b > 599 || a > b {
			d.errorf(e, "healthCheck expectStatus %q must be a status from 100 to 599 or a range such as \"200-299\"", s)
			continue
		}
		out = append(out, StatusRange{a, b})
	}
	return out
}

// outlier maps an upstream's outlierDetection onto o, which holds the
// defaults.
func (d *decoder) outlier(n *yaml.Node, o *Outlier) {
	var maxNode *yaml.Node
	d.mapping(n, "upstream outlierDetection", map[string]field{
		"consecutiveFailures": func(_, v *yaml.Node) {
			if c, ok := d.wholeNumber(v, "outlierDetection consecutiveFailures", 0, 1000, " (0 turns ejection off)"); ok {
				o.ConsecutiveFailures = int(c)
			}
		},
		"baseEjectionTime": func(_, v *yaml.Node) {
			o.BaseEjectionTime, _ = d.duration(v, "outlierDetection baseEjectionTime")
		},
		"maxEjectionTime": func(_, v *yaml.Node) {
			maxNode = v
			o.MaxEjectionTime, _ = d.duration(v, "outlierDetection maxEjectionTime")
		},
		"maxEjectionPercent": func(_, v *yaml.Node) {
			o.MaxEjectionPercent, _ = d.positiveInt(v, "outlierDetection maxEjectionPercent", 100)
		},
	})
	if o.MaxEjectionTime < o.BaseEjectionTime {
		at := maxNode
		if at == nil {
			at = n
		}
		d.errorf(at, "outlierDetection maxEjectionTime %s is shorter than baseEjectionTime %s; make it at least as long",
			o.MaxEjectionTime, o.BaseEjectionTime)
	}
}

// circuitBreaker maps an upstream's circuitBreaker, the thresholds of
// Flex's circuit-breaker-flex.
func (d *decoder) circuitBreaker(n *yaml.Node, cb *CircuitBreaker) {
	limit := func(what string, dst *int) field {
		return func(_, v *yaml.Node) {
			*dst, _ = d.positiveInt(v, "circuitBreaker "+what, math.MaxInt32)
		}
	}
	d.mapping(n, "upstream circuitBreaker", map[string]field{
		"maxConnections":     limit("maxConnections", &cb.MaxConnections),
		"maxPendingRequests": limit("maxPendingRequests", &cb.MaxPendingRequests),
		"maxRequests":        limit("maxRequests", &cb.MaxRequests),
		"maxRetries":         limit("maxRetries", &cb.MaxRetries),
	})
}

// retries maps an upstream's retries; perTry is set to the node of
// perTryTimeout, which the upstream checks against its responseTimeout.
func (d *decoder) retries(n *yaml.Node, perTry **yaml.Node) (Retries, bool) {
	r := Retries{Attempts: DefaultRetryAttempts, On: []RetryOn{RetryGatewayError},
		BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax,
		BudgetPercent: DefaultRetryBudgetPercent, BudgetMinConcurrency: DefaultRetryMinConcurrency, Pos: d.pos(n)}
	m := d.mark()
	var backoffNode *yaml.Node
	if !d.mapping(n, "upstream retries", map[string]field{
		"attempts": func(_, v *yaml.Node) {
			if a, ok := d.wholeNumber(v, "retries attempts", 2, 10, " (it counts the first try too)"); ok {
				r.Attempts = int(a)
			}
		},
		"on": func(_, v *yaml.Node) {
			r.On = nil
			entries := d.strEntries(v, "retries on", true)
			if len(entries) == 0 && v.Kind == yaml.SequenceNode {
				d.errorf(v, "retries on is empty; list what is retried: %s", retryOnList())
			}
			for _, e := range entries {
				on := RetryOn(e.val)
				known := false
				for _, k := range retryOns {
					known = known || on == k
				}
				if !known {
					d.errorf(e.node, "retries on %q is unknown; use %s", e.val, retryOnList())
					continue
				}
				r.On = append(r.On, on)
			}
		},
		"perTryTimeout": func(_, v *yaml.Node) {
			*perTry = v
			r.PerTryTimeout, _ = d.duration(v, "retries perTryTimeout")
		},
		"backoff": func(_, v *yaml.Node) {
			backoffNode = v
			d.mapping(v, "retries backoff", map[string]field{
				"base": func(_, v *yaml.Node) { r.BackoffBase, _ = d.duration(v, "retries backoff base") },
				"max":  func(_, v *yaml.Node) { r.BackoffMax, _ = d.duration(v, "retries backoff max") },
			})
		},
		"budget": func(_, v *yaml.Node) {
			d.mapping(v, "retries budget", map[string]field{
				"percent": func(_, v *yaml.Node) {
					r.BudgetPercent, _ = d.positiveInt(v, "retries budget percent", 100)
				},
				"minConcurrency": func(_, v *yaml.Node) {
					r.BudgetMinConcurrency, _ = d.positiveInt(v, "retries budget minConcurrency", math.MaxInt32)
				},
			})
		},
	}) {
		return r, false
	}
	if r.BackoffMax < r.BackoffBase {
		d.errorf(backoffNode, "retries backoff max %s is shorter than its base %s; make it at least as long", r.BackoffMax, r.BackoffBase)
	}
	return r, !d.failed(m)
}

func retryOnList() string {
	s := make([]string, len(retryOns))
	for i, o := range retryOns {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// minDuration reads a duration of at least min.
func (d *decoder) minDuration(n *yaml.Node, what string, min time.Duration) (time.Duration, bool) {
	v, ok := d.duration(n, what)
	if ok && v < min {
		d.errorf(n, "%s must be at least %s, not %s", what, min, v)
		return 0, false
	}
	return v, ok
}

// upstreamURL reads the URL at n into t's Scheme, Host and BasePath: http
// or https, a host, an optional port (80 or 443 when left out) and base
// path; no user info, query or fragment. what names it in messages
// ("upstream url").
func (d *decoder) upstreamURL(n *yaml.Node, what string, t *Target) bool {
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
	t.Scheme = p.Scheme
	t.Host = net.JoinHostPort(host, port)
	t.BasePath = strings.TrimRight(p.EscapedPath(), "/")
	return true
}
