package config

import (
	"fmt"
	"strconv"

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

// plural counts n things for a summary: "1 route", "2 routes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
