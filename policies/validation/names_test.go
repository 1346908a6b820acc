package validation

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// pagingSchema declares query parameters without forbidding others: the
// common shape of a schema that bounds what a client may ask for.
const pagingSchema = `{
  "type": "object",
  "properties": {
    "limit":     { "type": "integer", "maximum": 100 },
    "page_size": { "type": "integer", "maximum": 50 }
  }
}`

// TestDeclaredParameterUnderAnotherName: a declared query parameter sent
// under a name the schema does not read, but an upstream reads as it, is
// refused, with or without the name itself: ASP.NET reads ?LIMIT= as
// limit, PHP reads ?page.size=, ?page size=, ?page[size= and
// ?page_size[]= as page_size. Names that are no declared parameter's stay
// as the schema says.
func TestDeclaredParameterUnderAnotherName(t *testing.T) {
	paging := mustRoute(t, []string{"GET"}, schemaPolicy(pagingSchema, ""))
	seed := mustRoute(t, []string{"GET"}, seedPolicy)
	many := "&" + strings.Repeat("x=1&", 70) // past the fast path's 64 parameters
	lib := mustRoute(t, []string{"GET"}, schemaPolicy(strings.Replace(pagingSchema, "{", `{"minProperties": 0,`, 1), ""))
	allOf := mustRoute(t, []string{"GET"}, schemaPolicy(`{"allOf": [{"properties": {"limit": {"maximum": 100}}}]}`, ""))
	required := mustRoute(t, []string{"GET"}, schemaPolicy(`{"required": ["limit"]}`, ""))
	chains := map[string]*chain.Chain{"paging": paging, "seed": seed, "lib": lib, "allOf": allOf, "required": required}
	for _, tc := range []struct {
		name  string
		c     string
		query string
		// want is the violations, as path → a part of the message; nil
		// passes.
		want map[string]string
	}{
		{"declared, over its maximum", "paging", "?limit=99999", map[string]string{"/limit": "must be <= 100"}},
		{"declared, valid", "paging", "?limit=99&page_size=50", nil},
		{"another case (ASP.NET)", "paging", "?LIMIT=99999", map[string]string{"/LIMIT": `is read by many upstreams as the query parameter "limit"; send it as "limit"`}},
		{"another case beside the name", "paging", "?limit=5&LIMIT=99999", map[string]string{"/LIMIT": `as the query parameter "limit"`}},
		// Rack 2 drops the brackets around a name.
		{"in brackets (Rack 2)", "paging", "?[limit]=99999", map[string]string{"/[limit]": `"limit"`}},
		{"a bracket after (Rack 2)", "paging", "?limit]=99999", map[string]string{"/limit]": `"limit"`}},
		{"brackets before (Rack 2)", "paging", "?[[limit=99999", map[string]string{"/[[limit": `"limit"`}},
		{"another case, valid value", "paging", "?Limit=5", map[string]string{"/Limit": `"limit"`}},
		// Java's equalsIgnoreCase reads ı and İ as i; it and Go's
		// strings.EqualFold (Echo's Bind, gorilla/schema) ſ as s.
		{"a dotless i (Java)", "paging", "?l%C4%B1mit=99999", map[string]string{"/lımit": `is read by many upstreams as the query parameter "limit"; send it as "limit"`}},
		{"a dotted I beside the name (Java)", "paging", "?limit=5&L%C4%B0MIT=99999", map[string]string{"/LİMIT": `as the query parameter "limit"`}},
		{"a long s (Go)", "paging", "?page_%C5%BFize=999", map[string]string{"/page_ſize": `as the query parameter "page_size"`}},
		{"a long s, past the fast path (Go)", "paging", "?page.%C5%BFize=999" + many, map[string]string{"/page.ſize": `"page_size"`}},
		{"a dotless i, a schema off the fast path (Java)", "lib", "?l%C4%B1mit=99999", map[string]string{"/lımit": `"limit"`}},
		{"letters that fold to no ASCII one", "paging", "?l%C3%ADmit=99999&page_%C5%9Bize=999", nil},
		{"'.' for '_' (PHP)", "paging", "?page.size=999", map[string]string{"/page.size": `as the query parameter "page_size"`}},
		{"' ' for '_' (PHP)", "paging", "?page%20size=999", map[string]string{"/page size": `"page_size"`}},
		{"'[' for '_' (PHP)", "paging", "?page[size=999", map[string]string{"/page[size": `"page_size"`}},
		{"leading space (PHP)", "paging", "?%20page_size=999", map[string]string{"/ page_size": `"page_size"`}},
		{"as an array (PHP)", "paging", "?page_size[]=999", map[string]string{"/page_size[]": `"page_size"`}},
		{"both changes", "paging", "?page_size=10&PAGE.SIZE=999", map[string]string{"/PAGE.SIZE": `"page_size"`}},
		{"undeclared names pass", "paging", "?limit=5&limits=3&page-size=999&pagesize=1&other=x", nil},
		{"past the fast path", "paging", "?limit=5&LIMIT=99999" + many, map[string]string{"/LIMIT": `"limit"`}},
		{"past the fast path, valid", "paging", "?limit=5" + many, nil},
		{"a schema off the fast path", "lib", "?LIMIT=99999", map[string]string{"/LIMIT": `"limit"`}},
		{"a schema off the fast path, valid", "lib", "?limit=5&other=1", nil},
		{"a name declared in allOf", "allOf", "?LIMIT=1", map[string]string{"/LIMIT": `"limit"`}},
		{"a name declared in allOf, valid", "allOf", "?limit=1&other=1", nil},
		{"a name only required lists", "required", "?LIMIT=1", map[string]string{"/LIMIT": `"limit"`, "/limit": "is required"}},
		{"the seed: not an unknown parameter but a misspelt one", "seed", "?productId=PRD-42&quantity=2&QUANTITY=0", map[string]string{"/QUANTITY": `"quantity"`}},
		{"the seed, valid", "seed", "?productId=PRD-42&quantity=2", nil},
		// Rack 2 and Python before 3.9.2 split the query at ';' too.
		{"after a ';' in a value", "paging", "?x=1;limit=99999", map[string]string{"/limit": `is the query parameter "limit" to upstreams for which ';' separates parameters ` +
			`(Rack 2, Python before 3.9.2), and was not validated: send it with '&'`}},
		{"after a ';' in a name", "paging", "?x;limit=9", map[string]string{"/limit": `"limit" to upstreams for which ';' separates parameters`}},
		{"after a ';' beside the name", "paging", "?limit=5&x=1;limit=99999", map[string]string{"/limit": `send it with '&'`}},
		{"after a ';', in another name", "paging", "?x=1;PAGE.SIZE=999", map[string]string{"/PAGE.SIZE": `"page_size" to upstreams for which ';' separates parameters`}},
		{"after a ';', past the fast path", "paging", "?x=1;limit=99999" + many, map[string]string{"/limit": `send it with '&'`}},
		{"after a ';', a schema off the fast path", "lib", "?x=1;limit=99999", map[string]string{"/limit": `send it with '&'`}},
		{"';' in values naming no declared parameter", "paging", "?q=a;b&ids=1;2;3&limit=5&x;y=1", nil},
	} {
		r, details := run(chains[tc.c], "GET", "/api/products/x"+tc.query, "", "")
		if tc.want == nil {
			if r != nil {
				t.Errorf("%s: %s refused: %v %s", tc.name, tc.query, r, details)
			}
			continue
		}
		if r == nil || r.Status != 400 || r.Reason != "validation_failed" || r.DetailKey != "violations" {
			t.Errorf("%s: %s: %v, want 400 validation_failed", tc.name, tc.query, r)
			continue
		}
		var vs []struct{ Path, Message string }
		if err := json.Unmarshal([]byte(details), &vs); err != nil {
			t.Fatalf("%s: violations are not JSON: %v: %s", tc.name, err, details)
		}
		got := map[string]string{}
		for _, v := range vs {
			got[v.Path] += v.Message
		}
		for path, msg := range tc.want {
			if !strings.Contains(got[path], msg) {
				t.Errorf("%s: %s: no violation at %q saying %q in %s", tc.name, tc.query, path, msg, details)
			}
		}
		if len(vs) != len(tc.want) {
			t.Errorf("%s: %s: %d violations, want %d: %s", tc.name, tc.query, len(vs), len(tc.want), details)
		}
	}
}

// TestDeclaredNamesOneUpstreamReadsAsOne: a schema that validates the
// query and declares two parameters an upstream reads as one is a config
// error at the second name; where the schema may validate bodies too, a
// warning; where it validates only bodies, nothing. Names that are
// distinct to every upstream (JSON:API's page[size] and page[number]) are
// fine.
func TestDeclaredNamesOneUpstreamReadsAsOne(t *testing.T) {
	const overlapping = `{"properties": {
  "limit": {"maximum": 100},
  "Limit": {}}}`
	f := func(methods []string, extra, schema string, wantErr, wantWarning string) {
		t.Helper()
		cfg, _ := chaintest.Load(t, catalog(methods, schemaPolicy(schema, extra)).String())
		_, err := chain.CompileAll(cfg, nil, chain.Options{})
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%v %q: %v", methods, extra, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%v %q: error %v, want %q", methods, extra, err, wantErr)
		}
		var warnings []string
		for _, w := range cfg.Warnings {
			warnings = append(warnings, w.String())
		}
		if got := strings.Join(warnings, "\n"); wantWarning == "" && got != "" || !strings.Contains(got, wantWarning) {
			t.Errorf("%v %q: warnings %q, want %q", methods, extra, got, wantWarning)
		}
	}
	// The schema's line 3, where "Limit" is, is the file's 16.
	f([]string{"GET"}, "", overlapping, `gw.yaml:16:17: request-validation: schema (its line 3) declares the query parameters "limit" and "Limit", `+
		`which many upstreams read as one parameter (ASP.NET reads query names in any case, Go's and Java's binders ſ as s and K as k, Java's ı and İ as i; PHP reads '.', ' ' and '[' as '_', and a[b] as an element of a): `+
		`a request could send one past the rules of the other; declare one of them`, "")
	f(nil, "    in: query\n", `{"properties": {"page_size": {}, "page.size": {}}}`, `"page_size" and "page.size"`, "")
	f(nil, "    in: query\n", `{"properties": {"limit": {}, "lımit": {}}}`, `"limit" and "lımit"`, "")
	f([]string{"GET"}, "    in: body\n", `{"properties": {"size": {}, "ſize": {}}}`, "", `declares the properties "size" and "ſize", which many upstreams read as one member`)
	f(nil, "", overlapping, "", `gw.yaml:16:17: warning: request-validation: schema declares the query parameters "limit" and "Limit"`)
	// Where it validates bodies, a member named either way is refused.
	f([]string{"GET"}, "    in: body\n", overlapping, "", `gw.yaml:16:17: warning: request-validation: schema declares the properties "limit" and "Limit", which many upstreams read as one member`)
	f([]string{"GET"}, "", `{"properties": {"page[size]": {}, "page[number]": {}, "filter[status]": {}}}`, "", "")
}
