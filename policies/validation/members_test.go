package validation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// bodySchema bounds members at the root and inside a nested object and
// the objects of an array, without forbidding others: the common shape of
// a request body schema.
const bodySchema = `{
  "type": "object",
  "properties": {
    "limit": { "type": "integer", "maximum": 100 },
    "page":  { "type": "object", "properties": { "size": { "type": "integer", "maximum": 50 } } },
    "items": { "type": "array", "items": { "type": "object", "properties": { "qty": { "type": "integer", "maximum": 9 } } } }
  }
}`

// TestBodyMemberInAnotherCase: Go's encoding/json, ASP.NET Core,
// Json.NET and Jackson (ACCEPT_CASE_INSENSITIVE_PROPERTIES) bind members
// ignoring case, so a member spelled in another case than a declared
// property, or two members equal ignoring case, reach the upstream as the
// declared property unvalidated. Such a body is refused, at every depth,
// on the fast path and the library path alike; other bodies pass as
// before.
func TestBodyMemberInAnotherCase(t *testing.T) {
	fast := mustCompile(t, schemaPolicy(bodySchema, ""))
	if fast.Policies[0].Policy.(*Validator).fast == nil {
		t.Fatal("bodySchema is not on the fast path")
	}
	lib := mustCompile(t, schemaPolicy(strings.Replace(bodySchema, "{", `{"minProperties": 0,`, 1), ""))
	if lib.Policies[0].Policy.(*Validator).fast != nil {
		t.Fatal("the library's schema is on the fast path")
	}
	// A property declared only where it is, through $ref and allOf.
	ref := mustCompile(t, schemaPolicy(`{"$defs": {"p": {"properties": {"limit": {"maximum": 100}}}},
  "allOf": [{"$ref": "#/$defs/p"}]}`, ""))
	for _, tc := range []struct {
		name string
		body string
		// want is the violations, as path → a part of the message; nil
		// passes.
		want map[string]string
	}{
		{"declared, over its maximum", `{"limit":99999}`, map[string]string{"/limit": "100"}},
		{"declared, valid", `{"limit":99,"page":{"size":50},"items":[{"qty":9}],"other":1,"limits":2}`, nil},
		{"another case", `{"LIMIT":99999}`, map[string]string{"/LIMIT": `is read by many upstreams as \"limit\"; send it as \"limit\"`}},
		{"another case, valid value", `{"Limit":5}`, map[string]string{"/Limit": `send it as \"limit\"`}},
		{"another case beside the name", `{"limit":5,"Limit":99999}`, map[string]string{
			"/Limit": `is read by many upstreams as \"limit\"; send it as \"limit\"` +
				`is read by many upstreams as the same member as \"limit\"`}},
		{"escaped", `{"\u004cIMIT":99999}`, map[string]string{"/LIMIT": `send it as \"limit\"`}},
		{"nested object", `{"page":{"SIZE":999}}`, map[string]string{"/page/SIZE": `send it as \"size\"`}},
		// Go's encoding/json reads the long s and the Kelvin sign as s and k.
		{"a long s (Go)", `{"page":{"ſize":999}}`, map[string]string{"/page/ſize": `send it as \"size\"`}},
		{"a long s escaped (Go)", `{"page":{"\u017fize":999}}`, map[string]string{"/page/ſize": `send it as \"size\"`}},
		{"the Kelvin sign beside the name (Go)", `{"kind":1,"Kind":2}`, map[string]string{"/Kind": `as the same member as \"kind\"`}},
		{"a long s beside the name (Go)", `{"page":{"size":1,"ſize":3}}`, map[string]string{"/page/ſize": `as the same member as \"size\"`}},
		// Java's equalsIgnoreCase reads the dotless ı and the dotted İ as i.
		{"a dotless i (Java)", `{"lımit":99999}`, map[string]string{"/lımit": `is read by many upstreams as \"limit\"; send it as \"limit\"`}},
		{"a dotless i escaped (Java)", `{"l\u0131mit":99999}`, map[string]string{"/lımit": `send it as \"limit\"`}},
		{"a dotted I (Java)", `{"LİMİT":99999}`, map[string]string{"/LİMİT": `send it as \"limit\"`}},
		{"a dotless i beside the name (Java)", `{"limit":5,"lımit":99999}`, map[string]string{
			"/lımit": `send it as \"limit\"` + `is read by many upstreams as the same member as \"limit\"`}},
		{"undeclared names with a dotless i", `{"ıd":1,"Id":2}`, map[string]string{"/Id": `as the same member as \"ıd\"`}},
		{"letters that fold to no ASCII one", `{"límit":99999,"lımits":1,"page":{"śize":999}}`, nil},
		{"nested, beside the name", `{"page":{"size":1,"Size":999}}`, map[string]string{"/page/Size": `as the same member as \"size\"`}},
		{"in an array", `{"items":[{"qty":1},{"QTY":99}]}`, map[string]string{"/items/1/QTY": `send it as \"qty\"`}},
		{"a declared object in another case", `{"PAGE":{"size":999}}`, map[string]string{"/PAGE": `send it as \"page\"`}},
		{"two undeclared names equal ignoring case", `{"mode":"a","MODE":"b"}`, map[string]string{"/MODE": `is read by many upstreams as the same member as \"mode\"`}},
		{"two undeclared names, nested", `{"x":[{"Ab":1,"aB":2}]}`, map[string]string{"/x/0/aB": `as the same member as \"Ab\"`}},
		{"the same name in two objects", `{"page":{"size":1},"other":{"size":2,"Page":1}}`, map[string]string{"/other/Page": `send it as \"page\"`}},
	} {
		for _, c := range []struct {
			name string
			c    *chain.Chain
		}{{"fast", fast}, {"library", lib}} {
			checkViolations(t, c.name+": "+tc.name, c.c, tc.body, tc.want)
		}
	}
	// An object past 16 members is checked by sorting, not pairs.
	var many strings.Builder
	many.WriteString(`{"page":{`)
	for i := range 40 {
		fmt.Fprintf(&many, `"m%d":1,`, i)
	}
	many.WriteString(`"M7":2}}`)
	checkViolations(t, "many members", fast, many.String(), map[string]string{"/page/M7": `as the same member as \"m7\"`})
	checkViolations(t, "many members, valid", fast, strings.Replace(many.String(), `"M7"`, `"n7"`, 1), nil)
	// Declared anywhere counts: ID is declared inside owner, and is id
	// in another case, which the root declares.
	both := mustCompile(t, schemaPolicy(`{"properties": {"id": {}, "owner": {"properties": {"ID": {}}}}}`, ""))
	checkViolations(t, "a spelling declared elsewhere", both, `{"id":1,"owner":{"ID":2}}`,
		map[string]string{"/id": `send it as \"ID\"`, "/owner/ID": `send it as \"id\"`})
	checkViolations(t, "$ref", ref, `{"Limit":1}`, map[string]string{"/Limit": `send it as \"limit\"`})
	checkViolations(t, "$ref, valid", ref, `{"limit":1}`, nil)
}

// checkViolations posts body through c and checks the violations, as
// path → a part of the messages there; want nil: the body passes.
func checkViolations(t *testing.T, name string, c *chain.Chain, body string, want map[string]string) {
	t.Helper()
	r, details := run(c, "POST", "/api/products/x", "application/json", body)
	if want == nil {
		if r != nil {
			t.Errorf("%s: %s refused: %v %s", name, body, r, details)
		}
		return
	}
	if r == nil || r.Status != 400 || r.Reason != "validation_failed" || r.DetailKey != "violations" {
		t.Errorf("%s: %s: %v, want 400 validation_failed", name, body, r)
		return
	}
	var vs []struct{ Path, Message string }
	if err := json.Unmarshal([]byte(details), &vs); err != nil {
		t.Fatalf("%s: violations are not JSON: %v: %s", name, err, details)
	}
	got := map[string]string{}
	for _, v := range vs {
		got[v.Path] += v.Message
	}
	for path, msg := range want {
		msg = strings.ReplaceAll(msg, `\"`, `"`)
		if !strings.Contains(got[path], msg) {
			t.Errorf("%s: %s: no violation at %q saying %q in %s", name, body, path, msg, details)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %s: violations at %d paths, want %d: %s", name, body, len(got), len(want), details)
	}
}

// TestDeclaredSpellingsWarn: a schema declaring "id" and "ID" (anywhere)
// refuses body members spelled either way, so it loads with a warning
// where it validates bodies, at the second name.
func TestDeclaredSpellingsWarn(t *testing.T) {
	const schema = `{"properties": {"id": {},
  "owner": {"properties": {"ID": {}}}}}`
	f := func(methods []string, extra, want string) {
		t.Helper()
		cfg, _ := chaintest.Load(t, catalog(methods, schemaPolicy(schema, extra)).String())
		if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
			t.Fatalf("%v %q: %v", methods, extra, err)
		}
		var got []string
		for _, w := range cfg.Warnings {
			got = append(got, w.String())
		}
		if want == "" && len(got) != 0 || want != "" && (len(got) != 1 || !strings.Contains(got[0], want)) {
			t.Errorf("%v %q: warnings %q, want %q", methods, extra, got, want)
		}
	}
	f(nil, "", `gw.yaml:15:42: warning: request-validation: schema declares the properties "id" and "ID", which many upstreams read as one member: `+
		`a body member named either way is refused as the other spelled in another case; use one spelling`)
	f([]string{"GET"}, "", "")
}
