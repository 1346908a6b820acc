// Package cors is the CORS policy (cors, and Flex Gateway's cors-flex):
// it answers the preflights of cross-origin requests itself and gives the
// answers of allowed origins the headers a browser needs to hand them to
// the page. It runs before every other policy of its route, wherever it is
// written, as in Flex Gateway.
//
// Origins, methods and headers are decided when the config loads: a
// request costs a canonical copy of its Origin and a map lookup.
package cors

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/internal/metriclabel"
)

func init() {
	chain.Register(chain.Registration{Name: "cors", New: func() chain.Policy { return new(Policy) }, First: true})
}

// DefaultMaxAge is how long, in seconds, a browser may cache a preflight's
// answer when the config does not say: Flex Gateway's default.
const DefaultMaxAge = 30

// Policy is the cors policy. Its fields are the policy's parameters; a
// provisioned Policy is safe for concurrent use.
type Policy struct {
	// Origins allowed to read the route's answers: serialized origins
	// ("https://app.example.com", "http://localhost:3000"), patterns of
	// one scheme and port and any subdomain ("https://*.example.com"),
	// or "*" for every origin. Required.
	Origins []string `yaml:"origins"`
	// Methods cross-origin requests may use. Default GET, HEAD, POST.
	Methods []string `yaml:"methods"`
	// Headers (request headers) cross-origin requests may send beyond
	// the ones every request may (Accept, Content-Language, a form's
	// Content-Type); "*" allows any. Default none.
	Headers []string `yaml:"headers"`
	// ExposedHeaders are the response headers the page may read beyond
	// the safelisted ones (Content-Type, Cache-Control, …).
	ExposedHeaders []string `yaml:"exposedHeaders"`
	// Credentials lets requests carry cookies and HTTP authentication
	// (fetch with credentials: "include"). Not with "*" among Origins.
	Credentials bool `yaml:"credentials"`
	// MaxAge is how long, in seconds, a browser may cache a preflight's
	// answer. Default 30.
	MaxAge *int `yaml:"maxAge" min:"0" max:"2147483647"`

	engine
}

// Validate checks the parameters and compiles them.
func (p *Policy) Validate(env *chain.Env) error {
	params := env.Spec.Params
	if len(p.Origins) == 0 {
		return chain.Errorf(orParams(chain.Field(params, "origins"), env),
			`origins is required: list the origins whose pages may call the route, e.g. origins: ["https://app.example.com"]`)
	}
	g := groupSpec{origins: p.Origins, originsNode: chain.Field(params, "origins"),
		headers: p.Headers, headersNode: chain.Field(params, "headers"),
		exposed: p.ExposedHeaders, exposedNode: chain.Field(params, "exposedHeaders"),
		maxAge: DefaultMaxAge}
	if p.MaxAge != nil {
		g.maxAge = *p.MaxAge
	}
	methods := p.Methods
	if methods == nil {
		methods = []string{"GET", "HEAD", "POST"}
	}
	node := chain.Field(params, "methods")
	for i, m := range methods {
		g.methods = append(g.methods, methodSpec{name: m, node: item(node, i)})
	}
	return p.compile(env, []groupSpec{g}, false, p.Credentials, chain.Field(params, "credentials"))
}

// orParams is node, or the policy's parameters when node is nil (a
// parameter left out).
func orParams(node *yaml.Node, env *chain.Env) *yaml.Node {
	if node != nil {
		return node
	}
	return env.Spec.Params
}

// item is the i-th entry of a list node, or the list itself.
func item(list *yaml.Node, i int) *yaml.Node {
	if list != nil && list.Kind == yaml.SequenceNode && i < len(list.Content) {
		return list.Content[i]
	}
	return list
}

// engine is what both the cors and the cors-flex policies compile to,
// and what serves requests. Immutable once provisioned.
type engine struct {
	// exact maps a canonical origin to its group.
	exact map[string]*group
	// patterns are the "scheme://*.domain" origins, in the order written.
	patterns []pattern
	// anyOrigin is the group of every other origin ("*", or Flex's
	// publicResource); nil: none.
	anyOrigin *group
	// credentials: answers allow credentials.
	credentials bool
	// groups by index (group.idx).
	groups []*group

	answer                                   *chain.Rejection
	refusedOrigin, refusedMethod, refusedHdr *chain.Rejection
	allowed, denied, preflights              *metrics.Counter
}

// group is one set of CORS settings and the origins they apply to.
type group struct {
	idx     int
	methods map[string]bool
	// headers are the allowed request headers, in lower case; anyHeader
	// allows every one.
	headers   map[string]bool
	anyHeader bool
	// The headers of an allowed preflight's answer and of an allowed
	// request's, ready to send.
	allowMethods, allowHeaders, expose, maxAge []byte
}

// pattern is an origin with a wildcard subdomain: scheme://*.suffix:port.
type pattern struct {
	scheme string
	suffix string // ".example.com"
	port   string // ":8443", or "" for the scheme's default
	g      *group
}

// groupSpec is one group as the config writes it, with the nodes that
// errors point at.
type groupSpec struct {
	origins     []string
	originsNode *yaml.Node
	// everyOrigin: the group applies to the origins no other group
	// lists (a Flex group without origins in a public resource).
	everyOrigin bool
	methods     []methodSpec
	headers     []string
	headersNode *yaml.Node
	exposed     []string
	exposedNode *yaml.Node
	maxAge      int
}

type methodSpec struct {
	name string
	node *yaml.Node
}

// fetchNormalized are the methods fetch() sends in upper case whatever
// case a page writes them in; other methods go as written.
var fetchNormalized = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}

// compile builds the engine from its groups. public adds a group for
// every origin no group lists; credentials is written at credNode.
func (e *engine) compile(env *chain.Env, specs []groupSpec, public, credentials bool, credNode *yaml.Node) error {
	*e = engine{exact: map[string]*group{}, credentials: credentials}
	if env.HasBefore("cors") || env.HasBefore("cors-flex") {
		return fmt.Errorf("%s already runs a CORS policy: a route runs one, with every origin in it", env.Whose())
	}
	seen := map[string]int{} // canonical origin → line
	for _, s := range specs {
		g, err := s.compile(credentials)
		if err != nil {
			return err
		}
		e.add(g)
		if s.everyOrigin {
			e.anyOrigin = g
			continue
		}
		for i, o := range s.origins {
			at := item(s.originsNode, i)
			if err := e.addOrigin(g, o, at, credentials, credNode, seen, len(s.origins)); err != nil {
				return err
			}
		}
	}
	if public && e.anyOrigin == nil {
		g, err := groupSpec{everyOrigin: true, methods: allMethods(), headers: []string{"*"}, maxAge: DefaultMaxAge}.compile(false)
		if err != nil {
			return err
		}
		e.add(g)
		e.anyOrigin = g
	}
	return nil
}

func (e *engine) add(g *group) {
	g.idx = len(e.groups)
	e.groups = append(e.groups, g)
}

func (e *engine) addOrigin(g *group, o string, at *yaml.Node, credentials bool, credNode *yaml.Node, seen map[string]int, n int) error {
	switch {
	case o == "*":
		if credentials {
			return chain.Errorf(at, `origin "*" with credentials would let every website read answers made with its visitors' cookies `+
				`(browsers refuse "*" with credentials, and echoing each origin instead would allow them all): list the origins, or turn credentials off (line %d)`, line(credNode))
		}
		if n > 1 {
			return chain.Errorf(at, `origin "*" allows every origin; remove the other origins, or "*"`)
		}
		e.anyOrigin = g
		return nil
	case strings.EqualFold(o, "null"):
		return chain.Errorf(at, `origin "null" is refused: it is the origin of sandboxed frames, local files and redirected requests, `+
			`which any website can produce, so allowing it allows every website`)
	}
	key := o
	if rest, ok := strings.CutPrefix(afterScheme(o), "*."); ok {
		p, err := compilePattern(o, rest)
		if err != nil {
			return chain.Errorf(at, "%v", err)
		}
		p.g = g
		key = p.scheme + "://*" + p.suffix + p.port
		if first, dup := seen[key]; dup {
			return chain.Errorf(at, "origin %q is listed twice (first on line %d); keep one", o, first)
		}
		seen[key] = line(at)
		e.patterns = append(e.patterns, p)
		return nil
	}
	c, _, ok := canonical(nil, []byte(o))
	if !ok {
		return chain.Errorf(at, "%s", originError(o))
	}
	key = string(c)
	if first, dup := seen[key]; dup {
		return chain.Errorf(at, "origin %q is listed twice (first on line %d); keep one", o, first)
	}
	seen[key] = line(at)
	e.exact[key] = g
	return nil
}

// afterScheme is what follows "scheme://" in o, or "".
func afterScheme(o string) string {
	_, rest, _ := strings.Cut(o, "://")
	return rest
}

// compilePattern reads "scheme://*.domain[:port]"; rest is what follows
// "*.".
func compilePattern(o, rest string) (pattern, error) {
	scheme, _, _ := strings.Cut(o, "://")
	c, parts, ok := canonical(nil, []byte(scheme+"://x."+rest))
	if !ok {
		return pattern{}, fmt.Errorf("%s", originError(o))
	}
	host := string(parts.host(c))
	suffix := host[1:] // ".domain"
	if strings.Count(suffix, ".") < 2 || strings.HasPrefix(host, "x.[") {
		return pattern{}, fmt.Errorf("origin %q allows every site under a top-level domain; write at least two labels after *., as in https://*.example.com", o)
	}
	return pattern{scheme: string(parts.scheme(c)), suffix: suffix, port: string(parts.port(c))}, nil
}

// originError explains why o is not a serialized origin.
func originError(o string) string {
	rest := afterScheme(o)
	switch {
	case !strings.Contains(o, "://"):
		return fmt.Sprintf("origin %q is not an origin: write the scheme, host and port a browser sends in Origin, as in https://app.example.com", o)
	case strings.ContainsAny(rest, "/?#"):
		return fmt.Sprintf("origin %q has a path, query or fragment, which an origin never has: write only scheme://host[:port], as in https://app.example.com", o)
	case strings.Contains(rest, "@"):
		return fmt.Sprintf("origin %q has a user name, which an origin never has: write only scheme://host[:port]", o)
	case strings.Contains(rest, "*"):
		return fmt.Sprintf("origin %q: a * is allowed only as the first label of the host (https://*.example.com) or alone (every origin)", o)
	}
	for _, r := range rest {
		if r > 0x7f {
			return fmt.Sprintf("origin %q has a host that is not ASCII: write it as browsers send it, in punycode (xn--…)", o)
		}
	}
	return fmt.Sprintf("origin %q is not scheme://host[:port] with a valid host and a port from 0 to 65535", o)
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// allMethods are the methods Flex Gateway's cors-flex allows by default.
func allMethods() []methodSpec {
	var out []methodSpec
	for _, m := range []string{"CONNECT", "DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"} {
		out = append(out, methodSpec{name: m})
	}
	return out
}

// compile checks and compiles a group's settings.
func (s groupSpec) compile(credentials bool) (*group, error) {
	g := &group{methods: map[string]bool{}, headers: map[string]bool{}}
	var methods []string
	for _, m := range s.methods {
		name := m.name
		for _, n := range fetchNormalized {
			if strings.EqualFold(name, n) {
				name = n
			}
		}
		if !ascii.IsToken(name) {
			return nil, chain.Errorf(m.node, "method %q is not a method name: use letters, as in GET or PATCH", m.name)
		}
		if g.methods[name] {
			return nil, chain.Errorf(m.node, "method %s is listed twice; keep one", name)
		}
		g.methods[name] = true
		methods = append(methods, name)
	}
	if g.methods["GET"] && !g.methods["HEAD"] {
		// HEAD is GET without the body.
		g.methods["HEAD"] = true
	}
	g.allowMethods = []byte(strings.Join(methods, ", "))
	var headers []string
	for i, h := range s.headers {
		at := item(s.headersNode, i)
		if h == "*" {
			g.anyHeader = true
			continue
		}
		if !ascii.IsToken(h) {
			return nil, chain.Errorf(at, "header %q is not a header name: use letters, digits and -", h)
		}
		lower := strings.ToLower(h)
		if g.headers[lower] {
			return nil, chain.Errorf(at, "header %s is listed twice (names are compared without regard to case); keep one", h)
		}
		g.headers[lower] = true
		headers = append(headers, h)
	}
	if g.anyHeader && len(headers) > 0 {
		return nil, chain.Errorf(s.headersNode, `headers "*" allows every header; remove the other names, or "*"`)
	}
	g.allowHeaders = []byte(strings.Join(headers, ", "))
	var exposed []string
	seen := map[string]bool{}
	for i, h := range s.exposed {
		at := item(s.exposedNode, i)
		switch {
		case h == "*" && credentials:
			return nil, chain.Errorf(at, `exposedHeaders "*" exposes nothing to requests with credentials (browsers read it as a header named *): list the header names`)
		case h != "*" && !ascii.IsToken(h):
			return nil, chain.Errorf(at, "header %q is not a header name: use letters, digits and -", h)
		case seen[strings.ToLower(h)]:
			return nil, chain.Errorf(at, "header %s is listed twice; keep one", h)
		}
		seen[strings.ToLower(h)] = true
		exposed = append(exposed, h)
	}
	g.expose = []byte(strings.Join(exposed, ", "))
	g.maxAge = strconv.AppendInt(nil, int64(s.maxAge), 10)
	return g, nil
}

// Provision builds the rejections, the preflight answer and the counters.
func (e *engine) Provision(env *chain.Env) error {
	e.answer = env.Answer("cors_preflight")
	e.refusedOrigin = env.Reject(403, "cors_origin_not_allowed",
		fmt.Sprintf("the CORS policy of %s does not allow requests from this origin", env.Whose()))
	e.refusedMethod = env.Reject(403, "cors_method_not_allowed",
		fmt.Sprintf("the CORS policy of %s does not allow this origin the method the preflight names", env.Whose()))
	e.refusedHdr = env.Reject(403, "cors_header_not_allowed",
		fmt.Sprintf("the CORS policy of %s does not allow this origin a header the preflight names", env.Whose()))
	label := `{route=` + metriclabel.Quote(env.Owner())
	e.preflights = env.Metrics.GetOrCreateCounter(`flexgate_cors_preflights_total` + label + `}`)
	e.allowed = env.Metrics.GetOrCreateCounter(`flexgate_cors_requests_total` + label + `,result="allowed"}`)
	e.denied = env.Metrics.GetOrCreateCounter(`flexgate_cors_requests_total` + label + `,result="denied"}`)
	return nil
}

// Close releases nothing.
func (e *engine) Close() error { return nil }

// AnswersPreflight tells the gateway to route preflights to this policy's
// route by the method they name.
func (e *engine) AnswersPreflight() bool { return true }

var (
	_ chain.Policy            = (*Policy)(nil)
	_ chain.RequestHandler    = (*Policy)(nil)
	_ chain.ResponseHandler   = (*Policy)(nil)
	_ chain.PreflightAnswerer = (*Policy)(nil)
)
