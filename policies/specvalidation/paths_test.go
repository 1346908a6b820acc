package specvalidation

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	var root pnode
	for _, tpl := range []string{"/pets", "/pets/{id}", "/pets/mine", "/pets/{id}/photos/{name}.jpg", "/pets/{id}/photos/{name}",
		"/files/v{major}", "/", "/a/{x}/c", "/a/b/d"} {
		segs, err := parseTemplate(tpl)
		if err != nil {
			t.Fatal(err)
		}
		if err := root.add(segs, &pathItem{template: tpl}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want, vars string }{
		{"", "/", ""},
		{"/pets", "/pets", ""},
		{"/pets/7", "/pets/{id}", "7"},
		{"/pets/mine", "/pets/mine", ""},
		{"/pets/7/photos/a.jpg", "/pets/{id}/photos/{name}.jpg", "7 a"},
		{"/pets/7/photos/a.png", "/pets/{id}/photos/{name}", "7 a.png"},
		{"/pets/7/photos/.jpg", "/pets/{id}/photos/{name}", "7 .jpg"}, // {name} is never empty
		{"/files/v2", "/files/v{major}", "2"},
		{"/files/v", "", ""},
		{"/a/b/c", "/a/{x}/c", "b"}, // the literal b leads nowhere: backtrack
		{"/a/b/d", "/a/b/d", ""},
		{"/pets/", "", ""},
		{"/pets//7", "", ""},
		{"/pets/7/", "", ""},
		{"/nothing", "", ""},
	} {
		m := &match{}
		it := root.find([]byte(tc.path), 0, m)
		got := ""
		if it != nil {
			got = it.template
		}
		var vars []string
		for i := 0; i < m.n; i++ {
			vars = append(vars, tc.path[m.spans[i][0]:m.spans[i][1]])
		}
		if got != tc.want || it != nil && strings.Join(vars, " ") != tc.vars {
			t.Errorf("%q: %q %q, want %q %q", tc.path, got, vars, tc.want, tc.vars)
		}
	}
	for _, bad := range []string{"pets", "/pets/{", "/pets/}", "/pets/{}", "/a/{x}{y}", "/a/{x}.{y}", "/a/{x}/{x}", "/a//b", "/a/{b{c}}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q parses", bad)
		}
	}
}

// FuzzTemplate: any template either is refused or, once added, matches
// the path made by filling its expressions, with those values; no path
// makes the matcher panic or overrun its spans.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/pets/{id}", "/a/{x}.json/b", "/", "/a/b/", "/{a}/{b}/{c}", "/x{y}z"} {
		f.Add(s, "v", "/pets/7")
	}
	f.Fuzz(func(t *testing.T, tpl, value, path string) {
		segs, err := parseTemplate(tpl)
		if err != nil {
			return
		}
		var root pnode
		if err := root.add(segs, &pathItem{template: tpl}); err != nil {
			t.Fatal(err)
		}
		m := &match{}
		root.find([]byte(path), 0, m)
		if value == "" || strings.ContainsAny(value, "/") {
			return
		}
		var b strings.Builder
		n := 0
		for _, s := range segs {
			b.WriteByte('/')
			if s.name == "" {
				b.WriteString(s.lit)
				continue
			}
			b.WriteString(s.prefix + value + s.suffix)
			n++
		}
		filled := b.String()
		m = &match{}
		if it := root.find([]byte(filled), 0, m); it == nil {
			// A literal segment may equal what an expression would
			// match only through another branch; with one template
			// there is none, so it must match.
			t.Fatalf("%q does not match %q", filled, tpl)
		}
		if m.n != n {
			t.Fatalf("%q: %d values, want %d", filled, m.n, n)
		}
		for i := 0; i < m.n; i++ {
			if got := filled[m.spans[i][0]:m.spans[i][1]]; got != value {
				t.Fatalf("%q against %q: value %d is %q, want %q", filled, tpl, i, got, value)
			}
		}
	})
}
