// Package router matches a request's method and path to the route that
// serves it: a segment trie built once per config and read, without
// allocating, on every request.
//
// The most specific pattern that matches the path decides, whatever the
// config order. Segment by segment from the left, a literal beats a
// one-segment '*', which beats a tail '*'; a pattern that ends at the path's
// end beats a tail '*' that matches nothing. Routes that share that pattern
// split it by method; when none of them allows the request's method the
// answer is 405 Method Not Allowed, never a broader pattern's route: a
// broader route would serve the path without the narrower route's
// policies.
package router

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	// routes with the same pattern that allow the same method, the lowest
	// Index wins.
	Index int
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
	// pick[id] is the route that serves method id, or -1.
	pick []int32
	// other is the route that serves a method no route names, or -1.
	other int32
	// allowed is the set of methods the routes name (HEAD with GET): the
	// Allow value of a 405 on this pattern.
	allowed uint64

	routes []Entry // while building
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
// what Match returns. An error names the route's Index and the pattern.
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
		for _, p := range e.Paths {
			segs, err := parsePattern(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("route %d: path %q: %w", e.Index, p, err))
				continue
			}
			r.insert(segs, e)
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
func (r *Router) insert(segs []segment, e Entry) *terminal {
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

func (t *terminal) add(e Entry) {
	for _, have := range t.routes {
		if have.Index == e.Index {
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

// finish decides, for every method, which of the routes sharing this
// pattern serves it: a route that names the method, else for HEAD a route
// that names GET, else a route that allows any method; the lowest Index
// among equals.
func (t *terminal) finish(r *Router) {
	if t == nil {
		return
	}
	slices.SortFunc(t.routes, func(a, b Entry) int { return a.Index - b.Index })
	t.other = -1
	for _, e := range t.routes {
		if len(e.Methods) == 0 {
			t.other = int32(e.Index)
			break
		}
	}
	t.pick = make([]int32, len(r.methods))
	for id, m := range r.methods {
		t.pick[id] = -1
		for _, e := range t.routes {
			if slices.Contains(e.Methods, m) {
				t.pick[id] = int32(e.Index)
				t.allowed |= 1 << id
				break
			}
		}
		if t.pick[id] < 0 && m == "HEAD" {
			for _, e := range t.routes {
				if slices.Contains(e.Methods, "GET") {
					t.pick[id] = int32(e.Index)
					t.allowed |= 1 << id
					break
				}
			}
		}
		if t.pick[id] < 0 {
			t.pick[id] = t.other
		}
	}
	t.routes = nil
}

// Match finds the route for a request. path is the normalised request path
// (see Normalize); method is the request's method, compared exactly.
//
// The most specific pattern that matches the path decides. Match returns
// the Index of the route of that pattern that serves the method, and
// Found; or -1 and NotFound when no pattern matches the path; or -1,
// MethodNotAllowed and the value of the Allow header when no route of that
// pattern serves the method: the methods its routes allow, in a fixed order
// (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE, then others
// alphabetically), HEAD included wherever GET is. The Allow value is
// shared: callers must not modify it.
//
// Match does not allocate and is safe for concurrent use. It keeps no
// reference to method or path.
func (r *Router) Match(method, path []byte) (index int, res Result, allow []byte) {
	id := -1
	for i, m := range r.methods {
		if string(method) == m {
			id = i
			break
		}
	}
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	t := r.root.walk(path)
	if t == nil {
		return -1, NotFound, nil
	}
	if i := t.lookup(id); i >= 0 {
		return int(i), Found, nil
	}
	return -1, MethodNotAllowed, r.allowFor(t.allowed)
}

// walk searches the subtrie at n for the rest of the path, p, in order of
// specificity, and returns the routes of the first pattern that matches, or
// nil.
func (n *node) walk(p []byte) *terminal {
	if len(p) == 0 {
		if n.end != nil {
			return n.end
		}
		return n.tail
	}
	seg, rest := p, p[len(p):]
	for i, c := range p {
		if c == '/' {
			seg, rest = p[:i], p[i+1:]
			break
		}
	}
	if c := n.child(seg); c != nil {
		if t := c.walk(rest); t != nil {
			return t
		}
	}
	if n.star != nil && len(seg) > 0 {
		if t := n.star.walk(rest); t != nil {
			return t
		}
	}
	return n.tail
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

func (t *terminal) lookup(id int) int32 {
	if id < 0 {
		return t.other
	}
	return t.pick[id]
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
