package proxy

import (
	"net/netip"
	"testing"
)

func TestAppendForwardedElement(t *testing.T) {
	for _, c := range []struct {
		peer, scheme, host, want string
	}{
		{"192.0.2.1", "http", "shop.example", "for=192.0.2.1;proto=http;host=shop.example"},
		{"2001:db8::1", "https", "shop.example:8443", `for="[2001:db8::1]";proto=https;host="shop.example:8443"`},
		{"192.0.2.1", "http", "[2001:db8::2]:80", `for=192.0.2.1;proto=http;host="[2001:db8::2]:80"`},
		{"192.0.2.1", "http", `a"b\c`, `for=192.0.2.1;proto=http;host="a\"b\\c"`},
		{"192.0.2.1", "http", "", "for=192.0.2.1;proto=http"},
		{"", "http", "x", "for=unknown;proto=http;host=x"},
	} {
		var peer netip.Addr
		if c.peer != "" {
			peer = netip.MustParseAddr(c.peer)
		}
		if got := string(appendForwardedElement(nil, peer, c.scheme, []byte(c.host))); got != c.want {
			t.Errorf("peer %s, host %q: %s, want %s", c.peer, c.host, got, c.want)
		}
	}
}
