package router

import (
	"testing"

	"github.com/flexgate/flexgate/internal/match"
)

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, n := range []int{1, 100, 10000} {
		es, reqs := benchRoutes(n)
		rt, err := New(es)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range reqs {
			method, path := []byte(q.method), []byte(q.path)
			if a := testing.AllocsPerRun(100, func() { rt.Match(method, path) }); a != 0 {
				t.Errorf("%d routes: Match(%s %s) allocates %v times per call", n, q.method, q.path, a)
			}
		}
	}
}

func TestMatchDoesNotAllocateForManyMethods(t *testing.T) {
	var es []Entry
	for i, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PURGE", "BREW", "MKCOL"} {
		es = append(es, Entry{Paths: []string{"/x/*"}, Methods: []string{m}, Index: i})
	}
	rt, err := New(es)
	if err != nil {
		t.Fatal(err)
	}
	method, path := []byte("LOCK"), []byte("/x/y")
	// The first 405 for a method set builds its Allow value; later ones
	// must reuse it.
	if a := testing.AllocsPerRun(100, func() { rt.Match(method, path) }); a != 0 {
		t.Errorf("Match allocates %v times per call", a)
	}
}

func TestNormalizeDoesNotAllocate(t *testing.T) {
	for _, c := range append(normalizeCases, stripCases...) {
		in := []byte(c.in)
		dst := make([]byte, 0, 3*len(in)+1)
		if a := testing.AllocsPerRun(100, func() { dst = Normalize(dst[:0], in) }); a != 0 {
			t.Errorf("Normalize(%q) allocates %v times per call", c.in, a)
		}
		if a := testing.AllocsPerRun(100, func() { dst = NormalizeStripParams(dst[:0], in) }); a != 0 {
			t.Errorf("NormalizeStripParams(%q) allocates %v times per call", c.in, a)
		}
		if a := testing.AllocsPerRun(100, func() { HasParams(in) }); a != 0 {
			t.Errorf("HasParams(%q) allocates %v times per call", c.in, a)
		}
	}
}

// TestRouteDoesNotAllocate: routing with conditions of every kind —
// listeners, hosts, headers, prefixes, rules matched without and with a
// regular expression, capture groups — allocates nothing once a Match's
// buffers have grown.
func TestRouteDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes pools drop their items")
	}
	es, reqs := flexRoutes(1000)
	rt, err := New(es)
	if err != nil {
		t.Fatal(err)
	}
	var m Match
	var dst []byte
	var all []*match.Request
	for _, qs := range reqs {
		all = append(all, qs...)
	}
	for _, q := range all {
		want := NotFound
		if string(q.Path) != "/no/such/route" {
			want = Found
		}
		if res := rt.Route(q, &m); res != want {
			t.Fatalf("%s %s on %s: %v, want %v", q.Method, q.Path, q.Host, res, want)
		}
		if a := testing.AllocsPerRun(100, func() {
			m.Reset()
			if rt.Route(q, &m) == Found {
				dst = m.AppendPath(dst[:0], []byte("/base"))
			}
		}); a != 0 {
			t.Errorf("Route(%s %s on %s) allocates %v times per call", q.Method, q.Path, q.Host, a)
		}
	}
}
