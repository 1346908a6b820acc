package iplist

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestParseEntry(t *testing.T) {
	ok := map[string]string{
		"192.168.1.1":          "192.168.1.1/32",
		"192.168.3.1/30":       "192.168.3.0/30",
		"192.168":              "192.168.0.0/16",
		"192.168.2":            "192.168.2.0/24",
		"10":                   "10.0.0.0/8",
		"0.0.0.0/0":            "0.0.0.0/0",
		"2001:db8::1":          "2001:db8::1/128",
		"2001:db8::/32":        "2001:db8::/32",
		"::ffff:10.1.2.3":      "10.1.2.3/32",
		"::ffff:10.0.0.0/104":  "10.0.0.0/8",
		"::ffff:0:0/96":        "0.0.0.0/0",
		"2001:DB8:0:0:0:0:0:1": "2001:db8::1/128",
	}
	for in, want := range ok {
		p, err := ParseEntry(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseEntry(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	bad := map[string]string{
		"":                "without spaces",
		" 10.0.0.1":       "without spaces",
		"fe80::1%eth0":    "zone",
		"10.0.0.0/33":     "not a CIDR",
		"10.0.0.01":       "not an IP address",
		"192.168.":        "not an IP address",
		"192.168.1.1.1":   "not an IP address",
		"256":             "not an IP address",
		"010":             "not an IP address",
		"2001:db8":        "not an IP address",
		"example.com":     "not an IP address",
		"10.0.0.1-10.0.2": "not an IP address",
	}
	for in, want := range bad {
		if _, err := ParseEntry(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEntry(%q): %v, want an error with %q", in, err, want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	ok := map[string]string{
		"10.0.0.1": "10.0.0.1", " 10.0.0.1 ": "10.0.0.1", "::ffff:10.0.0.1": "10.0.0.1",
		"10.0.0.1:8080": "10.0.0.1", "[2001:db8::1]:443": "2001:db8::1", "2001:db8::1": "2001:db8::1",
		"[::ffff:10.0.0.1]:1": "10.0.0.1",
	}
	for in, want := range ok {
		a, err := ParseAddr([]byte(in))
		if err != nil || a.String() != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{"fe80::1%eth0", "[fe80::1%25eth0]:80", "010.0.0.1", "10.0.0", "unknown", "[::1]", "10.0.0.1:", "1.2.3.4.5", "\x00"} {
		if a, err := ParseAddr([]byte(in)); err == nil {
			t.Errorf("ParseAddr(%q) = %v, want an error", in, a)
		}
	}
	if _, err := ParseAddr([]byte("  ")); err != errNoAddress {
		t.Errorf("blank: %v", err)
	}
}

func TestSet(t *testing.T) {
	var ps []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "10.1.0.0/16", "192.168.1.1", "192.168.1.2", "192.168.1.3/32",
		"255.255.255.255", "2001:db8::/32", "::/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::/127"} {
		p, err := ParseEntry(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	s := NewSet(ps)
	if s.Len() != 6 {
		t.Errorf("%d ranges, want 6 (10.1/16 inside 10/8, the three 192.168.1.x joined, 2001:db9::/127 right after 2001:db8::/32)", s.Len())
	}
	for addr, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.168.1.0": false, "192.168.1.1": true, "192.168.1.3": true, "192.168.1.4": false,
		"255.255.255.255": true, "0.0.0.0": false, "::ffff:10.2.3.4": true,
		"2001:db8::1": true, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": true, "2001:db9::1": true, "2001:db9::2": false,
		"::": true, "::1": false, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": false,
		"fe80::1": false,
	} {
		if got := s.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if (&Set{}).Contains(netip.MustParseAddr("10.0.0.1")) || s.Contains(netip.Addr{}) {
		t.Error("an empty set or an invalid address")
	}
	all := NewSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	if !all.Contains(netip.MustParseAddr("1.2.3.4")) || !all.Contains(netip.MustParseAddr("2001::1")) || all.Len() != 2 {
		t.Error("0.0.0.0/0 and ::/0")
	}
}

// FuzzSet holds the set's answer to that of checking every prefix.
func FuzzSet(f *testing.F) {
	f.Add(uint64(1), uint8(10))
	f.Add(uint64(42), uint8(200))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		// Addresses from a small space, so that prefixes overlap and abut.
		addr := func() netip.Addr {
			if r.IntN(2) == 0 {
				return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
			}
			var b [16]byte
			b[0], b[1], b[15], b[14] = 0x20, 0x01, byte(r.IntN(256)), byte(r.IntN(4))
			if r.IntN(8) == 0 {
				b = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, byte(r.IntN(256))}
			}
			return netip.AddrFrom16(b)
		}
		var ps []netip.Prefix
		for range int(n) % 40 {
			a := addr()
			bits := a.BitLen() - r.IntN(12)
			ps = append(ps, netip.PrefixFrom(a, bits).Masked())
		}
		s := NewSet(ps)
		for range 200 {
			a := addr()
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := s.Contains(a); got != want {
				t.Fatalf("Contains(%s) = %v, want %v; prefixes %v", a, got, want, ps)
			}
		}
	})
}

// FuzzParseAddr holds ParseAddr to netip's parsers: whatever it accepts,
// netip reads the same address, zones aside.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "::ffff:1.2.3.4", "[::1]:80", "1.2.3.4:5", "fe80::1%x", " 1.2.3.4", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr([]byte(s))
		if err != nil {
			return
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddr(%q) = %v: zone or mapped", s, a)
		}
		trimmed := strings.TrimSpace(s)
		want, err1 := netip.ParseAddr(trimmed)
		if err1 != nil {
			ap, err2 := netip.ParseAddrPort(trimmed)
			if err2 != nil {
				t.Fatalf("ParseAddr(%q) = %v, netip refuses it", s, a)
			}
			want = ap.Addr()
		}
		if want.Unmap() != a {
			t.Fatalf("ParseAddr(%q) = %v, netip reads %v", s, a, want)
		}
	})
}

// FuzzParseEntry: what ParseEntry accepts is a masked prefix without a
// zone, IPv4 for mapped addresses.
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"192.168", "10.0.0.1/30", "::ffff:1.2.3.4/120", "fe80::/10", "1.2.3", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseEntry(s)
		if err != nil {
			return
		}
		if p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() && p.Bits() >= 96 || !p.IsValid() {
			t.Fatalf("ParseEntry(%q) = %v", s, p)
		}
	})
}
