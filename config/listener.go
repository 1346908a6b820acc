package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

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
	version := func(dst *string) field {
		return func(k, v *yaml.Node) {
			s, ok := d.requiredStr(v, "tls "+k.Value)
			if !ok {
				return
			}
			if _, known := TLSVersion(s); !known {
				d.errorf(v, "tls %s %q is not supported; use \"1.2\" or \"1.3\"", k.Value, s)
				return
			}
			*dst = s
		}
	}
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
		"minVersion": version(&t.MinVersion),
		"maxVersion": version(&t.MaxVersion),
		"alpn": func(_, v *yaml.Node) {
			for _, e := range d.strEntries(v, "tls alpn", false) {
				if !knownALPN(e.val) {
					d.errorf(e.node, "tls alpn protocol %q is not supported; use http/1.1 (h2 is accepted but not offered: flexgate serves HTTP/1.1)", e.val)
					continue
				}
				t.ALPN = append(t.ALPN, e.val)
			}
		},
		"ciphers": func(_, v *yaml.Node) {
			for _, e := range d.strEntries(v, "tls ciphers", false) {
				if _, _, known := CipherSuite(e.val); !known {
					d.errorf(e.node, "tls cipher %q is not supported; use the IANA name of one of: %s", e.val, strings.Join(CipherSuiteNames(), ", "))
					continue
				}
				t.Ciphers = append(t.Ciphers, e.val)
			}
		},
		"clientCAFile": func(_, v *yaml.Node) {
			t.ClientCAFile, _ = d.filePath(v, "tls clientCAFile")
		},
		"requireClientCertificate": func(_, v *yaml.Node) {
			t.RequireClientCert, _ = d.boolean(v, "tls requireClientCertificate")
		},
		"sessionTicketKeys": func(_, v *yaml.Node) {
			t.SessionTicketKeys, _ = d.ticketKeys(v)
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
	if !d.failed(m) {
		if err := t.Validate(); err != nil {
			d.errorf(n, "%v", err)
		}
	}
	return t, !d.failed(m)
}

// Validate reports the first setting of t that cannot be served: an
// unknown version, cipher or ALPN protocol, versions out of order, ciphers
// that no allowed version uses, client verification without CAs, no
// certificate or one without its key. It reads no file and parses no PEM,
// so `flexgate validate --without-secrets` can run it. Every loader of a
// listener's TLS (kind: Gateway, a Flex tls policy) checks it; the gateway
// checks it again when it loads the certificates. Safe for concurrent use.
func (t *TLS) Validate() error {
	if t.Mode != "" && !strings.EqualFold(t.Mode, "TERMINATE") {
		return fmt.Errorf("tls mode %q is not supported; only TERMINATE is supported", t.Mode)
	}
	if len(t.Certificates) == 0 {
		return errors.New("tls has no certificate; an HTTPS listener needs its certificate chain and private key")
	}
	lo, hi := uint16(tls.VersionTLS12), uint16(tls.VersionTLS13)
	for _, v := range []struct {
		name string
		val  string
		dst  *uint16
	}{{"minVersion", t.MinVersion, &lo}, {"maxVersion", t.MaxVersion, &hi}} {
		if v.val == "" {
			continue
		}
		id, ok := TLSVersion(v.val)
		if !ok {
			return fmt.Errorf("tls %s %q is not supported; use \"1.2\" or \"1.3\"", v.name, v.val)
		}
		*v.dst = id
	}
	if lo > hi {
		return fmt.Errorf("tls maxVersion %s is below minVersion %s; no client could connect", t.MaxVersion, t.MinVersion)
	}
	if len(t.ALPN) > 0 {
		http1 := false
		for _, p := range t.ALPN {
			if !knownALPN(p) {
				return fmt.Errorf("tls alpn protocol %q is not supported; use http/1.1 (h2 is accepted but not offered: flexgate serves HTTP/1.1)", p)
			}
			http1 = http1 || p != "h2"
		}
		if !http1 {
			return errors.New("tls alpn offers only h2, which flexgate does not serve (it serves HTTP/1.1), so no client could agree on a protocol; add http/1.1")
		}
	}
	if len(t.Ciphers) > 0 {
		var tls12 int
		for _, c := range t.Ciphers {
			_, is13, ok := CipherSuite(c)
			if !ok {
				return fmt.Errorf("tls cipher %q is not supported; use the IANA name of one of: %s", c, strings.Join(CipherSuiteNames(), ", "))
			}
			if !is13 {
				tls12++
			}
		}
		switch {
		case tls12 > 0 && lo == tls.VersionTLS13:
			return errors.New("tls ciphers name TLS 1.2 suites, and minVersion is 1.3, so they would never be used; " +
				"remove them (TLS 1.3 suites are not configurable) or allow TLS 1.2")
		case tls12 == 0 && lo == tls.VersionTLS12:
			return errors.New("tls ciphers name no TLS 1.2 suite, so no TLS 1.2 client could connect; " +
				"add TLS 1.2 suites or set minVersion: \"1.3\"")
		}
	}
	if len(t.ClientCAPEM) > 0 && t.ClientCAFile != "" {
		return errors.New("tls has client CAs both inline and in clientCAFile; keep one")
	}
	if t.RequireClientCert && len(t.ClientCAPEM) == 0 && t.ClientCAFile == "" {
		return errors.New("tls requires client certificates but names no CA to verify them; " +
			"add clientCAFile (the PEM bundle of the CAs that sign client certificates)")
	}
	seen := make(map[string]Pos, len(t.SessionTicketKeys))
	for _, k := range t.SessionTicketKeys {
		if k.Path == "" {
			return fmt.Errorf("%s: tls sessionTicketKeys has an empty entry; name a key file", k.Pos)
		}
		if first, dup := seen[k.Path]; dup {
			return fmt.Errorf("%s: tls sessionTicketKeys names %s twice (first at %s); name each key file once", k.Pos, k.Path, first)
		}
		seen[k.Path] = k.Pos
	}
	for _, c := range t.Certificates {
		files := c.CertFile != "" || c.KeyFile != ""
		inline := len(c.CertPEM) > 0 || len(c.KeyPEM) > 0
		switch {
		case files && inline:
			return fmt.Errorf("%s: certificate is given both in files and inline; keep one", c.Pos)
		case files && (c.CertFile == "" || c.KeyFile == ""):
			return fmt.Errorf("%s: certificate needs both certFile and keyFile", c.Pos)
		case !files && (len(c.CertPEM) == 0 || len(c.KeyPEM) == 0):
			return fmt.Errorf("%s: certificate needs both the PEM certificate chain and its private key", c.Pos)
		}
	}
	return nil
}

// knownALPN reports whether p is a protocol a listener's alpn may name.
// h2 is accepted, as Flex Gateway's tls policy offers it by default, but
// never offered: flexgate serves HTTP/1.1.
func knownALPN(p string) bool { return p == "http/1.1" || p == "h2" || p == "http/1.0" }

// TLSVersion returns the crypto/tls id of a version written "1.2" or
// "1.3". Safe for concurrent use, as are CipherSuite and CipherSuiteNames.
func TLSVersion(s string) (uint16, bool) {
	v, ok := tlsVersions[s]
	return v, ok
}

// CipherSuite returns the crypto/tls id of the cipher suite with the IANA
// name name, and whether it is a TLS 1.3 suite. Only TLS 1.2 suites can be
// chosen: Go offers all three TLS 1.3 suites whenever TLS 1.3 is
// negotiated, so naming one is allowed and changes nothing.
func CipherSuite(name string) (id uint16, tls13, ok bool) {
	s, ok := listenerCipherSuites()[name]
	return s.id, s.tls13, ok
}

// CipherSuiteNames lists the names CipherSuite knows, sorted.
func CipherSuiteNames() []string {
	names := make([]string, 0, len(listenerCipherSuites()))
	for n := range listenerCipherSuites() {
		names = append(names, n)
	}
	return sortedStrings(names)
}

type cipherSuite struct {
	id    uint16
	tls13 bool
}

// listenerCipherSuites are Go's secure cipher suites by IANA name.
var listenerCipherSuites = sync.OnceValue(func() map[string]cipherSuite {
	m := map[string]cipherSuite{}
	for _, s := range tls.CipherSuites() {
		m[s.Name] = cipherSuite{id: s.ID, tls13: len(s.SupportedVersions) == 1 && s.SupportedVersions[0] == tls.VersionTLS13}
	}
	return m
})

// ticketKeys maps tls.sessionTicketKeys: a list of key files, each named
// once (the files are read when the listener's TLS loads).
func (d *decoder) ticketKeys(n *yaml.Node) ([]KeyFile, bool) {
	m := d.mark()
	entries := d.strEntries(n, "tls sessionTicketKeys", false)
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errorf(n, "tls sessionTicketKeys is empty; name the key files (the first encrypts new tickets), or remove it to let the gateway make its own keys")
	}
	keys := make([]KeyFile, 0, len(entries))
	seen := make(map[string]Pos, len(entries))
	for _, e := range entries {
		k := KeyFile{Path: ResolveFile(d.file, e.val), Pos: d.pos(e.node)}
		if first, dup := seen[k.Path]; dup {
			d.errorf(e.node, "tls sessionTicketKeys names %s twice (first at %s); name each key file once", e.val, first)
			continue
		}
		seen[k.Path] = k.Pos
		keys = append(keys, k)
	}
	return keys, !d.failed(m)
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
