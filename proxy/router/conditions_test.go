package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/match"
)

// req builds a request on listener "main" with the given host and headers.
func req(method, path, host string, headers ...string) *match.Request {
	h := new(fasthttp.RequestHeader)
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &match.Request{Listener: "main", Method: []byte(method), Path: []byte(path),
		Host: match.AppendHost(nil, []byte(host)), Header: h}
}

// TestRewriteTable: the path-rewriting table of Flex's route policy
// ("Determining a Request Path"), row for row: an ApiInstance's base path
// is the route's StripPrefix (and its pattern), rules.path its rule,
// destinationPath the upstream's base path.
func TestRewriteTable(t *testing.T) {
	for _, row := range []struct {
		base, rule, dest, in, out string
	}{
		{"", `/api/.*`, "", "/api/foo/bar", "/api/foo/bar"},
		{"", `/api(/.*)`, "", "/api/foo/bar", "/foo/bar"},
		{"", `/api/.*`, "/orders", "/api/foo/bar", "/orders/api/foo/bar"},
		{"", `/api(/.*)`, "/orders", "/api/foo/bar", "/orders/foo/bar"},
		{"/api", `/foo/.*`, "", "/api/foo/bar", "/foo/bar"},
		{"/api", `/foo(/.*)`, "", "/api/foo/bar", "/bar"},
		{"/api", `/foo/.*`, "/orders", "/api/foo/bar", "/orders/foo/bar"},
		{"/api", `/foo(/.*)`, "/orders", "/api/foo/bar", "/orders/bar"},
		{"/api", `/api/foo/.*`, "/orders", "/api/foo/bar", ""}, // no match
		// The table's last row reads `/foo(/.)/bar(/.)` and /abc/def for
		// /api/foo/abc/bar/def: '.' is one character, so as written the
		// rule cannot match that path, in RE2 as in Flex's own engine
		// (404). The documentation's renderer ate the '*'s that make the
		// output true: `/foo(/.*)/bar(/.*)`.
		{"/api", `/foo(/.)/bar(/.)`, "", "/api/foo/abc/bar/def", ""},
		{"/api", `/foo(/.)/bar(/.)`, "", "/api/foo/a/bar/d", "/a/d"},
		{"/api", `/foo(/.*)/bar(/.*)`, "", "/api/foo/abc/bar/def", "/abc/def"},
		// Around the table: the base path alone, the root, no rules.
		{"/api", "", "/orders", "/api", "/orders"},
		{"/api", "", "/orders", "/api/", "/orders/"},
		{"/api", "", "", "/api", "/"},
		{"", `(.*)`, "/v1", "/x/y", "/v1/x/y"},
		{"", `/api/(.*)`, "/v1", "/api/x", "/v1/x"},
		{"", `/api/(.*)`, "", "/api/x", "/x"},
		// Groups that would climb out of the destination stay under it.
		{"", `/x(.*)`, "/orders", "/x../secret", "/orders/secret"},
		{"", `(/a)x(/..)/(.*)`, "/orders", "/ax/../b", ""}, // requests are normalised before routing: /b
		{"", `/(.*)x(.*)`, "/orders", "/..x/admin", "/orders/admin"},
	} {
		name := fmt.Sprintf("%s|%s|%s|%s", row.base, row.rule, row.dest, row.in)
		e := Entry{Paths: []string{"/*"}, Cond: match.Spec{StripPrefix: row.base}}
		if row.base != "" {
			e.Paths = []string{row.base + "/*"}
		}
		if row.rule != "" {
			e.Cond.Rules = []match.Rule{{Path: row.rule}}
		}
		rt, err := New([]Entry{e})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var m Match
		res := rt.Route(req("GET", string(Normalize(nil, []byte(row.in))), "h"), &m)
		if row.out == "" {
			if res != NotFound {
				t.Errorf("%s: %v, want no match", name, res)
			}
			continue
		}
		if res != Found {
			t.Errorf("%s: %v, want %s", name, res, row.out)
			continue
		}
		if got := string(m.AppendPath(nil, []byte(row.dest))); got != row.out {
			t.Errorf("%s: forwards %s, want %s", name, got, row.out)
		}
	}
}

type condCase struct {
	req   *match.Request
	index int
	res   Result
	allow string
	fwd   string
}

func checkRoutes(t *testing.T, routes []Entry, cases ...condCase) {
	t.Helper()
	for _, order := range orders(routes) {
		rt, err := New(order)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		for _, c := range cases {
			var m Match
			res := rt.Route(c.req, &m)
			fwd := ""
			if res == Found {
				fwd = string(m.AppendPath(nil, nil))
			}
			if m.Index != c.index || res != c.res || string(m.Allow) != c.allow || c.fwd != "" && fwd != c.fwd {
				var hs []string
				for k, v := range c.req.Header.All() {
					hs = append(hs, string(k)+": "+string(v))
				}
				t.Errorf("%s %s host %s %s: got (%d, %v, %q, %s), want (%d, %v, %q, %s); routes in order %v",
					c.req.Method, c.req.Path, c.req.Host, hs, m.Index, res, m.Allow, fwd, c.index, c.res, c.allow, c.fwd, indexes(order))
			}
		}
	}
}

func TestRouteHostsAndHeaders(t *testing.T) {
	hosts := func(e Entry, hs ...string) Entry { e.Cond.Hosts = hs; return e }
	headers := func(e Entry, kv ...string) Entry {
		for i := 0; i+1 < len(kv); i += 2 {
			e.Cond.Headers = append(e.Cond.Headers, match.Header{Name: kv[i], Value: kv[i+1]})
		}
		return e
	}
	checkRoutes(t, []Entry{
		0: hosts(r("/api/*"), "api.example.com"),
		1: hosts(r("/api/*"), "*.example.com"),
		2: r("/api/*"),
		3: headers(r("/api/*"), "x-canary", "true"),
		4: hosts(r("/api/v1/*", "GET"), "api.example.com"),
		5: r("/*", "GET"),
		6: headers(hosts(r("/shop/*"), "shop.example.com"), "x-canary", "true"),
		7: hosts(r("/shop/*"), "shop.example.com"),
	},
		condCase{req("GET", "/api/x", "API.example.com:443"), 0, Found, "", "/api/x"},
		condCase{req("GET", "/api/x", "www.example.com"), 1, Found, "", ""},
		condCase{req("GET", "/api/x", "other.org"), 2, Found, "", ""},
		// Hosts are tried before headers.
		condCase{req("GET", "/api/x", "api.example.com", "x-canary", "true"), 0, Found, "", ""},
		condCase{req("GET", "/api/x", "other.org", "x-canary", "true"), 3, Found, "", ""},
		condCase{req("GET", "/api/x", "other.org", "x-canary", "false"), 2, Found, "", ""},
		// The most specific pattern whose conditions hold decides: a 405
		// there, never the broader route.
		condCase{req("POST", "/api/v1/x", "api.example.com"), -1, MethodNotAllowed, "GET, HEAD", ""},
		condCase{req("GET", "/api/v1/x", "api.example.com"), 4, Found, "", ""},
		// A host mismatch is no 405: the next pattern decides.
		condCase{req("POST", "/api/v1/x", "other.org"), 2, Found, "", ""},
		condCase{req("GET", "/shop/x", "shop.example.com", "x-canary", "true"), 6, Found, "", ""},
		condCase{req("GET", "/shop/x", "shop.example.com"), 7, Found, "", ""},
		condCase{req("GET", "/shop/x", "other.org"), 5, Found, "", ""},
		condCase{req("POST", "/shop/x", "other.org"), -1, MethodNotAllowed, "GET, HEAD", ""},
		condCase{req("POST", "/nothing", "other.org"), -1, MethodNotAllowed, "GET, HEAD", ""},
	)
	// With nothing broader, a host mismatch is a 404.
	checkRoutes(t, []Entry{0: hosts(r("/a/*", "GET"), "a.example.com")},
		condCase{req("POST", "/a/x", "b.example.com"), -1, NotFound, "", ""},
		condCase{req("POST", "/a/x", "a.example.com"), -1, MethodNotAllowed, "GET, HEAD", ""},
	)
}

func TestRouteListenersAndRules(t *testing.T) {
	flex := func(listener, base string, rules ...match.Rule) Entry {
		e := Entry{Paths: []string{base + "/*"}, Cond: match.Spec{Listeners: []string{listener}, StripPrefix: base, Rules: rules}}
		if base == "" {
			e.Paths = []string{"/*"}
		}
		return e
	}
	onOther := req("GET", "/api/users/7", "h")
	onOther.Listener = "other"
	checkRoutes(t, []Entry{
		0: flex("main", "/api", match.Rule{Path: "/users(/.*)", Methods: "GET"}),
		1: flex("main", "/api", match.Rule{Path: "/users/.*"}, match.Rule{Path: "/orders/.*"}),
		2: flex("main", "/api"),
		3: flex("other", ""),
	},
		condCase{req("GET", "/api/users/7", "h"), 0, Found, "", "/7"},
		condCase{req("POST", "/api/users/7", "h"), 1, Found, "", "/users/7"},
		condCase{req("POST", "/api/orders/7", "h"), 1, Found, "", "/orders/7"},
		// A route without rules comes after those with rules.
		condCase{req("GET", "/api/other", "h"), 2, Found, "", "/other"},
		condCase{req("GET", "/elsewhere", "h"), -1, NotFound, "", ""},
		condCase{onOther, 3, Found, "", "/api/users/7"},
	)
	// Routes with rules are tried in the config's order.
	rt, err := New([]Entry{
		{Index: 0, Paths: []string{"/*"}, Cond: match.Spec{Rules: []match.Rule{{Path: "/a/.*"}}}},
		{Index: 1, Paths: []string{"/*"}, Cond: match.Spec{Rules: []match.Rule{{Path: "/a/b/.*"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if i, res, _ := rt.Match([]byte("GET"), []byte("/a/b/c")); i != 0 || res != Found {
		t.Errorf("/a/b/c went to %d (%v), want 0: the first rule in order", i, res)
	}
	if _, err := New([]Entry{{Paths: []string{"/*"}, Cond: match.Spec{Rules: []match.Rule{{Path: "/a("}}}}}); err == nil ||
		!strings.Contains(err.Error(), "route 0: rule 1: path:") {
		t.Errorf("a bad rule: %v", err)
	}
}

// TestRouteAgainstModel compares Route with a direct reading of its
// definition on random routes with hosts and headers: drop the routes
// whose conditions the request does not meet, then the most specific
// pattern decides, its routes tried by Compare, method and Index.
func TestRouteAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	segs := []string{"a", "b", "*"}
	methods := []string{"GET", "HEAD", "POST"}
	hostSets := [][]string{nil, nil, {"a.com"}, {"*.com"}, {"a.com", "b.com"}}
	headerSets := [][]match.Header{nil, nil, {{Name: "x", Value: "1"}}, {{Name: "x", Value: "2"}}}
	for round := range 300 {
		var routes []Entry
		for i := range 1 + rng.IntN(8) {
			var sb strings.Builder
			for range rng.IntN(3) {
				sb.WriteString("/" + segs[rng.IntN(len(segs))])
			}
			if sb.Len() == 0 {
				sb.WriteString("/")
			}
			var ms []string
			for _, m := range methods {
				if rng.IntN(3) == 0 {
					ms = append(ms, m)
				}
			}
			routes = append(routes, Entry{Paths: []string{sb.String()}, Methods: ms, Index: i,
				Cond: match.Spec{Hosts: hostSets[rng.IntN(len(hostSets))], Headers: headerSets[rng.IntN(len(headerSets))]}})
		}
		shuffled := slices.Clone(routes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		rt, err := New(shuffled)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			var sb strings.Builder
			for range rng.IntN(4) {
				sb.WriteString("/" + []string{"a", "b", "c"}[rng.IntN(3)])
			}
			if sb.Len() == 0 {
				sb.WriteString("/")
			}
			host := []string{"a.com", "b.com", "c.org"}[rng.IntN(3)]
			var hs []string
			if v := rng.IntN(3); v > 0 {
				hs = []string{"x", fmt.Sprint(v)}
			}
			q := req([]string{"GET", "HEAD", "POST", "DELETE"}[rng.IntN(4)], sb.String(), host, hs...)
			wi, wr, wa := modelRoute(routes, q)
			var m Match
			gr := rt.Route(q, &m)
			if m.Index != wi || gr != wr || string(m.Allow) != wa {
				t.Fatalf("round %d: %s %s host %s %v on %+v: got (%d, %v, %q), model says (%d, %v, %q)",
					round, q.Method, q.Path, host, hs, routes, m.Index, gr, m.Allow, wi, wr, wa)
			}
		}
	}
}

func modelRoute(routes []Entry, q *match.Request) (int, Result, string) {
	method, path := string(q.Method), string(q.Path)
	type hit struct {
		rank []int
		e    Entry
	}
	var hits []hit
	for _, e := range routes {
		c, err := match.Compile(e.Cond)
		if err != nil {
			panic(err)
		}
		if rank, ok := patternRank(e.Paths[0], path); ok && c.Match(q, nil) {
			hits = append(hits, hit{rank, e})
		}
	}
	if len(hits) == 0 {
		return -1, NotFound, ""
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return slices.Compare(a.rank, b.rank) })
	j := 0
	for j < len(hits) && slices.Equal(hits[j].rank, hits[0].rank) {
		j++
	}
	serves := func(e Entry, m string) bool { return slices.Contains(e.Methods, m) }
	class := func(e Entry) int {
		switch {
		case serves(e, method):
			return 0
		case method == "HEAD" && serves(e, "GET"):
			return 1
		case len(e.Methods) == 0:
			return 2
		}
		return 3
	}
	group := hits[:j]
	best := -1
	for i, h := range group {
		if class(h.e) == 3 {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := group[best].e
		c := match.Compare(&h.e.Cond, &b.Cond)
		if c < 0 || c == 0 && (class(h.e) < class(b) || class(h.e) == class(b) && h.e.Index < b.Index) {
			best = i
		}
	}
	if best >= 0 {
		return group[best].e.Index, Found, ""
	}
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST"} {
		for _, h := range group {
			if serves(h.e, m) || (m == "HEAD" && serves(h.e, "GET")) {
				allow = append(allow, m)
				break
			}
		}
	}
	return -1, MethodNotAllowed, strings.Join(allow, ", ")
}

// patternRank ranks a pattern that matches path as modelMatch does.
func patternRank(pattern, path string) ([]int, bool) {
	ps := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	pat := strings.FieldsFunc(pattern, func(r rune) bool { return r == '/' })
	var rank []int
	for i, s := range pat {
		switch {
		case s == "*" && i == len(pat)-1:
			rank = append(rank, 2)
		case i >= len(ps):
			return nil, false
		case s == "*":
			rank = append(rank, 1)
		case s == ps[i]:
			rank = append(rank, 0)
		default:
			return nil, false
		}
	}
	if len(pat) == 0 || pat[len(pat)-1] != "*" {
		if len(pat) != len(ps) {
			return nil, false
		}
		rank = append(rank, 0)
	}
	return rank, true
}

// TestRouteConcurrent routes requests with rules, regular expressions and
// capture groups among them, from several goroutines at once, each with
// its own Match, and expects what one goroutine gets; run it with -race.
func TestRouteConcurrent(t *testing.T) {
	es, reqs := flexRoutes(200)
	rt, err := New(es)
	if err != nil {
		t.Fatal(err)
	}
	var all []*match.Request
	for _, qs := range reqs {
		all = append(all, qs...)
	}
	want := make([]string, len(all))
	for i, q := range all {
		var m Match
		want[i] = fmt.Sprint(rt.Route(q, &m), m.Index, string(m.AppendPath(nil, nil)))
	}
	done := make(chan error)
	for range 4 {
		go func() {
			var m Match
			for range 50 {
				for i, q := range all {
					m.Reset()
					if got := fmt.Sprint(rt.Route(q, &m), m.Index, string(m.AppendPath(nil, nil))); got != want[i] {
						done <- fmt.Errorf("%s %s: %s, want %s", q.Method, q.Path, got, want[i])
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
