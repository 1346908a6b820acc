package config

import (
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// trustedProxies maps a Gateway's spec.trustedProxies into the config's
// list, without duplicates.
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

// parseProxy reads an address or CIDR as a prefix.
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
