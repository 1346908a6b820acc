package match

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// rule is a compiled Rule.
type rule struct {
	path    pathRule
	host    value
	anyHost bool
	methods methodRule
	headers []header
}

func compileRule(r Rule) (rule, error) {
	var cr rule
	var err error
	if cr.path, err = compilePath(r.Path); err != nil {
		return rule{}, fmt.Errorf("path: %w", err)
	}
	cr.anyHost = r.Host == ""
	if !cr.anyHost {
		if cr.host, err = compileValue(r.Host, true); err != nil {
			return rule{}, fmt.Errorf("host: %w", err)
		}
	}
	if cr.methods, err = compileMethods(r.Methods); err != nil {
		return rule{}, fmt.Errorf("methods: %w", err)
	}
	for _, h := range r.Headers {
		h.Regex = true
		hm, err := compileHeader(h)
		if err != nil {
			return rule{}, err
		}
		cr.headers = append(cr.headers, hm)
	}
	return cr, nil
}

// match reports whether the request, whose path after the prefix is path,
// meets the rule, and sets fwd's path when it does. The cheap fields are
// compared first, the path last: it may run an expression and captures.
func (r *rule) match(req *Request, path []byte, fwd *Forward) bool {
	if !r.methods.matches(req.Method) || !r.anyHost && !r.host.matches(req.Host) {
		return false
	}
	for i := range r.headers {
		if !r.headers[i].matches(req.Header) {
			return false
		}
	}
	return r.path.match(path, fwd)
}

// Standard methods, whose match against a rule's methods expression is
// decided when the rule is compiled.
var standardMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// methodRule matches a method: a standard one by a bit, another by the
// expression.
type methodRule struct {
	any  bool
	bits uint16
	re   *regexp.Regexp
}

func compileMethods(expr string) (methodRule, error) {
	if expr == "" {
		return methodRule{any: true}, nil
	}
	if _, err := parse(expr); err != nil {
		return methodRule{}, err
	}
	re, err := wholeRegexp(expr, false)
	if err != nil {
		return methodRule{}, err
	}
	m := methodRule{re: re}
	for i, name := range standardMethods {
		if re.MatchString(name) {
			m.bits |= 1 << i
		}
	}
	return m, nil
}

func (m *methodRule) matches(method []byte) bool {
	if m.any {
		return true
	}
	for i, name := range standardMethods {
		if string(method) == name {
			return m.bits&(1<<i) != 0
		}
	}
	return m.re.Match(method)
}

// pathRule matches the path after the prefix. The shapes most rules have
// — literal text, then optionally `.*` or `.+`, with at most one capture
// group that ends where the literal text or the expression ends — are
// matched by comparing lit; the others by re, and when they have capture
// groups by caps.
type pathRule struct {
	lit string
	// tail: lit is a prefix, followed by anything (`.*`) or by at least
	// one character (`.+`); otherwise the path must equal lit.
	tail, plus bool
	// from and to delimit the capture group within lit, or from the
	// group's start to the end of the path when to < 0; from < 0: the rule
	// has no group and the whole path is forwarded.
	from, to int
	re       *regexp.Regexp
	caps     *captures
}

func compilePath(expr string) (pathRule, error) {
	if expr == "" {
		return pathRule{tail: true, from: -1}, nil
	}
	tree, err := parse(expr)
	if err != nil {
		return pathRule{}, err
	}
	if p, ok := simplePath(tree); ok {
		return p, nil
	}
	re, err := wholeRegexp(expr, false)
	if err != nil {
		return pathRule{}, err
	}
	p := pathRule{re: re, from: -1}
	if re.NumSubexp() > 0 {
		if p.caps, err = newCaptures(expr); err != nil {
			return pathRule{}, err
		}
	}
	return p, nil
}

func (p *pathRule) match(path []byte, fwd *Forward) bool {
	if p.re != nil {
		if !p.re.Match(path) {
			return false
		}
		if fwd == nil {
			return true
		}
		if p.caps == nil {
			fwd.Path, fwd.Raw = path, false
			return true
		}
		// The expression matched: so does the program that finds its
		// groups.
		fwd.buf = p.caps.appendGroups(fwd.buf[:0], path)
		fwd.Path, fwd.Raw = fwd.buf, true
		return true
	}
	switch {
	case !p.tail:
		if string(path) != p.lit {
			return false
		}
	case len(path) < len(p.lit) || p.plus && len(path) == len(p.lit) || string(path[:len(p.lit)]) != p.lit:
		return false
	}
	if fwd == nil {
		return true
	}
	switch {
	case p.from < 0:
		fwd.Path, fwd.Raw = path, false
	case p.to < 0:
		fwd.Path = path[p.from:]
		fwd.Raw = len(fwd.Path) > 0 && fwd.Path[0] != '/'
	default:
		fwd.Path, fwd.Raw = path[p.from:p.to], true
	}
	return true
}

// shape is what simplePath has read of an expression so far.
type shape struct {
	lit      []byte
	groups   int
	from, to int
	// toEnd: the group holds the `.*` and runs to the end of the path.
	toEnd bool
	tail  bool
	plus  bool
	ended bool
}

// simplePath recognises the expressions matched without a regular
// expression: literal text (case-sensitive), then optionally `.*` or `.+`,
// with at most one capture group, which ends where the literal or the
// expression ends (`/api(/.*)`, `/api/(.*)`, `(.*)`, `(/v1)/.*`); `^`
// and `$` around it change nothing, as the whole path must match anyway.
func simplePath(tree *syntax.Regexp) (pathRule, bool) {
	s := shape{from: -1, to: -1}
	if !s.walk(tree) {
		return pathRule{}, false
	}
	p := pathRule{lit: string(s.lit), tail: s.tail, plus: s.plus, from: s.from, to: s.to}
	if s.toEnd {
		p.to = -1
	}
	return p, true
}

func (s *shape) walk(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return true
	case syntax.OpEndText:
		s.ended = true
		return true
	}
	if s.tail || s.ended {
		// Nothing but the end may follow `.*`.
		return false
	}
	switch re.Op {
	case syntax.OpBeginText:
		return len(s.lit) == 0
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				// regexp matches it to an invalid byte too.
				return false
			}
			s.lit = utf8.AppendRune(s.lit, r)
		}
		return true
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !s.walk(sub) {
				return false
			}
		}
		return true
	case syntax.OpCapture:
		if s.groups > 0 {
			return false
		}
		s.groups++
		s.from = len(s.lit)
		if !s.walk(re.Sub[0]) {
			return false
		}
		s.to, s.toEnd = len(s.lit), s.tail
		return true
	case syntax.OpStar, syntax.OpPlus:
		if sub := re.Sub[0].Op; sub != syntax.OpAnyCharNotNL && sub != syntax.OpAnyChar {
			return false
		}
		s.tail, s.plus = true, re.Op == syntax.OpPlus
		return true
	}
	return false
}
