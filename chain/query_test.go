package chain

import (
	"strings"
	"testing"
)

// TestQueryParams: every name an upstream that splits the query at ';'
// too reads, beside fasthttp's arguments; the names after a ';' hidden.
func TestQueryParams(t *testing.T) {
	f := func(uri string, want ...string) {
		t.Helper()
		var got []string
		for k, hidden := range QueryParams(request(uri)) {
			if hidden {
				k = append([]byte("~"), k...)
			}
			got = append(got, string(k))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %q, want %q", uri, got, want)
		}
	}
	f("/")
	f("/?a=1&b=2", "a", "b")
	f("/?x=1;limit=99999", "x", "~limit")
	f("/?x;limit=9", "x;limit", "~limit")
	f("/?x;a;b=1;c=2=3;;d&e=;f", "x;a;b", "~a", "~b", "~c", "~d", "e", "~f")
	f("/?q=a;b&ids=1;2;3", "q", "~b", "ids", "~2", "~3")
	// Decoded as fasthttp decodes the argument.
	f("/?x=1;api%5Fkey=2;a+b=3", "x", "~api_key", "~a b")
	// A %3B is a ';' only once decoded: without a ';' in the query
	// nothing is split.
	f("/?x=1%3Blimit=9", "x")
}

// TestSemicolonHidesNoCredential: a credential sent inside another
// parameter after a ';' is refused, alone or beside a copy; a ';' that
// hides no credential is not.
func TestSemicolonHidesNoCredential(t *testing.T) {
	env := &Env{Name: "some-policy"}
	c, err := env.Credentials([]string{"client_id"}, []string{"api_key"})
	if err != nil {
		t.Fatal(err)
	}
	f := expectCheck(t, c)
	const hidden = "the request carries the api_key query parameter after a ';' inside another parameter, where some-policy " +
		"does not read it: ';' separates parameters for some upstreams (Rack 2, Python before 3.9.2), so it reaches them " +
		"as a parameter of its own, which nobody checked; send it with '&'"
	f(hidden, "/?api_key=a&x=1;api_key=b")
	f(hidden, "/?x=1;api_key=b")
	f(hidden, "/?x;API.KEY=b")
	f(hidden, "/?x=1;api_key")
	f("carries client_id as a query parameter", "/?x=1;client_id=b", "client_id", "a")
	f("", "/?api_key=a&q=x;y&ids=1;2;3&x=1;api_keys=2", "client_id", "a")
	f("", "/?api_key=a%3Bx")

	// Absent or read under the name as written, and hidden too: a reader
	// of the name sees nothing or one copy, an upstream another.
	q := NewQueryName("ui_lang")
	for uri, want := range map[string]bool{
		"/c?utm=1;ui_lang=fr":         false,
		"/c?ui_lang;ui_lang=fr":       false,
		"/c?ui_lang=en&utm=1;ui_lang": false,
		"/c?ui_lang=en&q=a;b":         true,
	} {
		if got := q.Unambiguous(request(uri)); got != want {
			t.Errorf("%s: unambiguous %v, want %v", uri, got, want)
		}
	}
	token := NewQueryName("access_token")
	if !HasQueryParam(request("/?x=1;access_token=t"), &token) || HasQueryParam(request("/?x=1;access_tokens=t"), &token) {
		t.Error("HasQueryParam misses a parameter after a ';', or finds another")
	}
}

// TestQueryParamsAllocs: walking a query with ';' does not allocate.
func TestQueryParamsAllocs(t *testing.T) {
	c, err := (&Env{Name: "p"}).Credentials([]string{"client_id"}, []string{"api_key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := request("/x?api_key=k&q=a;b;c=d&x;y=1")
	q := NewQueryName("api_key")
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		if c.Check(ctx) != nil || !q.Unambiguous(ctx) || !HasQueryParam(ctx, &q) {
			t.Fatal("misjudged")
		}
		n = 0
		for range QueryParams(ctx) {
			n++
		}
	})
	if n != 6 || allocs != 0 {
		t.Errorf("%d names, want 6; %v allocations, want 0", n, allocs)
	}
}
