// Package headers holds the header policies: request-headers-remove,
// request-headers-set and response-headers-set. Header names, wildcards and
// value templates are decided when the config loads; a request only looks
// them up.
package headers

import (
	"bytes"
	"errors"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/expr"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
	"github.com/flexgate/flexgate/proxy/hopbyhop"
)

// quoted matches a Go-quoted string in an error message.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func init() {
	chain.Register(chain.Registration{Name: "request-headers-remove", New: func() chain.Policy { return new(Remove) }})
	chain.Register(chain.Registration{Name: "request-headers-set", New: func() chain.Policy { return new(RequestSet) }})
	chain.Register(chain.Registration{Name: "response-headers-set", New: func() chain.Policy { return new(ResponseSet) }})
}

// framing are the headers that carry the message's framing or the
// connection's state: the gateway owns them, so no policy may set or remove
// them, and a wildcard never matches them.
var framing = []string{"Host", "Content-Length", "Transfer-Encoding"}

func isOneOf(name string, list []string) bool {
	for _, n := range list {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Remove is request-headers-remove: it deletes request headers before the
// request goes upstream. Once provisioned it is safe for concurrent use.
type Remove struct {
	// Headers are the names to remove, matched without regard to case,
	// and with '-' and '_' alike (CGI-style upstreams read X_Internal as
	// X-Internal). A name ending in `*` (`X-Internal-*`) removes every
	// header that starts with the text before the `*`.
	Headers []string `yaml:"headers"`

	exact    []string // every spelling of each name (chain.HeaderSpellings)
	prefixes [][]byte // lower case, '_' written '-', without the `*`
}

// Validate checks every name and wildcard.
func (r *Remove) Validate(env *chain.Env) error {
	node := chain.Field(env.Spec.Params, "headers")
	if len(r.Headers) == 0 {
		return chain.Errorf(orParams(node, env), "headers is required: list the header names to remove, e.g. headers: [\"X-Internal-*\", \"Authorization\"]")
	}
	r.exact, r.prefixes = nil, nil
	for i, h := range r.Headers {
		at := item(node, i)
		name, wildcard := strings.CutSuffix(h, "*")
		switch {
		case wildcard && name == "":
			return chain.Errorf(at, "header %q would remove every header; name a prefix before the *, e.g. \"X-Internal-*\"", h)
		case !ascii.IsToken(name) || strings.Contains(name, "*"):
			return chain.Errorf(at, "%q is not a header name: use letters, digits and -, with an optional * at the end only", h)
		case !wildcard && isOneOf(name, framing):
			return chain.Errorf(at, "%s cannot be removed: the gateway sets it for the upstream connection", name)
		}
		if wildcard {
			r.prefixes = append(r.prefixes, []byte(strings.ReplaceAll(strings.ToLower(name), "_", "-")))
			continue
		}
		spellings, err := chain.HeaderSpellings(name)
		if err != nil {
			return chain.Errorf(at, "%v", err)
		}
		r.exact = append(r.exact, spellings...)
	}
	return nil
}

// Provision has nothing to build beyond what Validate decided.
func (r *Remove) Provision(env *chain.Env) error { return nil }

// Close releases nothing.
func (r *Remove) Close() error { return nil }

// RequestSet is request-headers-set: it sets (replaces) headers on the
// request to the upstream. Once provisioned it is safe for concurrent use.
type RequestSet struct {
	Set `yaml:",inline"`
}

// ResponseSet is response-headers-set: it sets (replaces) headers on every
// response of the route, the upstream's and the gateway's own rejections
// alike. Once provisioned it is safe for concurrent use.
type ResponseSet struct {
	Set `yaml:",inline"`
}

// Validate compiles the values for the response, where a Flex
// expression's attributes.headers are the response's headers and
// attributes.statusCode is known.
func (s *ResponseSet) Validate(env *chain.Env) error {
	return s.validate(env, expr.Response, "header-removal-flex (outboundHeaders)")
}

// Set holds the parameters and compiled values that request-headers-set
// and response-headers-set share.
type Set struct {
	// Headers maps a header name to its value: literal text, expressions
	// (`$datetime`, `$request.header.NAME`, …) or both, or one Flex
	// expression (`#[attributes.requestPath]`). Headers are set in the
	// order written.
	Headers map[string]chain.Expression `yaml:"headers"`

	fields []field
}

type field struct {
	name []byte
	// others are the name's other spellings ('-' and '_' exchanged),
	// removed from a request before the name is set, so that an upstream
	// reading X_User as X-User does not see the client's copy.
	others []string
	tmpl   *expr.Template
	// setCookie: on a response, Set-Cookie is set per cookie name, beside
	// the upstream's other cookies, rather than replacing them all.
	setCookie bool
	// value is the whole value when the template is constant.
	value []byte
}

// Validate checks every name and compiles every value, for the request.
func (s *Set) Validate(env *chain.Env) error {
	return s.validate(env, expr.Request, "request-headers-remove")
}

// validate reads the headers parameter and compiles it for phase.
func (s *Set) validate(env *chain.Env, phase expr.Phase, remover string) error {
	node := chain.Field(env.Spec.Params, "headers")
	if node == nil || node.Kind != yaml.MappingNode || len(node.Content) == 0 {
		return chain.Errorf(orParams(node, env), "headers is required: map header names to values, e.g. headers: {X-API-Version: \"v1\"}")
	}
	entries := make([]headerEntry, 0, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		entries = append(entries, headerEntry{name: k.Value, value: string(s.Headers[k.Value]), key: k, val: v})
	}
	return s.compile(env, entries, phase, remover)
}

// headerEntry is a header to set, and where its name and value are
// written.
type headerEntry struct {
	name, value string
	key, val    *yaml.Node
}

// compile checks every name and compiles every value to be evaluated in
// phase (on the request or on the response: what attributes.headers
// reads, and whether attributes.statusCode is known); remover names the
// policy that drops a header, for the message of an empty value.
func (s *Set) compile(env *chain.Env, entries []headerEntry, phase expr.Phase, remover string) error {
	s.fields = s.fields[:0]
	for _, e := range entries {
		k, v := e.key, e.val
		name, value := e.name, e.value
		switch {
		case !ascii.IsToken(name):
			return chain.Errorf(k, "%q is not a header name: use letters, digits and -", name)
		case isOneOf(name, framing) || hopbyhop.Is(name):
			// The hop-by-hop headers describe one connection, not the
			// message, and the proxy rewrites them.
			return chain.Errorf(k, "%s cannot be set: it describes the connection, which the gateway manages", name)
		case strings.TrimSpace(value) == "":
			return chain.Errorf(v, "the value of %s is empty; to drop the header use %s", name, remover)
		}
		if i := strings.IndexFunc(value, isForbiddenRune); i >= 0 {
			return chain.Errorf(v, "the value of %s contains the control character %q at byte %d; header values cannot hold CR, LF, NUL or other control characters", name, value[i], i)
		}
		tmpl, err := expr.CompilePhase(value, env, phase)
		if err != nil {
			if config.CredentialHeader(name) || config.CredentialValue(value) {
				// The message quotes the part of the value at fault,
				// which may be the credential itself; the value with a
				// caret under the place is left out.
				msg := err.Error()
				var xe *expr.Error
				if errors.As(err, &xe) {
					msg = xe.Msg
				}
				return chain.Errorf(v, "the value of %s: %s", name, quoted.ReplaceAllString(msg, `"[redacted]"`))
			}
			return chain.Errorf(v, "the value of %s: %v", name, err)
		}
		spellings, err := chain.HeaderSpellings(name)
		if err != nil {
			return chain.Errorf(k, "%v", err)
		}
		f := field{name: fasthttp.AppendNormalizedHeaderKey(nil, name), others: spellings[1:], tmpl: tmpl,
			setCookie: strings.EqualFold(name, fasthttp.HeaderSetCookie)}
		if tmpl.IsConstant() {
			f.value = tmpl.Literal()
			// An environment variable's value is part of the literal now.
			if i := bytes.IndexFunc(f.value, isForbiddenRune); i >= 0 {
				return chain.Errorf(v, "the value of %s (with its $env variables) contains the control character %q at byte %d; header values cannot hold CR, LF, NUL or other control characters", name, f.value[i], i)
			}
		}
		s.fields = append(s.fields, f)
	}
	return nil
}

// Provision has nothing to build beyond what Validate decided.
func (s *Set) Provision(env *chain.Env) error { return nil }

// Close releases nothing.
func (s *Set) Close() error { return nil }

func isForbiddenRune(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

func item(list *yaml.Node, i int) *yaml.Node {
	if list != nil && list.Kind == yaml.SequenceNode && i < len(list.Content) {
		return list.Content[i]
	}
	return list
}

func orParams(node *yaml.Node, env *chain.Env) *yaml.Node {
	if node != nil {
		return node
	}
	return env.Spec.Params
}
