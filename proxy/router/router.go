// Package router matches a request to the route that serves it: a segment
// trie of the routes' path patterns, built once per config and read,
// without allocating, on every request.
//
// The most specific pattern that matches the path decides, whatever the
// config order. Segment by segment from the left, a literal beats a
// one-segment '*', which beats a tail '*'; a pattern that ends at the path's
// end beats a tail '*' that matches nothing. Routes that share that pattern
// split it by method; when none of them allows the request's method the
// answer is 405 Method Not Allowed, never a broader pattern's route: a
// broader route would serve the path without the narrower route's
// policies.
//
// A route may also be narrowed by conditions (see match.Spec): the
// listener, the host, headers, a path prefix and Flex's match rules. A
// route whose conditions the request does not meet is, for that request,
// as if it were not there: the routes of the pattern that meet them decide
// as above, and when none does, the next most specific pattern's routes
// are tried. So a host or header mismatch is never a 405. Among the routes
// of one pattern the narrower conditions are tried first (match.Compare),
// then the config's order.
package router

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flexgate/flexgate/internal/match"
)

// Entry is one route as the router sees it.
type Entry struct {
	// Paths are the route's patterns, each starting with '/'. A segment
	// that is exactly "*" is a wildcard: as the last segment it matches the
	// rest of the path, zero or more segments ("/api/v1/*" matches
	// "/api/v1", "/api/v1/" and "/api/v1/x/y"); elsewhere it matches exactly
	// one non-empty segment ("/users/*/orders"). Every other segment is a
	// literal, compared case-sensitively with the normalised request path
	// (see Normalize; patterns are normalised the same way). A trailing
	// '/' does not matter, on patterns or on requests.
	Paths []string
	// Methods are upper-case method names; empty means any method. A route
	// that allows GET also serves HEAD.
	Methods []string
	// Index is the route's position in the config. Match returns it; among
	// routes with the same pattern that allow the same method, and whose
	// conditions Compare does not order, the lowest Index wins.
	Index int
	// Cond narrows the route to the requests that meet it; the zero
	// value takes every request the pattern matches.
	Cond match.Spec
}

// Result says how a Match ended.
type Result uint8

const (
	// NotFound: no route's pattern matches the path.
	NotFound Result = iota
	// Found: a route matches the path and allows the method.
	Found
	// MethodNotAllowed: routes match the path, none allows the method.
	MethodNotAllowed
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case Found:
		return "Found"
	case MethodNotAllowed:
		return "MethodNotAllowed"
	}
	return "NotFound"
}

// Router maps a request's method and path to a route. It is immutable once
// New returns and safe for concurrent use.
type Router struct {
	root node
	// methods lists every method named by a route, plus HEAD when GET is
	// there, in the order an Allow header lists them. A method's position
	// is its id, and bit id of a method set.
	methods []string
	// allow[set] is the Allow value for a method set, when there are few
	// enough methods to list every set up front.
	allow [][]byte

	// With more methods than allowTableBits, Allow values are built on
	// first use: allowCache is replaced, never changed, so readers need
	// no lock.
	allowMu    sync.Mutex
	allowCache atomic.Pointer[map[uint64][]byte]
}

// allowTableBits bounds the precomputed Allow table to 2^10 entries; the
// nine standard methods fit with one to spare.
const allowTableBits = 10

// smallKids is how many literal children a node scans in order before a
// map lookup is quicker.
const smallKids = 8

// node is one segment position in the trie.
type node struct {
	keys []string // literal children, when few
	kids []*node
	lit  map[string]*node // literal children, when many (and while building)
	star *node            // '*' as a middle segment: one non-empty segment
	end  *terminal        // patterns that end here
	tail *terminal        // patterns whose last segment is '*' here
}

// terminal holds the routes that share one pattern.
type terminal struct {
	// cands are the routes in the order they are tried.
	cands []cand
	// try[id] lists, by position in cands, the routes that serve method
	// id in the order they are tried: in the order of their conditions,
	// and among equals a route that names the method, then for HEAD one
	// that names GET, then one that allows any method.
	try [][]int32
	// other lists the routes that serve a method no route names.
	other []int32
	// plain: no route here has conditions, so the first route of a
	// list decides (pick, pickOther) and allowed is the Allow set of
	// every 405 on this pattern.
	plain     bool
	pick      []int32
	pickOther int32
	allowed   uint64

	routes []built // while building
}

// cand is one route of a terminal.
type cand struct {
	index int32
	// cond is nil when the route has no conditions.
	cond *match.Cond
	// allowed is the set of methods the route names (HEAD with GET); 0
	// when it names none and allows any.
	allowed uint64
}

// built is a route while the trie is built.
type built struct {
	e    Entry
	cond *match.Cond
}

// Methods are the standard request methods (RFC 9110 section 9, and PATCH),
// in the order an Allow value lists them; other methods follow them in
// alphabetical order. Callers must not modify it.
var Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// Allow returns the value of an Allow header for a route that allows
// methods: Methods first, in their order, then the others alphabetically,
// with HEAD wherever GET is. Match's Allow values are built the same way.
// It is safe for concurrent use.
func Allow(methods []string) []byte {
	var b []byte
	for _, m := range allowOrder(methods) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, m...)
	}
	return b
}

// allowOrder returns methods, once each, in the order an Allow value lists
// them, adding HEAD when GET is there.
func allowOrder(methods []string) []string {
	seen := map[string]bool{}
	for _, m := range methods {
		seen[m] = true
		if m == "GET" {
			seen["HEAD"] = true
		}
	}
	var out []string
	for _, m := range Methods {
		if seen[m] {
			out = append(out, m)
			delete(seen, m)
		}
	}
	custom := make([]string, 0, len(seen))
	for m := range seen {
		custom = append(custom, m)
	}
	sort.Strings(custom)
	return append(out, custom...)
}

// New builds the router for a config's routes. The routes' Index values are
// what Match returns. An error names the route's Index and the pattern or
// condition at fault.
func New(entries []Entry) (*Router, error) {
	r := &Router{}
	var errs []error
	var named []string
	for _, e := range entries {
		if len(e.Paths) == 0 {
			errs = append(errs, fmt.Errorf("route %d: no paths: give the route at least one path pattern, such as \"/api/*\"", e.Index))
			continue
		}
		for _, m := range e.Methods {
			if m == "" || strings.ToUpper(m) != m {
				errs = append(errs, fmt.Errorf("route %d: method %q: methods must be non-empty and upper-case, such as \"GET\"", e.Index, m))
				continue
			}
			named = append(named, m)
		}
		b := built{e: e}
		cond, err := match.Compile(e.Cond)
		if err != nil {
			errs = append(errs, fmt.Errorf("route %d: %w", e.Index, err))
			continue
		}
		if !cond.None() {
			b.cond = cond
		}
		for _, p := range e.Paths {
			segs, err := parsePattern(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("route %d: path %q: %w", e.Index, p, err))
				continue
			}
			r.insert(segs, b)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.methods = allowOrder(named)
	if len(r.methods) > 64 {
		return nil, fmt.Errorf("the routes name %d different methods; at most 64 are supported", len(r.methods))
	}
	if len(r.methods) <= allowTableBits {
		r.allow = make([][]byte, 1<<len(r.methods))
		for set := range r.allow {
			r.allow[set] = r.allowValue(uint64(set))
		}
	} else {
		r.allowCache.Store(&map[uint64][]byte{})
	}
	r.root.finish(r)
	return r, nil
}

// segment kinds in a parsed pattern.
const (
	segLiteral = iota
	segStar
	segTail
)

type segment struct {
	kind int
	lit  string
}

// CheckPattern reports why p is not a path pattern as a config may write it
// (see Entry.Paths), or nil when it is one: it starts with '/'; every
// segment is literal text or exactly `*`, so that matching never
// backtracks; there is no empty, "." or ".." segment, no query, fragment,
// space, control character or ';' path parameter; and a literal segment is
// still one segment once normalised the way request paths are. New accepts
// these patterns and also ones that normalise to them ("//a/./b" as
// "/a/b"). The error says what to write instead. CheckPattern is safe for
// concurrent use.
func CheckPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errNoSlash
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return fmt.Errorf("it must not contain %q: routes match the path only, not the query or fragment", p[i])
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return errors.New("it must not contain spaces or control characters; write a space as %20")
		}
	}
	if strings.Contains(p, ";") || strings.Contains(strings.ToUpper(p), "%3B") {
		return errors.New("it must not contain ';' or %3B: the gateway refuses request paths with ';' path parameters " +
			"(or strips them with limits pathParameters: strip), so this pattern could never match")
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && last:
			// A trailing slash (or the root pattern "/").
		case s == "":
			return errors.New("it has an empty segment (//); remove the extra slash")
		case s == "." || s == "..":
			return fmt.Errorf("it has a %q segment; write the path as clients send it after normalisation", s)
		case s != "*" && strings.Contains(s, "*"):
			return fmt.Errorf("segment %q mixes * with text; * must be a whole segment (/a/*/b or /a/*)", s)
		}
	}
	_, err := parsePattern(p)
	return err
}

var errNoSlash = errors.New("it must start with /")

// parsePattern splits a pattern into segments, normalising literals the
// way Normalize treats request paths so that "/café" matches a request for
// "/caf%C3%A9".
func parsePattern(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errNoSlash
	}
	raw := strings.Split(p[1:], "/")
	for len(raw) > 0 && raw[len(raw)-1] == "" {
		raw = raw[:len(raw)-1]
	}
	var segs []segment
	var buf []byte
	for i, s := range raw {
		switch {
		case s == "":
			continue
		case s == "*" && i == len(raw)-1:
			segs = append(segs, segment{kind: segTail})
			continue
		case s == "*":
			segs = append(segs, segment{kind: segStar})
			continue
		}
		buf = Normalize(buf[:0], []byte(s))
		if len(buf) == 1 || strings.IndexByte(string(buf[1:]), '/') >= 0 {
			return nil, fmt.Errorf("segment %q is not a plain path segment: it would match %q once resolved; write the path without \".\", \"..\", \"\\\" or %%2F in it", s, buf)
		}
		segs = append(segs, segment{kind: segLiteral, lit: string(buf[1:])})
	}
	return segs, nil
}

// insert adds e's pattern segs to the trie and returns the terminal that
// holds the routes of that pattern.
func (r *Router) insert(segs []segment, e built) *terminal {
	n := &r.root
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			c := n.lit[s.lit]
			if c == nil {
				c = &node{}
				n.lit[s.lit] = c
			}
			n = c
		case segStar:
			if n.star == nil {
				n.star = &node{}
			}
			n = n.star
		case segTail:
			// parsePattern makes a tail '*' the last segment.
			if n.tail == nil {
				n.tail = &terminal{}
			}
			n.tail.add(e)
			return n.tail
		}
	}
	if n.end == nil {
		n.end = &terminal{}
	}
	n.end.add(e)
	return n.end
}

func (t *terminal) add(e built) {
	for _, have := range t.routes {
		if have.e.Index == e.e.Index {
			// The same route through two paths that normalise alike.
			return
		}
	}
	t.routes = append(t.routes, e)
}

// finish turns the building maps into lookup form, once the method ids are
// known.
func (n *node) finish(r *Router) {
	if len(n.lit) <= smallKids {
		for k := range n.lit {
			n.keys = append(n.keys, k)
		}
		sort.Strings(n.keys)
		for _, k := range n.keys {
			n.kids = append(n.kids, n.lit[k])
		}
		n.lit = nil
		for _, c := range n.kids {
			c.finish(r)
		}
	} else {
		for _, c := range n.lit {
			c.finish(r)
		}
	}
	if n.star != nil {
		n.star.finish(r)
	}
	n.end.finish(r)
	n.tail.finish(r)
}

// finish orders the routes sharing this pattern for every method: by their
// conditions (match.Compare), then a route that names the method, else for
// HEAD a route that names GET, else a route that allows any method; the
// lowest Index among equals.
func (t *terminal) finish(r *Router) {
	if t == nil {
		return
	}
	slices.SortStableFunc(t.routes, func(a, b built) int {
		if c := match.Compare(&a.e.Cond, &b.e.Cond); c != 0 {
			return c
		}
		return a.e.Index - b.e.Index
	})
	// group[i] numbers the runs of routes whose conditions Compare does
	// not order.
	group := make([]int, len(t.routes))
	for i := 1; i < len(t.routes); i++ {
		group[i] = group[i-1]
		if match.Compare(&t.routes[i-1].e.Cond, &t.routes[i].e.Cond) != 0 {
			group[i]++
		}
	}
	t.cands = make([]cand, len(t.routes))
	for i, b := range t.routes {
		c := cand{index: int32(b.e.Index), cond: b.cond}
		for id, m := range r.methods {
			if slices.Contains(b.e.Methods, m) || m == "HEAD" && slices.Contains(b.e.Methods, "GET") {
				c.allowed |= 1 << id
			}
		}
		t.cands[i] = c
		if len(b.e.Methods) == 0 {
			t.other = append(t.other, int32(i))
		}
	}
	t.plain = true
	for _, c := range t.cands {
		t.plain = t.plain && c.cond == nil
		t.allowed |= c.allowed
	}
	t.try = make([][]int32, len(r.methods))
	for id, m := range r.methods {
		type pick struct{ pos, group, class int }
		var picks []pick
		for i, b := range t.routes {
			switch {
			case slices.Contains(b.e.Methods, m):
				picks = append(picks, pick{i, group[i], 0})
			case m == "HEAD" && slices.Contains(b.e.Methods, "GET"):
				picks = append(picks, pick{i, group[i], 1})
			case len(b.e.Methods) == 0:
				picks = append(picks, pick{i, group[i], 2})
			}
		}
		slices.SortStableFunc(picks, func(a, b pick) int {
			if a.group != b.group {
				return a.group - b.group
			}
			return a.class - b.class
		})
		for _, p := range picks {
			t.try[id] = append(t.try[id], int32(p.pos))
		}
	}
	t.pick, t.pickOther = make([]int32, len(r.methods)), -1
	for id, l := range t.try {
		t.pick[id] = -1
		if len(l) > 0 {
			t.pick[id] = t.cands[l[0]].index
		}
	}
	if len(t.other) > 0 {
		t.pickOther = t.cands[t.other[0]].index
	}
	if t.plain {
		// pick, pickOther and allowed say all.
		t.cands, t.try, t.other = nil, nil, nil
	}
	t.routes = nil
}

// Match is where Route puts its answer, and the per-request memory it
// works with: keep one per request (it may be reused once Reset).
type Match struct {
	// Index is the route's Index when Route found one, else -1.
	Index int
	// Allow is the value of the Allow header of a MethodNotAllowed: the
	// methods that the routes of the pattern whose conditions the request
	// meets allow, in a fixed order (GET, HEAD, POST, PUT, PATCH, DELETE,
	// OPTIONS, CONNECT, TRACE, then others alphabetically), HEAD included
	// wherever GET is. Shared: callers must not modify it.
	Allow []byte

	fwd  match.Forward
	norm []byte

	// The search under way.
	rt  *Router
	id  int
	res Result
}

// Reset readies m for another request, keeping its buffers.
func (m *Match) Reset() {
	m.Index, m.Allow, m.rt, m.id, m.res = -1, nil, nil, 0, NotFound
	m.fwd.Reset()
	m.norm = m.norm[:0]
}

// AppendPath appends to dst the path to send upstream for the route Route
// found: base, the upstream's base path ("" or "/prefix"), then the path
// the route makes of the request's — the normalised request path, without
// the route's StripPrefix, or what its matching rule's capture groups
// concatenate to, normalised again so that they cannot climb out of base
// ("/.." stays under it). "/" when both are empty. It does not allocate
// once m's buffers have grown to a path's size.
func (m *Match) AppendPath(dst, base []byte) []byte { return m.AppendPathUnder(dst, base, nil) }

// AppendPathUnder is AppendPath with a base path in two parts written one
// after the other (a target's base path, then a route's destination path).
func (m *Match) AppendPathUnder(dst, base, more []byte) []byte {
	p := m.fwd.Path
	if m.fwd.Raw && len(p) > 0 {
		m.norm = Normalize(m.norm[:0], p)
		p = m.norm
	}
	dst = append(append(dst, base...), more...)
	if len(p) == 0 {
		if len(base)+len(more) == 0 {
			dst = append(dst, '/')
		}
		return dst
	}
	return append(dst, p...)
}

// Route finds the route for a request. req.Path is the normalised request
// path (see Normalize); req.Method is compared exactly.
//
// Of the patterns that match the path, the most specific one whose routes
// include one whose conditions req meets decides. Route returns Found, with
// the Index in m of the first such route (in the order finish gives them)
// that serves the method; or MethodNotAllowed and the Allow value in m when
// none of them serves it; or NotFound when no route's pattern and
// conditions match.
//
// Route does not allocate once m's buffers have grown, and is safe for
// concurrent use with distinct m. It keeps no reference to req once it
// returns, except what m.AppendPath reads of req.Path.
func (r *Router) Route(req *match.Request, m *Match) Result {
	m.Index, m.Allow, m.res = -1, nil, NotFound
	m.rt, m.id = r, -1
	for i, name := range r.methods {
		if string(req.Method) == name {
			m.id = i
			break
		}
	}
	path := req.Path
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	r.root.walk(path, req, m)
	m.rt = nil
	return m.res
}

// Match finds the route for a request that has nothing but a method and a
// path, which no route's host, header or listener condition admits: Route
// for a request with no host, headers or listener, returning the Index, the
// Result and the Allow value. It is safe for concurrent use, and allocates
// nothing for routes without rules.
func (r *Router) Match(method, path []byte) (index int, res Result, allow []byte) {
	var m Match
	req := match.Request{Method: method, Path: path}
	res = r.Route(&req, &m)
	return m.Index, res, m.Allow
}

// walk searches the subtrie at n for the rest of the path, p, in order of
// specificity, and reports whether a pattern's routes decided the request
// (m holds the answer).
func (n *node) walk(p []byte, req *match.Request, m *Match) bool {
	if len(p) == 0 {
		if n.end != nil && n.end.decide(req, m) {
			return true
		}
		return n.tail != nil && n.tail.decide(req, m)
	}
	seg, rest := p, p[len(p):]
	for i, c := range p {
		if c == '/' {
			seg, rest = p[:i], p[i+1:]
			break
		}
	}
	if c := n.child(seg); c != nil && c.walk(rest, req, m) {
		return true
	}
	if n.star != nil && len(seg) > 0 && n.star.walk(rest, req, m) {
		return true
	}
	return n.tail != nil && n.tail.decide(req, m)
}

// decide tries the routes of one pattern on the request: the first that
// meets its conditions and serves the method is Found; failing that, when
// routes meet their conditions but none serves the method, it is
// MethodNotAllowed; when none meets its conditions, the pattern does not
// decide.
func (t *terminal) decide(req *match.Request, m *Match) bool {
	if t.plain {
		i := t.pickOther
		if m.id >= 0 {
			i = t.pick[m.id]
		}
		if i >= 0 {
			m.Index, m.res = int(i), Found
			m.fwd.Path, m.fwd.Raw = req.Path, false
		} else {
			m.res, m.Allow = MethodNotAllowed, m.rt.allowFor(t.allowed)
		}
		return true
	}
	list := t.other
	if m.id >= 0 {
		list = t.try[m.id]
	}
	for _, i := range list {
		c := &t.cands[i]
		if c.cond == nil {
			m.fwd.Path, m.fwd.Raw = req.Path, false
		} else if !c.cond.Match(req, &m.fwd) {
			continue
		}
		m.Index, m.res = int(c.index), Found
		return true
	}
	var allowed uint64
	met := false
	for i := range t.cands {
		c := &t.cands[i]
		if c.allowed == 0 || m.id >= 0 && c.allowed&(1<<m.id) != 0 {
			// Tried above.
			continue
		}
		if c.cond == nil || c.cond.Match(req, nil) {
			allowed |= c.allowed
			met = true
		}
	}
	if !met {
		return false
	}
	m.res, m.Allow = MethodNotAllowed, m.rt.allowFor(allowed)
	return true
}

func (n *node) child(seg []byte) *node {
	if n.lit != nil {
		return n.lit[string(seg)]
	}
	for i, k := range n.keys {
		if string(seg) == k {
			return n.kids[i]
		}
	}
	return nil
}

func (r *Router) allowFor(set uint64) []byte {
	if r.allow != nil {
		return r.allow[set]
	}
	if v, ok := (*r.allowCache.Load())[set]; ok {
		return v
	}
	r.allowMu.Lock()
	defer r.allowMu.Unlock()
	old := *r.allowCache.Load()
	if v, ok := old[set]; ok {
		return v
	}
	m := make(map[uint64][]byte, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	v := r.allowValue(set)
	m[set] = v
	r.allowCache.Store(&m)
	return v
}

func (r *Router) allowValue(set uint64) []byte {
	var b []byte
	for id, m := range r.methods {
		if set&(1<<id) == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, m...)
	}
	return b
}
