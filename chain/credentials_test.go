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
	f("", "/?api_key=a&api_keys=b&api_key]=c&xapi_key=d&api_ke[y]=e")

	if r := c.headers[0].dup; !strings.Contains(r.Message, "client-id counts as the same header") {
		t.Errorf("message does not explain the other spelling: %s", r.Message)
	}
	if r := c.headers[1].dup; strings.Contains(r.Message, "counts as") {
		t.Errorf("Authorization has no other spelling: %s", r.Message)
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
		{"access_token]", "access_token", false},
		{"access_tokens", "access_token", false},
		{"access_tok[en]", "access_token", false},
		{"[access_token]", "access_token", false},
		{"", "access_token", false},
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
	ctx := request("/x?api_key=k&y=1", "client_id", "a", "client_secret", "b", "Authorization", "Basic x", "X-Other", "1")
	allocs := testing.AllocsPerRun(100, func() {
		if c.Check(ctx) != nil {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per check, want 0", allocs)
	}
}
