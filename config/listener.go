package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// listener maps one entry of a Gateway's spec.listeners. Listener names
// and ports are unique across every document.
func (l *loader) listener(d *decoder, n *yaml.Node) {
	lis := Listener{Pos: d.pos(n)}
	m := d.mark()
	var nameNode, portNode, protoNode, tlsNode *yaml.Node
	var host string
	var port int
	if !d.mapping(n, "listener", map[string]field{
		"name": func(_, v *yaml.Node) {
			nameNode = v
			lis.Name, _ = d.requiredStr(v, "listener name")
		},
		"port": func(_, v *yaml.Node) {
			portNode = v
			port, _ = d.positiveInt(v, "listener port", 65535)
		},
		"address": func(_, v *yaml.Node) { host, _ = d.bindHost(v) },
		"protocol": func(_, v *yaml.Node) {
			protoNode = v
			p, ok := d.requiredStr(v, "listener protocol")
			lis.Protocol = strings.ToUpper(p)
			if ok && lis.Protocol != "HTTP" && lis.Protocol != "HTTPS" {
				d.errorf(v, "listener protocol %q is not supported; use HTTP or HTTPS", p)
			}
		},
		"tls": func(_, v *yaml.Node) {
			tlsNode = v
			lis.TLS, _ = d.tls(v)
		},
	}) {
		return
	}
	if nameNode == nil {
		d.errorf(n, "listener has no name; add `name: <unique name>`")
	}
	if portNode == nil {
		d.errorf(n, "listener has no port; add `port: <1-65535>`")
	}
	switch {
	case protoNode == nil && tlsNode != nil:
		lis.Protocol = "HTTPS"
	case protoNode == nil:
		lis.Protocol = "HTTP"
	case lis.Protocol == "HTTPS" && tlsNode == nil:
		d.errorf(protoNode, "HTTPS listener %q has no tls; add tls.certificates with certFile and keyFile", lis.Name)
	case lis.Protocol == "HTTP" && tlsNode != nil:
		d.errorf(tlsNode, "HTTP listener %q has tls settings; set `protocol: HTTPS` or remove tls", lis.Name)
	}
	if nameNode != nil && lis.Name != "" {
		if first, dup := l.listenerNames[lis.Name]; dup {
			d.errorf(nameNode, "listener name %q is already used at %s; listener names must be unique", lis.Name, first)
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
				break
			}
		}
		l.listenerPorts[port] = append(l.listenerPorts[port], portUse{host: host, pos: d.pos(portNode)})
	}
	if d.failed(m) {
		return
	}
	lis.Address = net.JoinHostPort(host, strconv.Itoa(port))
	l.cfg.Listeners = append(l.cfg.Listeners, lis)
}

// isWildcard reports whether a bind host takes every address.
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

// tls maps a listener's tls.
func (d *decoder) tls(n *yaml.Node) (*TLS, bool) {
	t := &TLS{Mode: "TERMINATE", MinVersion: "1.2"}
	m := d.mark()
	var certsNode *yaml.Node
	if !d.mapping(n, "tls", map[string]field{
		"mode": func(_, v *yaml.Node) {
			mode, ok := d.requiredStr(v, "tls mode")
			if ok && !strings.EqualFold(mode, "TERMINATE") {
				d.errorf(v, "tls mode %q is not supported; only TERMINATE is supported (the gateway ends TLS and proxies plain requests)", mode)
			}
		},
		"certificates": func(_, v *yaml.Node) {
			certsNode = v
			d.list(v, "tls certificates", func(c *yaml.Node) {
				if cert, ok := d.certificate(c); ok {
					t.Certificates = append(t.Certificates, cert)
				}
			})
		},
		"minVersion": func(_, v *yaml.Node) {
			s, ok := d.requiredStr(v, "tls minVersion")
			switch {
			case !ok:
			case s != "1.2" && s != "1.3":
				d.errorf(v, "tls minVersion %q is not supported; use \"1.2\" or \"1.3\"", s)
			default:
				t.MinVersion = s
			}
		},
	}) {
		return nil, false
	}
	if !d.failed(m) && len(t.Certificates) == 0 {
		at := n
		if certsNode != nil {
			at = certsNode
		}
		d.errorf(at, "tls needs at least one certificate; add certificates: [{certFile: ..., keyFile: ...}]")
	}
	return t, !d.failed(m)
}

// certificate maps one entry of tls.certificates.
func (d *decoder) certificate(n *yaml.Node) (Certificate, bool) {
	c := Certificate{Pos: d.pos(n)}
	m := d.mark()
	var hasCert, hasKey bool
	if !d.mapping(n, "certificate", map[string]field{
		"certFile": func(_, v *yaml.Node) {
			hasCert = true
			c.CertFile, _ = d.filePath(v, "certFile")
		},
		"keyFile": func(_, v *yaml.Node) {
			hasKey = true
			c.KeyFile, _ = d.filePath(v, "keyFile")
		},
	}) {
		return c, false
	}
	if !hasCert {
		d.errorf(n, "certificate has no certFile; add the path of the PEM certificate chain")
	}
	if !hasKey {
		d.errorf(n, "certificate has no keyFile; add the path of the PEM private key")
	}
	return c, !d.failed(m)
}
