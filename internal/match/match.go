// Package match compiles the conditions that narrow a route, or a policy
// binding, to some requests — the listener, the host, headers, a path
// prefix and Flex's match rules — and evaluates them on a request without
// allocating.
//
// A Flex rule's path, host, methods and header values are RE2 expressions
// that must match the whole value. The common shapes of a rule's path
// (`/api/.*`, `/api(/.*)`, a literal path, `.*`, `(.*)`) are recognised when
// the rule is compiled and matched by comparing a prefix, with the rewrite
// computed up front; only the other shapes run a regular expression, and
// their capture groups are found by a matcher that reuses pooled memory
// (the regexp package's submatch functions allocate their results).
package match

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/ascii"
)

// Request is what conditions read of a request. The gateway fills it in
// once per request; the slices are only read, and only during Match.
type Request struct {
	// Listener is the name of the listener the request came in on.
	Listener string
	// Method is the request's method.
	Method []byte
	// Path is the normalised request path.
	Path []byte
	// Host is the request's host in lower case, without the port and a
	// trailing dot (see AppendHost).
	Host []byte
	// Header holds the request's headers; nil reads as no headers.
	Header *fasthttp.RequestHeader
}

// Header is a condition on a request header.
type Header struct {
	// Name is the header's name, in any case.
	Name string
	// Value is what the header's first value must equal, or with Regex
	// an RE2 expression that must match the whole of it.
	Value string
	Regex bool
}

// Rule is one Flex match rule: every field that is set must match. Each
// field is an RE2 expression that must match the whole value.
type Rule struct {
	// Path matches the path after the StripPrefix; its capture groups,
	// concatenated, are the path to forward. Empty: any path.
	Path string
	// Host matches the host, in any case. Empty: any host.
	Host string
	// Methods matches the method ("GET|POST"). Empty: any method.
	Methods string
	// Headers must all be present and match.
	Headers []Header
}

// Spec is a set of conditions, all of which must hold.
type Spec struct {
	// Listeners the request must have come in on; empty: any.
	Listeners []string
	// Hosts the request's host must be one of: a name, or "*.example.com"
	// for any name under example.com. Empty: any host.
	Hosts []string
	// Headers the request must carry, every one of them.
	Headers []Header
	// StripPrefix must be the path's first segments; it is removed from
	// the path before Rules match it and before it is forwarded. A path
	// that is the prefix alone reads as "/".
	StripPrefix string
	// Rules: the request must match one of them; none means any request.
	Rules []Rule
}

// Cond is a compiled Spec. It is immutable and safe for concurrent use.
type Cond struct {
	listeners []string
	exact     []string // hosts, in lower case
	suffixes  []string // wildcard hosts as ".example.com"
	anyHost   bool
	headers   []header
	strip     string
	rules     []rule
}

// Forward receives the path a matching route forwards. Its buffer is
// reused from one Match to the next; one per request.
type Forward struct {
	// Path is what Match made of the request path: the path without the
	// StripPrefix, or what the matching rule's capture groups concatenate
	// to. Valid until the next Match with this Forward, or until the
	// request's path changes.
	Path []byte
	// Raw reports that Path is not a suffix of the normalised request
	// path starting at a '/' (it was put together from capture groups,
	// or a group began inside a segment), so that it may hold "//" or dot
	// segments and must be normalised before it is forwarded.
	Raw bool
	buf []byte
}

// Reset forgets the last match, keeping the buffer.
func (f *Forward) Reset() { f.Path, f.Raw, f.buf = nil, false, f.buf[:0] }

// Compile compiles s. The error names the condition that is invalid and
// why, for the caller to place in the config.
func Compile(s Spec) (*Cond, error) {
	c := &Cond{listeners: s.Listeners, anyHost: len(s.Hosts) == 0}
	var errs []error
	for _, h := range s.Hosts {
		if err := CheckHost(h); err != nil {
			errs = append(errs, fmt.Errorf("host %q: %w", h, err))
			continue
		}
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			c.suffixes = append(c.suffixes, suffix)
		} else {
			c.exact = append(c.exact, h)
		}
	}
	for _, h := range s.Headers {
		hm, err := compileHeader(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.headers = append(c.headers, hm)
	}
	strip, err := stripPrefix(s.StripPrefix)
	if err != nil {
		errs = append(errs, err)
	}
	c.strip = strip
	for i, r := range s.Rules {
		cr, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		c.rules = append(c.rules, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckRule reports why r is not a valid rule, or nil: an expression that
// does not compile, or a header name that is not a token.
func CheckRule(r Rule) error {
	_, err := compileRule(r)
	return err
}

// stripPrefix returns p in the form Match compares: "" or "/a/b", with no
// trailing '/'.
func stripPrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if p[0] != '/' {
		return "", fmt.Errorf("path prefix %q must start with /", p)
	}
	return strings.TrimRight(p, "/"), nil
}

// CheckHost reports why h is not a host a route may name, or nil: a DNS
// name (letters, digits, '-', '.', '_'), an IPv4 address or a bracketed IPv6
// one, without a port; or "*." and a name, for any name under it.
func CheckHost(h string) error {
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
	}
	switch {
	case name == "":
		return errors.New("it is empty; write a name such as api.example.com or *.example.com")
	case strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") && name == h:
		return nil
	case strings.Contains(name, "*"):
		return errors.New("* may only stand for the first labels, as in *.example.com")
	case strings.Contains(name, ":"):
		return errors.New("it must not have a port: hosts match the Host header without its port")
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return errors.New("it has an empty label; remove the extra dot")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("it has %q, which a host name cannot have", c)
		}
	}
	return nil
}

// AppendHost appends the host of a Host header value or an authority to
// dst, in lower case, without the port and without a trailing dot
// ("API.example.com.:8443" is "api.example.com"), and returns the extended
// slice. It does not allocate when dst has room for host.
func AppendHost(dst, host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		// An IPv6 literal: the port follows the ']'.
		if i := bytes.IndexByte(host, ']'); i >= 0 {
			host = host[:i+1]
		}
	} else if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = bytes.TrimSuffix(host, []byte("."))
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// None reports whether c has no condition at all: every request matches
// and forwards its path as it is.
func (c *Cond) None() bool {
	return len(c.listeners) == 0 && c.anyHost && len(c.headers) == 0 && c.strip == "" && len(c.rules) == 0
}

// Match reports whether req meets every condition of c. When it does and
// fwd is not nil, fwd.Path is the path to forward (see Forward). Match does
// not allocate once fwd's buffer has grown to the size of a path, and is
// safe for concurrent use with distinct fwd.
func (c *Cond) Match(req *Request, fwd *Forward) bool {
	if len(c.listeners) > 0 && !slices.Contains(c.listeners, req.Listener) {
		return false
	}
	if !c.anyHost && !c.hostMatches(req.Host) {
		return false
	}
	for i := range c.headers {
		if !c.headers[i].matches(req.Header) {
			return false
		}
	}
	path, bare := req.Path, false
	if c.strip != "" {
		rest, ok := bytes.CutPrefix(path, []byte(c.strip))
		switch {
		case !ok || len(rest) > 0 && rest[0] != '/':
			return false
		case len(rest) == 0:
			// The prefix alone: rules read it as "/", and it is
			// forwarded as the upstream's base path alone, so that
			// "/api" and "/api/" stay apart.
			rest, bare = slash, true
		}
		path = rest
	}
	if len(c.rules) == 0 {
		if fwd != nil {
			fwd.Path, fwd.Raw = path, false
			if bare {
				fwd.Path = nil
			}
		}
		return true
	}
	for i := range c.rules {
		if c.rules[i].match(req, path, fwd) {
			if bare && fwd != nil && !fwd.Raw && len(fwd.Path) == 1 {
				fwd.Path = nil
			}
			return true
		}
	}
	return false
}

var slash = []byte("/")

func (c *Cond) hostMatches(host []byte) bool {
	for _, h := range c.exact {
		if string(host) == h {
			return true
		}
	}
	for _, s := range c.suffixes {
		if len(host) > len(s) && string(host[len(host)-len(s):]) == s {
			return true
		}
	}
	return false
}

// header is a compiled Header.
type header struct {
	name  []byte // canonical, as fasthttp stores it
	value value
}

func compileHeader(h Header) (header, error) {
	if err := CheckHeaderName(h.Name); err != nil {
		return header{}, fmt.Errorf("header %q: %w", h.Name, err)
	}
	hm := header{name: fasthttp.AppendNormalizedHeaderKey(nil, h.Name)}
	if !h.Regex {
		if h.Value == "" {
			return header{}, fmt.Errorf("header %q: the value is empty; give the value the header must have", h.Name)
		}
		hm.value = value{lit: h.Value}
		return hm, nil
	}
	v, err := compileValue(h.Value, false)
	if err != nil {
		return header{}, fmt.Errorf("header %q: %w", h.Name, err)
	}
	hm.value = v
	return hm, nil
}

// CheckHeaderName reports why name cannot be a header's name, or nil: one
// that is empty, not a token, or has more than MaxHeaderSeparators '-' and
// '_' (see HeaderSpellings).
func CheckHeaderName(name string) error {
	if name == "" {
		return errors.New("the name is empty")
	}
	for i := 0; i < len(name); i++ {
		if !ascii.IsTokenByte(name[i]) {
			return fmt.Errorf("%q is not allowed in a header name", name[i])
		}
	}
	_, err := HeaderSpellings(name)
	return err
}

// MaxHeaderSeparators bounds the '-' and '_' of a header name that
// HeaderSpellings expands: each doubles the spellings a request is searched
// for.
const MaxHeaderSeparators = 6

// HeaderSpellings returns every spelling of a header name with its '-' and
// '_' exchanged, as fasthttp stores names (the name itself first). CGI-style
// upstreams (PHP, WSGI, nginx with underscores_in_headers) turn both into
// '_', so X-User and X_User reach them as one header: whatever checks,
// removes, sets or matches a header must treat every spelling as the
// header. A name with more than MaxHeaderSeparators of them is an error.
// Safe for concurrent use.
func HeaderSpellings(name string) ([]string, error) {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	if len(seps) > MaxHeaderSeparators {
		return nil, fmt.Errorf("header name %q has more than %d '-' and '_'; the gateway treats '-' and '_' "+
			"alike (as CGI-style upstreams do) and looks for every spelling, so it bounds them: use a shorter name", name, MaxHeaderSeparators)
	}
	out := []string{string(fasthttp.AppendNormalizedHeaderKey(nil, name))}
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, i := range seps {
			b[i] = "-_"[mask>>j&1]
		}
		s := string(fasthttp.AppendNormalizedHeaderKey(nil, string(b)))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// matches reads the header's first value: a header that is absent, or
// sent empty, matches no condition.
func (h *header) matches(hd *fasthttp.RequestHeader) bool {
	if hd == nil {
		return false
	}
	v := hd.PeekCanonical(h.name)
	return len(v) > 0 && h.value.matches(v)
}

// value matches a whole value: equal to lit, or, with anyBefore or
// anyAfter, ending or starting with it (`.*\.example\.com`, `abc.*`;
// `.*abc.*` has both), or matched by re.
type value struct {
	any                 bool
	lit                 string
	anyBefore, anyAfter bool
	re                  *regexp.Regexp
}

// compileValue compiles an expression that must match a whole value; with
// fold, in any case. A literal is compared, not run.
func compileValue(expr string, fold bool) (value, error) {
	tree, err := parse(expr)
	if err != nil {
		return value{}, err
	}
	if isAnyText(tree) {
		return value{any: true}, nil
	}
	// Compared as bytes, a literal must mean the same as the expression:
	// no U+FFFD, which regexp also matches to an invalid byte, and, to
	// match in any case, ASCII only (hosts are lowered as ASCII).
	if v, ok := affixValue(tree); ok && !strings.ContainsRune(v.lit, utf8.RuneError) && (!fold || isASCII(v.lit)) {
		if fold {
			v.lit = strings.ToLower(v.lit)
		}
		return v, nil
	}
	re, err := wholeRegexp(expr, fold)
	if err != nil {
		return value{}, err
	}
	return value{re: re}, nil
}

func (v *value) matches(b []byte) bool {
	switch {
	case v.any:
		return true
	case v.re != nil:
		return v.re.Match(b)
	case v.anyBefore && v.anyAfter:
		return bytes.Contains(b, []byte(v.lit))
	case v.anyBefore:
		return len(b) >= len(v.lit) && string(b[len(b)-len(v.lit):]) == v.lit
	case v.anyAfter:
		return len(b) >= len(v.lit) && string(b[:len(v.lit)]) == v.lit
	}
	return string(b) == v.lit
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// affixValue recognises a case-sensitive literal with `.*` before it, after
// it, both or neither (values hold no newline, which `.` would not match).
func affixValue(tree *syntax.Regexp) (value, bool) {
	items := []*syntax.Regexp{tree}
	if tree.Op == syntax.OpConcat {
		items = tree.Sub
	}
	var v value
	if len(items) > 0 && isAnyText(items[0]) {
		v.anyBefore, items = true, items[1:]
	}
	if len(items) > 0 && isAnyText(items[len(items)-1]) {
		v.anyAfter, items = true, items[:len(items)-1]
	}
	if len(items) != 1 || items[0].Op != syntax.OpLiteral || items[0].Flags&syntax.FoldCase != 0 {
		return value{}, false
	}
	v.lit = string(items[0].Rune)
	return v, true
}

// parse parses expr as RE2 syntax, for errors about what the user wrote
// and for recognising the shapes that need no regular expression.
func parse(expr string) (*syntax.Regexp, error) {
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid regular expression: %w", expr, err)
	}
	return tree, nil
}

// isAnyText reports whether tree is `.*`, which matches any value (header
// values and paths hold no newline).
func isAnyText(tree *syntax.Regexp) bool {
	return tree.Op == syntax.OpStar && (tree.Sub[0].Op == syntax.OpAnyCharNotNL || tree.Sub[0].Op == syntax.OpAnyChar)
}

// wholeRegexp compiles expr, which parse accepted, so that it must match a
// whole value; with fold, in any case.
func wholeRegexp(expr string, fold bool) (*regexp.Regexp, error) {
	text, err := anchored(expr, fold)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(text)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid regular expression: %w", expr, err)
	}
	return re, nil
}

// anchored returns the text of an expression that matches what expr
// matches, and only as a whole value. expr goes in as its parsed form
// printed again, not as written: written text could end the group around
// it early ("\\Q" quotes all that follows).
func anchored(expr string, fold bool) (string, error) {
	tree, err := parse(expr)
	if err != nil {
		return "", err
	}
	flags := ""
	if fold {
		flags = "(?i)"
	}
	return flags + `\A(?:` + tree.String() + `)\z`, nil
}
