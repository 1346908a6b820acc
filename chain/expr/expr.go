// Package expr compiles the expressions users write in policy values
// ("v1-$request.method", "$datetime") into templates that are decided once,
// at load time, and expanded per request into a caller's buffer without
// allocating.
package expr

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
)

type kind uint8

const (
	kindLiteral kind = iota
	kindRemoteAddress
	kindMethod
	kindPath
	kindHeader
	kindQuery
	kindDatetime
	kindRequestID
	kindClientID
	kindTokenSub
	kindTokenClientID
	kindTokenScope
)

// fixed are the expressions without an argument, by the name users write.
var fixed = map[string]kind{
	"request.remoteAddress": kindRemoteAddress,
	"request.method":        kindMethod,
	"request.path":          kindPath,
	"datetime":              kindDatetime,
	"requestId":             kindRequestID,
	"client.id":             kindClientID,
	"token.sub":             kindTokenSub,
	"token.client_id":       kindTokenClientID,
	"token.scope":           kindTokenScope,
}

const (
	headerPrefix = "request.header."
	queryPrefix  = "request.query."
)

// Known lists every expression, for error messages and documentation.
var Known = []string{
	"$request.remoteAddress", "$request.method", "$request.path",
	"$request.header.NAME", "$request.query.NAME", "$datetime", "$requestId",
	"$client.id", "$token.sub", "$token.client_id", "$token.scope", "$env.NAME",
}

type part struct {
	kind kind
	// lit is the literal text, or the header or query name.
	lit []byte
}

// Template is a compiled value: literal text and expressions in the order
// written. A Template is immutable and safe for concurrent use.
type Template struct {
	src   string
	parts []part
	// constant holds the whole value when it has no expression.
	constant []byte
	isConst  bool
}

// Compile turns s into a Template. `$name` and `${name}` both write an
// expression; `$$` writes a literal `$`, and a `$` not followed by a letter or
// `{` is literal text ("costs $5"). env, when not nil, is the policy's place
// in its chain: `$client.*` needs a client-id-enforcement before it and
// `$token.*` a token-introspection. Errors name the expression and how to fix
// it; the caller adds the position in the config.
func Compile(s string, env *chain.Env) (*Template, error) {
	t := &Template{src: s}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, part{kind: kindLiteral, lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit = append(lit, c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit = append(lit, '$')
			i += 2
			continue
		}
		var name string
		var next int
		switch {
		case i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("expression %q is not closed: add a `}`", s[i:])
			}
			name, next = s[i+2:i+2+end], i+3+end
		case i+1 < len(s) && isLetter(s[i+1]):
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			// A sentence may end right after an expression ("at $datetime.").
			for j > i+1 && s[j-1] == '.' {
				j--
			}
			name, next = s[i+1:j], j
		default:
			lit = append(lit, '$')
			i++
			continue
		}
		if varName, ok := strings.CutPrefix(name, "env."); ok {
			if s[i+1] != '{' {
				// Unbraced, the name ends as config reads it:
				// "$env.REGION-prod" is REGION, then "-prod".
				n := config.EnvNameLen(varName)
				varName, next = varName[:n], i+1+len("env.")+n
			}
			// The variable's value is literal text, read once here: a `$`
			// inside a secret must not be read as an expression.
			val, err := config.Getenv(varName)
			if err != nil {
				return nil, err
			}
			if j := strings.IndexFunc(val, isControl); j >= 0 {
				return nil, fmt.Errorf("environment variable %s holds the control character %q at byte %d, which no header or identifier may carry", varName, val[j], j)
			}
			lit = append(lit, val...)
			i = next
			continue
		}
		p, err := resolve(name, env)
		if err != nil {
			return nil, err
		}
		flush()
		t.parts = append(t.parts, p)
		i = next
	}
	flush()
	switch {
	case len(t.parts) == 0:
		t.isConst, t.constant = true, []byte{}
	case len(t.parts) == 1 && t.parts[0].kind == kindLiteral:
		t.isConst, t.constant = true, t.parts[0].lit
	}
	return t, nil
}

// MustCompile is Compile for values known to be valid; it panics otherwise.
func MustCompile(s string) *Template {
	t, err := Compile(s, nil)
	if err != nil {
		panic(err)
	}
	return t
}

func resolve(name string, env *chain.Env) (part, error) {
	if k, ok := fixed[name]; ok {
		if env != nil {
			switch k {
			case kindClientID:
				if !env.HasBefore("client-id-enforcement") {
					return part{}, fmt.Errorf("$%s is only known after client-id-enforcement: put client-id-enforcement before %s in the route's policies", name, env.Name)
				}
			case kindTokenSub, kindTokenClientID, kindTokenScope:
				if !env.HasBefore("token-introspection") {
					return part{}, fmt.Errorf("$%s is only known after token-introspection: put token-introspection before %s in the route's policies", name, env.Name)
				}
			}
		}
		return part{kind: k}, nil
	}
	for _, pre := range []struct {
		prefix string
		kind   kind
	}{{headerPrefix, kindHeader}, {queryPrefix, kindQuery}} {
		// A trailing dot is trimmed as punctuation, so "$request.header."
		// arrives here without it.
		if name == pre.prefix || name+"." == pre.prefix {
			return part{}, fmt.Errorf("expression $%s needs a name after the dot, e.g. $%sX-Api-Key", strings.TrimSuffix(name, "."), pre.prefix)
		}
		if rest, ok := strings.CutPrefix(name, pre.prefix); ok {
			if pre.kind == kindHeader && !ValidHeaderName(rest) {
				return part{}, fmt.Errorf("expression $%s: %q is not a valid header name", name, rest)
			}
			return part{kind: pre.kind, lit: []byte(rest)}, nil
		}
	}
	hint := ""
	for k := range fixed {
		if strings.HasPrefix(name, k) && len(name) > len(k) {
			hint = fmt.Sprintf(" (to write text right after $%s, use ${%s}%s)", k, k, name[len(k):])
			break
		}
	}
	return part{}, fmt.Errorf("unknown expression $%s%s; known expressions: %s",
		name, hint, strings.Join(Known, ", "))
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isNameByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// ValidHeaderName reports whether s is an HTTP field name (an RFC 9110
// token). Safe for concurrent use.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	if isLetter(c) || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// String returns the value as written.
func (t *Template) String() string { return t.src }

// IsConstant reports whether the value has no expression; Literal then
// returns it.
func (t *Template) IsConstant() bool { return t.isConst }

// Literal returns the value of a constant template, nil otherwise. The
// caller must not modify it.
func (t *Template) Literal() []byte {
	if !t.isConst {
		return nil
	}
	return t.constant
}

// Append expands the template for one request and appends the result to
// dst. It does not allocate once dst has grown to size. ex may be nil
// outside a chain; the expressions it feeds then expand to nothing.
func (t *Template) Append(dst []byte, ctx *fasthttp.RequestCtx, ex *chain.Exchange) []byte {
	if t.isConst {
		return append(dst, t.constant...)
	}
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case kindLiteral:
			dst = append(dst, p.lit...)
		case kindRemoteAddress:
			dst = AppendRemoteAddress(dst, ctx, ex)
		case kindMethod:
			dst = append(dst, ctx.Method()...)
		case kindPath:
			dst = append(dst, ctx.Path()...)
		case kindHeader:
			dst = append(dst, ctx.Request.Header.PeekBytes(p.lit)...)
		case kindQuery:
			dst = append(dst, ctx.QueryArgs().PeekBytes(p.lit)...)
		case kindDatetime:
			dst = AppendDatetime(dst)
		case kindRequestID:
			if ex != nil {
				dst = append(dst, ex.RequestID...)
			}
		case kindClientID:
			if ex != nil {
				dst = append(dst, ex.ClientID...)
			}
		case kindTokenSub:
			if ex != nil {
				dst = append(dst, ex.Token.Sub...)
			}
		case kindTokenClientID:
			if ex != nil {
				dst = append(dst, ex.Token.ClientID...)
			}
		case kindTokenScope:
			if ex != nil {
				dst = append(dst, ex.Token.Scope...)
			}
		}
	}
	return dst
}

// Reads returns the names of the request headers and query parameters the
// template expands, in the order written, so that a policy can refuse a
// request that sends one of them twice (the template reads the first
// copy; an upstream may read another).
func (t *Template) Reads() (headers, query []string) {
	for _, p := range t.parts {
		switch p.kind {
		case kindHeader:
			headers = append(headers, string(p.lit))
		case kindQuery:
			query = append(query, string(p.lit))
		}
	}
	return headers, query
}

// IsRemoteAddress reports whether the template is exactly
// `$request.remoteAddress`, so that callers can use the address bytes
// without copying them.
func (t *Template) IsRemoteAddress() bool {
	return len(t.parts) == 1 && t.parts[0].kind == kindRemoteAddress
}

// AppendRemoteAddress appends the client's IP address without port: the
// exchange's RemoteAddr, which the proxy fills with trusted proxies already
// applied, or else the TCP peer. Safe for concurrent use.
func AppendRemoteAddress(dst []byte, ctx *fasthttp.RequestCtx, ex *chain.Exchange) []byte {
	if ex != nil {
		if len(ex.RemoteAddr) > 0 {
			return append(dst, ex.RemoteAddr...)
		}
		if ex.RemoteIP.IsValid() {
			return ex.RemoteIP.AppendTo(dst)
		}
	}
	if a, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		return a.Unmap().AppendTo(dst)
	}
	return dst
}
