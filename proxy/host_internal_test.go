package proxy

import "testing"

// TestValidHost: the Host values RFC 9110 §7.2 allows pass; those that are
// no host[:port] do not.
func TestValidHost(t *testing.T) {
	for _, h := range []string{"", "a.example.com", "A.Example.COM:8080", "a.example.com.", "a:", "127.0.0.1:80",
		"[::1]", "[2001:db8::1]:443", "xn--bcher-kva.example", "a_b.example", "caf%C3%A9.example", "a,b", "a!$&'()*+;=~"} {
		if !validHost([]byte(h)) {
			t.Errorf("%q refused", h)
		}
	}
	for _, h := range []string{"x@a.example.com", "a.example.com@x", "a..b", "a.example.com/x", "a\\b", "a b", "a:80x", "a:80:81",
		"[::1", "[]", "[::1]x", "[::1%eth0]", "[v1.x]", "a%2", "a%zz", "\x00", "a\x7f", "é.example", "a?b", "a#b"} {
		if validHost([]byte(h)) {
			t.Errorf("%q accepted", h)
		}
	}
}
