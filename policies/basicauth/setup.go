// Package basicauth is the http-basic-authentication policy: callers send
// HTTP Basic credentials (RFC 7617) of a user the route knows, from its
// parameters or an htpasswd file, with plain, SHA-256 or bcrypt passwords.
package basicauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/userfile"
)

const (
	// Names are the registered names.
	Name     = "http-basic-authentication"
	FlexName = "http-basic-authentication-flex"
	// DefaultRealm is the realm of WWW-Authenticate when none is given.
	DefaultRealm = "flexgate"
	// verifiedTTL is how long a password bcrypt accepted is known without
	// asking bcrypt again.
	verifiedTTL = 5 * time.Minute
	// maxName and maxPassword bound what the configured users may hold;
	// credentials a request sends are bounded by maxDecoded.
	maxName     = 256
	maxPassword = 512
	maxDecoded  = 1024
)

var (
	clientIDValue  chain.Value
	principalValue chain.Value
	// slowSlots bounds the bcrypt and SHA-crypt checks running at once
	// in the process: a flood of wrong passwords takes at most half the
	// cores, and users whose password is known (cached) do not wait for it.
	slowSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
)

func init() {
	provides := []chain.ValueSpec{{Name: "client.id"}, {Name: "token.sub"}}
	chain.Register(chain.Registration{Name: Name, New: func() chain.Policy { return new(Authenticator) },
		KeyFrom: htpasswdKey, Provides: provides})
	chain.Register(chain.Registration{Name: FlexName, New: func() chain.Policy { return new(FlexAuthenticator) },
		Provides: provides})
	clientIDValue = chain.MustValue("client.id")
	principalValue = chain.MustValue("token.sub")
}

// User is one entry of users: a name and either a password or its hash.
type User struct {
	Username string `yaml:"username"`
	// Password is the password itself, best written $env.NAME.
	Password string `yaml:"password"`
	// PasswordHash is bcrypt ($2y$…, htpasswd -nB), SHA-crypt ($5$…,
	// htpasswd -n2; $6$), {SHA256}base64 or sha256:hex.
	PasswordHash string `yaml:"passwordHash"`
}

// Authenticator is http-basic-authentication. Once provisioned it is safe
// for concurrent use.
type Authenticator struct {
	// Username and Password are one user, as in Flex Gateway.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Users are more users.
	Users []User `yaml:"users"`
	// HtpasswdFile names a file of `user:hash` lines (bcrypt, SHA-crypt,
	// {SHA256} or sha256:), read when the config loads.
	HtpasswdFile string `yaml:"htpasswdFile"`
	// Realm is the realm of WWW-Authenticate; default "flexgate".
	Realm string `yaml:"realm"`

	core `yaml:"-"`
}

// FlexAuthenticator is http-basic-authentication-flex: Flex Gateway's one
// user, both parameters required. Once provisioned it is safe for
// concurrent use.
type FlexAuthenticator struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`

	core `yaml:"-"`
}

// entry is a user as the config gives it, before provisioning.
type entry struct {
	name string
	cred credential
	at   *yaml.Node // where it is written in the policy, or nil
	file string     // or file:line in the htpasswd file
}

// user is a user ready for the request path.
type user struct {
	name []byte
	cred credential
	// digest is the keyed digest of a plain password.
	digest [sha256.Size]byte
	// verified is the password bcrypt accepted last, and until when
	// that is believed.
	verified atomic.Pointer[verified]
}

type verified struct {
	digest  [sha256.Size]byte
	expires int64
}

// core is what both names run.
type core struct {
	realm   string
	entries []entry

	users map[string]*user
	// key keys the digests of passwords kept in memory, so that a copy
	// of the process's memory does not offer fast hashes to crack.
	key [32]byte
	// dummy is checked against for an unknown user or a wrong password
	// of a fast hash, so that each failure costs what a bcrypt or
	// SHA-crypt user's wrong password costs: timing tells no user names.
	// Its kind is kindPlain when no user has a slow hash.
	dummy       credential
	dummyDigest [sha256.Size]byte
	now         func() time.Time

	creds     *chain.Credentials
	missing   *chain.Rejection
	malformed *chain.Rejection
	invalid   *chain.Rejection
	challenge []byte
	m         *policyMetrics
}

// Validate checks Flex Gateway's two parameters.
func (f *FlexAuthenticator) Validate(env *chain.Env) error {
	params := env.Spec.Params
	for _, p := range []struct{ name, v string }{{"username", f.Username}, {"password", f.Password}} {
		if p.v == "" {
			at := chain.Field(params, p.name)
			if at == nil {
				at = params
			}
			return chain.Errorf(at, "%s is required: http-basic-authentication-flex takes username and password (write the password as $NAME, an environment variable)", p.name)
		}
	}
	f.entries, f.realm = nil, DefaultRealm
	return f.addPlain(f.Username, f.Password, chain.Field(params, "username"), chain.Field(params, "password"))
}

// Validate checks the users, the htpasswd file and the realm.
func (a *Authenticator) Validate(env *chain.Env) error {
	params := env.Spec.Params
	a.entries = nil
	a.realm = a.Realm
	if a.realm == "" {
		a.realm = DefaultRealm
	}
	if err := checkRealm(a.realm); err != nil {
		return chain.Errorf(chain.Field(params, "realm"), "realm: %v", err)
	}
	switch {
	case a.Username == "" && a.Password != "":
		return chain.Errorf(chain.Field(params, "password"), "password needs a username beside it")
	case a.Username != "":
		if err := a.addPlain(a.Username, a.Password, chain.Field(params, "username"), chain.Field(params, "password")); err != nil {
			return err
		}
	}
	usersNode := chain.Field(params, "users")
	for i, u := range a.Users {
		node := usersNode
		if node != nil && i < len(node.Content) {
			node = node.Content[i]
		}
		switch {
		case u.Password != "" && u.PasswordHash != "":
			return chain.Errorf(chain.Field(node, "passwordHash"), "user %q has both password and passwordHash: give one", u.Username)
		case u.PasswordHash != "":
			if err := checkUsername(u.Username); err != nil {
				return chain.Errorf(orNode(chain.Field(node, "username"), node), "users: %v", err)
			}
			cred, err := parseHash(u.PasswordHash)
			if err != nil {
				return chain.Errorf(chain.Field(node, "passwordHash"), "passwordHash of %q: %v", u.Username, err)
			}
			if err := a.add(entry{name: u.Username, cred: cred, at: orNode(chain.Field(node, "username"), node)}); err != nil {
				return err
			}
		default:
			if err := a.addPlain(u.Username, u.Password, orNode(chain.Field(node, "username"), node), chain.Field(node, "password")); err != nil {
				return err
			}
		}
	}
	if a.HtpasswdFile != "" {
		// Against the config file's directory, as every file a config
		// names.
		a.HtpasswdFile = config.ResolveFile(env.Spec.Pos.File, strings.TrimSpace(a.HtpasswdFile))
		at := chain.Field(params, "htpasswdFile")
		list, err := readHtpasswd(a.HtpasswdFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// In CI the secret holding the file may not be mounted:
			// the gateway reads it again, and refuses to start without
			// it, when it provisions the policy.
			env.Warn(at, "htpasswdFile %s cannot be read here (%v); the gateway reads it when it starts", a.HtpasswdFile, err)
		case err != nil:
			return chain.Errorf(at, "htpasswdFile: %v", err)
		}
		for _, e := range list {
			if err := a.add(entry{name: e.name, cred: e.cred, file: fmt.Sprintf("%s:%d", a.HtpasswdFile, e.line)}); err != nil {
				return err
			}
		}
	}
	if len(a.entries) == 0 && a.HtpasswdFile == "" {
		return chain.Errorf(params, "no users: give username and password, users: [{username, password or passwordHash}], or htpasswdFile")
	}
	return nil
}

func orNode(n, alt *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return alt
}

// addPlain adds a user with a password written in the config.
func (c *core) addPlain(name, password string, nameAt, passAt *yaml.Node) error {
	if err := checkUsername(name); err != nil {
		return chain.Errorf(nameAt, "%v", err)
	}
	if utf8.ValidString(password) {
		password = norm.NFC.String(password)
	}
	switch {
	case password == "":
		return chain.Errorf(orNode(passAt, nameAt), "user %q has no password: give password ($env.NAME) or passwordHash", name)
	case len(password) > maxPassword:
		return chain.Errorf(passAt, "the password of %q is longer than %d bytes", name, maxPassword)
	case !utf8.ValidString(password):
		return chain.Errorf(passAt, "the password of %q is not UTF-8", name)
	}
	return c.add(entry{name: name, cred: credential{kind: kindPlain, plain: password}, at: nameAt})
}

// add adds a user, refusing a name given twice (after NFC normalisation,
// as requests are compared).
func (c *core) add(e entry) error {
	if !utf8.ValidString(e.name) {
		return errAt(e, fmt.Sprintf("user name %q is not UTF-8", e.name))
	}
	e.name = norm.NFC.String(e.name)
	for _, o := range c.entries {
		if o.name == e.name {
			return errAt(e, fmt.Sprintf("user %q is also given at %s; give each user once", e.name, where(o)))
		}
	}
	c.entries = append(c.entries, e)
	return nil
}

func where(e entry) string {
	if e.file != "" {
		return e.file
	}
	if e.at != nil {
		return fmt.Sprintf("line %d", e.at.Line)
	}
	return "another place"
}

func errAt(e entry, msg string) error {
	if e.file != "" {
		return fmt.Errorf("%s: %s", e.file, msg)
	}
	return chain.Errorf(e.at, "%s", msg)
}

// checkRealm accepts a realm that goes into a quoted-string as it is.
func checkRealm(r string) error {
	if len(r) > 128 {
		return fmt.Errorf("%q is longer than 128 characters", r)
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("%q: use printable ASCII without \" and \\", r)
		}
	}
	return nil
}

// Provision builds the user table, the digests and the rejections.
func (a *Authenticator) Provision(env *chain.Env) error {
	if a.HtpasswdFile != "" {
		// Read again: Validate may have run where the file was not.
		list, err := readHtpasswd(a.HtpasswdFile)
		if err != nil {
			return chain.Errorf(chain.Field(env.Spec.Params, "htpasswdFile"), "htpasswdFile: %v", err)
		}
		kept := a.entries[:0]
		for _, e := range a.entries {
			if e.file == "" {
				kept = append(kept, e)
			}
		}
		a.entries = kept
		for _, e := range list {
			if err := a.add(entry{name: e.name, cred: e.cred, file: fmt.Sprintf("%s:%d", a.HtpasswdFile, e.line)}); err != nil {
				return err
			}
		}
		if len(a.entries) == 0 {
			return fmt.Errorf("htpasswdFile %s lists no users", a.HtpasswdFile)
		}
	}
	return a.provision(env)
}

// Provision builds the user table, the digests and the rejections.
func (f *FlexAuthenticator) Provision(env *chain.Env) error { return f.provision(env) }

func (c *core) provision(env *chain.Env) error {
	if _, err := rand.Read(c.key[:]); err != nil {
		return fmt.Errorf("cannot draw a key: %w", err)
	}
	c.now = time.Now
	c.users = make(map[string]*user, len(c.entries))
	maxCost, maxRounds, crypt512 := 0, 0, false
	costs := map[string]bool{}
	for _, e := range c.entries {
		u := &user{name: []byte(e.name), cred: e.cred}
		switch e.cred.kind {
		case kindPlain:
			u.digest = c.keyed([]byte(e.cred.plain))
			u.cred.plain = ""
		case kindBcrypt:
			maxCost = max(maxCost, e.cred.cost)
			costs[fmt.Sprint("bcrypt ", e.cred.cost)] = true
		case kindSHACrypt:
			if e.cred.crypt.rounds > maxRounds {
				maxRounds, crypt512 = e.cred.crypt.rounds, e.cred.crypt.sha512
			}
			costs[fmt.Sprint("sha-crypt ", e.cred.crypt.sha512, e.cred.crypt.rounds)] = true
		}
		c.users[e.name] = u
	}
	c.entries = nil
	if len(costs) > 1 {
		env.Warn(nil, "the users' password hashes differ in kind or cost (bcrypt costs, SHA-crypt $5$/$6$ and rounds): a wrong password of a user "+
			"with a cheaper hash is answered sooner than one of an unknown user, which tells that the user exists; "+
			"hash all passwords alike (htpasswd -B -C N)")
	}
	c.dummy = credential{kind: kindPlain}
	switch {
	case maxCost > 0:
		h, err := bcrypt.GenerateFromPassword(c.key[:16], maxCost)
		if err != nil {
			return fmt.Errorf("cannot make the decoy hash: %w", err)
		}
		c.dummy = credential{kind: kindBcrypt, bcrypt: h, cost: maxCost}
	case maxRounds > 0:
		d, err := newSHACrypt(c.key[:16], crypt512, maxRounds, hex.EncodeToString(c.key[16:24]))
		if err != nil {
			return fmt.Errorf("cannot make the decoy hash: %w", err)
		}
		c.dummy = credential{kind: kindSHACrypt, crypt: d}
	}
	c.dummyDigest = c.keyed([]byte("decoy"))
	var err error
	if c.creds, err = env.Credentials([]string{fasthttp.HeaderAuthorization}, nil); err != nil {
		return err
	}
	c.challenge = []byte(`Basic realm="` + c.realm + `", charset="UTF-8"`)
	c.missing = env.Reject(401, "missing_credentials", "the request has no HTTP Basic credentials: send Authorization: Basic base64(user:password)")
	c.malformed = env.Reject(401, "malformed_credentials",
		"the Authorization header is not Basic base64(user:password) with a user name, of at most 1024 bytes decoded")
	c.invalid = env.Reject(401, "invalid_credentials", "unknown user or wrong password")
	c.m = newPolicyMetrics(env.Metrics, env.Owner())
	return nil
}

// Close releases nothing: the policy holds no goroutines or connections.
func (c *core) Close() error { return nil }

// htpasswdKey digests the htpasswd files the route's policies name, so that
// a reload after a file changed builds the policy anew.
func htpasswdKey(_ *config.Config, route *config.Route) string {
	h := sha256.New()
	for _, p := range route.Policies {
		if p.Name != Name {
			continue
		}
		n := chain.Field(p.Params, "htpasswdFile")
		if n == nil {
			continue
		}
		c := *n
		if config.ExpandEnv(&c) != nil {
			continue
		}
		data, err := userfile.Read(config.ResolveFile(p.Pos.File, strings.TrimSpace(c.Value)))
		fmt.Fprintf(h, "%q %v %d:", c.Value, err == nil, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

var (
	_ chain.Policy         = (*Authenticator)(nil)
	_ chain.RequestHandler = (*Authenticator)(nil)
	_ chain.Policy         = (*FlexAuthenticator)(nil)
	_ chain.RequestHandler = (*FlexAuthenticator)(nil)
)
