package jwt

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
)

// Flex Gateway's answers and defaults for jwt-validation-flex.
const (
	// FlexTokenRequired is the message of the 400 without a token:
	// {"error":"JWT Token is required.", ...}.
	FlexTokenRequired = "JWT Token is required."
	// FlexInvalidToken is the message of every 401.
	FlexInvalidToken = "Invalid token."

	FlexOriginBearer     = "httpBearerAuthenticationHeader"
	FlexOriginExpression = "customExpression"
	FlexKeyText          = "text"
	FlexKeyJWKS          = "jwks"

	FlexDefaultJWTExpression      = "#[attributes.headers['jwt']]"
	FlexDefaultClientIDExpression = "#[vars.claimSet.client_id]"
	FlexDefaultJWKSTTLMinutes     = 60
	FlexDefaultJWKSTimeoutMillis  = 10000
)

func init() {
	chain.Register(chain.Registration{Name: "jwt-validation-flex", New: func() chain.Policy { return new(FlexValidator) }, Provides: provides})
}

// FlexValidator is jwt-validation-flex: Flex Gateway's JWT validation,
// with its parameters and answers, run by the Validator. Once provisioned
// it is safe for concurrent use.
type FlexValidator struct {
	// JWTOrigin is httpBearerAuthenticationHeader (the default) or
	// customExpression (JWTExpression yields the token).
	JWTOrigin     string           `yaml:"jwtOrigin"`
	JWTExpression chain.Expression `yaml:"jwtExpression"`
	// SigningMethod is rsa (the default: RS and PS), es or hmac; none is
	// refused.
	SigningMethod string `yaml:"signingMethod"`
	// SigningKeyLength is 256 (the default), 384 or 512.
	SigningKeyLength *int `yaml:"signingKeyLength" min:"256" max:"512" note:"256, 384 or 512"`
	// JWTKeyOrigin is text (the default: TextKey) or jwks (JWKSURL).
	JWTKeyOrigin string `yaml:"jwtKeyOrigin"`
	// TextKey is the HMAC secret, or the public key in PEM (its header
	// and footer may be left out).
	TextKey string `yaml:"textKey"`
	// JWKSURL is one JWK set URL or several separated by commas.
	JWKSURL string `yaml:"jwksUrl"`
	// JWKSServiceTimeToLive is in minutes; 60.
	JWKSServiceTimeToLive *int `yaml:"jwksServiceTimeToLive" min:"1" max:"10080" note:"minutes"`
	// JWKSServiceConnectionTimeout is in milliseconds; 10000.
	JWKSServiceConnectionTimeout *int `yaml:"jwksServiceConnectionTimeout" min:"1" max:"60000" note:"milliseconds"`
	// SkipClientIDValidation: Flex Gateway matches the token's client
	// against API contracts unless true; local mode has none.
	SkipClientIDValidation *bool `yaml:"skipClientIdValidation"`
	// ClientIDExpression yields $client.id; #[vars.claimSet.client_id].
	ClientIDExpression chain.Expression `yaml:"clientIdExpression"`
	// ValidateAudClaim checks aud against SupportedAudiences (a
	// comma-separated list); MandatoryAudClaim refuses a token without aud.
	ValidateAudClaim   bool   `yaml:"validateAudClaim"`
	MandatoryAudClaim  bool   `yaml:"mandatoryAudClaim"`
	SupportedAudiences string `yaml:"supportedAudiences"`
	// MandatoryExpClaim and MandatoryNbfClaim refuse a token without exp
	// or nbf; either is checked whenever present.
	MandatoryExpClaim bool `yaml:"mandatoryExpClaim"`
	MandatoryNbfClaim bool `yaml:"mandatoryNbfClaim"`
	// ValidateCustomClaim turns on the custom claims: mandatory ones must
	// be present, non-mandatory ones are checked when present.
	ValidateCustomClaim      bool        `yaml:"validateCustomClaim"`
	MandatoryCustomClaims    []FlexClaim `yaml:"mandatoryCustomClaims"`
	NonMandatoryCustomClaims []FlexClaim `yaml:"nonMandatoryCustomClaims"`

	Validator `yaml:"-"`
}

// FlexClaim is one custom claim: the claim Key must have Value.
type FlexClaim struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// flexClaimExpr is a clientIdExpression that reads one claim of the token,
// as the default does: read once per token, when it is verified, rather
// than evaluated on every request.
var (
	flexClaimExpr = regexp.MustCompile(`^\s*#\[\s*(?:vars\.claimSet|authentication\.properties\.claims)(?:\[\s*(?:'([^']+)'|"([^"]+)")\s*\]|\.([A-Za-z_][A-Za-z0-9_]*))\s*\]\s*$`)
)

func flexMatch(re *regexp.Regexp, s string) (string, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1] + m[2] + m[3], true
}

// Validate maps Flex Gateway's parameters onto the Validator's settings.
func (f *FlexValidator) Validate(env *chain.Env) error {
	p := env.Spec.Params
	s := settings{leeway: DefaultLeeway, maxEntries: DefaultMaxCacheEntries, flex: true,
		requireExp: f.MandatoryExpClaim, requireNbf: f.MandatoryNbfClaim, requireAud: f.MandatoryAudClaim}

	switch f.JWTOrigin {
	case "", FlexOriginBearer:
		if f.JWTExpression != "" {
			env.Warn(chain.Field(p, "jwtExpression"), "jwtExpression is used only with jwtOrigin: %s; the token is read from Authorization: Bearer", FlexOriginExpression)
		}
	case FlexOriginExpression:
		e := string(f.JWTExpression)
		if e == "" {
			e = FlexDefaultJWTExpression
		}
		t, err := compileFrom(e, env)
		if err != nil {
			return chain.Errorf(chain.Field(p, "jwtExpression"), "jwtExpression: %v", err)
		}
		s.from = t
	default:
		return chain.Errorf(chain.Field(p, "jwtOrigin"), "jwtOrigin %q is unknown; use %s or %s", f.JWTOrigin, FlexOriginBearer, FlexOriginExpression)
	}

	length := 256
	if f.SigningKeyLength != nil {
		length = *f.SigningKeyLength
	}
	if length != 256 && length != 384 && length != 512 {
		return chain.Errorf(chain.Field(p, "signingKeyLength"), "signingKeyLength must be 256, 384 or 512, not %d", length)
	}
	n := fmt.Sprint(length)
	method := strings.ToLower(f.SigningMethod)
	if method == "" {
		method = "rsa"
	}
	switch method {
	case "rsa":
		s.allowed = map[string]bool{"RS" + n: true, "PS" + n: true}
	case "es":
		s.allowed = map[string]bool{"ES" + n: true}
	case "hmac":
		s.allowed = map[string]bool{"HS" + n: true}
	case "none":
		return chain.Errorf(chain.Field(p, "signingMethod"), "signingMethod none accepts unsigned tokens, which anyone can forge; flexgate refuses it: use rsa, es or hmac")
	default:
		return chain.Errorf(chain.Field(p, "signingMethod"), "signingMethod %q is unknown; use rsa, es or hmac", f.SigningMethod)
	}

	switch f.JWTKeyOrigin {
	case "", FlexKeyText:
		at := chain.Field(p, "textKey")
		if f.JWKSURL != "" {
			env.Warn(chain.Field(p, "jwksUrl"), "jwksUrl is used only with jwtKeyOrigin: jwks; tokens are verified with textKey")
		}
		if f.TextKey == "" {
			return chain.Errorf(p, "textKey is required with jwtKeyOrigin text: the HMAC secret, or the public key in PEM")
		}
		if !placeholder(at, f.TextKey) {
			var raw any = []byte(f.TextKey)
			if method != "hmac" {
				var err error
				if raw, err = parsePEM(f.TextKey); err != nil {
					return chain.Errorf(at, "textKey: %v", err)
				}
			}
			k, err := newKey(raw, "", "", s.allowed)
			if err != nil {
				// Never the key itself: it may be a secret.
				return chain.Errorf(at, "textKey does not fit signingMethod %s with signingKeyLength %d: %v", method, length, err)
			}
			s.static = []*vkey{k}
		}
	case FlexKeyJWKS:
		ttl := FlexDefaultJWKSTTLMinutes
		if f.JWKSServiceTimeToLive != nil {
			ttl = *f.JWKSServiceTimeToLive
		}
		ms := FlexDefaultJWKSTimeoutMillis
		if f.JWKSServiceConnectionTimeout != nil {
			ms = *f.JWKSServiceConnectionTimeout
		}
		at := chain.Field(p, "jwksUrl")
		if strings.TrimSpace(f.JWKSURL) == "" {
			return chain.Errorf(p, "jwksUrl is required with jwtKeyOrigin jwks: the URL of your identity provider's JWK set (several separated by commas)")
		}
		for _, u := range strings.Split(f.JWKSURL, ",") {
			u = strings.TrimSpace(u)
			if err := checkJWKSURL(u); err != nil {
				return chain.Errorf(at, "jwksUrl: %v", err)
			}
			s.jwks = append(s.jwks, jwksSpec{url: u, ttl: time.Duration(ttl) * time.Minute, timeout: time.Duration(ms) * time.Millisecond})
		}
	default:
		return chain.Errorf(chain.Field(p, "jwtKeyOrigin"), "jwtKeyOrigin %q is not supported; use %s or %s", f.JWTKeyOrigin, FlexKeyText, FlexKeyJWKS)
	}

	if f.SkipClientIDValidation != nil && !*f.SkipClientIDValidation {
		env.Warn(chain.Field(p, "skipClientIdValidation"), "the token's client is not matched against API contracts, which local mode has none of; "+
			"write skipClientIdValidation: true to say so (flexgate verifies the token and its claims)")
	}
	ce := string(f.ClientIDExpression)
	if ce == "" {
		ce = FlexDefaultClientIDExpression
	}
	if name, ok := flexMatch(flexClaimExpr, ce); ok {
		s.clientClaim = []string{name}
	} else {
		// Evaluated on each request once the policy has set the token's
		// claims, which it may read (vars.claimSet): compiled without the
		// check that a policy before provides them. It names the client,
		// so a header or parameter it reads is read in any name an
		// upstream reads as it, and checked as a credential (provision).
		t, err := expr.CompileCredential(ce, nil)
		switch {
		case err != nil:
			return chain.Errorf(chain.Field(p, "clientIdExpression"), "clientIdExpression: %v", err)
		case t.IsConstant():
			return chain.Errorf(chain.Field(p, "clientIdExpression"), "clientIdExpression %q is the same for every token: write e.g. #[vars.claimSet.azp]", ce)
		}
		s.clientExpr = t
	}

	if f.ValidateAudClaim {
		for _, a := range strings.Split(f.SupportedAudiences, ",") {
			if a = strings.TrimSpace(a); a != "" {
				s.audiences = append(s.audiences, a)
			}
		}
		if len(s.audiences) == 0 {
			return chain.Errorf(chain.Field(p, "validateAudClaim"), "validateAudClaim is true but supportedAudiences is empty: list the audiences the token may be for, separated by commas")
		}
	} else if f.SupportedAudiences != "" {
		env.Warn(chain.Field(p, "supportedAudiences"), "supportedAudiences is checked only with validateAudClaim: true")
	}

	claims := len(f.MandatoryCustomClaims) + len(f.NonMandatoryCustomClaims)
	if !f.ValidateCustomClaim && claims > 0 {
		env.Warn(nil, "custom claims are checked only with validateCustomClaim: true, as in Flex Gateway; these are not checked")
	}
	if f.ValidateCustomClaim {
		for _, list := range []struct {
			name     string
			claims   []FlexClaim
			required bool
		}{{"mandatoryCustomClaims", f.MandatoryCustomClaims, true}, {"nonMandatoryCustomClaims", f.NonMandatoryCustomClaims, false}} {
			node := chain.Field(p, list.name)
			for i, c := range list.claims {
				at := item(node, i)
				if c.Key == "" {
					return chain.Errorf(at, "%s: a claim needs a key, the claim's name", list.name)
				}
				r := claimRule{name: c.Key, required: list.required}
				val := chain.Field(at, "value")
				switch {
				case expr.IsFlex(c.Value):
					if name, ok := flexMatch(flexClaimExpr, c.Value); ok {
						// The claim itself ({key: scope, value:
						// "#[vars.claimSet.scope]"}): its value, which passes
						// when there is one.
						if name != c.Key {
							return chain.Errorf(val, "%s: the value of claim %s, %s, is claim %s: write key: %s to require that claim, "+
								"or compare the two, e.g. \"#[vars.claimSet.%s == vars.claimSet.%s]\"", list.name, c.Key, c.Value, name, name, c.Key, name)
						}
						r.present = true
						break
					}
					// A condition on the claims (vars.claimSet) and the
					// request, decided on every request: compiled without
					// the check that a policy before provides the claims,
					// which this policy sets first.
					// What it reads of the request is checked as
					// a credential (see provision).
					cond, err := expr.CompileCredentialBool(c.Value, nil)
					if err != nil {
						return chain.Errorf(val, "%s: %v", list.name, err)
					}
					if !cond.Certain() {
						// Not always true or false: a token whose value is
						// something else would be refused, every token
						// perhaps, with nothing said.
						return chain.Errorf(val, "%s: the value of claim %s, %s, is true or false only when what it reads is, "+
							"and a token is accepted only when it is true: compare it, e.g. \"#[vars.claimSet.%s == 'gold']\", "+
							"\"#[vars.claimSet.%s contains 'read']\" or \"#[vars.claimSet.%s == true]\"; "+
							"write \"#[vars.claimSet.%s]\" alone to require the claim to have a value, or text alone for the claim to equal it",
							list.name, c.Key, c.Value, c.Key, c.Key, c.Key, c.Key)
					}
					r.cond = cond
					s.conds = append(s.conds, r)
					r.cond = nil // presence is checked with the token
				case c.Value != "":
					r.equals = []string{c.Value}
				case !list.required:
					return chain.Errorf(at, "%s: claim %s has no value to check", list.name, c.Key)
				}
				s.rules = append(s.rules, r)
			}
		}
	}
	f.s = s
	return nil
}

var _ chain.Policy = (*FlexValidator)(nil)
