package introspection

import (
	"net/url"
	"strings"

	"github.com/flexgate/flexgate/chain"
)

// Flex Gateway's defaults for oauth2-token-introspection-flex.
const (
	FlexDefaultTokenTTL        = 600   // seconds
	FlexDefaultTimeoutMillis   = 10000 // milliseconds
	FlexDefaultMaxCacheEntries = 1000
)

func init() {
	chain.Register(chain.Registration{
		Name: "oauth2-token-introspection-flex",
		New:  func() chain.Policy { return new(FlexIntrospector) },
		Provides: []chain.ValueSpec{
			{Name: "token.sub"}, {Name: "token.client_id"}, {Name: "token.scope"},
			{Name: "token.claims", Object: true},
			// authentication.clientId, as the Introspector sets it.
			{Name: "client.id"},
		},
	})
}

// FlexIntrospector is oauth2-token-introspection-flex: Flex Gateway's
// OAuth 2.0 token introspection, with its parameters, run by the
// Introspector. Once provisioned it is safe for concurrent use.
type FlexIntrospector struct {
	// IntrospectionURL is the server's introspection endpoint.
	IntrospectionURL string `yaml:"introspectionURL"`
	// AuthorizationValue is the Authorization header the gateway sends
	// to the server ("Basic ..." or "Bearer ...").
	AuthorizationValue string `yaml:"authorizationValue"`
	// ValidatedTokenTTL is how many seconds an answer is reused; 600.
	ValidatedTokenTTL *int `yaml:"validatedTokenTTL" min:"0" max:"31622400"`
	// AuthenticationTimeout bounds a call, in milliseconds; 10000.
	AuthenticationTimeout *int `yaml:"authenticationTimeout" min:"1" max:"60000"`
	// SkipClientIDValidation: Flex Gateway matches the token's client
	// against API contracts unless true; local mode has no contracts.
	SkipClientIDValidation *bool `yaml:"skipClientIdValidation"`
	// ConsumerBy names the claim that identifies the client: client_id
	// or username.
	ConsumerBy string `yaml:"consumerBy"`
	// ExposeHeaders would pass the answer's claims upstream as headers.
	ExposeHeaders bool `yaml:"exposeHeaders"`
	// Scopes is a space-separated list the token must carry.
	Scopes string `yaml:"scopes"`
	// ScopeValidationCriteria is AND (every scope, the default) or OR
	// (one of them).
	ScopeValidationCriteria string `yaml:"scopeValidationCriteria"`
	// MaxCacheEntries bounds the cache; 1000.
	MaxCacheEntries int `yaml:"maxCacheEntries" min:"0" max:"2147483647" note:"0: the default, 1000"`

	Introspector `yaml:"-"`
}

// Validate checks Flex Gateway's parameters and sets up the Introspector.
func (f *FlexIntrospector) Validate(env *chain.Env) error {
	p := env.Spec.Params
	in := &f.Introspector
	u, err := url.Parse(f.IntrospectionURL)
	switch {
	case f.IntrospectionURL == "":
		return chain.Errorf(p, "introspectionURL is required: the introspection endpoint of your authorization server")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
		return chain.Errorf(chain.Field(p, "introspectionURL"), "introspectionURL %q is not an http(s) URL without credentials: write https://host[:port]/path", f.IntrospectionURL)
	}
	auth := strings.TrimSpace(f.AuthorizationValue)
	scheme, _, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return chain.Errorf(p, "authorizationValue is required: the Authorization header the gateway sends to the introspection server (Basic ... or Bearer ...)")
	case !strings.EqualFold(scheme, "Basic") && !strings.EqualFold(scheme, "Bearer") || len(auth) == len(scheme):
		// Never the value itself: it is a credential.
		return chain.Errorf(chain.Field(p, "authorizationValue"), "authorizationValue must be \"Basic <credentials>\" or \"Bearer <token>\"")
	case strings.ContainsAny(auth, "\r\n\x00"):
		return chain.Errorf(chain.Field(p, "authorizationValue"), "authorizationValue must be one line")
	}
	in.URL, in.authorization = f.IntrospectionURL, auth
	ttl := FlexDefaultTokenTTL
	if f.ValidatedTokenTTL != nil {
		ttl = *f.ValidatedTokenTTL
	}
	in.CacheTTL = &ttl
	ms := FlexDefaultTimeoutMillis
	if f.AuthenticationTimeout != nil {
		ms = *f.AuthenticationTimeout
	}
	in.Timeout = float64(ms) / 1000
	if f.SkipClientIDValidation == nil || !*f.SkipClientIDValidation {
		node := chain.Field(p, "skipClientIdValidation")
		env.Warn(node, "the token's client is not matched against API contracts, which local mode has none of; "+
			"write skipClientIdValidation: true to say so (flexgate checks the token with the server, and its scopes)")
	}
	switch f.ConsumerBy {
	case "", "client_id":
	case "username":
		in.consumerByUsername = true
	default:
		return chain.Errorf(chain.Field(p, "consumerBy"), "consumerBy %q is unknown; use client_id or username", f.ConsumerBy)
	}
	if f.ExposeHeaders {
		env.Warn(chain.Field(p, "exposeHeaders"), "exposeHeaders is not supported yet and is ignored: the token's claims are not sent upstream as headers "+
			"(use header-injection-flex with #[authentication.properties.claims.NAME], or request-headers-set with $token.claims.NAME)")
	}
	in.Scopes = strings.Fields(f.Scopes)
	switch strings.ToUpper(f.ScopeValidationCriteria) {
	case "", "AND":
		in.anyScope = false
	case "OR":
		in.anyScope = true
	default:
		return chain.Errorf(chain.Field(p, "scopeValidationCriteria"), "scopeValidationCriteria %q is unknown; use AND (every scope) or OR (one of them)", f.ScopeValidationCriteria)
	}
	in.MaxCacheEntries = f.MaxCacheEntries
	if in.MaxCacheEntries == 0 {
		in.MaxCacheEntries = FlexDefaultMaxCacheEntries
	}
	return in.Validate(env)
}

var _ chain.Policy = (*FlexIntrospector)(nil)
