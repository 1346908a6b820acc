package chain

import (
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHeaderSpellings(t *testing.T) {
	f := func(name string, want ...string) {
		t.Helper()
		got, err := HeaderSpellings(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("HeaderSpellings(%q) = %q, want %q", name, got, want)
		}
	}
	f("Authorization", "Authorization")
	f("authorization", "Authorization")
	f("client_id", "Client_id", "Client-Id")
	f("X-User", "X-User", "X_user")
	f("x-a_b", "X-A_b", "X-A-B", "X_a-B", "X_a_b")

	_, err := HeaderSpellings("A-B-C-D-E-F-G-H")
	if err == nil || !strings.Contains(err.Error(), "more than 6 '-' and '_'") {
		t.Errorf("seven separators: %v", err)
	}
	if sp, err := HeaderSpellings("A-B-C-D-E-F-G"); err != nil || len(sp) != 64 {
		t.Errorf("six separators: %d spellings, %v", len(sp), err)
	}
}

// request builds a request for uri with headers (name, value pairs; a
// name may repeat).
func request(uri string, headers ...string) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Add(headers[i], headers[i+1])
	}
	return ctx
}

func TestCredentialsCheck(t *testing.T) {
	env := &Env{Name: "some-policy"}
	c, err := env.Credentials([]string{"client_id", "Authorization"}, []string{"api_key"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(want, uri string, headers ...string) {
		t.Helper()
		r := c.Check(request(uri, headers...))
		if want == "" {
			if r != nil {
				t.Errorf("%s %q: refused: %v", uri, headers, r)
			}
			return
		}
		if r == nil {
			t.Fatalf("%s %q: passed, want a duplicate %s", uri, headers, want)
		}
		if r.Status != 400 || r.Reason != "duplicate_credentials" || r.Policy != "some-policy" {
			t.Errorf("%s %q: got %d %s by %s", uri, headers, r.Status, r.Reason, r.Policy)
		}
		if !strings.Contains(r.Message, "the "+want+" more than once") {
			t.Errorf("%s %q: message %q does not name the %s", uri, headers, r.Message, want)
		}
	}
	f("", "/")
	f("", "/?api_key=a&other=1&other=2&api-key=b", "client_id", "a", "Authorization", "Bearer x", "X-Other", "1", "X-Other", "2")
	f("client_id header", "/", "client_id", "a", "client_id", "a")
	f("client_id header", "/", "client_id", "a", "CLIENT_ID", "b")
	f("client_id header", "/", "client-id", "a", "client_id", "b")
	f("client_id header", "/", "Client-Id", "a", "client-id", "b")
	f("client_id header", "/", "client_id", "a", "client_id", "")
	f("Authorization header", "/", "Authorization", "Bearer a", "authorization", "Bearer b")
	f("api_key query parameter", "/?api_key=a&api_key=b")
	f("api_key query parameter", "/?api_key=a&api%5Fkey=a")
	f("api_key query parameter", "/?api_key&api_key=")
	// PHP reads each of these names as api_key, and takes the last.
	for _, other := range []string{"api.key", "api+key", "api%20key", "+api_key", "api[key", "api_key[]", "api_key[0]", "api_key%00x"} {
		f("api_key query parameter", "/?api_key=a&"+other+"=b")
	}
	// ASP.NET reads query names in any case, and takes the first.
	f("api_key query parameter", "/?API_KEY=b&api_key=a")
	f("api_key query parameter", "/?api_key=a&Api.Key=b")
	f("", "/?api_key=a&api_keys=b&xapi_key=d&api_ke[y]=e")
	// Rack 2 reads these as api_key.
	f("api_key query parameter", "/?api_key=a&api_key]=c")
	f("api_key query parameter", "/?api_key=a&[api_key]=c")
	// Java's equalsIgnoreCase reads the dotless ı and the dotted İ as i,
	// Go's strings.EqualFold (Echo's Bind, gorilla/schema) and Java's the
	// long s ſ as s and the Kelvin sign K as k; UTF-8, percent-encoded or
	// not, and with PHP's spellings too.
	f("api_key query parameter", "/?api_key=mine&ap%C4%B1_key=victim")
	f("api_key query parameter", "/?api_key=mine&APİ_KEY=victim")
	f("api_key query parameter", "/?api_key=mine&api_Key=victim")
	f("api_key query parameter", "/?api_key=mine&api.%E2%84%AAey=victim")
	f("", "/?api_key=mine&api_Keys=x&apıkey=y&api_k%C4%80y=z&ap%C4%B1_ke=w")
	// The letters that do not fold to ASCII ones stay theirs.
	f("", "/?api_key=mine&ápi_key=x&ap%C4%B2_key=y&api_k%E2%84%ABy=z")

	// The victim's client_id beside the caller's own: a reader that folds
	// ı to i (Java's equalsIgnoreCase) may take the one nobody checked.
	q, err := env.Credentials(nil, []string{"client_id"})
	if err != nil {
		t.Fatal(err)
	}
	expectCheck(t, q)("the client_id query parameter more than once", "/?client_id=mine&client_%C4%B1d=victim")

	if r := c.headers[0].dup; !strings.Contains(r.Message, "client-id counts as the same header") {
		t.Errorf("message does not explain the other spelling: %s", r.Message)
	}
	if r := c.headers[1].dup; strings.Contains(r.Message, "counts as") {
		t.Errorf("Authorization has no other spelling: %s", r.Message)
	}
}

// TestCredentialsInTheOtherPlace: a header's name in the query, or a query
// parameter's name as a header, is refused: an upstream may read the
// credential from either place, and would read the copy nobody checked.
func TestCredentialsInTheOtherPlace(t *testing.T) {
	env := &Env{Name: "some-policy"}
	c, err := env.Credentials([]string{"client_id", "Authorization"}, []string{"api_key", "host", "user_agent"})
	if err != nil {
		t.Fatal(err)
	}
	f := expectCheck(t, c)
	const idInQuery = "the request carries client_id as a query parameter, and some-policy reads it from the client_id header: " +
		"an upstream that reads the query would get a value nobody checked; send it only in the header"
	f(idInQuery, "/?client_id=b", "client_id", "a")
	f(idInQuery, "/?client_id=b")
	for _, q := range []string{"CLIENT_ID", "client.id", "client-id", "Client-Id", "client_id[]", "client%20id", "client_\u0131d",
		"CL\u0130ENT-ID"} {
		f(idInQuery, "/?x=1&"+q+"=b", "client_id", "a")
	}
	f("carries Authorization as a query parameter", "/?authorization=x", "Authorization", "Bearer a")
	const keyAsHeader = "the request carries a header named api_key (or api-key), and some-policy reads api_key from the query: " +
		"an upstream that reads the header would get a value nobody checked; send it only as a query parameter"
	f(keyAsHeader, "/?api_key=a", "Api-Key", "b")
	f(keyAsHeader, "/", "api_key", "b")
	// Host and User-Agent come with nearly every request: not refused.
	f("", "/?api_key=a&host=h&user_agent=u&client_ids=c&clientid=d", "client_id", "a", "Host", "gw", "User-Agent", "curl", "X-Api-Key", "x")
	if c.query[1].asHeader != nil || c.query[2].asHeader != nil {
		t.Error("host and user_agent are looked for among the headers")
	}
}

// TestReadTheCopyCounted: HeaderName and QueryName read the one copy the
// check counts, in whatever name it came; the exact name first.
func TestReadTheCopyCounted(t *testing.T) {
	h, err := NewHeaderName("X-Api-Key")
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueryName("api_key")
	f := func(uri, wantHeader, wantQuery string, headers ...string) {
		t.Helper()
		ctx := request(uri, headers...)
		if got := string(h.Peek(&ctx.Request.Header)); got != wantHeader {
			t.Errorf("%q: header %q, want %q", headers, got, wantHeader)
		}
		if got := string(q.Peek(ctx.QueryArgs())); got != wantQuery {
			t.Errorf("%s: query %q, want %q", uri, got, wantQuery)
		}
	}
	f("/", "", "")
	f("/?api_key=a", "h", "a", "X-Api-Key", "h")
	f("/?API_KEY=a", "h", "a", "x_api_key", "h")
	f("/?x=1&api.key=a", "h", "a", "X_Api-Key", "h")
	f("/?API_KEY=b&api_key=a", "h", "a", "X_Api_Key", "o", "X-Api-Key", "h")
	f("/?api_keys=a&xapi_key=b&api-key=c", "", "", "X-Api-Keys", "h")

	ctx := request("/", "X_Api_Key", "a", "x-api_key", "b", "X-Other", "c")
	if n := h.Count(&ctx.Request.Header); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	h.Del(&ctx.Request.Header)
	if n := h.Count(&ctx.Request.Header); n != 0 || len(ctx.Request.Header.Peek("X-Other")) == 0 {
		t.Errorf("after Del: %d copies left, X-Other %q", n, ctx.Request.Header.Peek("X-Other"))
	}
}

// TestUnambiguous: a header or parameter is unambiguous when it is absent,
// or sent once under the name as written; a copy in another spelling, or
// a second copy, lets an upstream read what a reader of the name alone
// does not.
func TestUnambiguous(t *testing.T) {
	h, err := NewHeaderName("X-Lang")
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueryName("ui_lang")
	f := func(uri string, wantQuery, wantHeader bool, headers ...string) {
		t.Helper()
		ctx := request(uri, headers...)
		if got := q.Unambiguous(ctx); got != wantQuery {
			t.Errorf("%s: query unambiguous %v, want %v", uri, got, wantQuery)
		}
		if got := h.Unambiguous(&ctx.Request.Header); got != wantHeader {
			t.Errorf("%q: header unambiguous %v, want %v", headers, got, wantHeader)
		}
	}
	f("/", true, true)
	f("/?ui_lang=fr&ui_langs=x&lang=y", true, true, "X-Lang", "fr", "X-Langs", "x")
	f("/?ui_lang=", true, true, "x-lang", "")
	f("/?UI_LANG=fr", false, false, "X_Lang", "fr")
	f("/?ui.lang=fr", false, false, "x_lang", "fr")
	f("/?ui%20lang=fr&ui_lang=en", false, false, "X-Lang", "en", "X_Lang", "fr")
	f("/?ui_lang=en&ui_lang=fr", false, false, "X-Lang", "en", "X-Lang", "fr")
	f("/?ui_lang=en&ui_lang", false, false, "X-Lang", "en", "X-Lang", "")
	f("/?ui_lang[]=fr", false, true)
}

// TestParseQueryName: a name PHP reads as an array element, or cuts at a
// NUL, would be compared by the part PHP keeps ("api[key]" as api): it is
// refused; the names PHP rewrites but reads as one parameter are fine.
func TestParseQueryName(t *testing.T) {
	for _, name := range []string{"api[key]", "ids[]", "a[b][c]", "api\x00key", " api[x]"} {
		if _, err := ParseQueryName(name); err == nil || !strings.Contains(err.Error(), "name a plain parameter") {
			t.Errorf("ParseQueryName(%q) = %v, want an error", name, err)
		}
	}
	for _, name := range []string{"api_key", "api.key", "api key", " api_key", "api[key", "api]key", "API-Key"} {
		q, err := ParseQueryName(name)
		if err != nil {
			t.Errorf("ParseQueryName(%q): %v", name, err)
		} else if !q.Matches([]byte(name)) {
			t.Errorf("ParseQueryName(%q) does not match itself", name)
		}
	}
	_, err := (&Env{Name: "p"}).Credentials(nil, []string{"api[key]"})
	if err == nil || !strings.Contains(err.Error(), `query parameter "api[key]": PHP reads this name as "api"`) {
		t.Errorf("Credentials with api[key]: %v", err)
	}
	_, err = (&Env{Name: "p"}).Credentials(nil, []string{"a_b_c_d_e_f_g_h"})
	if err == nil || !strings.Contains(err.Error(), "a header of that name is refused beside it") {
		t.Errorf("Credentials with a_b_c_d_e_f_g_h: %v", err)
	}
}

func TestQueryName(t *testing.T) {
	for _, c := range []struct {
		name, param string
		want        bool
	}{
		{"access_token", "access_token", true},
		{"access.token", "access_token", true},
		{"access token", "access_token", true},
		{"  access_token", "access_token", true},
		{"access[token", "access_token", true},
		{"access_token[]", "access_token", true},
		{"access_token[a][b]", "access_token", true},
		{"access_token\x00junk", "access_token", true},
		{"access.token", "access.token", true},
		{"access_token", "access.token", true},
		{"access-token", "access_token", false},
		// ASP.NET reads query names in any case.
		{"Access_token", "access_token", true},
		{"ACCESS_TOKEN", "access_token", true},
		{"ACCESS.TOKEN[]", "access_token", true},
		{"access_token", "Access_Token", true},
		{"access_tokeN]", "access_token", false},
		// Go's strings.EqualFold and Java's equalsIgnoreCase read the
		// long s and the Kelvin sign as s and k; Java's also the dotless
		// and the dotted i as i.
		{"\u0130ds", "ids", true},
		{"\u0131ds", "ids", true},
		{"\u017fize", "size", true},
		{"\u212aey", "key", true},
		{"ACCE\u017f\u017f.to\u212aen[]", "access_token", true},
		{"page[\u017fize]", "page[size]", false},
		{"\u0131\u0131ds", "ids", false},
		{"\u0131d", "ids", false},
		{"ids", "\u0131ds", true},
		{"\u00edds", "ids", false},
		{"\xc4ds", "ids", false},
		// Rack 2 (Rails before 7.1) drops brackets around a name, in the
		// case written.
		{"access_token]", "access_token", true},
		{"]access_token", "access_token", true},
		{"access_tokens", "access_token", false},
		{"access_tok[en]", "access_token", false},
		{"[access_token]", "access_token", true},
		{"[Access_token]", "access_token", false},
		{"", "access_token", false},
		// An element of an array (JSON:API's page[size]) is that element,
		// and arrays in it, in any case and with its array's name as PHP
		// reads it; not the array's other elements, nor the array.
		{"page[size]", "page[size]", true},
		{"PAGE[SIZE]", "page[size]", true},
		{"page[size]junk", "page[size]", true},
		{"page[size][]", "page[size]", true},
		{"page[size][a]", "page[size]", true},
		{" page[size]\x00[number]", "page[size]", true},
		{"page_x[size]", "page.x[size]", true},
		{"page[number]", "page[size]", false},
		{"page[sizes]", "page[size]", false},
		{"page[siz]e]", "page[size]", false},
		{"page", "page[size]", false},
		{"page[]", "page[size]", false},
		{"page[size", "page[size]", false},
		// Pushed on a list, an element stands for the list.
		{"ids", "ids[]", true},
		{"ids[7]", "ids[]", true},
		{"IDS[]", "ids[]", true},
		{"page[size][3]", "page[size][]", true},
		{"page[number]", "page[size][]", false},
		{"page[a[]x", "page[a[]]", true},
		{"page[ab]", "page[a[]]", false},
	} {
		q := NewQueryName(c.param)
		if got := q.Matches([]byte(c.name)); got != c.want {
			t.Errorf("NewQueryName(%q).Matches(%q) = %v, want %v", c.param, c.name, got, c.want)
		}
	}
}

func TestCredentialsCheckDoesNotAllocate(t *testing.T) {
	c, err := (&Env{Name: "p"}).Credentials([]string{"client_id", "client_secret", "Authorization"}, []string{"api_key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := request("/x?API.KEY=k&y=1&client_\u0131ds=1&client_secre%E2%84%AAt=2", "client_id", "a", "client_secret", "b",
		"Authorization", "Basic x", "X-Other", "1")
	h, err := NewHeaderName("client_id")
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueryName("api_key")
	allocs := testing.AllocsPerRun(100, func() {
		if c.Check(ctx) != nil {
			t.Fatal("refused")
		}
		if len(h.Peek(&ctx.Request.Header)) == 0 || len(q.Peek(ctx.QueryArgs())) == 0 {
			t.Fatal("not read")
		}
		if !h.Unambiguous(&ctx.Request.Header) || q.Unambiguous(ctx) {
			t.Fatal("ambiguity misjudged")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per check and read, want 0", allocs)
	}
}

// TestQueryNames: Find names the parameter of the set a request's
// parameter is read as, exactly or in another name; Overlapping finds two
// names of the set an upstream reads as one.
func TestQueryNames(t *testing.T) {
	s := NewQueryNames("limit", "page_size", "page[size]", "page[number]", "Limit")
	for _, c := range []struct {
		name  string
		want  int
		exact bool
	}{
		{"limit", 0, true},
		{"Limit", 4, true},
		{"LIMIT", 0, false},
		{"limit[]", 0, false},
		{"page.size", 1, false},
		{"page size", 1, false},
		{"page_size", 1, true},
		{"page[size]", 2, true},
		{"PAGE[Size]", 2, false},
		{"page[number]", 3, true},
		{"page[numbers]", -1, false},
		{"page", -1, false},
		{"limits", -1, false},
		{"lim-it", -1, false},
		{"l\u0131mit", 0, false},
		{"page.\u017fize", 1, false},
		{"l\u0131mits", -1, false},
		{"", -1, false},
	} {
		if got, exact := s.Find([]byte(c.name)); got != c.want || exact != c.exact {
			t.Errorf("Find(%q) = %d, %v, want %d, %v", c.name, got, exact, c.want, c.exact)
		}
	}
	if a, b, ok := s.Overlapping(); !ok || a != 0 || b != 4 {
		t.Errorf("Overlapping() = %d, %d, %v, want 0, 4 (limit and Limit)", a, b, ok)
	}
	for _, names := range [][]string{{"limit", "page[size]", "page[number]", "page_number"}, {"a", "b"}, nil} {
		if a, b, ok := NewQueryNames(names...).Overlapping(); ok {
			t.Errorf("%q: Overlapping() = %d, %d; none overlap", names, a, b)
		}
	}
	for _, pair := range [][2]string{{"page_size", "page.size"}, {"ids", "ids[]"}, {"page[size]", "page[size][x]"}, {"a", "A[b]"},
		{"size", "\u017fize"}} {
		if _, _, ok := NewQueryNames(pair[0], pair[1]).Overlapping(); !ok {
			t.Errorf("%q: not overlapping", pair)
		}
	}
	e := NewQueryNames("ids", "filter[a]", "filter[b]", "filter[b][c]")
	for name, want := range map[string]int{"ids[3]": 0, "IDS": 0, "FILTER[B]": 2, "filter[b][c][d]": 2, "Filter[A][]": 1, "filter[c]": -1, "filter": -1} {
		if got, _ := e.Find([]byte(name)); got != want {
			t.Errorf("Find(%q) = %d, want %d", name, got, want)
		}
	}
	if a, b, ok := e.Overlapping(); !ok || a != 2 || b != 3 {
		t.Errorf("Overlapping() = %d, %d, %v, want 2, 3 (filter[b] and filter[b][c])", a, b, ok)
	}
	if a, b, ok := NewQueryNames("page", "x", "page[size]").Overlapping(); !ok || a != 0 || b != 2 {
		t.Errorf("Overlapping() = %d, %d, %v, want 0, 2 (page and page[size])", a, b, ok)
	}
	var none *QueryNames
	if i, _ := none.Find([]byte("x")); i != -1 {
		t.Errorf("nil set: Find = %d", i)
	}

	ctx := request("/x?" + strings.Repeat("other=1&LIMIT=2&page.size=3&page[size]=4&", 10))
	args := ctx.QueryArgs()
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		n = 0
		for k := range args.All() {
			if i, exact := s.Find(k); i >= 0 && !exact {
				n++
			}
		}
	})
	if n != 20 || allocs != 0 {
		t.Errorf("%d names found in another name, want 20; %v allocations, want 0", n, allocs)
	}
}

// TestHeaderNameOther: Other names the spelling of the header, other than
// its own in any case, that the request carries.
func TestHeaderNameOther(t *testing.T) {
	h, err := NewHeaderName("X-Request-Id")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		headers []string
		want    string
	}{
		{nil, ""},
		{[]string{"x-request-id", "a"}, ""},
		{[]string{"X-Request-Id", "a", "X-Request-Ids", "b"}, ""},
		{[]string{"X-Request-Id", "a", "X_Request_Id", "b"}, "X_request_id"},
		{[]string{"x-request_id", "b"}, "X-Request_id"},
	} {
		ctx := request("/", c.headers...)
		if got := h.Other(&ctx.Request.Header); got != c.want {
			t.Errorf("%q: Other = %q, want %q", c.headers, got, c.want)
		}
	}
}

// TestStandardHeadersKeepTheirQueryNames: a policy reading a standard
// header that carries no credential (a condition on Origin) leaves the
// query parameter of that name to the API (?origin=JFK), while a header
// that may carry one (Authorization, X-Tenant) still refuses its name in
// the query.
func TestStandardHeadersKeepTheirQueryNames(t *testing.T) {
	c, err := (&Env{Name: "p"}).Credentials([]string{"Origin", "Date", "Authorization", "X-Tenant"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for uri, refused := range map[string]bool{
		"/flights?origin=JFK&destination=LAX&date=2026-12-04": false,
		"/x?authorization=Bearer+forged":                      true,
		"/x?x_tenant=t2":                                      true,
	} {
		ctx := request(uri, "Origin", "https://app.example", "X-Tenant", "t1")
		if got := c.Check(ctx) != nil; got != refused {
			t.Errorf("%s: refused %v, want %v", uri, got, refused)
		}
	}
}

// TestAlternatives: a value read in turn from a header and a query
// parameter refuses a request that carries both, in any of their names,
// and passes one that carries either; values read together (two parts of
// a condition) are no alternatives. It does not allocate.
func TestAlternatives(t *testing.T) {
	a, err := (&Env{Name: "p"}).Alternatives([][]Reads{{{Headers: []string{"X-Tenant"}}, {Query: []string{"tenant"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uri     string
		headers []string
		refused bool
	}{
		{"/x?tenant=t1", nil, false},
		{"/x", []string{"X-Tenant", "t1"}, false},
		{"/x?other=1", []string{"X_Tenant", "t1"}, false},
		{"/x?tenant=t2", []string{"X-Tenant", "t1"}, true},
		{"/x?TENANT=t2", []string{"X_Tenant", "t1"}, true},
	} {
		ctx := request(c.uri, c.headers...)
		if got := a.Check(ctx) != nil; got != c.refused {
			t.Errorf("%s %q: refused %v, want %v", c.uri, c.headers, got, c.refused)
		}
		if n := testing.AllocsPerRun(100, func() { a.Check(ctx) }); n != 0 {
			t.Errorf("%s: %v allocations", c.uri, n)
		}
	}
	if none, err := (&Env{Name: "p"}).Alternatives(nil); none != nil || err != nil {
		t.Errorf("no groups: %v, %v; want nil", none, err)
	}
}

// expectCheck returns a function that sends a request for uri with headers
// (name, value pairs) through c and fails t unless it passes (want "") or
// is refused 400 duplicate_credentials with want in the message.
func expectCheck(t *testing.T, c *Credentials) func(want, uri string, headers ...string) {
	return func(want, uri string, headers ...string) {
		t.Helper()
		r := c.Check(request(uri, headers...))
		switch {
		case want == "" && r != nil:
			t.Errorf("%s %q: refused: %v", uri, headers, r)
		case want == "":
		case r == nil:
			t.Errorf("%s %q: passed, want %q", uri, headers, want)
		case r.Status != 400 || r.Reason != "duplicate_credentials" || !strings.Contains(r.Message, want):
			t.Errorf("%s %q: got %d %s %q, want duplicate_credentials %q", uri, headers, r.Status, r.Reason, r.Message, want)
		}
	}
}
