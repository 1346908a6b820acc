package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/internal/match"
)

func TestShadows(t *testing.T) {
	f := func(routes []Entry, want ...string) {
		t.Helper()
		for i := range routes {
			routes[i].Index = i
		}
		var got []string
		for _, s := range Shadows(routes) {
			got = append(got, fmt.Sprintf("%d %s < %d %s", s.Narrow, s.NarrowPath, s.Broad, s.BroadPath))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Shadows(%v) =\n%s\nwant\n%s", routes, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	f([]Entry{r("/api/*"), r("/api/admin/*", "GET")}, "1 /api/admin/* < 0 /api/*")
	f([]Entry{r("/api/admin/*", "GET"), r("/api/*")}, "0 /api/admin/* < 1 /api/*")
	// No method in common: the narrower route takes nothing from the
	// broader one.
	f([]Entry{r("/api/*", "GET"), r("/api/admin/*", "DELETE")})
	f([]Entry{r("/api/*", "GET"), r("/api/admin/*", "HEAD")}, "1 /api/admin/* < 0 /api/*")
	f([]Entry{r("/api/*", "HEAD"), r("/api/admin/*", "GET", "POST")}, "1 /api/admin/* < 0 /api/*")
	// Overlapping, but neither covers the other.
	f([]Entry{r("/a/*/c"), r("/a/b/*")})
	f([]Entry{r("/a/*/c"), r("/a/b/c/*")})
	// A tail '*' matches nothing too; an exact pattern matches one path.
	f([]Entry{r("/x/*"), r("/x")}, "1 /x < 0 /x/*")
	f([]Entry{r("/x/*"), r("/x/")}, "1 /x/ < 0 /x/*")
	f([]Entry{r("/x"), r("/x/y")})
	// One-segment '*'.
	f([]Entry{r("/u/*/*"), r("/u/*/orders"), r("/u/1/orders"), r("/u/*")},
		"0 /u/*/* < 3 /u/*",
		"1 /u/*/orders < 0 /u/*/*", "1 /u/*/orders < 3 /u/*",
		"2 /u/1/orders < 0 /u/*/*", "2 /u/1/orders < 1 /u/*/orders", "2 /u/1/orders < 3 /u/*")
	f([]Entry{r("/u/*/orders"), r("/u/1/*")})
	// The same pattern, split by method, however it is written.
	f([]Entry{r("/p", "GET"), r("/p/", "POST"), r("//p")})
	// A route with several paths: one pair, named by its first patterns;
	// a route does not shadow itself.
	f([]Entry{r("/a/* /b/*"), r("/a/x /b/x /a/*/y")}, "1 /a/x < 0 /a/*")
	f([]Entry{r("/a/* /a/x")})
	f([]Entry{r("/*"), r("/"), r("/a")}, "1 / < 0 /*", "2 /a < 0 /*")
	// Literals compare in their normal form.
	f([]Entry{r("/caf%C3%A9/*"), r("/café/x")}, "1 /café/x < 0 /caf%C3%A9/*")
	// Patterns New refuses are left out.
	f([]Entry{r("/*"), r("/a/../b")})
}

// TestShadowsAgainstModel compares Shadows with a direct reading of its
// definition, on random route sets: every path that one pattern matches,
// the other matches too, and not the other way round.
func TestShadowsAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	segs := []string{"a", "b", "*"}
	// Paths over one letter more than the patterns use, one segment
	// longer than the longest pattern, tell every pair of patterns apart.
	var paths []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		paths = append(paths, prefix)
		if n == 0 {
			return
		}
		for _, s := range []string{"a", "b", "c"} {
			gen(prefix+"/"+s, n-1)
		}
	}
	gen("", 5)
	for round := range 200 {
		var routes []Entry
		for i := range 2 + rng.IntN(6) {
			var sb strings.Builder
			for range rng.IntN(4) {
				sb.WriteString("/" + segs[rng.IntN(len(segs))])
			}
			if sb.Len() == 0 {
				sb.WriteString("/")
			}
			var ms []string
			if rng.IntN(3) == 0 {
				ms = []string{[]string{"GET", "HEAD", "POST"}[rng.IntN(3)]}
			}
			routes = append(routes, Entry{Paths: []string{sb.String()}, Methods: ms, Index: i})
		}
		var want []string
		for _, a := range routes {
			for _, b := range routes {
				if a.Index == b.Index || !shareMethod(a.Methods, b.Methods) {
					continue
				}
				covered, wider := true, false
				for _, p := range paths {
					ma, mb := modelMatches(a.Paths[0], p), modelMatches(b.Paths[0], p)
					covered = covered && (!ma || mb)
					wider = wider || (mb && !ma)
				}
				if covered && wider {
					want = append(want, fmt.Sprintf("%d<%d", a.Index, b.Index))
				}
			}
		}
		var got []string
		for _, s := range Shadows(routes) {
			got = append(got, fmt.Sprintf("%d<%d", s.Narrow, s.Broad))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: routes %+v: got %v, model says %v", round, routes, got, want)
		}
	}
}

// modelMatches reads a pattern's rules directly.
func modelMatches(pattern, path string) bool {
	pat := strings.FieldsFunc(pattern, func(r rune) bool { return r == '/' })
	ps := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	for i, s := range pat {
		switch {
		case s == "*" && i == len(pat)-1:
			return true
		case i >= len(ps):
			return false
		case s != "*" && s != ps[i]:
			return false
		}
	}
	return len(pat) == len(ps)
}

// TestShadowsWithConditions: routes whose hosts, headers or listeners
// cannot both hold take nothing from each other; a route that narrows
// another of the same pattern (x-canary) takes requests from it.
func TestShadowsWithConditions(t *testing.T) {
	f := func(routes []Entry, want ...string) {
		t.Helper()
		for i := range routes {
			routes[i].Index = i
		}
		var got []string
		for _, s := range Shadows(routes) {
			got = append(got, fmt.Sprintf("%d %s < %d %s", s.Narrow, s.NarrowPath, s.Broad, s.BroadPath))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Shadows =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	on := func(e Entry, s match.Spec) Entry { e.Cond = s; return e }
	a, b := match.Spec{Hosts: []string{"a.example.com"}}, match.Spec{Hosts: []string{"b.example.com"}}
	f([]Entry{on(r("/api/*"), a), on(r("/api/admin/*"), b)})
	f([]Entry{on(r("/api/*"), a), on(r("/api/admin/*"), match.Spec{Hosts: []string{"*.example.com"}})}, "1 /api/admin/* < 0 /api/*")
	f([]Entry{r("/api/*"), on(r("/api/admin/*"), a)}, "1 /api/admin/* < 0 /api/*")
	f([]Entry{on(r("/api/*"), a), r("/api/admin/*")}, "1 /api/admin/* < 0 /api/*")
	canary := match.Spec{Headers: []match.Header{{Name: "x-canary", Value: "true"}}}
	f([]Entry{r("/api/*"), on(r("/api/*"), canary)}, "1 /api/* < 0 /api/*")
	f([]Entry{on(r("/api/*"), canary), on(r("/api/*"), match.Spec{Headers: []match.Header{{Name: "X-Canary", Value: "false"}}})})
	f([]Entry{on(r("/api/*"), a), on(r("/api/*"), b)})
	f([]Entry{on(r("/*"), match.Spec{Listeners: []string{"p1"}}), on(r("/api/*"), match.Spec{Listeners: []string{"p2"}})})
	f([]Entry{on(r("/*"), match.Spec{Listeners: []string{"p1"}}), on(r("/api/*"), match.Spec{Listeners: []string{"p1"}})}, "1 /api/* < 0 /*")
}
