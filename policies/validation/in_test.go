package validation

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
)

// "auto" is decided from the route's methods at load; "query" and "body"
// hold whatever the methods are.
func TestInResolvesFromMethods(t *testing.T) {
	f := func(in string, methods []string, want source) {
		t.Helper()
		extra := ""
		if in != "" {
			extra = "    in: " + in + "\n"
		}
		c, err := compileRoute(t, methods, schemaPolicy(`{"type": "object"}`, extra))
		if err != nil {
			t.Fatalf("in %q, methods %v: %v", in, methods, err)
		}
		if got := c.Policies[0].Policy.(*Validator).in; got != want {
			t.Fatalf("in %q, methods %v: resolved to %d, want %d", in, methods, got, want)
		}
	}
	f("", []string{"GET"}, fromQuery)
	f("auto", []string{"GET", "HEAD"}, fromQuery)
	f("", []string{"DELETE", "OPTIONS", "GET"}, fromQuery)
	f("", []string{"GET", "POST"}, fromEither)
	f("", []string{"PUT"}, fromEither)
	f("auto", nil, fromEither)
	f("query", []string{"POST"}, fromQuery)
	f("query", nil, fromQuery)
	f("body", []string{"GET"}, fromBody)
	f("body", nil, fromBody)
}

func TestInMustBeKnown(t *testing.T) {
	_, err := compileYAML(t, schemaPolicy(`{"type": "object"}`, "    in: header\n"))
	if err == nil {
		t.Fatal("in: header compiled")
	}
	for _, w := range []string{"gw.yaml:15:17", `in must be "query", "body" or "auto"`, `"header"`} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}

// The bypass this parameter exists for: on the seed's GET route a JSON
// body must neither replace the query's validation nor reach the upstream.
func TestQueryMode(t *testing.T) {
	get := mustRoute(t, []string{"GET"}, seedPolicy)
	explicit := mustRoute(t, nil, schemaPolicy(seedSchema, "    in: query\n"))
	const good = `{"productId":"PRD-1","quantity":1}`
	f := func(c *chain.Chain, method, uri, ctype, body, wantReason, wantPath string) {
		t.Helper()
		r, details := run(c, method, uri, ctype, body)
		if wantReason == "" {
			if r != nil {
				t.Fatalf("%s %s %s: rejected: %v %s", method, uri, body, r, details)
			}
			return
		}
		if r == nil || r.Status != 400 || r.Reason != wantReason {
			t.Fatalf("%s %s %s: got %v, want 400 %s", method, uri, body, r, wantReason)
		}
		if wantPath != "" && !strings.Contains(details, `"path":"`+wantPath+`"`) {
			t.Fatalf("%s %s: violations %s lack %s", method, uri, details, wantPath)
		}
		if wantReason == "unexpected_body" && !strings.Contains(r.Message, "validates the query") {
			t.Fatalf("unexpected_body message %q does not say the schema validates the query", r.Message)
		}
	}
	for _, c := range []*chain.Chain{get, explicit} {
		f(c, "GET", "/api/products/1?productId=42&quantity=0&evil=1", "application/json", good, "unexpected_body", "")
		f(c, "GET", "/api/products/1?productId=PRD-42&quantity=2", "application/json", good, "unexpected_body", "")
		f(c, "GET", "/api/products/1?productId=PRD-42&quantity=2", "text/plain", "x", "unexpected_body", "")
		f(c, "GET", "/api/products/1?productId=PRD-42&quantity=2", "", "", "", "")
		f(c, "GET", "/api/products/1?productId=42&quantity=2", "", "", "validation_failed", "/productId")
		f(c, "GET", "/api/products/1?productId=PRD-42&quantity=0", "", "", "validation_failed", "/quantity")
		f(c, "GET", "/api/products/1?productId=PRD-42", "", "", "validation_failed", "/quantity")
		f(c, "GET", "/api/products/1?productId=PRD-42&quantity=2&evil=1", "", "", "validation_failed", "/evil")
	}
	// Explicit "query" holds for methods that usually carry a body too.
	f(explicit, "POST", "/api/products/1?productId=PRD-42&quantity=2", "application/json", good, "unexpected_body", "")
	f(explicit, "POST", "/api/products/1?productId=PRD-42&quantity=2", "", "", "", "")
}

func TestBodyMode(t *testing.T) {
	c := mustRoute(t, []string{"GET", "POST"}, schemaPolicy(seedSchema, "    in: body\n"))
	r, _ := run(c, "POST", "/api/products/1?productId=PRD-42&quantity=2", "", "")
	if r == nil || r.Status != 400 || r.Reason != "missing_body" || !strings.Contains(r.Message, "product-catalog") {
		t.Fatalf("no body: got %v, want 400 missing_body naming the route", r)
	}
	if r, _ := run(c, "GET", "/api/products/1", "", ""); r == nil || r.Reason != "missing_body" {
		t.Fatalf("GET without a body: got %v, want missing_body", r)
	}
	// The query is not what the schema describes here.
	if r, details := run(c, "GET", "/api/products/1?evil=1", "application/json", `{"productId":"PRD-1","quantity":1}`); r != nil {
		t.Fatalf("valid body: rejected: %v %s", r, details)
	}
	if r, details := run(c, "POST", "/api/products/1", "application/json", `{"productId":"PRD-1"}`); r == nil || r.Reason != "validation_failed" ||
		!strings.Contains(details, `"path":"/quantity"`) {
		t.Fatalf("invalid body: got %v %s", r, details)
	}
}

// On a route whose methods may carry a body, "auto" keeps choosing per
// request: the body when there is one, else the query.
func TestAutoOnBodyRoute(t *testing.T) {
	c := mustRoute(t, []string{"GET", "POST"}, seedPolicy)
	if r, details := run(c, "POST", "/x?evil=1", "application/json", `{"productId":"PRD-1","quantity":1}`); r != nil {
		t.Fatalf("valid body: rejected: %v %s", r, details)
	}
	if r, _ := run(c, "POST", "/x", "application/json", `{"productId":"1","quantity":1}`); r == nil || r.Reason != "validation_failed" {
		t.Fatalf("invalid body: got %v", r)
	}
	if r, _ := run(c, "GET", "/x?productId=PRD-1&quantity=1", "", ""); r != nil {
		t.Fatalf("valid query: rejected: %v", r)
	}
	if r, _ := run(c, "GET", "/x?productId=PRD-1&quantity=0", "", ""); r == nil || r.Reason != "validation_failed" {
		t.Fatalf("invalid query: got %v", r)
	}
}

// A reload that adds a body method to a route must not keep the
// instance that resolved "auto" to the query.
func TestReloadResolvesInAgain(t *testing.T) {
	first := mustSet(t, []string{"GET"}, seedPolicy, nil)
	second := mustSet(t, []string{"GET", "POST"}, seedPolicy, first)
	if got := second.Chains[0].Policies[0].Policy.(*Validator).in; got != fromEither {
		t.Fatalf("after methods became GET, POST: in resolved to %d, want %d (auto, per request)", got, fromEither)
	}
	// Unchanged methods keep the instance.
	third := mustSet(t, []string{"GET", "POST"}, seedPolicy, second)
	if third.Chains[0].Policies[0].Policy != second.Chains[0].Policies[0].Policy {
		t.Fatal("a reload with the same methods built the policy anew")
	}
}
