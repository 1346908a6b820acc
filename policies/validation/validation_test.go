package validation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSeedQuery(t *testing.T) {
	c := mustCompile(t, seedPolicy)
	f := func(query, wantReason, wantPath, wantInMessage string) {
		t.Helper()
		r, details := run(c, "GET", "/api/products/list"+query, "", "")
		if wantReason == "" {
			if r != nil {
				t.Fatalf("%s: rejected: %v %s", query, r, details)
			}
			return
		}
		if r == nil {
			t.Fatalf("%s: passed, want %s", query, wantReason)
		}
		if r.Reason != wantReason || r.Status != 400 || r.Policy != "request-validation" {
			t.Fatalf("%s: got %d %s by %s, want 400 %s", query, r.Status, r.Reason, r.Policy, wantReason)
		}
		if r.DetailKey != "violations" || !strings.Contains(r.Message, "product-catalog") {
			t.Fatalf("%s: rejection %+v does not name the route or carry violations", query, r)
		}
		var vs []struct{ Path, Message string }
		if err := json.Unmarshal([]byte(details), &vs); err != nil {
			t.Fatalf("%s: violations are not JSON: %v: %s", query, err, details)
		}
		for _, v := range vs {
			if v.Path == wantPath && strings.Contains(v.Message, wantInMessage) {
				return
			}
		}
		t.Fatalf("%s: no violation at %q mentioning %q in %s", query, wantPath, wantInMessage, details)
	}
	f("?productId=PRD-42&quantity=2", "", "", "")
	f("?quantity=2&productId=PRD-1", "", "", "")
	f("?productId=42&quantity=2", "validation_failed", "/productId", "pattern")
	f("?productId=PRD-42&quantity=0", "validation_failed", "/quantity", ">= 1")
	f("?productId=PRD-42&quantity=two", "validation_failed", "/quantity", "integer")
	f("?productId=PRD-42&quantity=1.5", "validation_failed", "/quantity", "integer")
	f("?productId=PRD-42", "validation_failed", "/quantity", "required")
	f("?quantity=2", "validation_failed", "/productId", "required")
	f("?productId=PRD-42&quantity=2&debug=1", "validation_failed", "/debug", `"debug"`)
	f("?productId=PRD-42&quantity=2&quantity=3", "validation_failed", "/quantity", "integer")
	f("", "validation_failed", "/productId", "required")
}

func TestSeedBody(t *testing.T) {
	c := mustCompile(t, seedPolicy)
	f := func(ctype, body string, wantStatus int, wantReason, wantPath string) {
		t.Helper()
		r, details := run(c, "POST", "/api/products/x", ctype, body)
		if wantStatus == 0 {
			if r != nil {
				t.Fatalf("%s: rejected: %v %s", body, r, details)
			}
			return
		}
		if r == nil || r.Status != wantStatus || r.Reason != wantReason {
			t.Fatalf("%s: got %v, want %d %s", body, r, wantStatus, wantReason)
		}
		if wantPath != "" && !strings.Contains(details, `"path":"`+wantPath+`"`) {
			t.Fatalf("%s: violations %s lack path %s", body, details, wantPath)
		}
	}
	f("application/json", `{"productId":"PRD-42","quantity":2}`, 0, "", "")
	f("application/json; charset=utf-8", `{"productId":"PRD-42","quantity":2.0}`, 0, "", "")
	f("application/vnd.api+json", `{"productId":"PRD-42","quantity":2}`, 0, "", "")
	f("application/json", `{"productId":"PRD-42","quantity":"2"}`, 400, "validation_failed", "/quantity")
	f("application/json", `{"productId":"42","quantity":2}`, 400, "validation_failed", "/productId")
	f("application/json", `{"productId":"PRD-42","quantity":2,"x":1}`, 400, "validation_failed", "/x")
	f("application/json", `{"productId":"PRD-42"}`, 400, "validation_failed", "/quantity")
	f("application/json", `{"productId":"PRD-42","quantity":2`, 400, "invalid_json", "")
	f("application/json", `{"productId":"PRD-42","productId":"PRD-42","quantity":2}`, 400, "invalid_json", "")
	f("application/json", "{\"productId\":\"PRD-\xff\",\"quantity\":2}", 400, "invalid_json", "")
	f("text/plain", `{"productId":"PRD-42","quantity":2}`, 415, "unsupported_media_type", "")
	f("", `{"productId":"PRD-42","quantity":2}`, 415, "unsupported_media_type", "")
	// Escapes and long numbers are decided by the library; the verdict
	// must not change.
	f("application/json", `{"productId":"PRD-\u0034","quantity":2}`, 0, "", "")
	f("application/json", `{"productId":"PRD-\u0041","quantity":2}`, 400, "validation_failed", "/productId")
	f("application/json", `{"productId":"PRD-1","quantity":1.00000000000000000001}`, 400, "validation_failed", "/quantity")
	f("application/json", `{"productId":"PRD-1","quantity":100000000000000000000}`, 0, "", "")
}

func TestEveryViolationListedAndBounded(t *testing.T) {
	c := mustCompile(t, seedPolicy)
	r, details := run(c, "POST", "/api/products/x", "application/json",
		`{"productId":7,"quantity":0,"a":1,"b":2}`)
	if r == nil {
		t.Fatal("passed")
	}
	for _, p := range []string{"/productId", "/quantity", "/a", "/b"} {
		if !strings.Contains(details, `"path":"`+p+`"`) {
			t.Errorf("violation at %s missing from %s", p, details)
		}
	}

	// Hostile input: many long unlisted names. The response must stay
	// small and must not repeat a name in full.
	var b strings.Builder
	b.WriteString(`{"productId":"PRD-1","quantity":1`)
	long := strings.Repeat("n", 500)
	for i := range 1000 {
		b.WriteString(`,"` + long + string(rune('a'+i%26)) + strings.Repeat("z", i/26) + `":1`)
	}
	b.WriteString("}")
	r, details = run(c, "POST", "/api/products/x", "application/json", b.String())
	if r == nil || r.Reason != "validation_failed" {
		t.Fatalf("got %v", r)
	}
	if len(details) > 8<<10 {
		t.Fatalf("violations are %d bytes; they must be bounded", len(details))
	}
	if strings.Contains(details, long) {
		t.Fatal("violations echo a 500-byte name in full")
	}
	var vs []map[string]string
	if err := json.Unmarshal([]byte(details), &vs); err != nil {
		t.Fatalf("violations are not JSON: %v", err)
	}
	if len(vs) != maxViolations+1 || !strings.Contains(vs[maxViolations]["message"], "more violations") {
		t.Fatalf("got %d violations, want %d and a note that there are more", len(vs), maxViolations+1)
	}
}

func TestBodyLimits(t *testing.T) {
	c := mustCompile(t, schemaPolicy(`{"type": ["object", "array", "integer"]}`, "    maxBodySize: 100\n    maxDepth: 3\n"))
	f := func(body string, wantReason string) {
		t.Helper()
		r, _ := run(c, "POST", "/", "application/json", body)
		got := ""
		if r != nil {
			got = r.Reason
		}
		if got != wantReason {
			t.Fatalf("%.40s: got %q, want %q", body, got, wantReason)
		}
	}
	f(`[[[1]]]`, "")
	f(`[[[[1]]]]`, "json_too_deep")
	f(`{"a":{"b":{"c":{}}}}`, "json_too_deep")
	f(`["[[[[["]`, "")
	f("["+strings.Repeat("1,", 60)+"1]", "body_too_large")
	f(strings.Repeat("[", 1<<20), "body_too_large")

	// The defaults stop a JSON bomb of nesting before anything parses it.
	d := mustCompile(t, schemaPolicy(`{"type": "array"}`, ""))
	r, _ := run(d, "POST", "/", "application/json", strings.Repeat("[", 100000)+strings.Repeat("]", 100000))
	if r == nil || r.Reason != "body_too_large" && r.Reason != "json_too_deep" {
		t.Fatalf("a 200 kB nesting bomb got %v", r)
	}
	r, _ = run(d, "POST", "/", "application/json", strings.Repeat("[", 65)+strings.Repeat("]", 65))
	if r == nil || r.Reason != "json_too_deep" {
		t.Fatalf("65 levels got %v, want json_too_deep at the default of 64", r)
	}
}

func TestQueryConversion(t *testing.T) {
	c := mustCompile(t, schemaPolicy(`{
  "type": "object",
  "properties": {
    "n": {"type": "number", "maximum": 10},
    "flag": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "integer"}},
    "s": {"type": "string", "maxLength": 3}
  }
}`, ""))
	f := func(query string, ok bool) {
		t.Helper()
		r, details := run(c, "GET", "/"+query, "", "")
		if (r == nil) != ok {
			t.Fatalf("%s: got %v %s, want ok=%v", query, r, details, ok)
		}
	}
	f("?n=1.5&flag=true&tags=1&tags=2&s=abc", true)
	f("?n=11", false)
	f("?flag=yes", false)
	f("?tags=1&tags=x", false)
	f("?tags=1", true)
	f("?tags=x", false)
	f("?tags=", false)
	f("?s=abcd", false)
	f("?s=%E2%82%AC%E2%82%AC%E2%82%AC", true)
	f("?other=anything", true)
}

// TestQuerySingleValueArray: a key that comes once is a one-element array
// when its property is an array (OpenAPI's form style with explode, the
// default for query parameters), on the fast path and the library's alike.
func TestQuerySingleValueArray(t *testing.T) {
	fast := `{
  "type": "object",
  "properties": {
    "tag": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
    "ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
    "w": {"type": ["array", "null"], "items": {"type": "number"}},
    "on": {"type": "array", "items": {"type": "boolean"}},
    "any": {"type": "array"},
    "either": {"type": ["array", "string"], "maxLength": 2}
  },
  "additionalProperties": false
}`
	// minItems and maxItems are outside the fast subset: the library
	// decides.
	lib := `{
  "type": "object",
  "properties": {
    "tag": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
    "two": {"type": "array", "items": {"type": "integer"}, "minItems": 2}
  }
}`
	for _, tc := range []struct {
		schema   string
		fastPath bool
		queries  map[string]bool
	}{
		{fast, true, map[string]bool{
			"?tag=a": true, "?tag=a&tag=b": true, "?tag=A": false, "?tag=": false,
			"?ids=1": true, "?ids=0": false, "?ids=x": false, "?ids=1.5": false, "?ids=1&ids=2": true,
			"?w=1.5": true, "?w=x": false,
			"?on=true": true, "?on=yes": false,
			"?any=x": true,
			// An array or a string: a single value is the string.
			"?either=ab": true, "?either=abc": false, "?either=abc&either=d": true,
		}},
		{lib, false, map[string]bool{
			"?tag=a": true, "?tag=a&tag=b": true, "?tag=a&tag=b&tag=c": false,
			"?two=1": false, "?two=1&two=2": true, "?two=x&two=2": false,
		}},
	} {
		c := mustCompile(t, schemaPolicy(tc.schema, ""))
		if got := c.Policies[0].Policy.(*Validator).fast != nil; got != tc.fastPath {
			t.Fatalf("fast path %v, want %v", got, tc.fastPath)
		}
		for q, ok := range tc.queries {
			r, details := run(c, "GET", "/"+q, "", "")
			if (r == nil) != ok {
				t.Errorf("%s: got %v %s, want ok=%v", q, r, details, ok)
			}
		}
	}
	c := mustCompile(t, schemaPolicy(fast, ""))
	if _, details := run(c, "GET", "/?ids=0", "", ""); !strings.Contains(details, `"path":"/ids/0"`) {
		t.Errorf("?ids=0: violation %s, want it at /ids/0", details)
	}
}

// A route's library validations run on many goroutines at once; each
// must get its own verdict.
func TestLibraryPathConcurrent(t *testing.T) {
	c := mustCompile(t, schemaPolicy(`{"properties": {"a": {"type": "string", "pattern": "^ok", "not": {"const": "oknot"}}}}`, ""))
	if c.Policies[0].Policy.(*Validator).fast != nil {
		t.Fatal("\"not\" is outside the fast subset")
	}
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			for i := range 100 {
				body, ok := `{"a":"ok"}`, true
				if (g+i)%3 == 0 {
					body, ok = `{"a":"no"}`, false
				}
				if r, _ := run(c, "POST", "/", "application/json", body); (r == nil) != ok {
					errs <- fmt.Sprintf("%s: got %v", body, r)
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}
