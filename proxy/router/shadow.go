package router

import (
	"slices"
	"sort"

	"github.com/flexgate/flexgate/internal/match"
)

// Shadow is a pair of routes where the narrower one takes requests that the
// broader one would serve without it: the two routes allow a method in
// common, a request can meet the conditions of both, and either every path
// that Narrow's pattern matches, Broad's matches too, so Narrow's is the
// more specific and serves them, or the two share a pattern and the router
// tries Narrow first (its conditions narrow Broad's, as a route for
// `x-canary: true` narrows one without headers).
type Shadow struct {
	// Narrow and Broad are the routes' Index values.
	Narrow, Broad int
	// NarrowPath and BroadPath are the patterns, as written, that make
	// the pair (the first such pair of patterns, when there are several).
	NarrowPath, BroadPath string
}

// Shadows finds every pair of routes where one shadows the other. Routes
// that share a pattern and whose conditions Compare does not order split
// it by method, or by their rules in config order, and do not shadow each
// other. Patterns and conditions that New refuses are left out (New
// reports them).
//
// It is meant for load time: it walks a trie of the patterns once per
// pattern, visiting only the patterns that cover it, so its cost grows with
// the number of routes and of the pairs it finds, not with its square.
// Shadows is safe for concurrent use. The result is ordered by Narrow,
// then Broad.
func Shadows(entries []Entry) []Shadow {
	type use struct {
		e    Entry
		path string
	}
	type pattern struct {
		use
		segs []segment
		own  *terminal
	}
	r := &Router{}
	uses := map[*terminal][]use{}
	var patterns []pattern
	for _, e := range entries {
		for _, p := range e.Paths {
			segs, err := parsePattern(p)
			if err != nil {
				continue
			}
			t := r.insert(segs, built{e: e})
			uses[t] = append(uses[t], use{e, p})
			patterns = append(patterns, pattern{use{e, p}, segs, t})
		}
	}
	seen := map[[2]int]bool{}
	var out []Shadow
	for _, a := range patterns {
		r.root.covers(a.segs, func(t *terminal) {
			for _, b := range uses[t] {
				pair := [2]int{a.e.Index, b.e.Index}
				if b.e.Index == a.e.Index || seen[pair] || !shareMethod(a.e.Methods, b.e.Methods) ||
					!match.Overlap(&a.e.Cond, &b.e.Cond) || t == a.own && match.Compare(&a.e.Cond, &b.e.Cond) >= 0 {
					continue
				}
				seen[pair] = true
				out = append(out, Shadow{Narrow: a.e.Index, Broad: b.e.Index, NarrowPath: a.path, BroadPath: b.path})
			}
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Narrow != out[j].Narrow {
			return out[i].Narrow < out[j].Narrow
		}
		return out[i].Broad < out[j].Broad
	})
	return out
}

// covers calls visit with every terminal below n whose pattern matches
// every path that the rest of a pattern, segs, matches from n. It reads the
// trie as insert leaves it, before finish.
func (n *node) covers(segs []segment, visit func(*terminal)) {
	if n.tail != nil {
		// A tail '*' matches whatever follows, including nothing.
		visit(n.tail)
	}
	if len(segs) == 0 {
		if n.end != nil {
			visit(n.end)
		}
		return
	}
	s := segs[0]
	switch s.kind {
	case segLiteral:
		if c := n.lit[s.lit]; c != nil {
			c.covers(segs[1:], visit)
		}
		if n.star != nil {
			n.star.covers(segs[1:], visit)
		}
	case segStar:
		if n.star != nil {
			n.star.covers(segs[1:], visit)
		}
	}
	// A tail '*' in segs matches paths of any length: only a tail '*',
	// visited above, covers it.
}

// shareMethod reports whether two routes' method lists allow a method in
// common: an empty list allows every method, GET allows HEAD.
func shareMethod(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if serves(b, m) {
			return true
		}
	}
	for _, m := range b {
		if serves(a, m) {
			return true
		}
	}
	return false
}

func serves(methods []string, m string) bool {
	return slices.Contains(methods, m) || m == "HEAD" && slices.Contains(methods, "GET")
}
