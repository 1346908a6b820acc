package specvalidation_test

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestParameterUnderAnotherName: a query parameter, header or cookie of
// the operation sent under a name the validator does not read but an
// upstream reads as it is refused, whether or not the name itself comes
// too: ASP.NET reads ?LIMIT= as limit and SESSION= as the cookie session,
// PHP reads ?tags[]= as tags, CGI-style upstreams read X_Request_Id as
// X-Request-Id. Names no parameter is read as pass, as before.
func TestParameterUnderAnotherName(t *testing.T) {
	c := chaintest.MustChain(t, policy(t, ""))
	strict := chaintest.MustChain(t, policy(t, "    strictParams: true\n"))
	const id = "0af7651916cd43dd"
	for _, tc := range []struct {
		name, method, uri string
		headers           [][2]string
		strict            bool
		// want is the violations: "" passes.
		want []string
	}{
		{"query, over its maximum", "GET", "/api/pets?limit=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/limit","message":"must be <= 100"}`}},
		{"query in another case", "GET", "/api/pets?LIMIT=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/LIMIT","message":"is read by many upstreams as the query parameter \"limit\"; send it as \"limit\""}`}},
		{"query in another case beside the name", "GET", "/api/pets?limit=5&Limit=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/Limit","message":"is read by many upstreams as the query parameter \"limit\"`}},
		{"query as a PHP array", "GET", "/api/pets?tags[]=fish", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/tags[]","message":"is read by many upstreams as the query parameter \"tags\"`}},
		{"query list in another case", "GET", "/api/pets?tags=dog&TAGS=fish", [][2]string{{reqID, id}}, false,
			[]string{`"path":"/query/TAGS"`}},
		{"strict: one violation, not two", "GET", "/api/pets?LIMIT=5", [][2]string{{reqID, id}}, true,
			[]string{`[{"path":"/query/LIMIT","message":"is read by many upstreams as the query parameter \"limit\"; send it as \"limit\""}]`}},
		{"other names pass", "GET", "/api/pets?limit=5&limits=1&lim-it=2&tag=x", [][2]string{{reqID, id}}, false, nil},
		// Java's equalsIgnoreCase reads ı and İ as i.
		{"query with a dotless i", "GET", "/api/pets?l%C4%B1mit=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/lımit","message":"is read by many upstreams as the query parameter \"limit\"; send it as \"limit\""}`}},
		{"query with a dotted I beside the name", "GET", "/api/pets?limit=5&L%C4%B0MIT=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/LİMIT","message":"is read by many upstreams as the query parameter \"limit\"`}},
		{"query with a letter that folds to no ASCII one", "GET", "/api/pets?l%C3%ADmit=99999", [][2]string{{reqID, id}}, false, nil},
		// Rack 2 and Python before 3.9.2 split the query at ';' too.
		{"query after a ';' in a value", "GET", "/api/pets?x=1;limit=99999", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/limit","message":"is the query parameter \"limit\" to upstreams for which ';' separates parameters ` +
				`(Rack 2, Python before 3.9.2), and was not validated: send it with '&'"}`}},
		{"query after a ';' in a name", "GET", "/api/pets?x;limit=9", [][2]string{{reqID, id}}, false,
			[]string{`{"path":"/query/limit","message":"is the query parameter \"limit\" to upstreams for which ';' separates parameters`}},
		{"query after a ';' in the name's value, strict", "GET", "/api/pets?limit=5;LIMIT=99999", [][2]string{{reqID, id}}, true,
			[]string{`{"path":"/query/limit","message":"must be integer"}`, `{"path":"/query/LIMIT","message":"is the query parameter \"limit\" to upstreams`}},
		{"';' in values naming no parameter", "GET", "/api/pets?limit=5&q=a;b&ids=1;2;3&x;y=1", [][2]string{{reqID, id}}, false, nil},
		{"header in another spelling, beside it", "GET", "/api/pets", [][2]string{{reqID, id}, {"X_Request_Id", "nope"}}, false,
			[]string{`{"path":"/header/X_request_id","message":"is read by many upstreams as the header \"X-Request-Id\" ('-' and '_' alike); send it as \"X-Request-Id\""}`}},
		{"header in another spelling, alone", "GET", "/api/pets", [][2]string{{"x_request-id", id}}, false,
			[]string{`"path":"/header/X_request-Id","message":"is read by many upstreams as the header \"X-Request-Id\"`, `{"path":"/header/X-Request-Id","message":"is required"}`}},
		{"header in another case is the header", "GET", "/api/pets", [][2]string{{"x-request-id", id}}, false, nil},
		{"cookie in another case", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "session=0123456789; SESSION=x"}}, false,
			[]string{`{"path":"/cookie/SESSION","message":"is read by many upstreams as the cookie \"session\"; send it as \"session\""}`}},
		{"cookie as a PHP array", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "session=0123456789; session[a]=x"}}, false,
			[]string{`"path":"/cookie/session[a]"`}},
		// PHP decodes cookie names: each of these is session to it.
		{"cookie name percent-encoded", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "sessi%6Fn=x; session=0123456789"}}, false,
			[]string{`"path":"/cookie/sessi%6Fn"`}},
		{"cookie name as an encoded PHP array", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "session%5B%5D=x; session=0123456789"}}, false,
			[]string{`"path":"/cookie/session%5B%5D"`}},
		{"other cookies pass", "DELETE", "/api/pets/7", [][2]string{{"Cookie", "session=0123456789; sessions=x; theme=dark"}}, false, nil},
	} {
		ctx := chaintest.Ctx("http://gw" + tc.uri)
		ctx.Request.Header.SetMethod(tc.method)
		for _, h := range tc.headers {
			ctx.Request.Header.Add(h[0], h[1])
		}
		ch := c
		if tc.strict {
			ch = strict
		}
		ex := chain.AcquireExchange()
		ex.Prepare(ch)
		rej := ch.RunRequest(ctx, ex)
		details := string(ex.Details)
		chain.ReleaseExchange(ex)
		if tc.want == nil {
			if rej != nil {
				t.Errorf("%s: refused: %v %s", tc.name, rej, details)
			}
			continue
		}
		if rej == nil || rej.Status != 400 || rej.Reason != "validation_failed" {
			t.Errorf("%s: %v, want 400 validation_failed", tc.name, rej)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(details, w) {
				t.Errorf("%s: violations %s, want %s", tc.name, details, w)
			}
		}
		if n := strings.Count(details, `"path"`); n != len(tc.want) {
			t.Errorf("%s: %d violations, want %d: %s", tc.name, n, len(tc.want), details)
		}
	}
}

// TestElementsOfAnArray: parameters named as elements of one array
// (JSON:API's page[size] and page[number]) are distinct to every
// upstream: each is read as itself, in any case, and not as the other.
func TestElementsOfAnArray(t *testing.T) {
	spec := head + `paths:
  /items:
    get:
      parameters:
        - {name: 'page[size]', in: query, schema: {type: integer, maximum: 50}}
        - {name: 'page[number]', in: query, schema: {type: integer}}
` + ok
	c := chaintest.MustChain(t, "- spec-validation:\n    spec: |\n"+block(spec, 6))
	for uri, want := range map[string]string{
		"/items?page[size]=50&page[number]=7": "",
		"/items?page[size]=51":                `{"path":"/query/page[size]","message":"must be <= 50"}`,
		"/items?PAGE[SIZE]=9999":              `{"path":"/query/PAGE[SIZE]","message":"is read by many upstreams as the query parameter \"page[size]\"; send it as \"page[size]\""}`,
		"/items?page[size]x=9999":             `{"path":"/query/page[size]x","message":"is read by many upstreams as the query parameter \"page[size]\"`,
		"/items?page[other]=1&page=2":         "",
	} {
		r := send(c, "GET", uri, "")
		switch {
		case want == "" && r.rej != nil:
			t.Errorf("%s: refused: %v %s", uri, r.rej, r.details)
		case want != "" && (r.rej == nil || !strings.Contains(r.details, want)):
			t.Errorf("%s: %v %s, want %s", uri, r.rej, r.details, want)
		}
	}
}

// TestBodyMemberInAnotherCase: Go's encoding/json, ASP.NET Core, Json.NET
// and Jackson (ACCEPT_CASE_INSENSITIVE_PROPERTIES) bind JSON members
// ignoring case, so a member spelled in another case than a declared
// property, or two members equal ignoring case, reach the upstream as the
// property unvalidated. Such a body is refused, on a schema of the fast
// path (NewPet) and of the library's (Pet, an allOf).
func TestBodyMemberInAnotherCase(t *testing.T) {
	c := chaintest.MustChain(t, policy(t, ""))
	json := []string{"Content-Type", "application/json"}
	for _, tc := range []struct {
		name, method, uri, body string
		// want is the violations: nil passes.
		want []string
	}{
		{"declared, valid", "POST", "/api/pets", `{"name":"rex","age":2,"other":1,"ages":2}`, nil},
		{"declared, out of bounds", "POST", "/api/pets", `{"name":"rex","age":-5}`, []string{`"path":"/body/age"`}},
		{"another case", "POST", "/api/pets", `{"name":"rex","AGE":-5}`,
			[]string{`{"path":"/body/AGE","message":"is read by many upstreams as \"age\"; send it as \"age\""}`}},
		{"another case beside the name", "POST", "/api/pets", `{"name":"rex","age":2,"Age":-5}`,
			[]string{`{"path":"/body/Age","message":"is read by many upstreams as \"age\"; send it as \"age\""}`,
				`{"path":"/body/Age","message":"is read by many upstreams as the same member as \"age\""}`}},
		{"two undeclared members equal ignoring case, nested", "POST", "/api/pets", `{"name":"rex","x":[{"mode":1,"MODE":2}]}`,
			[]string{`{"path":"/body/x/0/MODE","message":"is read by many upstreams as the same member as \"mode\""}`}},
		{"library path, valid", "PUT", "/api/pets/7", `{"id":1,"name":"rex","age":2}`, nil},
		{"library path, another case", "PUT", "/api/pets/7", `{"id":1,"name":"rex","AGE":-5}`,
			[]string{`{"path":"/body/AGE","message":"is read by many upstreams as \"age\"; send it as \"age\""}`}},
		{"library path, another case of a required name", "PUT", "/api/pets/7", `{"ID":1,"name":"rex"}`,
			[]string{`{"path":"/body/ID","message":"is read by many upstreams as \"id\"; send it as \"id\""}`}},
	} {
		r := send(c, tc.method, tc.uri, tc.body, json...)
		if tc.want == nil {
			if r.rej != nil {
				t.Errorf("%s: refused: %v %s", tc.name, r.rej, r.details)
			}
			continue
		}
		if r.rej == nil || r.rej.Status != 400 || r.rej.Reason != "validation_failed" {
			t.Errorf("%s: %v, want 400 validation_failed", tc.name, r.rej)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.details, w) {
				t.Errorf("%s: violations %s, want %s", tc.name, r.details, w)
			}
		}
		if n := strings.Count(r.details, `"path"`); n != len(tc.want) {
			t.Errorf("%s: %d violations, want %d: %s", tc.name, n, len(tc.want), r.details)
		}
	}
}
