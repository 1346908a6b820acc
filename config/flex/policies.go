package flex

import (
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

// The policies the loader applies itself: they configure listeners, routes
// and upstreams rather than run on requests.
const (
	policyTLS            = "tls"
	policyTLSOutbound    = "tls-outbound"
	policyRoute          = "route"
	policyRouteWeighted  = "route-weighted"
	policyCircuitBreaker = "circuit-breaker-flex"
	policyIdleTimeout    = "idle-timeout-flex"
)

// structural says what each policy the loader applies binds to.
var structural = map[string]string{
	policyTLS:            KindAPIInstance,
	policyRoute:          KindAPIInstance,
	policyRouteWeighted:  KindAPIInstance,
	policyTLSOutbound:    KindService,
	policyCircuitBreaker: KindService,
	policyIdleTimeout:    KindService,
}

// notYet are the policies Flex Gateway documents for local mode that
// flexgate does not run yet, with what they do. A policy package that adds
// one registers its Flex name with the chain, which takes precedence.
var notYet = map[string]string{
	"ldap-authentication-flex":                    "LDAP authentication",
	"openidconnect-access-token-enforcement-flex": "OpenID Connect access token enforcement",
	"message-logging-flex":                        "message logging",
	"native-ext-authz-flex":                       "external authorization",
	"native-ext-proc-flex":                        "external processing",
	"tracing-flex":                                "tracing",
	"jwt-generation-flex":                         "JWT generation",
	"health-check-flex":                           "health checks",
	"rate-limiting-sla-flex":                      "SLA-based rate limiting (Flex Gateway does not run it in local mode either)",
}

// binding is a policy applied to something: a PolicyBinding, or an entry
// of an ApiInstance's spec.policies (inline set).
type binding struct {
	// resource is the PolicyBinding's, or for an inline policy its
	// ApiInstance's.
	resource
	inline *instance
	target target
	// name is policyRef.name, written at namePos.
	name    string
	namePos config.Pos
	// params is config, nil when not written; env references are
	// written `$env.NAME` for the policy to expand.
	params *yaml.Node
	order  int
	rules  []config.MatchRule
	// rulesPos is where rules are written (rulesNode != nil).
	rulesNode *yaml.Node

	// What the loader decoded of its own policies' config.
	tls     *tlsPolicy
	dests   []dest
	outTLS  *config.RedisTLS
	breaker *breaker
	// idle is an idle-timeout-flex policy's timeout.
	idle time.Duration
}

// target is a PolicyBinding's targetRef.
type target struct {
	kind string // ApiInstance, Service or Selector
	ref  ref
	// labels select ApiInstances (kind Selector); none selects every one.
	labels map[string]string
	pos    config.Pos
}

func (t target) String() string {
	if t.kind == "Selector" {
		if len(t.labels) == 0 {
			return "every ApiInstance"
		}
		var sel []string
		for _, k := range sortedKeys(t.labels) {
			sel = append(sel, k+"="+t.labels[k])
		}
		return "ApiInstances with " + strings.Join(sel, ", ")
	}
	return t.kind + " " + t.ref.String()
}

// policyEntry reads a policy: a PolicyBinding's spec (withTarget) or an
// entry of an ApiInstance's spec.policies. It reports whether b is usable.
func (l *load) policyEntry(d *config.Decoder, n *yaml.Node, b *binding, withTarget bool) bool {
	m := d.Mark()
	var refNode, nameNode, configNode, targetNode, orderNode *yaml.Node
	// extension: policyRef names a custom policy, which is reported; its
	// name is no built-in's.
	extension := false
	fields := map[string]func(k, v *yaml.Node){
		"policyRef": func(_, v *yaml.Node) {
			refNode = v
			d.Mapping(v, "policyRef", map[string]func(k, v *yaml.Node){
				"name": func(_, v *yaml.Node) {
					nameNode = v
					b.name, _ = d.RequiredStr(v, "policyRef name")
				},
				"namespace": func(_, v *yaml.Node) {
					// Flex Gateway's built-in policies live in namespace
					// default; another names a policy of the user's, which
					// flexgate does not look for.
					if s, ok := d.Str(v, "policyRef namespace"); ok && s != "" && s != DefaultNamespace {
						d.Warn(v, "policyRef namespace %q is ignored: flexgate's policies have no namespace, so this names flexgate's built-in policy "+
							"of that name, as namespace %s does in Flex Gateway, not a policy of namespace %s; remove namespace, or write %s",
							s, DefaultNamespace, s, DefaultNamespace)
					}
				},
				"kind": func(_, v *yaml.Node) {
					if s, ok := d.Str(v, "policyRef kind"); ok && s == KindExtension {
						extension = true
						d.Errorf(v, "policyRef kind: Extension names a custom policy built with the PDK as WebAssembly, which flexgate does not run; "+
							"use one of its built-in policies (see config/flex/README.md)")
					} else if ok && s != "" {
						d.Errorf(v, "policyRef kind %q is unknown; leave it out for a built-in policy", s)
					}
				},
			})
		},
		"config": func(_, v *yaml.Node) { configNode = v },
		"rules": func(_, v *yaml.Node) {
			b.rulesNode = v
			b.rules = rules(d, v, "rules")
		},
		"order": func(_, v *yaml.Node) {
			orderNode = v
			if i, ok := d.WholeNumber(v, "order", math.MinInt32, math.MaxInt32, " (lower runs first)"); ok {
				b.order = int(i)
			}
		},
	}
	what := "policy"
	if withTarget {
		what = "PolicyBinding spec"
		fields["targetRef"] = func(_, v *yaml.Node) {
			targetNode = v
			b.target = l.targetRef(d, v, b.namespace)
		}
	}
	if !d.Mapping(n, what, fields) {
		return false
	}
	// Every problem is reported, as the Gateway kind does: one does not
	// hide the next.
	switch {
	case refNode == nil:
		d.Errorf(n, "%s has no policyRef; add `policyRef: {name: <policy>}`", what)
	case nameNode == nil:
		d.Errorf(refNode, "policyRef has no name; add `name: <policy>`, e.g. rate-limiting-flex")
	}
	if withTarget && targetNode == nil {
		d.Errorf(n, "PolicyBinding %s has no targetRef; add `targetRef: {name: <ApiInstance>}`, or a Selector", b.ref)
	}
	if configNode != nil && config.IsNull(configNode) {
		configNode = nil
	}
	if configNode != nil && configNode.Kind != yaml.MappingNode {
		of := "the policy"
		if b.name != "" {
			of = b.name
		}
		d.Errorf(configNode, "config of %s must be a mapping of its parameters, not %s", of, config.Describe(configNode))
		configNode = nil
	}
	if b.name == "" || extension {
		// No built-in policy to check the rest against.
		return false
	}
	b.namePos = d.Pos(nameNode)
	binds, isStructural := structural[b.name]
	switch {
	case isStructural:
		if binds == KindService && b.inline != nil {
			d.Errorf(nameNode, "%s applies to a Service's connections: bind it with a PolicyBinding whose targetRef is {kind: Service, name: <service>}", b.name)
		}
		if b.rulesNode != nil && b.name != policyRoute && b.name != policyRouteWeighted {
			d.Errorf(b.rulesNode, "%s applies to every request of what it is bound to; remove rules", b.name)
		}
		if orderNode != nil && b.name == policyTLS {
			// Flex Gateway documents that tls ignores order.
			b.order = DefaultOrder
		}
		if configNode == nil || expandEnv(d, configNode) {
			l.structuralConfig(d, b, nameNode, configNode)
		}
	case registered(b.name):
		if configNode != nil {
			deferEnv(d, configNode)
		}
		b.params = configNode
	default:
		if why, ok := notYet[b.name]; ok {
			d.Errorf(nameNode, "policy %q (%s) is not supported yet: flexgate does not run it; remove it, or see config/flex/README.md for the Flex policies flexgate runs",
				b.name, why)
		} else {
			d.Errorf(nameNode, "unknown policy %q; Flex Gateway's policies that flexgate runs: %s; flexgate's own: %s",
				b.name, strings.Join(flexRuns(), ", "), strings.Join(ownPolicies(), ", "))
		}
	}
	return !d.Failed(m)
}

// registered reports whether a policy package runs the policy name.
func registered(name string) bool {
	_, ok := chain.Lookup(name)
	return ok
}

// flexRuns lists the Flex Gateway policy names flexgate runs.
func flexRuns() []string {
	names := []string{policyRoute, policyRouteWeighted, policyTLS, policyTLSOutbound, policyCircuitBreaker, policyIdleTimeout}
	for _, n := range chain.Names() {
		if chain.IsFlexPolicy(n) {
			names = append(names, n)
		}
	}
	return names
}

// ownPolicies lists flexgate's own policy names, which a PolicyBinding may
// name too, with flexgate's parameters.
func ownPolicies() []string {
	var names []string
	for _, n := range chain.Names() {
		if !chain.IsFlexPolicy(n) {
			names = append(names, n)
		}
	}
	return names
}

// targetRef reads a PolicyBinding's targetRef; ns is the binding's
// namespace, the default of the target's.
func (l *load) targetRef(d *config.Decoder, n *yaml.Node, ns string) target {
	t := target{kind: KindAPIInstance, ref: ref{namespace: ns}, pos: d.Pos(n)}
	var kindNode, nameNode, selNode *yaml.Node
	d.Mapping(n, "targetRef", map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			kindNode = v
			if s, ok := d.RequiredStr(v, "targetRef kind"); ok {
				switch s {
				case KindAPIInstance, KindService, "Selector":
					t.kind = s
				default:
					d.Errorf(v, "targetRef kind %q is unknown; use ApiInstance (the default), Service (for tls-outbound, circuit-breaker-flex and idle-timeout-flex) or Selector", s)
				}
			}
		},
		"name": func(_, v *yaml.Node) {
			nameNode = v
			t.ref.name, _ = d.RequiredStr(v, "targetRef name")
			t.pos = d.Pos(v)
		},
		"namespace": func(_, v *yaml.Node) {
			if s, ok := d.Str(v, "targetRef namespace"); ok && s != "" {
				t.ref.namespace = s
			}
		},
		"selector": func(_, v *yaml.Node) {
			selNode = v
			d.Mapping(v, "selector", map[string]func(k, v *yaml.Node){
				"kind": func(_, v *yaml.Node) {
					if s, ok := d.RequiredStr(v, "selector kind"); ok && s != KindAPIInstance {
						d.Errorf(v, "selector kind %q is not supported; a Selector selects ApiInstances (kind: ApiInstance)", s)
					}
				},
				"labels": func(_, v *yaml.Node) { t.labels = d.StringMap(v, "selector labels") },
			})
		},
	})
	if t.kind == "Selector" {
		if selNode == nil {
			d.Errorf(n, "targetRef kind: Selector needs `selector: {kind: ApiInstance, labels: {...}}` (labels left out select every ApiInstance)")
		}
		if nameNode != nil {
			d.Errorf(nameNode, "targetRef of kind Selector selects by labels; remove name")
		}
		return t
	}
	if selNode != nil {
		at := selNode
		if kindNode != nil {
			at = kindNode
		}
		d.Errorf(at, "targetRef has a selector but is not of kind Selector; add `kind: Selector`")
	}
	if nameNode == nil {
		d.Errorf(n, "targetRef has no name; name the %s the policy applies to", t.kind)
	}
	return t
}
