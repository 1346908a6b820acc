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

func TestCredentialsCheck(t *testing.T) {
	env := &Env{Name: "some-policy"}
	c, err := env.Credentials("client_id", "Authorization")
	if err != nil {
		t.Fatal(err)
	}
	f := func(wantHeader string, headers ...string) {
		t.Helper()
		var h fasthttp.RequestHeader
		for i := 0; i+1 < len(headers); i += 2 {
			h.Add(headers[i], headers[i+1])
		}
		r := c.Check(&h)
		if wantHeader == "" {
			if r != nil {
				t.Errorf("%q: refused: %v", headers, r)
			}
			return
		}
		if r == nil {
			t.Fatalf("%q: passed, want a duplicate %s", headers, wantHeader)
		}
		if r.Status != 400 || r.Reason != "duplicate_credentials" || r.Policy != "some-policy" {
			t.Errorf("%q: got %d %s by %s", headers, r.Status, r.Reason, r.Policy)
		}
		if !strings.Contains(r.Message, "the "+wantHeader+" header more than once") {
			t.Errorf("%q: message %q does not name %s", headers, r.Message, wantHeader)
		}
	}
	f("")
	f("", "client_id", "a", "Authorization", "Bearer x", "X-Other", "1", "X-Other", "2")
	f("client_id", "client_id", "a", "client_id", "a")
	f("client_id", "client_id", "a", "CLIENT_ID", "b")
	f("client_id", "client-id", "a", "client_id", "b")
	f("client_id", "Client-Id", "a", "client-id", "b")
	f("client_id", "client_id", "a", "client_id", "")
	f("Authorization", "Authorization", "Bearer a", "authorization", "Bearer b")

	r := c.headers[0].dup
	if !strings.Contains(r.Message, "client-id counts as the same header") {
		t.Errorf("message does not explain the other spelling: %s", r.Message)
	}
	if strings.Contains(c.headers[1].dup.Message, "counts as") {
		t.Errorf("Authorization has no other spelling: %s", c.headers[1].dup.Message)
	}
}

func TestCredentialsCheckDoesNotAllocate(t *testing.T) {
	c, err := (&Env{Name: "p"}).Credentials("client_id", "client_secret", "Authorization")
	if err != nil {
		t.Fatal(err)
	}
	var h fasthttp.RequestHeader
	h.Set("client_id", "a")
	h.Set("client_secret", "b")
	h.Set("Authorization", "Basic x")
	h.Set("X-Other", "1")
	allocs := testing.AllocsPerRun(100, func() {
		if c.Check(&h) != nil {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per check, want 0", allocs)
	}
}
