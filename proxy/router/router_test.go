package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// r builds an Entry whose Index is its position in the list it sits in.
func r(path string, methods ...string) Entry {
	return Entry{Paths: strings.Split(path, " "), Methods: methods}
}

// orders returns the routes in several orders, each numbered as written,
// so that a test can show that config order does not decide specificity.
func orders(routes []Entry) [][]Entry {
	for i := range routes {
		routes[i].Index = i
	}
	rev := slices.Clone(routes)
	slices.Reverse(rev)
	out := [][]Entry{routes, rev}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		s := slices.Clone(routes)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		out = append(out, s)
	}
	return out
}

type matchCase struct {
	method, path string
	index        int // -1 unless Found
	res          Result
	allow        string
}

func found(method, path string, index int) matchCase {
	return matchCase{method, path, index, Found, ""}
}

func notFound(method, path string) matchCase {
	return matchCase{method, path, -1, NotFound, ""}
}

func notAllowed(method, path, allow string) matchCase {
	return matchCase{method, path, -1, MethodNotAllowed, allow}
}

func checkMatches(t *testing.T, routes []Entry, cases ...matchCase) {
	t.Helper()
	for _, order := range orders(routes) {
		rt, err := New(order)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		for _, c := range cases {
			idx, res, allow := rt.Match([]byte(c.method), []byte(c.path))
			if idx != c.index || res != c.res || string(allow) != c.allow {
				t.Errorf("%s %s: got (%d, %v, %q), want (%d, %v, %q); routes in order %v",
					c.method, c.path, idx, res, allow, c.index, c.res, c.allow, indexes(order))
			}
		}
	}
}

func indexes(es []Entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

func TestMatchPrecedence(t *testing.T) {
	checkMatches(t, []Entry{
		0: r("/api/*"),
		1: r("/api/v1/*"),
		2: r("/api/v1/users"),
		3: r("/api/*/users"),
		4: r("/api/v1/*/orders"),
		5: r("/api/v1"),
	},
		found("GET", "/api/v1/users", 2),     // exact beats every wildcard
		found("GET", "/api/v2/users", 3),     // one-segment * beats tail *
		found("GET", "/api/v1/x", 1),         // longer literal prefix beats shorter
		found("GET", "/api/v2/x", 0),         // only the short prefix matches
		found("GET", "/api/v1/42/orders", 4), // * in the middle
		found("GET", "/api/v1/users/1", 1),   // exact fails deeper: back to /api/v1/*
		found("GET", "/api/v1", 5),           // exact beats tail * matching nothing
		found("GET", "/api/v1/", 5),
		found("GET", "/api", 0), // tail * matches zero segments
		found("GET", "/api/", 0),
		found("GET", "/api/v1/users/orders", 4), // "users" is a literal here, but only /api/v1/*/orders fits
		notFound("GET", "/apix"),
		notFound("GET", "/"),
		notFound("GET", "/API/v1/users"), // paths are case-sensitive
	)
}

func TestMatchBacktracking(t *testing.T) {
	checkMatches(t, []Entry{
		0: r("/a/b/c"),
		1: r("/a/*/d"),
		2: r("/a/*/c"),
		3: r("/a/b/*"),
		4: r("/x/*"),
		5: r("/x/*/y"),
	},
		found("GET", "/a/b/c", 0),
		found("GET", "/a/b/d", 3), // literal b at segment 2 outranks * there
		found("GET", "/a/z/d", 1),
		found("GET", "/a/z/c", 2),
		found("GET", "/a/b/q/r", 3),
		notFound("GET", "/a/z/q"),
		found("GET", "/x/1/y", 5),   // one-segment * outranks tail *
		found("GET", "/x/1/y/z", 4), // /x/*/y fails on the extra segment
		found("GET", "/x", 4),
	)
}

func TestMatchWildcards(t *testing.T) {
	checkMatches(t, []Entry{
		0: r("/api/v1/*"),
		1: r("/users/*/orders"),
		2: r("/*"),
	},
		found("GET", "/api/v1", 0),
		found("GET", "/api/v1/", 0),
		found("GET", "/api/v1/x/y/z", 0),
		found("GET", "/users/42/orders", 1),
		found("GET", "/users/42/orders/", 1),
		found("GET", "/users/orders", 2), // a middle * needs one segment
		found("GET", "/users//orders", 2),
		found("GET", "/users/42/orders/7", 2),
		found("GET", "/", 2),
		found("GET", "", 2),
		found("GET", "/anything/at/all", 2),
	)
}

func TestMatchTrailingSlash(t *testing.T) {
	checkMatches(t, []Entry{
		0: r("/health"),
		1: r("/ready/"),
		2: r("/"),
	},
		found("GET", "/health", 0),
		found("GET", "/health/", 0),
		found("GET", "/ready", 1),
		found("GET", "/ready/", 1),
		found("GET", "/", 2),
		notFound("GET", "/health/x"),
		notFound("GET", "/healthz"),
	)
}

func TestMatchMethods(t *testing.T) {
	checkMatches(t, []Entry{
		0:  r("/api/products/*", "GET"),
		1:  r("/api/*"),
		2:  r("/items/*", "GET"),
		3:  r("/items/*/x", "POST", "DELETE"),
		4:  r("/items/1/x", "PUT"),
		5:  r("/head", "GET"),
		6:  r("/head", "HEAD"),
		7:  r("/pick"),
		8:  r("/pick", "POST"),
		9:  r("/pick", "POST"),
		10: r("/dav", "PROPFIND", "GET", "MKCOL"),
	},
		found("GET", "/api/products/1", 0),
		found("HEAD", "/api/products/1", 0), // HEAD goes where GET goes
		// The most specific pattern decides: no fall-through to the
		// broader route, which may lack the narrower one's policies.
		notAllowed("POST", "/api/products/1", "GET, HEAD"),
		notAllowed("DELETE", "/api/products", "GET, HEAD"),
		found("DELETE", "/api/other", 1),
		notAllowed("PATCH", "/items/1/x", "PUT"),
		notAllowed("GET", "/items/1/x", "PUT"),
		notAllowed("PATCH", "/items/2/x", "POST, DELETE"),
		notAllowed("POST", "/items/2", "GET, HEAD"),
		notAllowed("BREW", "/items/2", "GET, HEAD"), // a method no route names
		found("DELETE", "/items/2/x", 3),
		found("PUT", "/items/1/x", 4),
		found("GET", "/items/1/y", 2),
		found("HEAD", "/head", 6), // a route naming HEAD beats one naming GET
		found("GET", "/head", 5),
		found("POST", "/pick", 8), // naming the method beats allowing any; then lowest index
		found("GET", "/pick", 7),
		found("BREW", "/pick", 7),
		notAllowed("POST", "/dav", "GET, HEAD, MKCOL, PROPFIND"),
		found("PROPFIND", "/dav", 10),
		notFound("GET", "/nothing"),
	)
}

func TestMatchNormalisedPatterns(t *testing.T) {
	checkMatches(t, []Entry{
		0: r("/caf%c3%a9/*"),
		1: {Paths: []string{"/a b"}},
		2: r("//x///y"),
		3: r("/~user /%7Eother"),
	},
		found("GET", string(Normalize(nil, []byte("/café/menu"))), 0),
		found("GET", string(Normalize(nil, []byte("/caf%C3%A9"))), 0),
		found("GET", "/a%20b", 1),
		found("GET", "/x/y", 2),
		found("GET", "/~user", 3),
		found("GET", "/~other", 3),
	)
}

func TestAllowWithManyMethods(t *testing.T) {
	var routes []Entry
	var names []string
	for i := range 12 {
		m := fmt.Sprintf("X%02d", i)
		names = append(names, m)
		routes = append(routes, r(fmt.Sprintf("/m/%d /all/*", i), m))
	}
	rt, err := New(orders(routes)[0])
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(names, ", ")
	for range 2 {
		_, res, allow := rt.Match([]byte("GET"), []byte("/all/x"))
		if res != MethodNotAllowed || string(allow) != want {
			t.Fatalf("got %v %q, want MethodNotAllowed %q", res, allow, want)
		}
	}
	if _, _, allow := rt.Match([]byte("GET"), []byte("/m/3")); string(allow) != "X03" {
		t.Fatalf("Allow for /m/3 = %q, want X03", allow)
	}
	if idx, res, _ := rt.Match([]byte("X07"), []byte("/all")); idx != 7 || res != Found {
		t.Fatalf("X07 /all = %d %v, want 7 Found", idx, res)
	}
}

func TestNewErrors(t *testing.T) {
	f := func(e Entry, want ...string) {
		t.Helper()
		e.Index = 3
		_, err := New([]Entry{{Paths: []string{"/ok"}}, e})
		if err == nil {
			t.Fatalf("New(%+v) succeeded, want an error", e)
		}
		for _, w := range append(want, "route 3") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	f(Entry{}, "no paths")
	f(Entry{Paths: []string{"api/*"}}, `"api/*"`, "must start with /")
	f(Entry{Paths: []string{"/a/../b"}}, `"/a/../b"`, `".."`)
	f(Entry{Paths: []string{"/a/%2e/b"}}, `"/a/%2e/b"`, "not a plain path segment")
	f(Entry{Paths: []string{"/a%2Fb"}}, "not a plain path segment")
	f(Entry{Paths: []string{"/a"}, Methods: []string{"get"}}, `"get"`, "upper-case")
}

// TestMatchAgainstModel compares the trie with a direct reading of the
// rules on random route sets, in random config orders.
func TestMatchAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	segs := []string{"a", "b", "*"}
	methods := []string{"GET", "HEAD", "POST", "PUT"}
	for round := range 300 {
		var routes []Entry
		for i := range 1 + rng.IntN(8) {
			var sb strings.Builder
			for range rng.IntN(4) {
				sb.WriteString("/" + segs[rng.IntN(len(segs))])
			}
			if sb.Len() == 0 || rng.IntN(4) == 0 {
				sb.WriteString("/")
			}
			var ms []string
			for _, m := range methods {
				if rng.IntN(3) == 0 {
					ms = append(ms, m)
				}
			}
			routes = append(routes, Entry{Paths: []string{sb.String()}, Methods: ms, Index: i})
		}
		shuffled := slices.Clone(routes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		rt, err := New(shuffled)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			var sb strings.Builder
			for range rng.IntN(5) {
				sb.WriteString("/" + []string{"a", "b", "c"}[rng.IntN(3)])
			}
			if sb.Len() == 0 || rng.IntN(4) == 0 {
				sb.WriteString("/")
			}
			path := sb.String()
			method := []string{"GET", "HEAD", "POST", "DELETE"}[rng.IntN(4)]
			wi, wr, wa := modelMatch(routes, method, path)
			gi, gr, ga := rt.Match([]byte(method), []byte(path))
			if gi != wi || gr != wr || string(ga) != wa {
				t.Fatalf("round %d: %s %s on %+v: got (%d, %v, %q), model says (%d, %v, %q)",
					round, method, path, routes, gi, gr, ga, wi, wr, wa)
			}
		}
	}
}

// modelMatch ranks every matching pattern by the kinds of its segments,
// left to right (literal 0, one-segment * 1, tail * 2, with the end of an
// exact pattern ranked 0); the routes of the first rank, the most specific
// pattern, decide alone.
func modelMatch(routes []Entry, method, path string) (int, Result, string) {
	ps := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	type hit struct {
		rank []int
		e    Entry
	}
	var hits []hit
	for _, e := range routes {
		pat := strings.FieldsFunc(e.Paths[0], func(r rune) bool { return r == '/' })
		var rank []int
		ok := true
		for i, s := range pat {
			switch {
			case s == "*" && i == len(pat)-1:
				rank = append(rank, 2)
			case i >= len(ps):
				ok = false
			case s == "*":
				rank = append(rank, 1)
			case s == ps[i]:
				rank = append(rank, 0)
			default:
				ok = false
			}
		}
		if len(pat) == 0 || pat[len(pat)-1] != "*" {
			ok = ok && len(pat) == len(ps)
			rank = append(rank, 0)
		}
		if ok {
			hits = append(hits, hit{rank, e})
		}
	}
	if len(hits) == 0 {
		return -1, NotFound, ""
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if c := slices.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return a.e.Index - b.e.Index
	})
	serves := func(e Entry, m string) bool { return slices.Contains(e.Methods, m) }
	j := 0
	for j < len(hits) && slices.Equal(hits[j].rank, hits[0].rank) {
		j++
	}
	group := hits[:j]
	for _, pass := range []func(Entry) bool{
		func(e Entry) bool { return serves(e, method) },
		func(e Entry) bool { return method == "HEAD" && serves(e, "GET") },
		func(e Entry) bool { return len(e.Methods) == 0 },
	} {
		for _, h := range group {
			if pass(h.e) {
				return h.e.Index, Found, ""
			}
		}
	}
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT"} {
		for _, h := range group {
			if serves(h.e, m) || (m == "HEAD" && serves(h.e, "GET")) {
				allow = append(allow, m)
				break
			}
		}
	}
	return -1, MethodNotAllowed, strings.Join(allow, ", ")
}

// TestMatchConcurrent runs Match from several goroutines, including the
// first 405s that fill the Allow cache of a router with many methods; run
// it with -race.
func TestMatchConcurrent(t *testing.T) {
	var es []Entry
	for i := range 12 {
		es = append(es, Entry{Paths: []string{fmt.Sprintf("/m/%d", i), "/all/*"}, Methods: []string{fmt.Sprintf("X%02d", i)}, Index: i})
	}
	rt, err := New(es)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 500 {
				path := fmt.Sprintf("/m/%d", (g+i)%12)
				_, res, allow := rt.Match([]byte("GET"), []byte(path))
				if want := fmt.Sprintf("X%02d", (g+i)%12); res != MethodNotAllowed || string(allow) != want {
					errs <- fmt.Errorf("GET %s: got %v %q, want MethodNotAllowed %q", path, res, allow, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, p := range []string{"/", "/*", "/api/v1/*", "/api/*/orders", "/api/", "/%20x", "/café", "/caf%C3%A9/*", "/~user"} {
		if err := CheckPattern(p); err != nil {
			t.Errorf("CheckPattern(%q) = %v", p, err)
		}
	}
	f := func(p, want string) {
		t.Helper()
		err := CheckPattern(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPattern(%q) = %v, want it to say %q", p, err, want)
		}
	}
	f("", "must start with /")
	f("api/*", "must start with /")
	f("/a?x", "query or fragment")
	f("/a#x", "query or fragment")
	f("/a b", "spaces or control characters")
	f("/a;b", "';' or %3B")
	f("/a%3bb", "';' or %3B")
	f("/a//b", "empty segment")
	f("/a/../b", `".."`)
	f("/a*", "mixes * with text")
	f("/a%2Fb/*", "not a plain path segment")
	f("/a/%2e%2e/b", "not a plain path segment")
	f(`/a\b`, "not a plain path segment")
}

func TestAllow(t *testing.T) {
	f := func(methods []string, want string) {
		t.Helper()
		if got := string(Allow(methods)); got != want {
			t.Errorf("Allow(%q) = %q, want %q", methods, got, want)
		}
	}
	f(nil, "")
	f([]string{"POST", "GET"}, "GET, HEAD, POST")
	f([]string{"TRACE", "MKCOL", "DELETE", "PROPFIND", "DELETE"}, "DELETE, TRACE, MKCOL, PROPFIND")
	f(Methods, strings.Join(Methods, ", "))
	// A 405 from Match lists the same as Allow for the routes' methods.
	rt, err := New([]Entry{{Paths: []string{"/x"}, Methods: []string{"PUT", "GET", "MKCOL"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, allow := rt.Match([]byte("POST"), []byte("/x")); string(allow) != string(Allow([]string{"PUT", "GET", "MKCOL"})) {
		t.Errorf("Match's Allow = %q", allow)
	}
}
