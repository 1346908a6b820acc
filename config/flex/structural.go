package flex

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/config"
)

// tlsPolicy is a tls policy: the TLS of an https ApiInstance's port.
type tlsPolicy struct {
	settings      *config.RedisTLS
	requireClient bool
	// h2 is where alpn lists h2, which flexgate does not speak.
	h2 *yaml.Node
}

// same reports whether two tls policies configure the same TLS.
func (t *tlsPolicy) same(o *tlsPolicy) bool {
	return t.requireClient == o.requireClient && reflect.DeepEqual(t.settings, o.settings)
}

// dest is one destination of a route or route-weighted policy.
type dest struct {
	ref    ref
	refPos config.Pos
	// path is destinationPath, prefixed to the path sent upstream.
	path   string
	weight int
	pos    config.Pos
}

// DefaultIdleTimeoutSeconds is idle-timeout-flex's timeout when config
// leaves it out, as Flex Gateway documents it.
const DefaultIdleTimeoutSeconds = 60

// breaker is a circuit-breaker-flex policy's thresholds: the upstream's
// circuit breaker, each 0 when not written.
type breaker struct {
	limits config.CircuitBreaker
	// conns is where maxConnections is written.
	conns *yaml.Node
	// pools is where maxConnectionPools is written, which flexgate has no
	// counterpart for.
	pools *yaml.Node
}

// structuralConfig decodes the config of a policy the loader applies
// itself into b.
func (l *load) structuralConfig(d *config.Decoder, b *binding, nameNode, cfg *yaml.Node) {
	at := cfg
	if at == nil {
		at = nameNode
	}
	switch b.name {
	case policyTLS:
		if cfg == nil {
			d.Errorf(nameNode, "tls needs config with the port's certificate: {certificate: {crt: <PEM>, key: <PEM>}}")
			return
		}
		b.tls = l.tlsConfig(d, cfg)
	case policyTLSOutbound:
		if cfg == nil {
			cfg = &yaml.Node{Kind: yaml.MappingNode, Line: nameNode.Line, Column: nameNode.Column}
		}
		t, ok := d.TLS(cfg, "tls-outbound", nil)
		if ok {
			b.outTLS = t
		}
	case policyRoute:
		b.dests = l.routeConfig(d, at, cfg, b.namespace, false)
	case policyRouteWeighted:
		b.dests = l.routeConfig(d, at, cfg, b.namespace, true)
	case policyIdleTimeout:
		b.idle = DefaultIdleTimeoutSeconds * time.Second
		if cfg == nil {
			return
		}
		d.Mapping(cfg, "idle-timeout-flex config", map[string]func(k, v *yaml.Node){
			"timeout": func(_, v *yaml.Node) {
				if n, ok := d.WholeNumber(v, "idle-timeout-flex timeout", 1, int64(config.MaxIdleTimeout/time.Second), " (seconds)"); ok {
					b.idle = time.Duration(n) * time.Second
				}
			},
		})
	case policyCircuitBreaker:
		b.breaker = &breaker{}
		if cfg == nil {
			return
		}
		d.Mapping(cfg, "circuit-breaker-flex config", map[string]func(k, v *yaml.Node){
			"thresholds": func(_, v *yaml.Node) {
				cb := b.breaker
				threshold := func(dst *int) func(k, v *yaml.Node) {
					return func(k, v *yaml.Node) {
						n, ok := d.WholeNumber(v, "thresholds "+k.Value, 1, math.MaxInt32, "")
						if ok && dst != nil {
							*dst = int(n)
						}
					}
				}
				conns := threshold(&cb.limits.MaxConnections)
				pools := threshold(nil)
				d.Mapping(v, "thresholds", map[string]func(k, v *yaml.Node){
					"maxConnections": func(k, v *yaml.Node) {
						cb.conns = k
						conns(k, v)
					},
					"maxPendingRequests": threshold(&cb.limits.MaxPendingRequests),
					"maxRequests":        threshold(&cb.limits.MaxRequests),
					"maxRetries":         threshold(&cb.limits.MaxRetries),
					"maxConnectionPools": func(k, v *yaml.Node) {
						cb.pools = k
						pools(k, v)
					},
				})
			},
		})
	}
}

// tlsConfig reads a tls policy's config.
func (l *load) tlsConfig(d *config.Decoder, cfg *yaml.Node) *tlsPolicy {
	p := &tlsPolicy{}
	var requireNode, skipNode, certNode, caNode *yaml.Node
	m := d.Mark()
	t, ok := d.TLS(cfg, "tls", map[string]func(k, v *yaml.Node){
		"requireClientCertificate": func(_, v *yaml.Node) {
			requireNode = v
			p.requireClient, _ = d.Boolean(v, "tls requireClientCertificate")
		},
	})
	if t == nil {
		return nil
	}
	for i := 0; i+1 < len(cfg.Content); i += 2 {
		switch k, v := cfg.Content[i], resolveAlias(cfg.Content[i+1]); k.Value {
		case "skipValidation":
			skipNode = k
		case "certificate":
			certNode = k
		case "trustedCA":
			caNode = k
		case "alpn":
			for _, e := range v.Content {
				if e.Value == "h2" {
					p.h2 = e
				}
			}
		}
	}
	// Each problem is reported: one does not hide the next.
	if skipNode != nil {
		d.Errorf(skipNode, "skipValidation applies to tls-outbound (the gateway's connections to a Service), not to tls; remove it")
	}
	// What is written but wrong has been reported.
	if certNode == nil {
		d.Errorf(cfg, "tls needs the port's certificate: add certificate: {crt: <PEM chain>, key: <PEM key>} (e.g. crt: $TLS_CRT)")
	}
	if p.requireClient && caNode == nil {
		d.Errorf(requireNode, "requireClientCertificate needs trustedCA: the PEM of the CAs that issue client certificates")
	}
	if p.h2 != nil && !slices.ContainsFunc(t.ALPN, func(a string) bool { return a != "h2" }) {
		d.Errorf(p.h2, "alpn offers h2 only, and flexgate serves HTTP/1.1; add http/1.1")
	}
	if !ok || d.Failed(m) {
		return nil
	}
	p.settings = t
	return p
}

// listenerTLS is the TLS of an https port with this policy.
func (t *tlsPolicy) listenerTLS(pos config.Pos) (*config.TLS, error) {
	s := t.settings
	key, err := s.KeyPEM()
	if err != nil {
		return nil, err
	}
	lt := &config.TLS{Mode: "TERMINATE", MinVersion: s.MinVersion, MaxVersion: s.MaxVersion, Ciphers: s.Ciphers,
		RequireClientCert: t.requireClient,
		Certificates:      []config.Certificate{{CertPEM: []byte(s.Certificate), KeyPEM: key, Pos: pos}}}
	if lt.MinVersion == "" {
		lt.MinVersion = "1.2"
	}
	if s.TrustedCA != "" {
		lt.ClientCAPEM = []byte(s.TrustedCA)
	}
	for _, a := range s.ALPN {
		if a != "h2" {
			lt.ALPN = append(lt.ALPN, a)
		}
	}
	return lt, nil
}

// routeConfig reads the config of a route policy, or (weighted) of a
// route-weighted one; ns is the binding's namespace. at is where to report
// a missing config.
func (l *load) routeConfig(d *config.Decoder, at, cfg *yaml.Node, ns string, weighted bool) []dest {
	if cfg == nil {
		if weighted {
			d.Errorf(at, "route-weighted needs config: {routes: [{weight: 75, destinationRef: {name: <Service>}}, ...]}")
		} else {
			d.Errorf(at, "route needs config: {destinationRef: {name: <Service>}}")
		}
		return nil
	}
	if !weighted {
		dst, ok := l.destination(d, cfg, ns, false)
		if !ok {
			return nil
		}
		return []dest{dst}
	}
	var out []dest
	var routesNode *yaml.Node
	d.Mapping(cfg, "route-weighted config", map[string]func(k, v *yaml.Node){
		"routes": func(_, v *yaml.Node) {
			routesNode = v
			d.List(v, "route-weighted routes", func(e *yaml.Node) {
				if dst, ok := l.destination(d, e, ns, true); ok {
					out = append(out, dst)
				}
			})
		},
	})
	if routesNode == nil {
		d.Errorf(cfg, "route-weighted needs routes: [{weight: 75, destinationRef: {name: <Service>}}, ...]")
	} else if routesNode.Kind == yaml.SequenceNode && len(routesNode.Content) == 0 {
		d.Errorf(routesNode, "route-weighted routes is empty; list the destinations with their weights")
	}
	return out
}

// destination reads {destinationPath, destinationRef} and, weighted, a
// weight of 1 to 100.
func (l *load) destination(d *config.Decoder, n *yaml.Node, ns string, weighted bool) (dest, bool) {
	dst := dest{pos: d.Pos(n)}
	m := d.Mark()
	var refNode, weightNode *yaml.Node
	fields := map[string]func(k, v *yaml.Node){
		"destinationPath": func(_, v *yaml.Node) { dst.path = destinationPath(d, v) },
		"destinationRef": func(_, v *yaml.Node) {
			refNode = v
			dst.ref.namespace = ns
			d.Mapping(v, "destinationRef", map[string]func(k, v *yaml.Node){
				"name": func(_, v *yaml.Node) {
					dst.ref.name, _ = d.RequiredStr(v, "destinationRef name")
					dst.refPos = d.Pos(v)
				},
				"namespace": func(_, v *yaml.Node) {
					if s, ok := d.Str(v, "destinationRef namespace"); ok && s != "" {
						dst.ref.namespace = s
					}
				},
				"kind": func(_, v *yaml.Node) {
					if s, ok := d.Str(v, "destinationRef kind"); ok && s != "" && s != KindService {
						d.Errorf(v, "destinationRef kind %q is not supported; a route leads to a Service (kind: Service, the default)", s)
					}
				},
			})
		},
	}
	if weighted {
		fields["weight"] = func(_, v *yaml.Node) {
			weightNode = v
			w, _ := d.WholeNumber(v, "weight", 1, 100, "")
			dst.weight = int(w)
		}
	}
	what := "route config"
	if weighted {
		what = "route-weighted route"
	}
	if !d.Mapping(n, what, fields) {
		return dst, false
	}
	switch {
	case refNode == nil:
		d.Errorf(n, "%s has no destinationRef; add `destinationRef: {name: <Service>}`", what)
	case dst.ref.name == "" && !d.Failed(m):
		d.Errorf(refNode, "destinationRef has no name; name the Service to send requests to")
	}
	if weighted && weightNode == nil {
		d.Errorf(n, "route-weighted route has no weight; add `weight: <1-100>` (its share is weight ÷ the sum of the weights)")
	}
	return dst, !d.Failed(m)
}

// joinPath joins a base path and a destination path ("" or "/x" each).
func joinPath(base, dest string) string {
	return strings.TrimRight(base, "/") + dest
}
