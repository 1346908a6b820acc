package clientid

import (
	"regexp"

	"github.com/flexgate/flexgate/chain"
)

func init() {
	chain.Register(chain.Registration{
		Name:     "client-id-enforcement-flex",
		New:      func() chain.Policy { return new(FlexEnforcer) },
		KeyFrom:  registryKey,
		Provides: []chain.ValueSpec{{Name: "client.id"}},
	})
}

// Flex Gateway's credentials origins for client-id-enforcement-flex.
const (
	OriginCustomExpression = "customExpression"
	OriginBasicAuth        = "httpBasicAuthenticationHeader"
)

// FlexEnforcer is client-id-enforcement-flex: the client id enforcement
// of Flex Gateway's connected mode, with its parameters, which flexgate
// runs in local mode against its client registry (Flex Gateway does not run
// it in local mode). Once provisioned it is safe for concurrent use.
type FlexEnforcer struct {
	// CredentialsOrigin is customExpression (the default: the id and
	// secret in the headers the expressions name) or
	// httpBasicAuthenticationHeader.
	CredentialsOrigin string `yaml:"credentialsOrigin"`
	// ClientIDExpression and ClientSecretExpression name the headers:
	// #[attributes.headers['client_id']] (the defaults).
	ClientIDExpression     string `yaml:"clientIdExpression"`
	ClientSecretExpression string `yaml:"clientSecretExpression"`

	Enforcer `yaml:"-"`
}

// headerExpr matches the one expression shape the policy reads: a request
// header, #[attributes.headers['name']] (or "name").
var headerExpr = regexp.MustCompile(`^#\[\s*attributes\.headers\[\s*(?:'([^']+)'|"([^"]+)")\s*\]\s*\]$`)

// Validate maps Flex Gateway's parameters onto the Enforcer's.
func (f *FlexEnforcer) Validate(env *chain.Env) error {
	p := env.Spec.Params
	header := func(param, expr string) (string, error) {
		if expr == "" {
			return "", nil
		}
		m := headerExpr.FindStringSubmatch(expr)
		if m == nil {
			return "", chain.Errorf(chain.Field(p, param), "%s %q is not supported: flexgate reads the client's credentials from request headers, "+
				"written #[attributes.headers['name']]", param, expr)
		}
		return m[1] + m[2], nil
	}
	var err error
	if f.ClientIDHeader, err = header("clientIdExpression", f.ClientIDExpression); err != nil {
		return err
	}
	if f.ClientSecretHeader, err = header("clientSecretExpression", f.ClientSecretExpression); err != nil {
		return err
	}
	switch f.CredentialsOrigin {
	case "", OriginCustomExpression:
	case OriginBasicAuth:
		// The headers are still read when no Basic credentials are
		// sent: both name a client of the registry.
		f.BasicAuth = true
	default:
		return chain.Errorf(chain.Field(p, "credentialsOrigin"), "credentialsOrigin %q is unknown; use %s or %s",
			f.CredentialsOrigin, OriginCustomExpression, OriginBasicAuth)
	}
	return f.Enforcer.Validate(env)
}

var _ chain.Policy = (*FlexEnforcer)(nil)
