package iplist

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Set is a set of IPv4 and IPv6 addresses, held as sorted, disjoint ranges
// of each family: a lookup is a binary search, so ten thousand entries cost
// a few steps more than ten. An IPv4-mapped IPv6 address is its IPv4
// address. A built Set is immutable and safe for concurrent use.
type Set struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

type range6 struct{ lo, hi u128 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{beUint64(b[:8]), beUint64(b[8:])}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

func toUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// NewSet builds the set of the prefixes, which ParseEntry has normalised
// (masked, IPv4-mapped ones as IPv4).
func NewSet(prefixes []netip.Prefix) *Set {
	s := &Set{}
	for _, p := range prefixes {
		r := prefixRange(p)
		if p.Addr().Is4() {
			s.v4 = append(s.v4, range4{uint32(r.lo.lo), uint32(r.hi.lo)})
		} else {
			s.v6 = append(s.v6, r)
		}
	}
	slices.SortFunc(s.v4, func(a, b range4) int { return cmpUint(a.lo, b.lo) })
	slices.SortFunc(s.v6, func(a, b range6) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	s.v4 = merge4(s.v4)
	s.v6 = merge6(s.v6)
	return s
}

// prefixRange is the first and last address of a masked prefix, an IPv4
// one in the low 32 bits.
func prefixRange(p netip.Prefix) range6 {
	if p.Addr().Is4() {
		lo := toUint32(p.Addr())
		hi := lo
		if p.Bits() < 32 {
			hi = lo | (uint32(1)<<(32-p.Bits()) - 1)
		}
		return range6{u128{0, uint64(lo)}, u128{0, uint64(hi)}}
	}
	lo := toU128(p.Addr())
	hi := lo
	// A shift by 64 or more is 0 in Go, so all ones after the - 1.
	switch host := 128 - p.Bits(); {
	case host >= 64:
		hi.lo = ^uint64(0)
		hi.hi |= uint64(1)<<(host-64) - 1
	case host > 0:
		hi.lo |= uint64(1)<<host - 1
	}
	return range6{lo, hi}
}

func cmpUint(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// merge4 joins overlapping and adjacent ranges of a sorted list.
func merge4(rs []range4) []range4 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].hi == ^uint32(0) || r.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func merge6(rs []range6) []range6 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			after, ok := last.hi.next()
			if !ok || !after.less(r.lo) {
				if last.hi.less(r.hi) {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// Contains reports whether a is in the set. It does not allocate.
func (s *Set) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		x := toUint32(a)
		rs := s.v4
		// The last range starting at or before x.
		i, j := 0, len(rs)
		for i < j {
			h := int(uint(i+j) >> 1)
			if rs[h].lo <= x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i > 0 && x <= rs[i-1].hi
	}
	if !a.Is6() {
		return false
	}
	x := toU128(a)
	rs := s.v6
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if !x.less(rs[h].lo) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i > 0 && !rs[i-1].hi.less(x)
}

// Len returns how many disjoint ranges the set holds.
func (s *Set) Len() int { return len(s.v4) + len(s.v6) }

// ParseEntry reads one entry of a list as a user writes it: an address
// (192.168.1.1, 2001:db8::1), a CIDR (192.168.3.1/30, whose host bits are
// cleared as Flex Gateway does), or one to three leading octets of an IPv4
// address (192.168 is 192.168.0.0/16). An IPv4-mapped IPv6 entry
// (::ffff:10.0.0.0/104) is its IPv4 prefix. Zones are refused: a request's
// address never has one.
func ParseEntry(s string) (netip.Prefix, error) {
	if strings.TrimSpace(s) != s || s == "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address: write it without spaces", s)
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q has an IPv6 zone (%%…), which no client address carries: remove it", s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %v", s, unwrapParse(err))
		}
		return normalise(p), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalise(netip.PrefixFrom(a, a.BitLen())), nil
	}
	if p, ok := leadingOctets(s); ok {
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an IP address, a CIDR (192.168.3.0/30) or leading octets of an IPv4 address (192.168)", s)
}

// unwrapParse drops netip's quoting of the whole input from an error.
func unwrapParse(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// normalise masks a prefix and turns an IPv4-mapped one into IPv4.
func normalise(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// leadingOctets reads "192", "192.168" or "192.168.2" as /8, /16 or /24.
func leadingOctets(s string) (netip.Prefix, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 1 && p[0] == '0' {
			return netip.Prefix{}, false
		}
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return netip.Prefix{}, false
		}
		b[i] = byte(n)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true
}

var errNoAddress = errors.New("no address")

// ParseAddr reads one address of a request: an IPv4 or IPv6 address, with
// optional white space around it, and optionally a port (1.2.3.4:80,
// [2001:db8::1]:80), as some proxies write X-Forwarded-For. An
// IPv4-mapped address is its IPv4 address. A zone, leading zeros in an
// IPv4 address, or anything else is refused. It does not allocate on
// success.
func ParseAddr(b []byte) (netip.Addr, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return netip.Addr{}, errNoAddress
	}
	if bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, errors.New("an IPv6 zone")
	}
	s := unsafe.String(unsafe.SliceData(b), len(b))
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, err
		}
		a = ap.Addr()
	}
	return a.Unmap(), nil
}
