package router

import (
	"bytes"
	"strings"
	"testing"
)

var normalizeCases = []struct{ in, want string }{
	// Traversal, plain and encoded.
	{"/api/v1/../admin", "/api/admin"},
	{"/api/v1/%2e%2e/admin", "/api/admin"},
	{"/api/v1/%2E%2E/admin", "/api/admin"},
	{"/api/v1/.%2e/admin", "/api/admin"},
	{"/api/v1/..%2fadmin", "/api/admin"},
	{"/api/v1/..%2Fadmin", "/api/admin"},
	{"/api/v1/%2e%2e%2fadmin", "/api/admin"},
	{"/../../etc/passwd", "/etc/passwd"},
	{"/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"},
	{"/a/b/../../../../c", "/c"},
	// Backslash is a separator, raw or encoded.
	{`/api/v1/..\admin`, "/api/admin"},
	{"/api/v1/..%5cadmin", "/api/admin"},
	{"/a%5Cb", "/a/b"},
	// Dot segments with ';' parameters, which Tomcat and Jetty resolve.
	{"/api/v1/..;/admin", "/api/admin"},
	{"/api/v1/..;jsessionid=x/admin", "/api/admin"},
	{"/api/.;x/v1", "/api/v1"},
	// Double encoding is decoded once only.
	{"/api/v1/%252e%252e/admin", "/api/v1/%252e%252e/admin"},
	{"/api/v1/%252E%252E%252Fadmin", "/api/v1/%252E%252E%252Fadmin"},
	{"/a/%25", "/a/%25"},
	// Slashes and dots.
	{"//api///v1/./x", "/api/v1/x"},
	{"/a/./b/.", "/a/b/"},
	{"/a/b/..", "/a/"},
	{"/..", "/"},
	{"/.", "/"},
	{"/", "/"},
	{"", "/"},
	{"a/b", "/a/b"},
	{"/a/", "/a/"},
	{"/a//", "/a/"},
	{"/a/.../b/.c/..d/c..", "/a/.../b/.c/..d/c.."},
	// Unreserved characters are decoded; hex digits of the rest are
	// upper-cased, and nothing else is decoded.
	{"/%7Euser/%41%62%2D%5F", "/~user/Ab-_"},
	{"/a%20b%3Fc%23d", "/a%20b%3Fc%23d"},
	{"/a%3fb%2a", "/a%3Fb%2A"},
	{"/a%00b", "/a%00b"},
	// Bytes a path may not carry raw are escaped; a lone '%' too.
	{"/a b?c#d", "/a%20b%3Fc%23d"},
	{"/café", "/caf%C3%A9"},
	{"/a\x00\r\n", "/a%00%0D%0A"},
	{"/a%", "/a%25"},
	{"/a%2", "/a%252"},
	{"/a%zz%2e", "/a%25zz."},
	{"/a/%%2e%2e/b", "/a/%25../b"},
	// Characters a path may carry raw stay.
	{"/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~"},
}

func TestNormalize(t *testing.T) {
	for _, c := range normalizeCases {
		if got := Normalize(nil, []byte(c.in)); string(got) != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// stripCases are what NormalizeStripParams makes of paths with ';'
// parameters: what Tomcat, Jetty and Spring resolve them to.
var stripCases = []struct{ in, want string }{
	{"/api/admin;x/secret", "/api/admin/secret"},
	{"/api/admin;jsessionid=abc/secret", "/api/admin/secret"},
	{"/api/;/admin/secret", "/api/admin/secret"},
	{"/api/public/..;/admin/secret", "/api/admin/secret"},
	{"/api/public/..;x=1/admin", "/api/admin"},
	{"/api/.;x/v1", "/api/v1"},
	{"/a;x=%2F..%2F..%2Fb/c", "/a/c"}, // a parameter ends at a raw separator only
	{`/a;x\b`, "/a/b"},
	{"/a;b;c/d;e", "/a/d"},
	{"/a/b;", "/a/b"},
	{"/a/b;/", "/a/b/"},
	{";x/a", "/a"},
	{"/a%3Bb;c/d", "/a%3Bb/d"}, // an encoded ';' is data here
	{"/a/b", "/a/b"},
	{"/a/../b;x/..", "/"},
}

func TestNormalizeStripParams(t *testing.T) {
	for _, c := range stripCases {
		if got := NormalizeStripParams(nil, []byte(c.in)); string(got) != c.want {
			t.Errorf("NormalizeStripParams(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Without stripping, parameters stay where they are.
	if got := Normalize(nil, []byte("/api/admin;x/secret")); string(got) != "/api/admin;x/secret" {
		t.Errorf("Normalize kept %q", got)
	}
}

func TestHasParams(t *testing.T) {
	for _, c := range []struct {
		in           string
		raw, encoded bool
	}{
		{"/api/admin/secret", false, false},
		{"/api/admin;x/secret", true, false},
		{"/api/;/admin", true, false},
		{"/api/admin%3Bx/secret", false, true},
		{"/api/admin%3bx/secret", false, true},
		{"/a;b%3b", true, true},
		{"/a%253B", false, false}, // an encoded "%3B" is not a ';'
		{"/a%3", false, false},
		{"/a%3C", false, false},
	} {
		if raw, enc := HasParams([]byte(c.in)); raw != c.raw || enc != c.encoded {
			t.Errorf("HasParams(%q) = %v, %v; want %v, %v", c.in, raw, enc, c.raw, c.encoded)
		}
	}
}

func TestNormalizeAppends(t *testing.T) {
	// ".." must not climb into what dst already held.
	got := Normalize([]byte("keep"), []byte("/../../x/.."))
	if string(got) != "keep/" {
		t.Fatalf("got %q, want %q", got, "keep/")
	}
	dst := make([]byte, 0, 64)
	got = Normalize(dst, []byte("/a/../b"))
	if &got[0] != &dst[:1][0] {
		t.Fatal("Normalize did not write into dst although it had room")
	}
}

func TestNormalizeThenMatch(t *testing.T) {
	rt, err := New([]Entry{
		{Paths: []string{"/api/v1/*"}, Index: 0},
		{Paths: []string{"/api/admin"}, Index: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []string{"/api/v1/../admin", "/api/v1/%2e%2e/admin", "/api/v1/..%2fadmin", `/api/v1/..\admin`, "/api/v1/..;/admin"} {
		idx, _, _ := rt.Match([]byte("GET"), Normalize(nil, []byte(attack)))
		if idx != 1 {
			t.Errorf("%s routed to %d, want the /api/admin route it resolves to", attack, idx)
		}
	}
	for _, attack := range []string{"/api/admin;x", "/api/;/admin", "/api/v1/x/..;/../admin;jsessionid=1"} {
		idx, _, _ := rt.Match([]byte("GET"), NormalizeStripParams(nil, []byte(attack)))
		if idx != 1 {
			t.Errorf("%s with parameters stripped routed to %d, want the /api/admin route", attack, idx)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, c := range normalizeCases {
		f.Add(c.in)
	}
	for _, c := range stripCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkNormal(t, in, Normalize(nil, []byte(in)), Normalize)
		stripped := NormalizeStripParams(nil, []byte(in))
		checkNormal(t, in, stripped, NormalizeStripParams)
		if bytes.IndexByte(stripped, ';') >= 0 {
			t.Fatalf("NormalizeStripParams(%q) = %q: has a ';'", in, stripped)
		}
	})
}

// checkNormal checks that out, what norm made of in, is a normal form.
func checkNormal(t *testing.T, in string, out []byte, norm func(dst, path []byte) []byte) {
	t.Helper()
	if len(out) == 0 || out[0] != '/' {
		t.Fatalf("Normalize(%q) = %q: does not start with '/'", in, out)
	}
	if bytes.Contains(out, []byte("//")) {
		t.Fatalf("Normalize(%q) = %q: has an empty segment", in, out)
	}
	for _, s := range strings.Split(string(out[1:]), "/") {
		if s == "." || s == ".." || strings.HasPrefix(s, ".;") || strings.HasPrefix(s, "..;") {
			t.Fatalf("Normalize(%q) = %q: has dot segment %q", in, out, s)
		}
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c == '%' {
			if i+2 >= len(out) || !isUpperHex(out[i+1]) || !isUpperHex(out[i+2]) {
				t.Fatalf("Normalize(%q) = %q: bad escape at %d", in, out, i)
			}
			continue
		}
		if c != '/' && pathClass[c] != classKeep && pathClass[c] != classParam {
			t.Fatalf("Normalize(%q) = %q: raw byte %q", in, out, c)
		}
	}
	if again := norm(nil, out); !bytes.Equal(again, out) {
		t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
	}
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }
