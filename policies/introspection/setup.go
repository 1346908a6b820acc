// Package introspection implements the token-introspection policy: the
// bearer token of each request is checked with an OAuth 2.0 authorization
// server's introspection endpoint (RFC 7662), and the answer is cached.
package introspection

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/cabundle"
)

// Defaults where the config is silent.
const (
	DefaultCacheTTL         = 60
	DefaultInactiveCacheTTL = 5
	DefaultMaxCacheEntries  = 100_000
	DefaultTimeout          = 3 * time.Second
)

// Introspector is the token-introspection policy. Its exported fields are
// the policy's parameters; a provisioned Introspector is safe for
// concurrent use.
type Introspector struct {
	// URL of the introspection endpoint, https (verified with the system
	// roots or CAFile) or plain http for local development. Required.
	URL string `yaml:"url"`
	// ClientID and ClientSecret authenticate the gateway to the
	// introspection server with HTTP Basic, as RFC 7662 servers expect.
	// Required; write them as $env.NAME.
	ClientID     string `yaml:"clientId"`
	ClientSecret string `yaml:"clientSecret"`
	// CacheTTL is how many seconds an active token's answer is reused,
	// never past the token's exp. 0 asks the server every time. Default 60.
	CacheTTL *int `yaml:"cacheTtl" min:"0" max:"31622400"`
	// InactiveCacheTTL is how many seconds an `active: false` answer is
	// reused, so that a client retrying a dead token does not hammer the
	// server. 0 disables it. Default 5.
	InactiveCacheTTL *int `yaml:"inactiveCacheTtl" min:"0" max:"31622400"`
	// MaxCacheEntries bounds the cache; when full, arbitrary entries are
	// dropped. Default 100000.
	MaxCacheEntries int `yaml:"maxCacheEntries" min:"0" max:"2147483647" note:"0: the default, 100000"`
	// Timeout is the seconds one introspection call may take, connect
	// included; fractions allowed. Default 3.
	Timeout float64 `yaml:"timeout" min:"0" max:"60" note:"seconds; 0: the default, 3"`
	// CAFile is a PEM bundle that verifies an https server instead of the
	// system roots.
	CAFile string `yaml:"caFile"`
	// Scopes the token must all carry; otherwise 403 insufficient_scope.
	Scopes []string `yaml:"scopes"`

	hc        *fasthttp.HostClient
	basicAuth string
	timeout   time.Duration
	cacheTTL  time.Duration
	deadTTL   time.Duration
	now       func() time.Time

	cache  *cache
	flight group

	creds        *chain.Credentials
	twoTokens    *chain.Rejection
	noToken      *chain.Rejection
	invalidToken *chain.Rejection
	insufficient *chain.Rejection
	unavailable  *chain.Rejection

	challengeNoToken []byte
	challengeRequest []byte
	challengeInvalid []byte
	challengeScope   []byte

	m    *policyMetrics
	logs logThrottle

	// authorization, when set, is the Authorization header sent to the
	// introspection server as written (oauth2-token-introspection-flex's
	// authorizationValue), instead of Basic from ClientID and ClientSecret.
	authorization string
	// anyScope passes a token that carries one of Scopes, not all.
	anyScope bool
	// consumerByUsername makes the answer's username, not its client_id,
	// the request's client (Flex's consumerBy: username).
	consumerByUsername bool
}

// The values the policy hands to the steps after it, from an active
// token's answer: $token.sub, $token.client_id (also as $client.id),
// $token.scope, and the whole answer as $token.claims.NAME.
var (
	subValue      chain.Value
	clientIDValue chain.Value
	scopeValue    chain.Value
	claimsValue   chain.Value
	clientValue   chain.Value
)

func init() {
	chain.Register(chain.Registration{
		Name: "token-introspection",
		New:  func() chain.Policy { return new(Introspector) },
		Provides: []chain.ValueSpec{
			{Name: "token.sub"}, {Name: "token.client_id"}, {Name: "token.scope"},
			{Name: "token.claims", Object: true},
			// The token's client is the request's client, as after
			// client-id-enforcement (Flex: authentication.clientId).
			{Name: "client.id"},
		},
	})
	subValue = chain.MustValue("token.sub")
	clientIDValue = chain.MustValue("token.client_id")
	scopeValue = chain.MustValue("token.scope")
	claimsValue = chain.MustValue("token.claims")
	clientValue = chain.MustValue("client.id")
}

// Validate checks the parameters without touching the network.
func (in *Introspector) Validate(env *chain.Env) error {
	p := env.Spec.Params
	if in.URL == "" {
		return fmt.Errorf("url is required: the introspection endpoint of your authorization server, " +
			"e.g. url: https://auth.example.com/oauth2/introspect")
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return chain.Errorf(chain.Field(p, "url"), "url %q is not an http(s) URL: write https://host[:port]/path", in.URL)
	}
	if u.User != nil {
		return chain.Errorf(chain.Field(p, "url"), "url must not carry credentials: use clientId and clientSecret")
	}
	if in.authorization == "" && (in.ClientID == "" || in.ClientSecret == "") {
		node := chain.Field(p, "clientId")
		if node == nil {
			node = chain.Field(p, "clientSecret")
		}
		return chain.Errorf(node, "clientId and clientSecret are both required: the introspection server "+
			"authenticates the gateway with them (write them as $env.NAME)")
	}
	for i, s := range in.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			node := chain.Field(p, "scopes")
			if node != nil && i < len(node.Content) {
				node = node.Content[i]
			}
			return chain.Errorf(node, "scope %q is not a scope token: no spaces, quotes or backslashes", s)
		}
	}
	if in.CAFile != "" {
		// Against the config file's directory, as every file a config
		// names.
		in.CAFile = config.ResolveFile(env.Spec.Pos.File, in.CAFile)
		if u.Scheme != "https" {
			return chain.Errorf(chain.Field(p, "caFile"), "caFile is set but url is plain http: use an https url")
		}
		if err := cabundle.Check(in.CAFile); err != nil {
			return chain.Errorf(chain.Field(p, "caFile"), "%v", err)
		}
	}
	return nil
}

// Provision builds the HTTP client, cache and rejections. It does not dial:
// the first connection is made by the first request that needs it.
func (in *Introspector) Provision(env *chain.Env) error {
	u, err := url.Parse(in.URL)
	if err != nil {
		return err
	}
	isTLS := u.Scheme == "https"
	in.timeout = DefaultTimeout
	if in.Timeout > 0 {
		in.timeout = time.Duration(in.Timeout * float64(time.Second))
	}
	in.cacheTTL = seconds(in.CacheTTL, DefaultCacheTTL)
	in.deadTTL = seconds(in.InactiveCacheTTL, DefaultInactiveCacheTTL)
	maxEntries := in.MaxCacheEntries
	if maxEntries == 0 {
		maxEntries = DefaultMaxCacheEntries
	}
	in.cache = newCache(maxEntries)
	if in.now == nil {
		in.now = time.Now
	}
	// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
	in.basicAuth = "Basic " + base64.StdEncoding.EncodeToString(
		[]byte(url.QueryEscape(in.ClientID)+":"+url.QueryEscape(in.ClientSecret)))
	if in.authorization != "" {
		in.basicAuth = in.authorization
	}

	in.hc = &fasthttp.HostClient{
		Addr:     fasthttp.AddMissingPort(u.Host, isTLS),
		Name:     "flexgate",
		IsTLS:    isTLS,
		MaxConns: 256,
		// Under a burst of distinct new tokens, wait for a connection
		// rather than fail at once.
		MaxConnWaitTimeout:  in.timeout,
		MaxIdleConnDuration: 30 * time.Second,
		ReadTimeout:         in.timeout,
		WriteTimeout:        in.timeout,
		// A body larger than this is not an introspection response.
		MaxResponseBodySize: 64 << 10,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, in.timeout)
		},
	}
	if isTLS {
		tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if in.CAFile != "" {
			// A trust bundle rotated on disk verifies the next handshake.
			ca, err := cabundle.New(in.CAFile, env.Logger.With("policy", "token-introspection"))
			if err != nil {
				return err
			}
			tc = ca.ClientConfig(u.Hostname())
		}
		in.hc.TLSConfig = tc
	} else if h := u.Hostname(); h != "localhost" && !isLoopback(h) {
		env.Logger.Warn("token-introspection over plain http sends tokens and the gateway's credentials "+
			"unencrypted: use https outside local development", "url", in.URL)
	}

	in.challengeNoToken = []byte(`Bearer realm="flexgate"`)
	// RFC 6750 §3.1: a request that repeats a parameter is an
	// invalid_request, answered 400.
	in.challengeRequest = []byte(`Bearer realm="flexgate", error="invalid_request"`)
	if in.creds, err = env.Credentials([]string{fasthttp.HeaderAuthorization}, nil); err != nil {
		return err
	}
	// RFC 6750 §2.2: an upstream may take the token from a form body,
	// where no one checked it.
	in.creds.RefuseInForm(env, queryToken.String(), "the request carries a token in Authorization and an access_token "+
		"in the form body; send it only in Authorization")
	in.creds.SetChallenge(in.challengeRequest)
	in.twoTokens = env.Reject(400, "duplicate_credentials",
		"the request carries a token in Authorization and in the access_token query parameter; send it only in Authorization")
	in.challengeInvalid = []byte(`Bearer realm="flexgate", error="invalid_token"`)
	in.challengeScope = []byte(`Bearer realm="flexgate", error="insufficient_scope", scope="` + strings.Join(in.Scopes, " ") + `"`)
	in.noToken = env.Reject(401, "missing_token", "a bearer token is required: send Authorization: Bearer <token>")
	in.invalidToken = env.Reject(401, "invalid_token", "the bearer token is malformed, expired, revoked or unknown")
	lacks := "the token lacks a required scope: "
	if in.anyScope {
		lacks = "the token carries none of the scopes: "
	}
	in.insufficient = env.Reject(403, "insufficient_scope", lacks+strings.Join(in.Scopes, " "))
	in.unavailable = env.Reject(503, "introspection_unavailable",
		"the token could not be checked because the authorization server did not answer; retry later")
	in.m = newPolicyMetrics(env.Metrics, env.Owner())
	in.logs.logger = env.Logger
	return nil
}

// Close drops the idle connections to the introspection server.
func (in *Introspector) Close() error {
	if in.hc != nil {
		in.hc.CloseIdleConnections()
	}
	return nil
}

func seconds(v *int, def int) time.Duration {
	if v == nil {
		return time.Duration(def) * time.Second
	}
	return time.Duration(*v) * time.Second
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var (
	_ chain.Policy         = (*Introspector)(nil)
	_ chain.RequestHandler = (*Introspector)(nil)
)
