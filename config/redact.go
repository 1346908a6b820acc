package config

import (
	"crypto/x509"
	"encoding/pem"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RedactedValue is what replaces a secret in the admin /config view.
const RedactedValue = "[redacted]"

// sensitiveKeys are the parts of a parameter name that mark its value as a
// secret, compared case-insensitively.
// textkey is jwt-validation-flex's key, an HMAC secret as often as not.
var sensitiveKeys = []string{"secret", "password", "token", "authorization", "apikey", "api-key", "api_key", "cookie", "credential", "private", "textkey"}

// View is the config as the admin /config endpoint shows it: plain values
// that encode to JSON, with every client secret replaced by "[redacted]",
// and so every policy parameter or header whose name mentions a secret
// (secret, password, token, authorization, api key, cookie, credential,
// private, textKey, or a header name CredentialHeader recognises) and every
// Basic or Bearer credential (CredentialValue); the password of any URL
// shows as xxxxx. Values are shown as written, `$env.NAME` references
// unexpanded. A View shares nothing mutable with its Config; it is safe
// for concurrent reads.
type View struct {
	Name           string         `json:"name"`
	Hash           string         `json:"hash"`
	Sources        []string       `json:"sources"`
	Listeners      []ListenerView `json:"listeners"`
	Routes         []RouteView    `json:"routes"`
	TrustedProxies []string       `json:"trustedProxies"`
	Clients        []ClientView   `json:"clients"`
	Limits         LimitsView     `json:"limits"`
	// SharedStorage is nil when none is configured.
	SharedStorage *SharedStorageView `json:"sharedStorage,omitempty"`
}

// ListenerView is a Listener in the admin view.
type ListenerView struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Protocol string   `json:"protocol"`
	TLS      *TLSView `json:"tls,omitempty"`
}

// TLSView is a listener's TLS settings in the admin view.
type TLSView struct {
	Mode         string            `json:"mode"`
	MinVersion   string            `json:"minVersion"`
	MaxVersion   string            `json:"maxVersion,omitempty"`
	ALPN         []string          `json:"alpn,omitempty"`
	Ciphers      []string          `json:"ciphers,omitempty"`
	Certificates []CertificateView `json:"certificates"`
	// ClientCA lists the subjects of inline client CAs.
	ClientCA                 []string `json:"clientCA,omitempty"`
	ClientCAFile             string   `json:"clientCAFile,omitempty"`
	RequireClientCertificate bool     `json:"requireClientCertificate,omitempty"`
	// SessionTicketKeys lists the key files, never their contents.
	SessionTicketKeys []string `json:"sessionTicketKeys,omitempty"`
}

// CertificateView is a certificate in the admin view: its files, or for
// one written inline its subject, the key redacted.
type CertificateView struct {
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Key      string `json:"key,omitempty"`
}

// RouteView is a Route in the admin view.
type RouteView struct {
	ID                 string            `json:"id"`
	Paths              []string          `json:"paths"`
	Methods            []string          `json:"methods,omitempty"`
	Hosts              []string          `json:"hosts,omitempty"`
	Headers            map[string]string `json:"headers,omitempty"`
	Listeners          []string          `json:"listeners,omitempty"`
	StripPrefix        string            `json:"stripPrefix,omitempty"`
	Rules              []RuleView        `json:"rules,omitempty"`
	Upstream           UpstreamView      `json:"upstream"`
	DestinationPath    string            `json:"destinationPath,omitempty"`
	MaxRequestBodySize int64             `json:"maxRequestBodySize,omitempty"`
	WebSocket          *WebSocketView    `json:"websocket,omitempty"`
	Policies           []PolicyView      `json:"policies"`
	WithoutPolicies    []string          `json:"withoutPolicies,omitempty"`
	// Sources are the file:line:col of the documents the route was made
	// from (see Route.Origins).
	Sources []string `json:"sources"`
}

// WebSocketView is a route's WebSocket in the admin view.
type WebSocketView struct {
	IdleTimeout string `json:"idleTimeout"`
}

// RuleView is a MatchRule in the admin view.
type RuleView struct {
	Path    string            `json:"path,omitempty"`
	Host    string            `json:"host,omitempty"`
	Methods string            `json:"methods,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

func ruleViews(rules []MatchRule) []RuleView {
	var out []RuleView
	for _, r := range rules {
		rv := RuleView{Path: r.Path, Host: r.Host, Methods: r.Methods}
		for _, h := range r.Headers {
			if rv.Headers == nil {
				rv.Headers = map[string]string{}
			}
			rv.Headers[h.Name] = viewString(h.Value)
			if isSensitive(h.Name) || CredentialHeader(h.Name) {
				rv.Headers[h.Name] = RedactedValue
			}
		}
		out = append(out, rv)
	}
	return out
}

// UpstreamView is an Upstream in the admin view. URL is the one target's
// URL, or the targets' separated by ", ". Name is the upstream's own name
// in metrics, when it has one (a Flex Service's namespace/name);
// TrustedCA lists the subjects of the CAs written in the config, and
// ClientCertificate is the certificate presented to targets, its key
// redacted.
type UpstreamView struct {
	Name               string              `json:"name,omitempty"`
	URL                string              `json:"url"`
	Targets            []TargetView        `json:"targets,omitempty"`
	Discovery          string              `json:"discovery"`
	DNSRefresh         string              `json:"dnsRefresh,omitempty"`
	Host               string              `json:"host,omitempty"`
	ConnectTimeout     string              `json:"connectTimeout"`
	ResponseTimeout    string              `json:"responseTimeout"`
	IdleTimeout        string              `json:"idleTimeout"`
	MaxConnections     int                 `json:"maxConnections"`
	MaxConnectionWait  string              `json:"maxConnectionWait,omitempty"`
	CAFile             string              `json:"caFile,omitempty"`
	TrustedCA          []string            `json:"trustedCA,omitempty"`
	ClientCertificate  *CertificateView    `json:"clientCertificate,omitempty"`
	TLSMinVersion      string              `json:"tlsMinVersion,omitempty"`
	TLSMaxVersion      string              `json:"tlsMaxVersion,omitempty"`
	TLSCiphers         []string            `json:"tlsCiphers,omitempty"`
	InsecureSkipVerify bool                `json:"insecureSkipVerify,omitempty"`
	LoadBalancing      string              `json:"loadBalancing"`
	SlowStart          string              `json:"slowStart,omitempty"`
	HealthCheck        *HealthCheckView    `json:"healthCheck,omitempty"`
	OutlierDetection   OutlierView         `json:"outlierDetection"`
	CircuitBreaker     *CircuitBreakerView `json:"circuitBreaker,omitempty"`
	Retries            *RetriesView        `json:"retries,omitempty"`
}

// TargetView is one of several targets in the admin view.
type TargetView struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
}

// HealthCheckView is an upstream's healthCheck in the admin view.
type HealthCheckView struct {
	Path               string   `json:"path"`
	Interval           string   `json:"interval"`
	Timeout            string   `json:"timeout"`
	HealthyThreshold   int      `json:"healthyThreshold"`
	UnhealthyThreshold int      `json:"unhealthyThreshold"`
	ExpectStatus       []string `json:"expectStatus"`
}

// OutlierView is an upstream's outlierDetection in the admin view;
// consecutiveFailures 0 is off.
type OutlierView struct {
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	BaseEjectionTime    string `json:"baseEjectionTime"`
	MaxEjectionTime     string `json:"maxEjectionTime"`
	MaxEjectionPercent  int    `json:"maxEjectionPercent"`
}

// CircuitBreakerView is an upstream's circuitBreaker in the admin view;
// 0 is no limit.
type CircuitBreakerView struct {
	MaxConnections     int `json:"maxConnections"`
	MaxPendingRequests int `json:"maxPendingRequests"`
	MaxRequests        int `json:"maxRequests"`
	MaxRetries         int `json:"maxRetries"`
}

// RetriesView is an upstream's retries in the admin view.
type RetriesView struct {
	Attempts      int               `json:"attempts"`
	On            []string          `json:"on"`
	PerTryTimeout string            `json:"perTryTimeout,omitempty"`
	Backoff       map[string]string `json:"backoff"`
	Budget        map[string]int    `json:"budget"`
}

// View returns the upstream as the admin view shows it.
func (u Upstream) View() UpstreamView {
	v := UpstreamView{Name: u.Name, URL: u.URL(), Discovery: string(u.Discovery), Host: u.HostHeader,
		ConnectTimeout: u.ConnectTimeout.String(), ResponseTimeout: u.ResponseTimeout.String(),
		IdleTimeout: u.IdleTimeout.String(), MaxConnections: u.MaxConns, CAFile: u.CAFile, InsecureSkipVerify: u.InsecureSkipVerify,
		TLSMinVersion: u.TLSMinVersion, TLSMaxVersion: u.TLSMaxVersion, TLSCiphers: u.TLSCiphers,
		LoadBalancing: string(u.LoadBalancing),
		OutlierDetection: OutlierView{ConsecutiveFailures: u.Outlier.ConsecutiveFailures,
			BaseEjectionTime: u.Outlier.BaseEjectionTime.String(), MaxEjectionTime: u.Outlier.MaxEjectionTime.String(),
			MaxEjectionPercent: u.Outlier.MaxEjectionPercent}}
	if u.MaxConnWait > 0 {
		v.MaxConnectionWait = u.MaxConnWait.String()
	}
	if u.CAPEM != "" {
		_, v.TrustedCA, _ = caPool(u.CAPEM)
	}
	if cc := u.ClientCert; cc != nil {
		v.ClientCertificate = &CertificateView{CertFile: cc.CertFile, KeyFile: cc.KeyFile}
		if len(cc.CertPEM) > 0 || len(cc.KeyPEM) > 0 {
			v.ClientCertificate.Subject, v.ClientCertificate.Key = pemSubject(cc.CertPEM), redacted(string(cc.KeyPEM))
		}
	}
	if len(u.Targets) > 1 {
		for _, t := range u.Targets {
			v.Targets = append(v.Targets, TargetView{URL: t.URL(), Weight: t.Weight})
		}
	}
	if u.Discovery == DiscoveryDNS {
		v.DNSRefresh = u.DNSRefresh.String()
	}
	if u.SlowStart > 0 {
		v.SlowStart = u.SlowStart.String()
	}
	if hc := u.HealthCheck; hc != nil {
		hv := &HealthCheckView{Path: hc.Path, Interval: hc.Interval.String(), Timeout: hc.Timeout.String(),
			HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold}
		for _, r := range hc.ExpectStatus {
			hv.ExpectStatus = append(hv.ExpectStatus, r.String())
		}
		v.HealthCheck = hv
	}
	if cb := u.CircuitBreaker; cb != (CircuitBreaker{}) {
		v.CircuitBreaker = &CircuitBreakerView{MaxConnections: cb.MaxConnections, MaxPendingRequests: cb.MaxPendingRequests,
			MaxRequests: cb.MaxRequests, MaxRetries: cb.MaxRetries}
	}
	if r := u.Retries; r != nil {
		rv := &RetriesView{Attempts: r.Attempts,
			Backoff: map[string]string{"base": r.BackoffBase.String(), "max": r.BackoffMax.String()},
			Budget:  map[string]int{"percent": r.BudgetPercent, "minConcurrency": r.BudgetMinConcurrency}}
		for _, o := range r.On {
			rv.On = append(rv.On, string(o))
		}
		if r.PerTryTimeout > 0 {
			rv.PerTryTimeout = r.PerTryTimeout.String()
		}
		v.Retries = rv
	}
	return v
}

// String renders the range as "200-299", or "200" for one status.
func (r StatusRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return strconv.Itoa(r.From) + "-" + strconv.Itoa(r.To)
}

// PolicyView is a policy entry in the admin view; Params is nil for a
// policy written without parameters.
type PolicyView struct {
	Name   string `json:"name"`
	Params any    `json:"params,omitempty"`
	// When are the rules that limit the policy to some requests.
	When []RuleView `json:"when,omitempty"`
}

// ClientView is a registered client in the admin view: its id only.
type ClientView struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// LimitsView is Limits in the admin view.
type LimitsView struct {
	MaxRequestBodySize    int64  `json:"maxRequestBodySize"`
	MaxHeaderSize         int    `json:"maxHeaderSize"`
	MaxResponseHeaderSize int    `json:"maxResponseHeaderSize"`
	ReadTimeout           string `json:"readTimeout"`
	WriteTimeout          string `json:"writeTimeout"`
	IdleTimeout           string `json:"idleTimeout"`
	MaxConnections        int    `json:"maxConnections"`
	PathParameters        string `json:"pathParameters"`
	// MaxConnectionsPerClient is 0 when there is no per-client limit.
	MaxConnectionsPerClient int `json:"maxConnectionsPerClient"`
}

// Redacted returns the admin view of c. It builds new values and leaves c
// untouched, so it is safe to call concurrently.
func (c *Config) Redacted() *View {
	v := &View{
		Name:           c.Name,
		Hash:           c.Hash,
		Sources:        make([]string, 0, len(c.Sources)),
		Listeners:      make([]ListenerView, 0, len(c.Listeners)),
		Routes:         make([]RouteView, 0, len(c.Routes)),
		TrustedProxies: make([]string, 0, len(c.TrustedProxies)),
		Clients:        make([]ClientView, 0, len(c.Clients)),
		Limits: LimitsView{
			MaxRequestBodySize:    c.Limits.MaxRequestBodySize,
			MaxHeaderSize:         c.Limits.MaxHeaderBytes,
			MaxResponseHeaderSize: c.Limits.MaxResponseHeaderBytes,
			ReadTimeout:           c.Limits.ReadTimeout.String(),
			WriteTimeout:          c.Limits.WriteTimeout.String(),
			IdleTimeout:           c.Limits.IdleTimeout.String(),
			MaxConnections:        c.Limits.MaxConns,
			PathParameters:        string(c.Limits.PathParameters),
		},
	}
	v.Limits.MaxConnectionsPerClient = c.Limits.MaxConnsPerClient
	v.SharedStorage = c.SharedStorage.view()
	for _, s := range c.Sources {
		v.Sources = append(v.Sources, s.Summary)
	}
	for _, l := range c.Listeners {
		lv := ListenerView{Name: l.Name, Address: l.Address, Protocol: l.Protocol}
		if l.TLS != nil {
			t := l.TLS
			lv.TLS = &TLSView{Mode: t.Mode, MinVersion: t.MinVersion, MaxVersion: t.MaxVersion, ALPN: t.ALPN,
				Ciphers: t.Ciphers, ClientCAFile: t.ClientCAFile, RequireClientCertificate: t.RequireClientCert}
			if len(t.ClientCAPEM) > 0 {
				_, lv.TLS.ClientCA, _ = caPool(string(t.ClientCAPEM))
			}
			for _, ct := range t.Certificates {
				cv := CertificateView{CertFile: ct.CertFile, KeyFile: ct.KeyFile}
				if len(ct.CertPEM) > 0 || len(ct.KeyPEM) > 0 {
					cv.Subject, cv.Key = pemSubject(ct.CertPEM), redacted(string(ct.KeyPEM))
				}
				lv.TLS.Certificates = append(lv.TLS.Certificates, cv)
			}
			for _, k := range t.SessionTicketKeys {
				lv.TLS.SessionTicketKeys = append(lv.TLS.SessionTicketKeys, k.Path)
			}
		}
		v.Listeners = append(v.Listeners, lv)
	}
	for _, r := range c.Routes {
		u := r.Upstream
		rv := RouteView{
			ID: r.ID, Paths: r.Paths, Methods: r.Methods, MaxRequestBodySize: r.MaxRequestBodySize,
			WithoutPolicies: r.WithoutPolicies, Listeners: r.Listeners, StripPrefix: r.StripPrefix, Rules: ruleViews(r.Rules),
			Upstream: u.View(), DestinationPath: r.DestinationPath,
			Policies: make([]PolicyView, 0, len(r.Policies)),
			Hosts:    r.Hosts,
		}
		if ws := r.WebSocket; ws != nil {
			rv.WebSocket = &WebSocketView{IdleTimeout: ws.IdleTimeout.String()}
		}
		for _, h := range r.Headers {
			if rv.Headers == nil {
				rv.Headers = map[string]string{}
			}
			v := viewString(h.Value)
			if isSensitive(h.Name) || CredentialHeader(h.Name) {
				v = RedactedValue
			}
			rv.Headers[h.Name] = v
		}
		for _, o := range r.Origins() {
			rv.Sources = append(rv.Sources, o.String())
		}
		for _, p := range r.Policies {
			pv := PolicyView{Name: p.Name, When: ruleViews(p.When)}
			if err := CheckAliases(p.Params); err != nil {
				// Load refuses such parameters; a Config built in code
				// may still hold them, and the view must not expand them.
				pv.Params = "[not shown: " + err.(*AliasError).Msg + "]"
			} else if p.Params != nil {
				pv.Params = plain(p.Params, 0)
			}
			rv.Policies = append(rv.Policies, pv)
		}
		v.Routes = append(v.Routes, rv)
	}
	for _, p := range c.TrustedProxies {
		v.TrustedProxies = append(v.TrustedProxies, prefixString(p))
	}
	for _, cl := range c.Clients {
		v.Clients = append(v.Clients, ClientView{ID: cl.ID, Secret: RedactedValue})
	}
	return v
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// maxDepth is a last guard on nesting; Redacted has refused parameters
// whose aliases are recursive or out of bounds (CheckAliases) before plain.
const maxDepth = 64

// plain turns a parameters node into maps, slices and scalars that encode
// to JSON, redacting the values of sensitive keys at any depth.
func plain(n *yaml.Node, depth int) any {
	n = resolve(n)
	if depth > maxDepth {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if isSensitive(k) || CredentialHeader(k) {
				m[k] = RedactedValue
				continue
			}
			m[k] = plain(n.Content[i+1], depth+1)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			s = append(s, plain(c, depth+1))
		}
		return s
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return viewString(n.Value)
		}
		switch f := v.(type) {
		case string:
			return viewString(f)
		case nil, bool, int, int64, uint64:
			return v
		case float64:
			// JSON has no Inf or NaN.
			if !math.IsInf(f, 0) && !math.IsNaN(f) {
				return v
			}
		}
		// Timestamps and binary values show as written.
		return viewString(n.Value)
	}
	return nil
}

// viewString is a text value as the view shows it: hidden when it is a
// Basic or Bearer credential, with the password of any URL in it masked.
func viewString(s string) string {
	if CredentialValue(s) {
		return RedactedValue
	}
	return RedactURLPasswords(s)
}

func isSensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range sensitiveKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// urlUserinfo matches the scheme, user and password of a URL with userinfo
// in running text. The password runs to the last @ before the host, as
// url.Parse reads it, and may hold the quotes and backslashes of a %q.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/?#@\s:"]*):([^/?#\s]*)@`)

// references matches the `$env.NAME`, `${...}` and `$request.…` references
// of a value, which hold no secret themselves.
var references = regexp.MustCompile(regexp.QuoteMeta(envPrefix) + envNameSyntax + `|\$\{[^}]*\}|\$[a-z]+(\.[A-Za-z0-9_\-]+)*`)

// RedactURLPasswords returns s with the password of every URL in it that
// carries userinfo replaced by "xxxxx", as url.URL.Redacted does; a password
// written as `$env.NAME` is left as written, since it is only a reference.
// It is safe for concurrent use.
func RedactURLPasswords(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlUserinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlUserinfo.FindStringSubmatch(m)
		if onlyReferences(sub[2]) {
			return m
		}
		return sub[1] + ":xxxxx@"
	})
}

// onlyReferences reports whether s holds nothing but references and spaces.
func onlyReferences(s string) bool {
	return strings.TrimSpace(references.ReplaceAllString(s, "")) == ""
}

// CredentialHeader reports whether a header of this name carries a
// credential: Authorization, Proxy-Authorization, Cookie, Set-Cookie, a
// name ending in -Key, -Token, -Secret or -Password, or one with a segment
// in credentialSegments (X-Auth, X-Upstream-Auth, X-Api-Sig, X-Session-Id),
// in any case and with _ read as -. A segment counts only whole: Author and
// X-Authority carry no credential. It is safe for concurrent use.
func CredentialHeader(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	for _, suffix := range []string{"-key", "-token", "-secret", "-password"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	for seg := range strings.SplitSeq(n, "-") {
		if slices.Contains(credentialSegments, seg) {
			return true
		}
	}
	return false
}

// credentialSegments are the words that, as a whole segment of a header
// name, mark its value as a credential; sensitiveKeys catch the longer
// words anywhere in a name.
var credentialSegments = []string{"auth", "sig", "signature", "session", "pass", "passwd", "jwt", "bearer"}

// CredentialValue reports whether v is a Basic or Bearer credential (in any
// case) with literal text after the scheme. "Bearer $env.TOKEN" is not: it
// only names where the credential comes from. It is safe for concurrent use.
func CredentialValue(v string) bool {
	v = strings.TrimSpace(v)
	for _, scheme := range []string{"basic ", "bearer "} {
		if len(v) > len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
			return !onlyReferences(v[len(scheme):])
		}
	}
	return false
}

// pemSubject is the subject of the first certificate in a PEM chain, or
// what is wrong with it.
func pemSubject(chain []byte) string {
	b, _ := pem.Decode(chain)
	if b == nil || b.Type != "CERTIFICATE" {
		return "(no PEM certificate)"
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "(a certificate that does not parse)"
	}
	return c.Subject.String()
}
