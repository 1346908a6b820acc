package iplist

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// randomList is n entries, a third of them IPv6, most single addresses,
// some CIDRs, and the client's own network last.
func randomList(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n-1; i++ {
		switch {
		case i%3 == 2:
			fmt.Fprintf(&b, "%q,", netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(256)), byte(r.IntN(256)), 15: byte(r.IntN(256))}))
		case i%7 == 0:
			fmt.Fprintf(&b, "\"%d.%d.%d.0/24\",", 11+r.IntN(200), r.IntN(256), r.IntN(256))
		default:
			fmt.Fprintf(&b, "\"%d.%d.%d.%d\",", 11+r.IntN(200), r.IntN(256), r.IntN(256), r.IntN(256))
		}
	}
	b.WriteString(`"10.0.0.0/8"]`)
	return b.String()
}

// BenchmarkAllowlist is an allowed request against 10 and 10,000 entries:
// the sorted ranges make them cost nearly the same.
func BenchmarkAllowlist(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := chaintest.MustChain(b, "- ip-allowlist: {ips: "+randomList(n)+"}")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := from("10.0.0.7")
				ex := chain.AcquireExchange()
				ex.Prepare(c)
				for pb.Next() {
					if rej := c.RunRequest(ctx, ex); rej != nil {
						b.Fatal(rej)
					}
				}
			})
		})
	}
}

// BenchmarkForwardedFor reads three addresses from X-Forwarded-For.
func BenchmarkForwardedFor(b *testing.B) {
	c := chaintest.MustChain(b, `- ip-blocklist-flex: {ips: `+randomList(10_000)+`, ipExpression: "#[attributes.headers['x-forwarded-for']]"}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := from("192.0.2.1", "X-Forwarded-For", "203.0.113.9, 2001:db9::1, 198.51.100.7")
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		for pb.Next() {
			if rej := c.RunRequest(ctx, ex); rej != nil {
				b.Fatal(rej)
			}
		}
	})
}
