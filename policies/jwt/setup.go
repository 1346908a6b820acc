// Package jwt implements the jwt-validation policy and Flex Gateway's
// jwt-validation-flex: a request's JSON Web Token is verified with keys from
// the config or a JWKS endpoint, its claims are checked, and they are handed
// to the policies after it. A verified token is cached until its exp, so a
// token seen again costs no signature check.
//
// Signatures are checked by github.com/lestrrat-go/jwx/v3; this package
// decides which key and algorithm may be used, never the token.
package jwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/cabundle"
)

// Defaults where the config is silent.
const (
	DefaultLeeway          = 60 * time.Second
	DefaultMaxCacheEntries = 10_000
	// maxUnexpiring is how long a token without exp stays cached.
	maxUnexpiring = 10 * time.Minute
	maxLeeway     = 10 * time.Minute
)

// Validator is the jwt-validation policy. Its exported fields are the
// policy's parameters; a provisioned Validator is safe for concurrent use.
type Validator struct {
	// From is an expression whose value is the token, e.g.
	// $request.header.X-Jwt; left out, the token is the bearer token of
	// the Authorization header.
	From chain.Expression `yaml:"from"`
	// Keys verify tokens: public keys (PEM or JWK) and HMAC secrets.
	Keys []Key `yaml:"keys"`
	// JWKS fetches verification keys from an identity provider.
	JWKS *JWKS `yaml:"jwks"`
	// Algorithms the route accepts, a subset of what the keys verify;
	// left out, every algorithm a key's type verifies. "none" is refused.
	Algorithms []string `yaml:"algorithms"`
	// Issuer: the token's iss must be one of these.
	Issuer Strings `yaml:"issuer"`
	// Audiences: the token's aud must hold one of these.
	Audiences Strings `yaml:"audiences"`
	// Leeway is the clock skew allowed for exp and nbf; default 60s.
	Leeway string `yaml:"leeway"`
	// RequireExp refuses tokens without exp; default true.
	RequireExp *bool `yaml:"requireExp"`
	// RequireNbf refuses tokens without nbf; default false.
	RequireNbf bool `yaml:"requireNbf"`
	// Claims are further requirements on the token's claims.
	Claims []Claim `yaml:"claims"`
	// ClientIDClaim names the claim that is $client.id; default
	// client_id, else azp.
	ClientIDClaim string `yaml:"clientIdClaim"`
	// MaxCacheEntries bounds the cache of verified tokens; default 10000.
	MaxCacheEntries int `yaml:"maxCacheEntries" min:"0" max:"2147483647" note:"0: the default, 10000"`

	s  settings
	rt runtime
}

// Key is one verification key written in the config: exactly one of PEM,
// JWK and Secret.
type Key struct {
	// PEM is a public key or certificate (RSA, EC P-256/384/521, Ed25519).
	PEM string `yaml:"pem"`
	// JWK is a public JWK or JWK set, as JSON text or a YAML mapping.
	JWK any `yaml:"jwk"`
	// Secret is an HMAC secret (HS256 needs 32 bytes, HS384 48, HS512
	// 64); write it as $env.NAME.
	Secret string `yaml:"secret"`
	// KID, when set, is the only kid the key verifies; without it the key
	// fits a token with any kid.
	KID string `yaml:"kid"`
	// Alg restricts the key to one algorithm.
	Alg string `yaml:"alg"`
}

// JWKS is where verification keys are fetched from.
type JWKS struct {
	// URL of the JWK set, or a list of them; https, or http for a local
	// identity provider.
	URL Strings `yaml:"url"`
	// TTL is how long a set is used before it is fetched again; default 1h.
	TTL string `yaml:"ttl"`
	// Timeout bounds one fetch; default 10s.
	Timeout string `yaml:"timeout"`
	// CAFile is a PEM bundle that verifies an https endpoint instead of
	// the system roots.
	CAFile string `yaml:"caFile"`
}

// Claim is a requirement on one claim.
type Claim struct {
	// Name of the claim.
	Name string `yaml:"name"`
	// Equals: the claim is one of these values (a string claim as text,
	// a number or boolean as written; an array claim holds one of them).
	Equals Strings `yaml:"equals"`
	// Contains: the claim holds every one of these, as the elements of an
	// array or the space-separated words of a string (scope).
	Contains Strings `yaml:"contains"`
	// Required refuses a token without the claim; default true. A claim
	// that is not required is checked when present.
	Required *bool `yaml:"required"`
}

// Strings is a parameter written as one value or a list of them.
type Strings []string

// UnmarshalYAML accepts a scalar or a sequence of scalars; anything else
// is an error that chain.Decode puts after the parameter's name.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Strings{n.Value}
		return nil
	}
	bad := func(what string) error { return fmt.Errorf("must be a value or a list of values, not %s", what) }
	if n.Kind != yaml.SequenceNode {
		return bad("a mapping")
	}
	list := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		if e.Kind == yaml.AliasNode && e.Alias != nil {
			e = e.Alias
		}
		switch e.Kind {
		case yaml.ScalarNode:
			list = append(list, e.Value)
		case yaml.SequenceNode:
			return bad("a list of lists")
		default:
			return bad("a list of mappings")
		}
	}
	*s = list
	return nil
}

// settings are what either form's parameters decide.
type settings struct {
	// from is the token's expression; nil: Authorization: Bearer.
	from       *expr.Template
	static     []*vkey
	jwks       []jwksSpec
	allowed    map[string]bool // nil: any algorithm a key verifies
	issuers    []string
	audiences  []string
	requireAud bool
	leeway     time.Duration
	requireExp bool
	requireNbf bool
	rules      []claimRule
	// conds are the rules with a condition, checked on every request.
	conds       []claimRule
	clientClaim []string
	// clientExpr, when set, computes $client.id on each request.
	clientExpr *expr.Template
	maxEntries int
	// flex shapes the answers as Flex Gateway's.
	flex bool
}

type claimRule struct {
	name     string
	equals   []string
	contains []string
	required bool
	// present: the claim, when the token has it, must have a value: not
	// null, false, empty text, an empty array or an empty object (a Flex
	// custom claim whose value is the claim itself, #[vars.claimSet.NAME]).
	present bool
	// cond, when set, must hold on every request whose token has the
	// claim (a Flex custom claim written as an expression, which may read
	// the request too).
	cond *expr.Condition
}

// The values the policy hands to the steps after it.
var (
	subValue      chain.Value
	clientIDValue chain.Value
	scopeValue    chain.Value
	claimsValue   chain.Value
	clientValue   chain.Value
)

// provides are the values a verified token gives: $token.sub,
// $token.client_id, $token.scope, the claims as $token.claims.NAME, and
// the token's client as $client.id.
var provides = []chain.ValueSpec{
	{Name: "token.sub"}, {Name: "token.client_id"}, {Name: "token.scope"},
	{Name: "token.claims", Object: true}, {Name: "client.id"},
}

func init() {
	chain.Register(chain.Registration{Name: "jwt-validation", New: func() chain.Policy { return new(Validator) }, Provides: provides})
	subValue = chain.MustValue("token.sub")
	clientIDValue = chain.MustValue("token.client_id")
	scopeValue = chain.MustValue("token.scope")
	claimsValue = chain.MustValue("token.claims")
	clientValue = chain.MustValue("client.id")
}

// Validate checks the parameters without touching the network.
func (v *Validator) Validate(env *chain.Env) error {
	p := env.Spec.Params
	s := settings{leeway: DefaultLeeway, requireExp: true, maxEntries: DefaultMaxCacheEntries,
		clientClaim: []string{"client_id", "azp"}}
	if v.From != "" {
		t, err := compileFrom(string(v.From), env)
		if err != nil {
			return chain.Errorf(chain.Field(p, "from"), "from: %v", err)
		}
		s.from = t
	}
	if len(v.Algorithms) > 0 {
		s.allowed = map[string]bool{}
		node := chain.Field(p, "algorithms")
		for i, a := range v.Algorithms {
			if err := checkAlgorithm(a); err != nil {
				return chain.Errorf(item(node, i), "%v", err)
			}
			s.allowed[a] = true
		}
	}
	keysNode := chain.Field(p, "keys")
	for i, k := range v.Keys {
		keys, err := k.load(item(keysNode, i), s.allowed)
		if err != nil {
			return err
		}
		s.static = append(s.static, keys...)
	}
	if v.JWKS != nil {
		jn := chain.Field(p, "jwks")
		if len(v.JWKS.URL) == 0 {
			return chain.Errorf(jn, "jwks: url is required: the JWK set of your identity provider, e.g. url: https://idp.example.com/.well-known/jwks.json")
		}
		ttl, err := duration(chain.Field(jn, "ttl"), "ttl", v.JWKS.TTL, DefaultJWKSTTL, time.Second, 7*24*time.Hour)
		if err != nil {
			return err
		}
		timeout, err := duration(chain.Field(jn, "timeout"), "timeout", v.JWKS.Timeout, DefaultJWKSTimeout, time.Millisecond, time.Minute)
		if err != nil {
			return err
		}
		if v.JWKS.CAFile != "" {
			v.JWKS.CAFile = config.ResolveFile(env.Spec.Pos.File, v.JWKS.CAFile)
		}
		urlNode := chain.Field(jn, "url")
		for i, u := range v.JWKS.URL {
			if err := checkJWKSURL(u); err != nil {
				return chain.Errorf(item(urlNode, i), "%v", err)
			}
			if v.JWKS.CAFile != "" {
				if !strings.HasPrefix(u, "https://") {
					return chain.Errorf(chain.Field(jn, "caFile"), "caFile is set but %s is plain http: use an https url", u)
				}
				if err := cabundle.Check(v.JWKS.CAFile); err != nil {
					return chain.Errorf(chain.Field(jn, "caFile"), "%v", err)
				}
			}
			s.jwks = append(s.jwks, jwksSpec{url: u, ttl: ttl, timeout: timeout, caFile: v.JWKS.CAFile})
		}
	}
	if len(v.Keys) == 0 && v.JWKS == nil {
		return chain.Errorf(p, "keys or jwks is required: the keys that verify tokens, e.g. jwks: {url: https://idp.example.com/.well-known/jwks.json}")
	}
	for i, iss := range v.Issuer {
		if iss == "" {
			return chain.Errorf(item(chain.Field(p, "issuer"), i), "issuer must not be empty")
		}
	}
	s.issuers = v.Issuer
	for i, a := range v.Audiences {
		if a == "" {
			return chain.Errorf(item(chain.Field(p, "audiences"), i), "an audience must not be empty")
		}
	}
	s.audiences, s.requireAud = v.Audiences, len(v.Audiences) > 0
	leeway, err := duration(chain.Field(p, "leeway"), "leeway", v.Leeway, DefaultLeeway, 0, maxLeeway)
	if err != nil {
		return err
	}
	s.leeway = leeway
	if v.RequireExp != nil {
		s.requireExp = *v.RequireExp
	}
	s.requireNbf = v.RequireNbf
	claimsNode := chain.Field(p, "claims")
	for i, c := range v.Claims {
		at := item(claimsNode, i)
		if c.Name == "" {
			return chain.Errorf(at, "a claim needs a name, e.g. {name: scope, contains: [orders:read]}")
		}
		r := claimRule{name: c.Name, equals: c.Equals, contains: c.Contains, required: c.Required == nil || *c.Required}
		if !r.required && len(r.equals) == 0 && len(r.contains) == 0 {
			return chain.Errorf(at, "claim %s is neither required nor checked: add equals or contains, or remove it", c.Name)
		}
		s.rules = append(s.rules, r)
	}
	if v.ClientIDClaim != "" {
		s.clientClaim = []string{v.ClientIDClaim}
	}
	if v.MaxCacheEntries > 0 {
		s.maxEntries = v.MaxCacheEntries
	}
	v.s = s
	return nil
}

// item returns the i-th element of a sequence node, or node itself.
func item(node *yaml.Node, i int) *yaml.Node {
	if node != nil && node.Kind == yaml.SequenceNode && i < len(node.Content) {
		return node.Content[i]
	}
	return node
}

// checkAlgorithm refuses a name flexgate does not verify.
func checkAlgorithm(a string) error {
	if strings.EqualFold(a, "none") {
		return errors.New(`algorithm "none" accepts unsigned tokens, which anyone can forge; flexgate never accepts them`)
	}
	if !slices.Contains(knownAlgorithms, a) {
		return fmt.Errorf("algorithm %q is unknown; use %s", a, strings.Join(knownAlgorithms, ", "))
	}
	return nil
}

func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("JWKS url %q is not an http(s) URL: write https://host[:port]/path", s)
	case u.User != nil:
		return fmt.Errorf("JWKS url %q must not carry credentials", s)
	}
	return nil
}

// duration reads the duration s, the parameter name written at node,
// between lo and hi; def when the parameter is left out.
func duration(node *yaml.Node, name, s string, def, lo, hi time.Duration) (time.Duration, error) {
	if node == nil {
		return def, nil
	}
	return chain.ParseDuration(node, name, s, lo, hi, "")
}

// load parses one configured key.
func (k *Key) load(node *yaml.Node, allowed map[string]bool) ([]*vkey, error) {
	set := 0
	for _, f := range []bool{k.PEM != "", k.JWK != nil, k.Secret != ""} {
		if f {
			set++
		}
	}
	if set != 1 {
		return nil, chain.Errorf(node, "a key is one of pem (a public key), jwk (a public JWK or JWK set) or secret (an HMAC secret)")
	}
	if k.Alg != "" {
		if err := checkAlgorithm(k.Alg); err != nil {
			return nil, chain.Errorf(chain.Field(node, "alg"), "%v", err)
		}
	}
	switch {
	case k.PEM != "":
		at := chain.Field(node, "pem")
		if placeholder(at, k.PEM) {
			return nil, nil
		}
		raw, err := parsePEM(k.PEM)
		if err != nil {
			return nil, chain.Errorf(at, "pem: %v", err)
		}
		vk, err := newKey(raw, k.KID, k.Alg, allowed)
		if err != nil {
			return nil, chain.Errorf(at, "pem: %v", err)
		}
		return []*vkey{vk}, nil
	case k.Secret != "":
		at := chain.Field(node, "secret")
		if placeholder(at, k.Secret) {
			return nil, nil
		}
		vk, err := newKey([]byte(k.Secret), k.KID, k.Alg, allowed)
		if err != nil {
			// Never the secret itself.
			return nil, chain.Errorf(at, "secret: %v", err)
		}
		return []*vkey{vk}, nil
	}
	at := chain.Field(node, "jwk")
	var text []byte
	switch j := k.JWK.(type) {
	case string:
		if placeholder(at, j) {
			return nil, nil
		}
		text = []byte(j)
	default:
		b, err := json.Marshal(j)
		if err != nil {
			return nil, chain.Errorf(at, "jwk: %v", err)
		}
		text = b
	}
	keys, skipped, err := parseJWKS(text, nil)
	switch {
	case err != nil:
		return nil, chain.Errorf(at, "jwk: %v", err)
	case len(skipped) > 0:
		return nil, chain.Errorf(at, "jwk: %s", strings.Join(skipped, "; "))
	}
	for i, vk := range keys {
		names := make([]string, len(vk.algs))
		for j, a := range vk.algs {
			names[j] = a.String()
		}
		only := k.Alg
		if only == "" && len(names) == 1 {
			only = names[0]
		}
		if k.KID != "" {
			vk.kid = k.KID
		}
		if keys[i], err = newKey(vk.raw, vk.kid, only, allowed); err != nil {
			return nil, chain.Errorf(at, "jwk: %v", err)
		}
	}
	return keys, nil
}

// placeholder reports whether value is the text `flexgate validate
// --without-secrets` reads for the unset variable node names
// ("placeholder-NAME", see cmd/flexgate): the key is not known, so there
// is nothing to check.
func placeholder(node *yaml.Node, value string) bool {
	if node == nil {
		return false
	}
	name, ok := strings.CutPrefix(node.Value, "$env.")
	return ok && value == "placeholder-"+name
}

// compileFrom compiles the expression that yields the token. It must read
// something of the request.
func compileFrom(s string, env *chain.Env) (*expr.Template, error) {
	t, err := expr.CompileCredential(s, env)
	if err != nil {
		return nil, err
	}
	if t.IsConstant() {
		return nil, fmt.Errorf("%q is the same for every request, so every request would carry the same token: "+
			"write e.g. $request.header.X-Jwt or #[attributes.headers['x-jwt']]", s)
	}
	return t, nil
}

// Provision builds the key set, the cache and the rejections, and starts
// fetching the JWK sets in the background.
func (v *Validator) Provision(env *chain.Env) error {
	return v.provision(env, &v.s)
}

// Close stops fetching and drops idle connections.
func (v *Validator) Close() error {
	if v.rt.keys != nil {
		v.rt.keys.close()
	}
	return nil
}

var (
	_ chain.Policy         = (*Validator)(nil)
	_ chain.RequestHandler = (*Validator)(nil)
)
