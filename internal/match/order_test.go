package match

import "testing"

func TestAmbiguous(t *testing.T) {
	hosts := func(h ...string) Spec { return Spec{Hosts: h} }
	hdr := func(kv ...string) Spec {
		var s Spec
		for i := 0; i+1 < len(kv); i += 2 {
			s.Headers = append(s.Headers, Header{Name: kv[i], Value: kv[i+1]})
		}
		return s
	}
	both := func(h Spec, kv ...string) Spec { h.Headers = hdr(kv...).Headers; return h }
	rules := func(paths ...string) Spec {
		var s Spec
		for _, p := range paths {
			s.Rules = append(s.Rules, Rule{Path: p})
		}
		return s
	}
	for _, c := range []struct {
		name      string
		a, b      Spec
		ambiguous bool
	}{
		{"no conditions", Spec{}, Spec{}, true},
		{"same host", hosts("a.com"), hosts("A.com"), true},
		{"different hosts", hosts("a.com"), hosts("b.com"), false},
		{"a host and none", hosts("a.com"), Spec{}, false},
		{"a host under a wildcard", hosts("a.example.com"), hosts("*.example.com"), false},
		{"nested wildcards", hosts("*.eu.example.com"), hosts("*.example.com"), false},
		{"two wildcards under one", hosts("*.eu.example.com", "*.us.example.com"), hosts("*.example.com"), false},
		{"disjoint wildcards", hosts("*.a.com"), hosts("*.b.com"), false},
		{"fewer hosts", hosts("a.com"), hosts("a.com", "b.com"), false},
		{"overlapping host sets", hosts("a.com", "c.com"), hosts("a.com", "b.com"), true},
		{"canary", hdr("x-canary", "true"), Spec{}, false},
		{"canary values", hdr("x-canary", "true"), hdr("X-Canary", "false"), false},
		{"different headers", hdr("x-a", "1"), hdr("x-b", "1"), true},
		{"more headers", hdr("x-a", "1", "x-b", "1"), hdr("x-a", "1"), false},
		{"a host or a header", hosts("a.com"), hdr("x-a", "1"), true},
		{"host and header, host", both(hosts("a.com"), "x-a", "1"), hosts("a.com"), false},
		{"host and header, wildcard", both(hosts("*.com"), "x-a", "1"), hosts("a.com"), true},
		{"listeners", Spec{Listeners: []string{"a"}}, Spec{Listeners: []string{"b"}}, false},
		{"listener and none", Spec{Listeners: []string{"a"}}, Spec{}, false},
		{"rules in order", rules("/a/.*"), rules("/b/.*"), false},
		{"rules and a default", rules("/a/.*"), Spec{}, false},
		{"rules and a host", rules("/a/.*"), hosts("a.com"), true},
	} {
		for _, swap := range []bool{false, true} {
			a, b := c.a, c.b
			if swap {
				a, b = b, a
			}
			if got := Ambiguous(&a, &b); got != c.ambiguous {
				t.Errorf("%s (swapped %v): Ambiguous = %v", c.name, swap, got)
			}
		}
	}
}

// TestCompareRespectsImplies: of two conditions where one implies the
// other, Compare puts it first.
func TestCompareRespectsImplies(t *testing.T) {
	specs := []Spec{
		{}, {Hosts: []string{"a.com"}}, {Hosts: []string{"a.com", "b.com"}}, {Hosts: []string{"*.com"}},
		{Hosts: []string{"*.x.com"}}, {Hosts: []string{"a.x.com"}}, {Headers: []Header{{Name: "h", Value: "1"}}},
		{Hosts: []string{"a.com"}, Headers: []Header{{Name: "h", Value: "1"}}},
		{Listeners: []string{"l"}}, {Listeners: []string{"l", "m"}}, {Rules: []Rule{{Path: "/a"}}},
		{StripPrefix: "/api"}, {StripPrefix: "/api", Rules: []Rule{{Path: "/a"}}}, {Listeners: []string{"l"}, StripPrefix: "/api"},
	}
	for i := range specs {
		for j := range specs {
			a, b := &specs[i], &specs[j]
			if i != j && Implies(a, b) && !Implies(b, a) && Compare(a, b) >= 0 {
				t.Errorf("%+v implies %+v but does not come first", *a, *b)
			}
		}
	}
}
