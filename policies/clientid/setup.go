// Package clientid implements the client-id-enforcement policy: callers
// identify themselves with a client id and secret that must match the
// gateway's client registry (spec.clients and the --clients file).
package clientid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
)

// Default header names, as MuleSoft's client-id-enforcement uses them.
const (
	DefaultClientIDHeader     = "client_id"
	DefaultClientSecretHeader = "client_secret"
)

// Enforcer is the client-id-enforcement policy. Its fields are the
// policy's parameters; a provisioned Enforcer is safe for concurrent use.
type Enforcer struct {
	// ClientIDHeader names the request header that carries the client id,
	// read in any spelling ('-' and '_' alike); a query parameter of its
	// name is refused. Default "client_id".
	ClientIDHeader string `yaml:"clientIdHeader"`
	// ClientSecretHeader names the request header that carries the client
	// secret. Default "client_secret". The gateway removes it before the
	// request goes upstream, so the secret never leaves the gateway.
	ClientSecretHeader string `yaml:"clientSecretHeader"`
	// BasicAuth also accepts `Authorization: Basic base64(id:secret)` when
	// the id and secret headers are absent. Default false, so that a
	// route can combine this policy with token-introspection, which reads
	// `Authorization: Bearer`.
	BasicAuth bool `yaml:"basicAuth"`

	// idHeader and secretHeader are read, and the secret removed, in
	// any spelling: the copy the credentials check let through.
	idHeader     chain.HeaderName
	secretHeader chain.HeaderName
	clients      map[string]*client
	// decoy is compared against when the id is unknown, so that an
	// unknown id costs the same time as a known id with a wrong secret.
	decoy [sha256.Size]byte

	// creds refuses a request that sends a credential header twice, or
	// its name as a query parameter.
	creds   *chain.Credentials
	missing *chain.Rejection
	invalid *chain.Rejection
	// twice refuses Basic credentials sent beside the id and secret
	// headers: only one pair is checked, the other must not go upstream.
	twice *chain.Rejection
	// challenge is the WWW-Authenticate value sent with 401s when Basic
	// credentials are accepted; nil otherwise.
	challenge []byte
}

// client is one registry entry, ready for the request path.
type client struct {
	id       []byte
	hash     [sha256.Size]byte
	requests *metrics.Counter
}

// clientIDValue is $client.id: the id of the client the policy
// authenticated, for the steps after it and the access log.
var clientIDValue chain.Value

func init() {
	chain.Register(chain.Registration{
		Name:     "client-id-enforcement",
		New:      func() chain.Policy { return new(Enforcer) },
		KeyFrom:  registryKey,
		Provides: []chain.ValueSpec{{Name: "client.id"}},
	})
	clientIDValue = chain.MustValue("client.id")
}

// registryKey digests the client registry, so that a reload which adds,
// removes or rotates a client builds the policy anew.
func registryKey(cfg *config.Config, _ *config.Route) string {
	h := sha256.New()
	for _, c := range cfg.Clients {
		fmt.Fprintf(h, "%q %q %x\n", c.ID, c.Secret, c.SecretHash)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Validate checks the header names and that a client registry exists.
func (e *Enforcer) Validate(env *chain.Env) error {
	if len(env.Config.Clients) == 0 {
		return fmt.Errorf("%s uses client-id-enforcement but no client registry is configured: "+
			"add spec.clients (- id: ..., secret: $env.NAME or secretHash: sha256:<hex>) or run with --clients FILE",
			env.Whose())
	}
	for _, p := range []struct{ name, value string }{
		{"clientIdHeader", e.ClientIDHeader},
		{"clientSecretHeader", e.ClientSecretHeader},
	} {
		if p.value != "" && !ascii.IsToken(p.value) {
			return chain.Errorf(chain.Field(env.Spec.Params, p.name),
				"%s %q is not a valid header name: use letters, digits, '-' and '_'", p.name, p.value)
		}
	}
	id, secret := e.headerNames()
	for _, p := range []struct{ param, name string }{{"clientIdHeader", id}, {"clientSecretHeader", secret}} {
		if _, err := chain.HeaderSpellings(p.name); err != nil {
			return chain.Errorf(chain.Field(env.Spec.Params, p.param), "%s: %v", p.param, err)
		}
	}
	if sameHeader(id, secret) {
		return chain.Errorf(chain.Field(env.Spec.Params, "clientSecretHeader"),
			"clientIdHeader %q and clientSecretHeader %q are the same header (case, '-' and '_' aside): give the secret its own header", id, secret)
	}
	for i, c := range env.Config.Clients {
		if c.ID == "" {
			return fmt.Errorf("%s: client %d of the registry has no id: give every client an id", c.Pos, i+1)
		}
		if c.Secret == "" && len(c.SecretHash) != sha256.Size {
			return fmt.Errorf("%s: client %q has neither secret nor secretHash: add secret: $env.NAME "+
				"or secretHash: sha256:<64 hex digits>", c.Pos, c.ID)
		}
	}
	return nil
}

// Provision hashes the plain secrets of the registry, creates the
// per-client counters and builds the rejections.
func (e *Enforcer) Provision(env *chain.Env) error {
	id, secret := e.headerNames()
	var err error
	if e.idHeader, err = chain.NewHeaderName(id); err != nil {
		return err
	}
	if e.secretHeader, err = chain.NewHeaderName(secret); err != nil {
		return err
	}
	e.clients = make(map[string]*client, len(env.Config.Clients))
	for _, c := range env.Config.Clients {
		cl := &client{id: []byte(c.ID), requests: env.Metrics.GetOrCreateCounter(requestsName(env.Owner(), c.ID))}
		if c.Secret != "" {
			cl.hash = sha256.Sum256([]byte(c.Secret))
		} else {
			copy(cl.hash[:], c.SecretHash)
		}
		e.clients[c.ID] = cl
	}
	e.decoy = sha256.Sum256([]byte("flexgate decoy secret"))
	how := fmt.Sprintf("send the %s and %s headers", id, secret)
	if e.BasicAuth {
		how += " or HTTP Basic credentials"
		e.challenge = []byte(`Basic realm="flexgate"`)
	}
	names := []string{id, secret}
	if e.BasicAuth {
		names = append(names, fasthttp.HeaderAuthorization)
	}
	if e.creds, err = env.Credentials(names, nil); err != nil {
		return err
	}
	e.twice = env.Reject(400, "duplicate_credentials", fmt.Sprintf(
		"the request carries client credentials twice, in the %s and %s headers and as HTTP Basic credentials; send one of them", id, secret))
	e.missing = env.Reject(401, "missing_credentials", "client credentials are missing: "+how)
	e.invalid = env.Reject(401, "invalid_client", "unknown client id or wrong client secret")
	return nil
}

// Close releases nothing: the policy holds no goroutines or connections.
func (e *Enforcer) Close() error { return nil }

func (e *Enforcer) headerNames() (id, secret string) {
	id, secret = e.ClientIDHeader, e.ClientSecretHeader
	if id == "" {
		id = DefaultClientIDHeader
	}
	if secret == "" {
		secret = DefaultClientSecretHeader
	}
	return id, secret
}

// sameHeader reports whether two header names are one header to an
// upstream that reads '-' and '_' alike.
func sameHeader(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, "_", "-"), strings.ReplaceAll(b, "_", "-"))
}

var (
	_ chain.Policy         = (*Enforcer)(nil)
	_ chain.RequestHandler = (*Enforcer)(nil)
)
