package cors

import (
	"bytes"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"HTTPS://APP.Example.COM", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"https://app.example.com:0443", "https://app.example.com"},
		{"http://app.example.com:443", "http://app.example.com:443"},
		{"http://localhost:80", "http://localhost"},
		{"wss://a.example:443", "wss://a.example"},
		{"chrome-extension://abcdef", "chrome-extension://abcdef"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://[2001:DB8::1]", "http://[2001:db8::1]"},
		{"http://my_host.internal", "http://my_host.internal"},
		{"x+y.z-1://h", "x+y.z-1://h"},
	} {
		got, _, ok := canonical(nil, []byte(tc.in))
		if !ok || string(got) != tc.want {
			t.Errorf("canonical(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{
		"", "null", "https", "https:", "https://", "https:/a.example", "://a.example", "1http://a.example",
		"https://a.example/", "https://a.example/x", "https://a.example?x", "https://a.example#x",
		"https://user@a.example", "https://a..example", "https://.a.example", "https://a.example.",
		"https://a.example:", "https://a.example:65536", "https://a.example:123456", "https://a.example:8a",
		"https://a.example:-1", "https://a example", "https://a.example\r\n", "https://[::1", "https://[]",
		"https://[::g]", "https://a.exa%6dple", "https://ä.example", "https://*.example.com",
		"https://" + strings.Repeat("a", maxOrigin),
	} {
		if got, _, ok := canonical(nil, []byte(in)); ok {
			t.Errorf("canonical(%q) = %q, want not an origin", in, got)
		}
	}
}

// FuzzCanonical: canonical never panics, never grows its input, keeps dst
// untouched when it refuses, and its result is a fixed point that parses
// to the same parts.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "HTTP://A.B:0080", "http://[::1]:1", "null", "https://a..b", "a://b:65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefix := []byte("prefix")
		out, o, ok := canonical(prefix, []byte(s))
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("dst was overwritten: %q", out)
		}
		c := out[len("prefix"):]
		if !ok {
			if len(c) != 0 {
				t.Fatalf("refused %q but wrote %q", s, c)
			}
			return
		}
		if len(c) > len(s) {
			t.Fatalf("canonical(%q) = %q is longer", s, c)
		}
		again, o2, ok2 := canonical(nil, c)
		if !ok2 || !bytes.Equal(again, c) || o2 != o {
			t.Fatalf("canonical(%q) = %q is not a fixed point: %q %v", s, c, again, ok2)
		}
		if !strings.EqualFold(string(o.scheme(c)), s[:o.schemeEnd]) {
			t.Fatalf("scheme of %q is %q", s, o.scheme(c))
		}
		if !bytes.HasPrefix(c[o.schemeEnd:], []byte("://")) || bytes.ContainsAny(c[o.schemeEnd+3:], "/?#@ \t\r\n\x00") {
			t.Fatalf("canonical(%q) = %q holds a delimiter", s, c)
		}
	})
}
