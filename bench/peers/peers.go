// Package peers holds the configurations of the proxies flexgate is measured
// against (nginx, HAProxy, Caddy, Traefik), as templates the benchmark harness fills
// with the addresses and paths of one run. The files are meant to be read:
// each says which of its product's recommendations it follows.
package peers

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed nginx.conf nginx-tls.conf nginx-chain.conf nginx-lb.conf haproxy.cfg haproxy-lb.cfg Caddyfile Caddyfile-chain
//go:embed traefik.yaml traefik-dynamic.yaml traefik-chain-dynamic.yaml forwarding.tmpl
var files embed.FS

// Names of the templates, for Render.
const (
	Nginx      = "nginx.conf"
	NginxTLS   = "nginx-tls.conf"
	NginxChain = "nginx-chain.conf"
	NginxLB    = "nginx-lb.conf"
	HAProxy    = "haproxy.cfg"
	HAProxyLB  = "haproxy-lb.cfg"
	Caddy      = "Caddyfile"
	CaddyChain = "Caddyfile-chain"
	// Traefik is the static configuration; TraefikDynamic and
	// TraefikChainDynamic are the dynamic ones it reads from Dir/dynamic.yaml.
	Traefik             = "traefik.yaml"
	TraefikDynamic      = "traefik-dynamic.yaml"
	TraefikChainDynamic = "traefik-chain-dynamic.yaml"
)

// forwarding defines the forwarding headers every peer sets, as flexgate
// does, for the templates above to include.
const forwarding = "forwarding.tmpl"

// Names lists every template, for error messages and tests.
var Names = []string{Nginx, NginxTLS, NginxChain, NginxLB, HAProxy, HAProxyLB, Caddy, CaddyChain, Traefik, TraefikDynamic, TraefikChainDynamic}

// Params are the values a template is filled with.
type Params struct {
	// Listen is host:port the proxy binds.
	Listen string
	// Host is the host part of Listen (Caddy binds by host).
	Host string
	// Upstream is host:port of the origin server.
	Upstream string
	// Upstreams are host:port of the three origins the balancing variants
	// spread over.
	Upstreams []string
	// Dir is a private temp directory for pid files, logs and buffers.
	Dir string
	// CertFile and KeyFile are PEM files for the TLS variants.
	CertFile, KeyFile string
	// RatePerSecond is the rate limit of the chain variant.
	RatePerSecond int
	// NoFile is the open-file limit the harness runs under, and
	// WorkerConnections what each nginx worker may hold within it.
	NoFile, WorkerConnections int
	// MaxConn is the connection limit where a product needs one (HAProxy):
	// the connection-scale run's idle connections plus room for wrk's.
	MaxConn int
	// ClientID and ClientSecret are the one client the chain variant admits.
	ClientID, ClientSecret string
}

// Render fills the named template. It fails on an unknown name or a field
// the template needs but p lacks. Safe for concurrent use.
func Render(name string, p Params) ([]byte, error) {
	src, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("peers: no config template %q (have %s)", name, strings.Join(Names, ", "))
	}
	t, err := template.New(name).Option("missingkey=error").ParseFS(files, forwarding)
	if err == nil {
		t, err = t.New(name).Parse(string(src))
	}
	if err != nil {
		return nil, fmt.Errorf("peers: cannot parse %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, p); err != nil {
		return nil, fmt.Errorf("peers: cannot fill %s: %w", name, err)
	}
	return out.Bytes(), nil
}
