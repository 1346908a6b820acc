package config

import (
	"net/netip"
	"strconv"
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
		p, why := parseProxy(s)
		if why != "" {
			d.errorf(v, "trustedProxies entry %q %s", s, why)
			return
		}
		if what := tooBroad(p); what != "" {
			l.warn(d.pos(v), "trustedProxies entry %q trusts %s: any client there can write X-Forwarded-For, so ip-allowlist, "+
				"ip-blocklist and rate limits keyed on $request.remoteAddress see the address the client chooses, "+
				"and maxConnectionsPerClient does not apply to it; list only the addresses of your load balancers or proxies", s, what)
		}
		for _, have := range l.cfg.TrustedProxies {
			if have == p {
				return
			}
		}
		l.cfg.TrustedProxies = append(l.cfg.TrustedProxies, p)
	})
}

// parseProxy reads an address or CIDR as a prefix, or says why it cannot.
// Peers arrive as plain IPv4, so an IPv4-mapped address or prefix
// (::ffff:10.0.0.0/104) is read as the IPv4 one (10.0.0.0/8), which would
// otherwise never match.
func parseProxy(s string) (netip.Prefix, string) {
	const notCIDR = "is not an IP address or CIDR; write 10.0.0.0/8, 192.168.1.10 or fd00::/8"
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, notCIDR
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, "reaches beyond the IPv4-mapped addresses (::ffff:0:0/96), which the gateway sees as IPv4: " +
					"write the IPv4 CIDR instead (0.0.0.0/0 for all of IPv4), or an IPv6 prefix without ::ffff:"
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, notCIDR
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), ""
}

// The shortest trusted prefixes that load without a warning: an IPv4 /8
// (10.0.0.0/8) and an IPv6 /16, or any prefix inside the IPv6 unique local
// (fc00::/7) and link-local (fe80::/10) ranges, which the internet does
// not route.
const (
	broadIPv4Bits = 8
	broadIPv6Bits = 16
)

var privateIPv6 = []netip.Prefix{netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10")}

// tooBroad says what a trusted prefix p covers when that is everyone or
// nearly, or "" when it is narrow enough.
func tooBroad(p netip.Prefix) string {
	if p.Addr().Is4() {
		switch {
		case p.Bits() == 0:
			return "every IPv4 address"
		case p.Bits() < broadIPv4Bits:
			return "more than an IPv4 /" + strconv.Itoa(broadIPv4Bits)
		}
		return ""
	}
	for _, private := range privateIPv6 {
		if private.Bits() <= p.Bits() && private.Contains(p.Addr()) {
			return ""
		}
	}
	switch {
	case p.Bits() == 0:
		return "every IPv6 address"
	case p.Bits() < broadIPv6Bits:
		return "more than an IPv6 /" + strconv.Itoa(broadIPv6Bits)
	}
	return ""
}
