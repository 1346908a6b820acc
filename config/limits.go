package config

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"
)

// limits maps a Gateway's spec.limits, written at key k. Several documents
// may set them, as long as they agree.
func (l *loader) limits(d *decoder, k, n *yaml.Node) {
	// -1 until set: 0 is a value (no per-client limit), not "the default".
	lim := Limits{MaxConnsPerClient: -1}
	m := d.mark()
	if !d.mapping(n, "limits", map[string]field{
		"maxRequestBodySize": func(_, v *yaml.Node) {
			lim.MaxRequestBodySize, _ = d.size(v, "limits maxRequestBodySize")
		},
		"maxHeaderSize": func(_, v *yaml.Node) {
			s, ok := d.size(v, "limits maxHeaderSize")
			if ok && s > math.MaxInt32 {
				d.errorf(v, "limits maxHeaderSize must be at most 2GiB")
			}
			lim.MaxHeaderBytes = int(s)
		},
		"maxResponseHeaderSize": func(_, v *yaml.Node) {
			s, ok := d.size(v, "limits maxResponseHeaderSize")
			if ok && (s < 1<<10 || s > 16<<20) {
				d.errorf(v, "limits maxResponseHeaderSize must be between 1KiB and 16MiB (default 32KiB)")
			}
			lim.MaxResponseHeaderBytes = int(s)
		},
		"readTimeout": func(_, v *yaml.Node) {
			lim.ReadTimeout, _ = d.duration(v, "limits readTimeout")
		},
		"writeTimeout": func(_, v *yaml.Node) {
			lim.WriteTimeout, _ = d.duration(v, "limits writeTimeout")
		},
		"idleTimeout": func(_, v *yaml.Node) {
			lim.IdleTimeout, _ = d.duration(v, "limits idleTimeout")
		},
		"maxConnections": func(_, v *yaml.Node) {
			c, _ := d.wholeNumber(v, "limits maxConnections", 0, math.MaxInt32, fmt.Sprintf(" (0: the default, %d)", DefaultLimits.MaxConns))
			lim.MaxConns = int(c)
		},
		"pathParameters": func(_, v *yaml.Node) {
			s, ok := d.requiredStr(v, "limits pathParameters")
			if ok && s != string(PathParametersReject) && s != string(PathParametersStrip) {
				d.errorf(v, "limits pathParameters %q is not supported; use reject (the default: answer 400 to a path with ';' in it) "+
					"or strip (remove ';' and the rest of each segment before routing, as Java servlet containers do)", s)
			}
			lim.PathParameters = PathParameters(s)
		},
		"maxConnectionsPerClient": func(_, v *yaml.Node) {
			c, _ := d.wholeNumber(v, "limits maxConnectionsPerClient", 0, math.MaxInt32,
				fmt.Sprintf(" (0: no per-client limit; the default is %d)", DefaultLimits.MaxConnsPerClient))
			lim.MaxConnsPerClient = int(c)
		},
	}) || d.failed(m) {
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

// withDefaults fills in the limits l leaves unset.
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
