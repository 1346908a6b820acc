// Package config turns what users write (YAML of kind Gateway, several
// documents and files) into one resolved, validated model that the rest of
// flexgate compiles. The model is independent of the input format: other
// resource kinds map into the same types.
//
// Values of the model are immutable once Load returns and are safe for
// concurrent reads.
package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pos is a place in a config file, for error messages.
type Pos struct {
	File string
	Line int
	Col  int
}

// String renders the position as file:line:col, the form editors jump to.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Defaults used where the config is silent.
const (
	DefaultListen          = ":8080"
	DefaultConnectTimeout  = 2 * time.Second
	DefaultResponseTimeout = 30 * time.Second
	DefaultMaxConns        = 512
	// DefaultIdleTimeout closes an idle upstream connection before common
	// upstream keep-alive timeouts (Node.js closes after 5 s), so that a
	// request rarely meets one the upstream has closed.
	DefaultIdleTimeout = 4 * time.Second
	// MaxIdleTimeout bounds idleTimeout.
	MaxIdleTimeout = time.Hour
)

// Defaults of the upstream settings that balance and protect targets.
const (
	DefaultDNSRefresh          = 5 * time.Second
	MinDNSRefresh              = time.Second
	DefaultHealthInterval      = 10 * time.Second
	DefaultHealthTimeout       = 2 * time.Second
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 3
	DefaultConsecutiveFailures = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 5 * time.Minute
	DefaultMaxEjectionPercent  = 10
	DefaultRetryAttempts       = 2
	DefaultBackoffBase         = 25 * time.Millisecond
	DefaultBackoffMax          = 250 * time.Millisecond
	DefaultRetryBudgetPercent  = 20
	DefaultRetryMinConcurrency = 3
)

// Config is a complete, resolved gateway configuration: every file merged,
// every `$env.NAME` substituted, every reference checked.
type Config struct {
	// Name is metadata.name of the first document that has one.
	Name string
	// Listeners to open; empty means one plain-HTTP listener on the
	// command line's --listen address.
	Listeners []Listener
	// Routes from every document, in the order they were read. The router
	// orders them by specificity, not by this order.
	Routes []Route
	// TrustedProxies are peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Clients is the client registry for client-id-enforcement.
	Clients []Client
	// Limits protect the gateway from hostile or broken clients.
	Limits Limits
	// SharedStorage is where replicas share state (clusterizable rate
	// limits); nil when not configured.
	SharedStorage *SharedStorage
	// Sources are the files this config was read from.
	Sources []Source
	// Hash is a hex SHA-256 over the sources' contents, in order.
	Hash string
	// Warnings are what in this valid config is likely a mistake;
	// `flexgate validate` prints them and the gateway logs them whenever
	// it loads the config.
	Warnings []Warning
	// LogLevel, when set, is the level of the gateway's log: "debug",
	// "info", "warn" or "error" (a Flex Configuration's
	// logging.runtimeLogs.logLevel); it overrides --log-level.
	LogLevel string
}

// Warning is a likely mistake in a config that loads and serves.
type Warning struct {
	Pos     Pos
	Message string
}

// String renders the warning as file:line:col: warning: message.
func (w Warning) String() string {
	if p := w.Pos.String(); p != "" {
		return p + ": warning: " + w.Message
	}
	// Not about a file: the environment's, say.
	return "warning: " + w.Message
}

// Source is one file read into a Config.
type Source struct {
	Path string
	// Summary is a one-line description for `flexgate validate`.
	Summary string
}

// Listener is one socket the gateway serves on.
type Listener struct {
	Name string
	// Address is host:port to listen on (":8443" when only a port is given).
	Address string
	// Protocol is "HTTP" or "HTTPS".
	Protocol string
	// TLS is set for HTTPS listeners.
	TLS *TLS
	Pos Pos
}

// TLS says how a listener terminates TLS.
type TLS struct {
	// Mode is "TERMINATE", the only mode supported.
	Mode         string
	Certificates []Certificate
	// MinVersion is "1.2" or "1.3".
	MinVersion string
	// MaxVersion is "1.2" or "1.3"; empty means 1.3.
	MaxVersion string
	// ALPN lists the protocols offered, in order; empty means http/1.1.
	ALPN []string
	// Ciphers are the TLS 1.2 suites allowed, by IANA name; empty means
	// the gateway's forward-secret AEAD set.
	Ciphers []string
	// ClientCAPEM verifies client certificates (mutual TLS); with
	// RequireClientCert a client without a valid one is refused.
	ClientCAPEM []byte
	// ClientCAFile is a PEM bundle on disk that verifies client
	// certificates instead of ClientCAPEM; it is re-read when it changes.
	ClientCAFile      string
	RequireClientCert bool
	// SessionTicketKeys are files that each hold one session ticket key,
	// shared by every replica behind one address so that a client resumes
	// on whichever replica it reaches: the first encrypts new tickets, all
	// decrypt (rotation). They are re-read when they change. Empty: the
	// gateway makes its own keys per listener address.
	SessionTicketKeys []KeyFile
}

// KeyFile is a file of secret key material named in the config.
type KeyFile struct {
	Path string
	Pos  Pos
}

// Certificate is a PEM certificate chain and its private key on disk.
type Certificate struct {
	CertFile string
	KeyFile  string
	// CertPEM and KeyPEM hold a certificate written inline (a Flex tls
	// policy) instead of in files.
	CertPEM, KeyPEM []byte
	Pos             Pos
}

// Route sends matching requests through a policy chain to an upstream.
type Route struct {
	ID string
	// Paths are patterns: literal segments, `*` for exactly one segment
	// inside a path, `*` as the last segment for the rest (zero or more).
	Paths []string
	// Methods allowed; empty means any method but TRACE (CONNECT is never
	// allowed).
	Methods []string
	// Upstream receives the requests that pass the chain.
	Upstream Upstream
	// DestinationPath, when set ("/v2"), goes between each target's base
	// path and the request's path on the way upstream (a Flex
	// destinationPath). Routes that differ in it alone share one upstream:
	// its connections, health and circuit breaker.
	DestinationPath string
	// Policies in the order written.
	Policies []PolicySpec
	// WithoutPolicies names policies that broader routes run and this
	// route, which takes some of their requests, deliberately does not; it
	// silences the warning that says so.
	WithoutPolicies []string
	// MaxRequestBodySize overrides Limits.MaxRequestBodySize when > 0.
	MaxRequestBodySize int64
	// Listeners names the listeners the route serves on; empty means
	// every listener. (A Flex ApiInstance serves on its own port.)
	Listeners []string
	// WebSocket, when set, lets the route proxy WebSocket connections;
	// nil: an Upgrade header is removed like any hop-by-hop header and the
	// request goes on as a plain one.
	WebSocket *WebSocket
	// Hosts the request's Host (without its port) must be one of: a name,
	// or "*.example.com" for any name under example.com. Empty means any.
	Hosts []string
	// Headers the request must carry, every one of them.
	Headers []HeaderMatch
	// StripPrefix is removed from the start of the path before Rules are
	// matched and before the path is forwarded (a Flex ApiInstance's base
	// path); Paths include it. It must end at a segment boundary; a path
	// that is the prefix alone reads as "/" to Rules and forwards the
	// upstream's BasePath alone.
	StripPrefix string
	// Rules narrow what Paths admit: a request must match one of them.
	// Empty means every request Paths admit. (Flex route rules.) Routes
	// of one pattern that have rules are tried in config order, before
	// those of the pattern without rules: give them in Flex's order.
	Rules []MatchRule
	// PolicyScope, when set, is shared by routes that run one instance
	// of each policy they have alike (name and parameters, at the same
	// place in the list): a Flex ApiInstance's routes share its policies,
	// so a rate limit's budget and an introspection cache are the API's,
	// not each route's. Empty: the route's policies are its own.
	PolicyScope string
	// ReverseResponse runs the response steps of Policies last to first,
	// as Flex Gateway does (lower order first on the request, last on the
	// response); otherwise they run in the order written.
	ReverseResponse bool
	// Sources are the places of the documents the route was made from
	// (a Flex route: its ApiInstance, Service and PolicyBindings), for
	// `flexgate validate` and /config; empty when Pos says it all.
	Sources []Pos
	Pos     Pos
}

// UpstreamURL renders where the route sends requests, for logs and
// `flexgate validate`: each target's URL with DestinationPath after it,
// separated by ", ".
func (r *Route) UpstreamURL() string {
	if r.DestinationPath == "" {
		return r.Upstream.URL()
	}
	urls := make([]string, len(r.Upstream.Targets))
	for i, t := range r.Upstream.Targets {
		urls[i] = t.URL() + r.DestinationPath
	}
	return strings.Join(urls, ", ")
}

// Origins are the places the route was made from: Sources, or Pos when
// there are none.
func (r *Route) Origins() []Pos {
	if len(r.Sources) > 0 {
		return r.Sources
	}
	return []Pos{r.Pos}
}

// WebSocket is how a route proxies WebSocket connections: a request with
// Upgrade: websocket passes the route's policies, and once the upstream
// has switched protocols the gateway relays both directions byte for byte.
type WebSocket struct {
	// IdleTimeout closes a connection on which no byte has moved either
	// way for this long.
	IdleTimeout time.Duration
	Pos         Pos
}

// DefaultWebSocketIdleTimeout is WebSocket.IdleTimeout when the config is
// silent: Envoy's stream idle timeout, which applies to its upgraded
// connections too. Applications that ping (socket.io, SignalR, graphql-ws
// every 10 to 30 s) never reach it.
const DefaultWebSocketIdleTimeout = 5 * time.Minute

// HeaderMatch is a request header a route or rule requires.
type HeaderMatch struct {
	// Name is the header's name, in any case.
	Name string
	// Value is what the header's first value must equal, or with Regex
	// an RE2 expression its whole value must match. A header that is
	// absent or sent empty matches nothing.
	Value string
	Regex bool
}

// MatchRule is one Flex rule: every field set must match (AND); a route's
// or a policy binding's rules combine with OR. Patterns are RE2 and match
// the whole value, as Flex's do.
type MatchRule struct {
	// Path matches the path after the route's StripPrefix. Its capture
	// groups, when it has any, are concatenated to form the path sent
	// upstream ("/api(/.*)" sends /api/orders as /orders). Empty: any.
	Path string
	// Host matches the Host header without its port. Empty: any.
	Host string
	// Methods matches the method ("GET|POST"). Empty: any.
	Methods string
	// Headers must all be present and match (Regex set).
	Headers []HeaderMatch
	Pos     Pos
}

// Upstream is where a route forwards to: one or more targets, balanced,
// health-checked and protected as the fields below say.
type Upstream struct {
	// Targets receive the requests; the `url` form is one target of
	// weight 1. Never empty in a loaded config.
	Targets []Target
	// Discovery says whether each target's host name stands for itself
	// (DiscoveryStatic) or for every address it resolves to (DiscoveryDNS).
	Discovery Discovery
	// DNSRefresh is how often names are resolved again with DiscoveryDNS.
	DNSRefresh time.Duration
	// HostHeader, when set, replaces the client's Host header.
	HostHeader      string
	ConnectTimeout  time.Duration
	ResponseTimeout time.Duration
	// IdleTimeout is how long a pooled connection to a target may stay
	// idle before the gateway closes it.
	IdleTimeout time.Duration
	// MaxConns caps the pooled connections to each target address.
	MaxConns int
	// MaxConnWait is how long a request waits for one of MaxConns
	// connections when every one is busy before it is answered 503
	// upstream_saturated; zero: ConnectTimeout. Dials stay bounded by
	// ConnectTimeout. A Flex circuit-breaker-flex maxConnections sets it
	// to the response timeout, as long as Flex Gateway queues a request.
	MaxConnWait time.Duration
	// CAFile, when set, is the PEM bundle that verifies https targets.
	CAFile string
	// InsecureSkipVerify disables certificate verification of https
	// targets (development only).
	InsecureSkipVerify bool
	// CAPEM, when set, is PEM text of the CAs that verify https targets,
	// instead of CAFile or the system roots (a Flex tls-outbound policy's
	// trustedCA).
	CAPEM string
	// ClientCert, when set, is the certificate the gateway presents to
	// https targets (CertPEM and KeyPEM; a Flex tls-outbound policy's).
	ClientCert *Certificate
	// TLSMinVersion and TLSMaxVersion bound the TLS versions of the
	// connections to https targets: "1.2" or "1.3", as TLSVersion reads
	// them; empty: 1.2 and 1.3 (a Flex tls-outbound policy's minversion
	// and maxversion).
	TLSMinVersion, TLSMaxVersion string
	// TLSCiphers limits the TLS 1.2 cipher suites offered to https
	// targets, by IANA name; empty: Go's (a Flex tls-outbound policy's
	// ciphers). TLS 1.3 has its own, always all three.
	TLSCiphers []string
	// LoadBalancing picks the target of each request.
	LoadBalancing LoadBalancing
	// SlowStart, when positive, ramps the share of a target that joins (or
	// returns to) an upstream already serving, from 10 % to its weight's.
	SlowStart time.Duration
	// HealthCheck, when set, probes every target actively.
	HealthCheck *HealthCheck
	// Outlier ejects targets that fail requests (passive health).
	Outlier Outlier
	// CircuitBreaker bounds what the upstream is sent at once.
	CircuitBreaker CircuitBreaker
	// Retries, when set, sends failed idempotent requests again.
	Retries *Retries
	// Name labels the upstream in metrics and /config; empty: its URL. A
	// kind whose upstreams have names (Flex's Service) sets it.
	Name string
	Pos  Pos
}

// Target is one destination of an upstream.
type Target struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is host:port with the port always present.
	Host string
	// BasePath is prepended to the request path ("" or "/prefix", no
	// trailing slash).
	BasePath string
	// Weight is the target's share of the requests relative to the other
	// targets' (1 to MaxWeight). With DiscoveryDNS the addresses a name
	// resolves to share its weight.
	Weight int
	Pos    Pos
}

// MaxWeight is the largest weight of a target.
const MaxWeight = 1000

// URL renders the target as a URL, for logs, metrics and /config.
func (t Target) URL() string { return t.Scheme + "://" + t.Host + t.BasePath }

// URL renders the upstream for logs and /config: its one target's URL, or
// the targets' URLs separated by ", ".
func (u Upstream) URL() string {
	urls := make([]string, len(u.Targets))
	for i, t := range u.Targets {
		urls[i] = t.URL()
	}
	return strings.Join(urls, ", ")
}

// Discovery is how an upstream finds the addresses of its targets.
type Discovery string

const (
	// DiscoveryStatic: a target is one address; its name is resolved when
	// a connection is made (answers cached for 10 s), so connections
	// spread over the addresses but health and balancing see one target.
	DiscoveryStatic Discovery = "static"
	// DiscoveryDNS: every A/AAAA record of a target's name is a target of
	// its own (a Kubernetes headless Service), found again every
	// DNSRefresh while serving.
	DiscoveryDNS Discovery = "dns"
)

// LoadBalancing is how an upstream picks a target for a request.
type LoadBalancing string

const (
	// LeastRequest picks two targets at random by weight and sends to the
	// one with fewer requests in flight for its weight (the default).
	LeastRequest LoadBalancing = "least-request"
	// RoundRobin takes the targets in turn, interleaved by weight (smooth
	// weighted round robin).
	RoundRobin LoadBalancing = "round-robin"
	// Random picks a target at random by weight.
	Random LoadBalancing = "random"
)

// HealthCheck is an upstream's active health check: every Interval each
// target is sent `GET Path`; UnhealthyThreshold failures in a row take it
// out of service, HealthyThreshold passes in a row bring it back.
type HealthCheck struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// ExpectStatus are the status ranges of a pass, each inclusive.
	ExpectStatus []StatusRange
	Pos          Pos
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ From, To int }

// Outlier is an upstream's passive health check: a target whose requests
// fail ConsecutiveFailures times in a row (no connection, a reset, a
// timeout, or a 5xx answer) is ejected for BaseEjectionTime times the
// number of its recent ejections, at most MaxEjectionTime; at most
// MaxEjectionPercent of the targets (but always one) are ejected at once,
// and never the last one in service.
type Outlier struct {
	// ConsecutiveFailures is 0 when outlier detection is off.
	ConsecutiveFailures int
	BaseEjectionTime    time.Duration
	MaxEjectionTime     time.Duration
	MaxEjectionPercent  int
}

// CircuitBreaker holds an upstream's thresholds, each 0 when unset: over
// one, a request is answered 503 upstream_overloaded at once instead of
// waiting.
type CircuitBreaker struct {
	// MaxConnections bounds the connections open to the targets together.
	MaxConnections int
	// MaxPendingRequests bounds the requests waiting for a connection.
	MaxPendingRequests int
	// MaxRequests bounds the requests in flight to the targets together.
	MaxRequests int
	// MaxRetries bounds the retries in flight to the targets together.
	MaxRetries int
}

// Retries says when a failed request is sent again: only idempotent ones
// whose body is in memory, to another target when there is one.
type Retries struct {
	// Attempts is how many times a request may be sent in all (2 to 10).
	Attempts int
	// On are the failures that are retried.
	On []RetryOn
	// PerTryTimeout bounds each attempt's wait for the answer's head; 0:
	// the upstream's responseTimeout.
	PerTryTimeout time.Duration
	// BackoffBase and BackoffMax bound the pause before each retry: a
	// random time up to BackoffBase × 2^(retry-1), at most BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// BudgetPercent of the requests in flight to the upstream may be
	// retries at once, or BudgetMinConcurrency when that is more.
	BudgetPercent        int
	BudgetMinConcurrency int
	Pos                  Pos
}

// RetryOn is a kind of failure that may be retried.
type RetryOn string

const (
	// RetryConnectFailure: no connection could be made (or its TLS
	// handshake failed).
	RetryConnectFailure RetryOn = "connect-failure"
	// RetryReset: the connection was closed or reset, or the answer did
	// not come in time, before a complete answer head.
	RetryReset RetryOn = "reset"
	// RetryGatewayError: connect-failure, reset, and answers 502, 503 and
	// 504.
	RetryGatewayError RetryOn = "gateway-error"
	// Retry5xx: gateway-error and every 5xx answer.
	Retry5xx RetryOn = "5xx"
)

// PolicySpec is one entry of a route's policies list. Its parameters stay a
// YAML node so that the policy package decodes them strictly and reports
// errors at their own line.
type PolicySpec struct {
	// Name is the registered policy name ("rate-limiting").
	Name string
	// Params is the mapping under the name, as written: chain.Decode
	// substitutes `$env.NAME` when it decodes them (and leaves it to the
	// expression compiler in expression parameters), so the admin /config
	// view shows the reference, not the secret. nil when the policy was
	// written without parameters.
	Params *yaml.Node
	// When limits the policy to the requests that match one of its rules
	// (a Flex PolicyBinding's rules); empty means every request.
	When []MatchRule
	Pos  Pos
}

// Client is a registered API client for client-id-enforcement.
type Client struct {
	ID string
	// Secret is the plain secret; empty when SecretHash is used.
	Secret string
	// SecretHash is the SHA-256 of the secret (32 bytes) when configured as
	// `secretHash: sha256:<hex>`.
	SecretHash []byte
	Pos        Pos
}

// Limits protect the gateway. Zero values are replaced by the defaults at
// load, except MaxConnsPerClient, where zero means no per-client limit.
type Limits struct {
	MaxRequestBodySize int64
	MaxHeaderBytes     int
	// MaxResponseHeaderBytes bounds an upstream answer's header block; it
	// is also the size of each pooled upstream connection's read buffer.
	MaxResponseHeaderBytes int
	ReadTimeout            time.Duration
	WriteTimeout           time.Duration
	IdleTimeout            time.Duration
	MaxConns               int // open at once, across all listeners
	// MaxConnsPerClient is the most of them one client address holds (one
	// IPv6 /64); peers in TrustedProxies are exempt. 0: no limit.
	MaxConnsPerClient int
	// PathParameters says what happens to a request path with ';' path
	// parameters ("/a;jsessionid=1/b"), which Java servlet containers
	// strip before they route but other upstreams do not.
	PathParameters PathParameters
}

// PathParameters is what the gateway does with ';' path parameters.
type PathParameters string

const (
	// PathParametersReject answers 400 to a path with a ';' or %3B in
	// it, before routing.
	PathParametersReject PathParameters = "reject"
	// PathParametersStrip removes a raw ';' and the rest of its segment
	// before the path is normalised, routed and forwarded; %3B is still
	// answered with 400.
	PathParametersStrip PathParameters = "strip"
)

// DefaultLimits are what Limits holds when the config says nothing.
var DefaultLimits = Limits{
	MaxRequestBodySize:     10 << 20,
	MaxHeaderBytes:         64 << 10,
	MaxResponseHeaderBytes: 32 << 10,
	ReadTimeout:            30 * time.Second,
	WriteTimeout:           60 * time.Second,
	IdleTimeout:            90 * time.Second,
	MaxConns:               10000,
	PathParameters:         PathParametersReject,
	MaxConnsPerClient:      256,
}
