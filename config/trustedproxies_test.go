package config

import (
	"strings"
	"testing"
)

// TestTrustedProxiesUnmapsIPv4MappedRanges: peers are matched as plain
// IPv4, so an IPv4-mapped address or range is loaded as the IPv4 one; a
// mapped range reaching beyond ::ffff:0:0/96 is an error at its place.
func TestTrustedProxiesUnmapsIPv4MappedRanges(t *testing.T) {
	f := func(entry, want string) {
		t.Helper()
		cfg := mustLoad(t, "a.yaml", head+`  trustedProxies: ["`+entry+`"]
  routes: [{id: r, path: /x, upstream: {url: http://b}}]
`)
		if got := cfg.TrustedProxies[0].String(); got != want {
			t.Errorf("%s loads as %s, want %s", entry, got, want)
		}
	}
	f("::ffff:127.0.0.0/104", "127.0.0.0/8")
	f("::ffff:127.0.0.1/128", "127.0.0.1/32")
	f("::ffff:127.0.0.1", "127.0.0.1/32")
	f("::FFFF:10.1.2.3/120", "10.1.2.0/24")
	f("fd00::1/8", "fd00::/8")

	got := loadErrors(t, "a.yaml", head+"  trustedProxies: [10.0.0.0/8, \"::ffff:0:0/95\"]\n  routes: [{id: r, path: /x, upstream: {url: http://b}}]\n")
	expectOne(t, got, "a.yaml:6:32", `"::ffff:0:0/95"`, "beyond the IPv4-mapped addresses", "IPv4 CIDR")
}

// TestTrustedProxiesWarnWhenTheyTrustNearlyEveryone: a range that trusts
// the internet loads with a warning at its place saying what it costs;
// private and narrow ranges load without one.
func TestTrustedProxiesWarnWhenTheyTrustNearlyEveryone(t *testing.T) {
	f := func(entry, want string) {
		t.Helper()
		_, paths := writeFiles(t, "a.yaml", head+`  trustedProxies: [10.0.0.0/8, "`+entry+`"]
  routes: [{id: r, path: /x, upstream: {url: http://b}}]
`)
		cfg, err := Load(paths)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if len(cfg.Warnings) != 0 {
				t.Errorf("%s: warnings %v", entry, cfg.Warnings)
			}
			return
		}
		if len(cfg.Warnings) != 1 {
			t.Fatalf("%s: warnings %v, want one", entry, cfg.Warnings)
		}
		w := cfg.Warnings[0]
		if w.Pos.Line != 6 || w.Pos.Col != 32 {
			t.Errorf("%s: warning at %s, want line 6 col 32", entry, w.Pos)
		}
		for _, word := range []string{`"` + entry + `"`, want, "X-Forwarded-For", "$request.remoteAddress", "ip-allowlist"} {
			if !strings.Contains(w.Message, word) {
				t.Errorf("%s: warning lacks %q: %s", entry, word, w.Message)
			}
		}
	}
	f("0.0.0.0/0", "every IPv4 address")
	f("::/0", "every IPv6 address")
	f("::ffff:0:0/96", "every IPv4 address")
	f("128.0.0.0/1", "more than an IPv4 /8")
	f("2000::/3", "more than an IPv6 /16")
	f("10.0.0.0/8", "")
	f("fc00::/7", "")
	f("fe80::/10", "")
	f("2001:db8::/32", "")
	f("192.168.0.0/16", "")
}
