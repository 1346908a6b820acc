// Package expr compiles the expressions users write in policy values —
// $-expressions ("v1-$request.method", "$datetime") and Flex expressions
// ("#[attributes.headers['x-api-key']]", the DataWeave subset of MuleSoft
// Flex Gateway) — into one evaluator, decided once at load time and run per
// request into a caller's buffer without allocating.
package expr

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/buger/jsonparser"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/internal/ascii"
)

// fixed are the request's own expressions without an argument, by the name
// users write. The values policies provide come from the chain's registry.
var fixed = map[string]op{
	"request.remoteAddress": opRemoteAddr,
	"request.method":        opMethod,
	"request.path":          opPath,
	"datetime":              opDatetime,
	"requestId":             opRequestID,
}

const (
	headerPrefix = "request.header."
	queryPrefix  = "request.query."
)

// Known lists every expression, for error messages and documentation: the
// request's own, then the values the registered policies provide, then
// $env.NAME. Safe for concurrent use.
func Known() []string {
	out := []string{"$request.remoteAddress", "$request.method", "$request.path",
		"$request.header.NAME", "$request.query.NAME", "$datetime", "$requestId"}
	for _, v := range chain.Values() {
		if v.Object {
			out = append(out, "$"+v.Name+".NAME")
		} else {
			out = append(out, "$"+v.Name)
		}
	}
	return append(out, "$env.NAME")
}

// Template is a compiled value: literal text and expressions in the order
// written, or one Flex expression. A Template is immutable and safe for
// concurrent use.
type Template struct {
	src  string
	root *node
	// parts, when not nil, append the template's text one after the
	// other without evaluation state (see direct).
	parts []node
	// constant holds the whole value when it has no expression.
	constant []byte
	isConst  bool
	// asText is the first $-expression a Flex policy's value holds as
	// text (see compileTemplate).
	asText string
}

// TextExpression returns the first flexgate $-expression that the value,
// one of a Flex Gateway policy's, holds as literal text ("request.method"
// for "$request.method"), or "" when it holds none. A value that names
// whose budget or identity a request has cannot mean such text: its
// policy refuses it.
func (t *Template) TextExpression() string { return t.asText }

// Compile turns s into a Template evaluated on the request (see
// CompilePhase). Safe for concurrent use.
func Compile(s string, env *chain.Env) (*Template, error) {
	return CompilePhase(s, env, Request)
}

// CompilePhase turns s into a Template evaluated in phase.
//
// A value wrapped entirely in `#[` and `]` is a Flex expression (the
// DataWeave subset in README.md). Any other value is text with
// $-expressions: `$name` and `${name}` both write an expression; `$$` writes
// a literal `$`, and a `$` not followed by a letter or `{` is literal text
// ("costs $5").
//
// A value that policies provide ($client.id, authentication.clientId) is
// found in the chain's registry; env, when not nil, is the policy's place in
// its chain, and a policy that provides the value must run before it.
// Errors are *Error: they name the expression, say how to fix it and where
// in s; the caller adds the position in the config (chain.Errorf does when
// given the error). Safe for concurrent use.
func CompilePhase(s string, env *chain.Env, phase Phase) (*Template, error) {
	return compile(s, env, phase, false)
}

// CompileCredential is Compile for a value that a policy authenticates or
// identifies the client by: a rate limit's identifier, jwt-validation's
// token, ip-list's address. Each header it reads by name is read in any of
// its spellings ('-' and '_' alike, see chain.HeaderName), each query
// parameter under any name an upstream may read as it (chain.QueryName):
// the value is then the one copy that chain.Credentials, declared with
// Reads, lets through, where an exact name would read nothing while the
// upstream reads X_Api_Key or API_KEY. A header name with more than
// chain.MaxHeaderSeparators '-' and '_', and a query parameter name that
// chain.ParseQueryName refuses, are errors. Safe for concurrent use.
func CompileCredential(s string, env *chain.Env) (*Template, error) {
	return compile(s, env, Request, true)
}

func compile(s string, env *chain.Env, phase Phase, credential bool) (*Template, error) {
	var root *node
	var err error
	var asText string
	if IsFlex(s) {
		root, err = compileFlex(s, env, phase)
		if err == nil {
			switch root.op {
			case opHeaders, opRespHeaders, opQueryParams:
				err = &Error{Src: s, Offset: root.at, Msg: "this is an object of names and values: select one, e.g. attributes.headers['x-api-key']"}
			}
		}
	} else {
		if env != nil && env.Spec != nil && env.Config != nil && strings.Contains(s, "#[") {
			// The value is not quoted: it may be a credential.
			env.Warn(nil, "a value holds #[ after other text, so it is literal text, as in Flex; to compute it, "+
				"make the expression the whole value, e.g. \"#['v1-' ++ attributes.method]\"")
		}
		root, asText, err = compileTemplate(s, env, env != nil && chain.IsFlexPolicy(env.Name))
	}
	if err == nil && credential {
		err = readAnyName(s, root)
	}
	if err != nil {
		return nil, err
	}
	t := &Template{src: s, root: root, asText: asText}
	switch {
	case root.op == opConst:
		t.isConst, t.constant = true, root.text
	case root.op == opConcat && root.direct():
		t.parts = root.flat
	case root.direct():
		t.parts = []node{*root}
	}
	return t, nil
}

// readAnyName makes the headers and query parameters that n and its kids
// read by name read under any name an upstream reads as theirs (see
// CompileCredential).
func readAnyName(src string, n *node) error {
	switch n.op {
	case opHeader:
		h, err := chain.NewHeaderName(string(n.name))
		if err != nil {
			return &Error{Src: src, Offset: n.at, Msg: err.Error()}
		}
		n.header = &h
	case opQuery:
		q, err := chain.ParseQueryName(string(n.name))
		if err != nil {
			return &Error{Src: src, Offset: n.at, Msg: err.Error()}
		}
		n.query = &q
	}
	for _, k := range n.kids {
		if err := readAnyName(src, k); err != nil {
			return err
		}
	}
	// flat holds copies of the kids, for appendText.
	for i := range n.flat {
		if err := readAnyName(src, &n.flat[i]); err != nil {
			return err
		}
	}
	return nil
}

// IsFlex reports whether s is a Flex expression: a value that begins with
// `#[` (after any white space). Any other value is text, with
// $-expressions. Safe for concurrent use.
func IsFlex(s string) bool {
	return strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "#[")
}

// compileFlex parses, checks and folds the Flex expression s.
func compileFlex(s string, env *chain.Env, phase Phase) (*node, error) {
	lead := len(s) - len(strings.TrimLeft(s, " \t\r\n"))
	body := strings.TrimRight(s, " \t\r\n")
	if !strings.HasSuffix(body, "]") {
		return nil, &Error{Src: s, Offset: len(body), Msg: "an expression #[...] must make up the whole value: end it with ] " +
			"(to join text with an expression use ++ inside it, e.g. #['v1-' ++ attributes.method])"}
	}
	a, err := parseDW(s, lead+2, len(body)-1)
	if err != nil {
		return nil, err
	}
	return (&checker{src: s, env: env, phase: phase}).node(a)
}

// compileTemplate compiles text with $-expressions into a node. A value of
// one of Flex Gateway's policies is literal text instead (flexOnly), as in
// Flex: a `$` is itself, and only `$env.NAME` and `${env.NAME}`, which
// config/flex writes for Flex's whole-value `$NAME`, are replaced by the
// variable's value. What would have been a $-expression there is warned of.
func compileTemplate(s string, env *chain.Env, flexOnly bool) (*node, string, error) {
	var parts []*node
	var lit []byte
	litAt := 0
	flush := func() {
		if len(lit) > 0 {
			parts = append(parts, constNode(litAt, val{k: kStr, s: lit}))
			lit = nil
		}
	}
	errAt := func(at int, err error) error {
		return &Error{Src: s, Offset: at, Msg: err.Error()}
	}
	var asText string // the first $-expression read as text (flexOnly)
	// doubled: the value has "$$", which flexgate's templates read as one
	// `$` and Flex's values (flexOnly) as two.
	doubled := false
	for i := 0; i < len(s); {
		c := s[i]
		if len(lit) == 0 {
			litAt = i
		}
		if c != '$' {
			lit = append(lit, c)
			i++
			continue
		}
		if flexOnly && !strings.HasPrefix(s[i:], "$env.") && !strings.HasPrefix(s[i:], "${env.") {
			doubled = doubled || strings.HasPrefix(s[i:], "$$")
			if name, _, err := refName(s, i); asText == "" && err == nil && name != "" {
				if _, err := resolve(name, nil); err == nil {
					asText = name
				}
			}
			lit = append(lit, '$')
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit = append(lit, '$')
			i += 2
			continue
		}
		name, next, err := refName(s, i)
		if err != nil {
			return nil, "", errAt(i, err)
		}
		if name == "" {
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
			v, err := config.Getenv(varName)
			if err != nil {
				return nil, "", errAt(i, err)
			}
			if j := strings.IndexFunc(v, isControl); j >= 0 {
				return nil, "", errAt(i, fmt.Errorf("environment variable %s holds the control character %q at byte %d, which no header or identifier may carry", varName, v[j], j))
			}
			if IsFlex(v) && env != nil && env.Spec != nil && env.Config != nil {
				env.Warn(nil, "environment variable %s holds a Flex expression, #[...], which is read here as text, not evaluated: "+
					"write the expression in the config itself", varName)
			}
			lit = append(lit, v...)
			i = next
			continue
		}
		p, err := resolve(name, env)
		if err != nil {
			return nil, "", errAt(i, err)
		}
		if p.t&tObj != 0 && s[i+1] != '{' && next < len(s) && s[next] == '[' {
			// Unbraced, `[` is text; whoever writes it after an object
			// or a member more likely means a member or an element.
			return nil, "", errAt(next, fmt.Errorf("$%s is followed by `[`: to read a member or an element write ${%s[...]}, for text write ${%s}[", name, name, name))
		}
		flush()
		p.at = i
		parts = append(parts, p)
		i = next
	}
	flush()
	if asText != "" && env != nil && env.Spec != nil && env.Config != nil {
		hint := ""
		if f := flexForm(asText); f != "" {
			hint = "; to read what it reads, write " + f
		}
		env.Warn(nil, "$%s in a value is text, not an expression: %s reads its values as Flex Gateway does, as text unless the whole value "+
			"is one #[...] expression%s", asText, env.Name, hint)
	}
	if doubled && env != nil && env.Spec != nil && env.Config != nil {
		// Earlier releases read "$$" as one `$` here, as their README
		// said; a value written for them now has one `$` more.
		env.Warn(nil, "$$ in a value of %s is two dollar signs, as in Flex Gateway: its values are text unless the whole value is one #[...] "+
			"expression (flexgate releases before this one read $$ there as one $); write a single $ if one is meant", env.Name)
	}
	switch len(parts) {
	case 0:
		return constNode(0, val{k: kStr, s: []byte{}}), asText, nil
	case 1:
		return parts[0], asText, nil
	}
	n := &node{op: opConcat, t: tStr, kids: parts}
	for _, p := range parts {
		n.flat = append(n.flat, *p)
	}
	return n, asText, nil
}

// refName reads the name of the $-expression at s[i] (a `$`): `${name}`,
// or `$name` up to the first byte no name holds (a sentence may end right
// after an expression: "at $datetime." is $datetime). name is "" when the
// `$` begins none (`$5`); next is where the text after it starts.
func refName(s string, i int) (name string, next int, err error) {
	switch {
	case i+1 < len(s) && s[i+1] == '{':
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", 0, fmt.Errorf("expression %q is not closed: add a `}`", s[i:])
		}
		return s[i+2 : i+2+end], i + 3 + end, nil
	case i+1 < len(s) && isLetter(s[i+1]):
		j := i + 1
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		for j > i+1 && s[j-1] == '.' {
			j--
		}
		return s[i+1 : j], j, nil
	}
	return "", i + 1, nil
}

// flexForm is the Flex expression that reads what the $-expression name
// reads, for messages; "" when Flex has none ($datetime, $requestId).
func flexForm(name string) string {
	n, err := resolve(name, nil)
	if err == nil {
		switch n.op {
		case opHeader:
			return "#[attributes.headers['" + strings.ToLower(string(n.name)) + "']]"
		case opQuery:
			return "#[attributes.queryParams['" + string(n.name) + "']]"
		}
	}
	for _, v := range chain.Values() {
		for _, own := range append([]string{v.Name}, v.Aliases...) {
			rest, ok := strings.CutPrefix(name, own)
			if !ok || rest != "" && rest[0] != '.' && rest[0] != '[' {
				continue
			}
			for _, a := range v.Aliases {
				if strings.HasPrefix(a, "authentication.") || strings.HasPrefix(a, "vars.") {
					return "#[" + a + rest + "]"
				}
			}
		}
	}
	for flex, leaf := range leafAttributes {
		if n != nil && n.op == leaf.op {
			return "#[attributes." + flex + "]"
		}
	}
	return ""
}

// MustCompile is Compile for values known to be valid; it panics otherwise.
func MustCompile(s string) *Template {
	t, err := Compile(s, nil)
	if err != nil {
		panic(err)
	}
	return t
}

func resolve(name string, env *chain.Env) (*node, error) {
	if o, ok := fixed[name]; ok {
		t := tStr
		if o == opRequestID {
			t |= tNull
		}
		return &node{op: o, t: t}, nil
	}
	for _, pre := range []struct {
		prefix string
		op     op
	}{{headerPrefix, opHeader}, {queryPrefix, opQuery}} {
		// A trailing dot is trimmed as punctuation, so "$request.header."
		// arrives here without it.
		if name == pre.prefix || name+"." == pre.prefix {
			return nil, fmt.Errorf("expression $%s needs a name after the dot, e.g. $%sX-Api-Key", strings.TrimSuffix(name, "."), pre.prefix)
		}
		if rest, ok := strings.CutPrefix(name, pre.prefix); ok {
			if pre.op == opHeader && !ascii.IsToken(rest) {
				return nil, fmt.Errorf("expression $%s: %q is not a valid header name", name, rest)
			}
			return &node{op: pre.op, t: tStr | tNull, name: []byte(rest)}, nil
		}
	}
	if n, ok, err := resolveValue(name, env); ok || err != nil {
		return n, err
	}
	hint, known := "", ""
	for k := range fixed {
		known = longer(known, name, k)
	}
	for _, v := range chain.Values() {
		known = longer(known, name, v.Name)
		for _, a := range v.Aliases {
			known = longer(known, name, a)
		}
	}
	if known != "" {
		hint = fmt.Sprintf(" (to write text right after $%s, use ${%s}%s)", known, known, name[len(known):])
	}
	return nil, fmt.Errorf("unknown expression $%s%s; known expressions: %s",
		name, hint, strings.Join(Known(), ", "))
}

// longer returns k when name begins with it, with more after, and k is
// longer than best; best otherwise.
func longer(best, name, k string) string {
	if len(k) > len(best) && len(name) > len(k) && strings.HasPrefix(name, k) {
		return k
	}
	return best
}

// resolveValue finds name among the values policies provide: a value by its
// name or an alias, or a member of a JSON object value below its name.
// ok is false when name is none of them.
func resolveValue(name string, env *chain.Env) (n *node, ok bool, err error) {
	info, found := chain.LookupValue(name)
	var rest string
	if !found {
		// The longest registered name that ends where a member begins.
		for i := len(name) - 1; i > 0 && !found; i-- {
			if name[i] == '.' || name[i] == '[' {
				if info, found = chain.LookupValue(name[:i]); found && info.Object {
					rest = name[i:]
				} else {
					found = false
				}
			}
		}
		if !found {
			return nil, false, nil
		}
	}
	if err := checkProvided("$", name, len(name)-len(rest), info, env); err != nil {
		return nil, true, err
	}
	if rest == "" {
		t := tStr | tNull
		if info.Object {
			t = tObj | tNull
		}
		return &node{op: opValue, t: t, v: info.Value}, true, nil
	}
	path, err := memberPath(rest)
	if err != nil {
		return nil, true, fmt.Errorf("expression $%s: %v", name, err)
	}
	return &node{op: opMember, t: tAny, v: info.Value, path: path}, true, nil
}

// memberPath splits what follows an object value's name into the keys of
// a member: `.name` for a key, `["key"]` or `['key']` for a key with dots
// or other characters in it, `[N]` for the element N of an array.
func memberPath(rest string) ([]string, error) {
	var path []string
	for rest != "" {
		var key string
		switch {
		case rest[0] == '.':
			end := strings.IndexAny(rest[1:], ".[")
			if end < 0 {
				end = len(rest) - 1
			}
			key, rest = rest[1:1+end], rest[1+end:]
			if key == "" {
				return nil, errors.New("a member name is empty (two dots in a row?)")
			}
		case strings.HasPrefix(rest, `["`) || strings.HasPrefix(rest, `['`):
			quote := rest[1:2]
			end := strings.Index(rest[2:], quote+"]")
			if end < 0 {
				return nil, fmt.Errorf("%s is not closed: end it with %s]", rest, quote)
			}
			key, rest = rest[2:2+end], rest[2+end+2:]
			if strings.HasPrefix(key, "[") {
				// jsonparser reads a key that begins with `[` as an
				// array index.
				return nil, fmt.Errorf("a member name that begins with `[` (%q) cannot be read", key)
			}
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 2 || strings.Trim(rest[1:end], "0123456789") != "" || end > 10 {
				return nil, fmt.Errorf("%s: write [N] for the element N of an array, or [\"name\"] for a member whose name has dots in it", rest)
			}
			key, rest = rest[:end+1], rest[end+1:]
		default:
			return nil, fmt.Errorf("%q: a member is written .name, [\"name\"] or [N]", rest)
		}
		path = append(path, key)
	}
	return path, nil
}

// checkProvided reports an error unless a policy that provides info runs
// before env's policy. name is the expression as written after sigil ($
// for a $-expression), name[:n] the value's name in it (an alias, perhaps)
// and the rest a member.
func checkProvided(sigil, name string, n int, info chain.ValueInfo, env *chain.Env) error {
	if env == nil {
		return nil
	}
	for _, p := range info.Providers {
		if env.HasBefore(p) {
			return nil
		}
	}
	what := sigil + name
	if name[:n] != info.Name {
		what += " (another name for " + sigil + info.Name + name[n:] + ")"
	}
	var later []string
	if env.Route != nil && env.Index < len(env.Route.Policies) {
		for _, spec := range env.Route.Policies[env.Index+1:] {
			if slices.Contains(info.Providers, spec.Name) && !slices.Contains(later, spec.Name) {
				later = append(later, spec.Name)
			}
		}
	}
	providers := orList(info.Providers)
	switch {
	case len(later) > 0:
		return fmt.Errorf("%s is only known after %s, but %s runs after %s on this route: move %s before %s in the route's policies",
			what, providers, orList(later), env.Name, orList(later), env.Name)
	case len(info.Providers) == 1:
		return fmt.Errorf("%s is only known after %s: put %s before %s in the route's policies",
			what, providers, providers, env.Name)
	default:
		return fmt.Errorf("%s is only known after %s: put one of them before %s in the route's policies",
			what, providers, env.Name)
	}
}

// orList writes names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isNameByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
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
// dst: text as it is, a number or boolean as written, a missing value as
// nothing, an array or object as JSON. It does not allocate once dst (and
// the pooled scratch space of expressions that compute text) has grown to
// size. ex may be nil outside a chain; the expressions it feeds then
// expand to nothing.
func (t *Template) Append(dst []byte, ctx *fasthttp.RequestCtx, ex *chain.Exchange) []byte {
	if t.isConst {
		return append(dst, t.constant...)
	}
	if t.parts != nil {
		return appendText(dst, t.parts, ctx, ex)
	}
	r := acquireRun(ctx, ex)
	dst = appendValue(dst, t.root.eval(r), r)
	releaseRun(r)
	return dst
}

// appendMember appends the member at path of the JSON object obj: a string
// unescaped, a number or boolean as written, an object or array as its JSON
// text; null or a missing member append nothing.
func appendMember(dst, obj []byte, path []string) []byte {
	v, t, _, err := jsonparser.Get(obj, path...)
	if err != nil {
		return dst
	}
	switch t {
	case jsonparser.Null:
		return dst
	case jsonparser.String:
		if bytes.IndexByte(v, '\\') < 0 {
			return append(dst, v...)
		}
		// Unescaped text is never longer than escaped: unescape in place
		// after what dst holds.
		n := len(dst)
		dst = slices.Grow(dst, len(v))
		u, err := jsonparser.Unescape(v, dst[n:n+len(v)])
		if err != nil {
			return dst
		}
		return dst[:n+len(u)]
	}
	return append(dst, v...)
}

// Reads returns the names of the request headers and query parameters the
// template reads by name, in the order written, for chain.Credentials: a
// policy that reads a credential or identity with the template refuses a
// request that sends one of them twice (the template reads one copy; an
// upstream may read another), or in the other place. Compile the template
// with CompileCredential so that it reads the one copy that check lets
// through, in whatever name it came.
func (t *Template) Reads() (headers, query []string) {
	return reads(t.root)
}

// Alternatives returns, for each `default` of the value (a chain of them
// is one), what each of its operands reads by name: the headers and query
// parameters read in turn, the first present winning (see
// chain.Alternatives). Safe for concurrent use.
func (t *Template) Alternatives() [][]chain.Reads { return alternatives(t.root) }

// alternatives collects the `default` chains under root.
func alternatives(root *node) [][]chain.Reads {
	var out [][]chain.Reads
	var operands func(n *node, into *[]*node)
	operands = func(n *node, into *[]*node) {
		if n.op == opDefault {
			operands(n.kids[0], into)
			operands(n.kids[1], into)
			return
		}
		*into = append(*into, n)
	}
	var walk func(n *node)
	walk = func(n *node) {
		if n.op != opDefault {
			for _, k := range n.kids {
				walk(k)
			}
			return
		}
		var ops []*node
		operands(n, &ops)
		var group []chain.Reads
		for _, o := range ops {
			h, q := reads(o)
			if len(h)+len(q) > 0 {
				group = append(group, chain.Reads{Headers: h, Query: q})
			}
			walk(o)
		}
		if len(group) > 1 {
			out = append(out, group)
		}
	}
	walk(root)
	return out
}

// reads returns the names of the request headers and query parameters
// root reads by name, in the order written.
func reads(root *node) (headers, query []string) {
	var walk func(n *node)
	walk = func(n *node) {
		switch n.op {
		case opHeader:
			headers = append(headers, string(n.name))
		case opQuery:
			query = append(query, string(n.name))
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(root)
	return headers, query
}

// IsRemoteAddress reports whether the template is exactly
// `$request.remoteAddress`, so that callers can use the address bytes
// without copying them.
func (t *Template) IsRemoteAddress() bool { return t.root.op == opRemoteAddr }

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
