package chain

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/config"
)

// BenchmarkCredentialsCheckManyParams: a request with thousands of query
// parameters (a 60 KB URI, within the default header limit) against a
// policy reading four header credentials with many spellings and one
// query credential. Check makes one pass over the parameters: its cost
// grows with them once, not once per spelling.
func BenchmarkCredentialsCheckManyParams(b *testing.B) {
	c, err := (&Env{Name: "p"}).Credentials(
		[]string{"X-A-B-C-D-E-F", "X-Org-Client-App-Id-V2", "client_id", "Authorization"}, []string{"api_key"})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, param string }{
		// Names shorter than any credential's are passed over.
		{"short", "aaaa=&"},
		// Names as long as the longest credential's, each compared.
		{"long", "x-org-client-app-id-v3=&"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n := 60_000 / len(tc.param)
			ctx := request("/x?"+strings.Repeat(tc.param, n)+"api_key=k", "client_id", "a")
			b.ReportAllocs()
			for b.Loop() {
				if c.Check(ctx) != nil {
					b.Fatal("refused")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/param")
		})
	}
}

// BenchmarkFormCheck: what the check of a form body costs a request that
// is no form (one look at its Content-Type) and one with a form of a
// hundred parameters in memory.
func BenchmarkFormCheck(b *testing.B) {
	env := &Env{Name: "p", Route: &config.Route{ID: "r"}}
	if _, err := env.Credentials([]string{"client_id", "client_secret"}, []string{"api_key"}); err != nil {
		b.Fatal(err)
	}
	f := newFormCheck(env, env.credentials, nil, env.Route)
	for _, tc := range []struct{ name, ct string }{{"json", "application/json"}, {"form", "application/x-www-form-urlencoded"}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := formRequest("/x?api_key=k", tc.ct, strings.Repeat("amount=3&", 100), false)
			b.ReportAllocs()
			for b.Loop() {
				if f.check(ctx, nil) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
