package router

import (
	"fmt"
	"testing"
)

// benchRoutes builds n routes of the shapes a gateway config has: service
// prefixes with a tail wildcard, ids in the middle, exact health checks and
// versioned APIs with method lists. It returns them with requests that hit
// a spread of them, including a 404 and a 405.
func benchRoutes(n int) ([]Entry, []benchRequest) {
	var es []Entry
	var reqs []benchRequest
	for i := range n {
		var e Entry
		var req benchRequest
		switch i % 5 {
		case 0:
			e = Entry{Paths: []string{fmt.Sprintf("/svc%d/v1/*", i)}}
			req = benchRequest{"POST", fmt.Sprintf("/svc%d/v1/items/42/details", i)}
		case 1:
			e = Entry{Paths: []string{fmt.Sprintf("/svc%d/users/*/orders", i)}, Methods: []string{"GET", "POST"}}
			req = benchRequest{"GET", fmt.Sprintf("/svc%d/users/8f14e45f/orders", i)}
		case 2:
			e = Entry{Paths: []string{fmt.Sprintf("/svc%d/health", i)}, Methods: []string{"GET"}}
			req = benchRequest{"HEAD", fmt.Sprintf("/svc%d/health/", i)}
		case 3:
			e = Entry{Paths: []string{fmt.Sprintf("/api/v%d/products/*", i)}, Methods: []string{"GET"}}
			req = benchRequest{"GET", fmt.Sprintf("/api/v%d/products/123", i)}
		case 4:
			e = Entry{Paths: []string{fmt.Sprintf("/api/v%d/products/*/reviews/*", i)}, Methods: []string{"GET", "POST"}}
			req = benchRequest{"POST", fmt.Sprintf("/api/v%d/products/123/reviews/9/votes", i)}
		}
		e.Index = i
		es = append(es, e)
		if i < 64 || i%(n/64+1) == 0 {
			reqs = append(reqs, req)
		}
	}
	reqs = append(reqs,
		benchRequest{"GET", "/no/such/route"},
		benchRequest{"DELETE", "/svc1/users/1/orders"},
	)
	return es, reqs
}

type benchRequest struct {
	method, path string
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			es, reqs := benchRoutes(n)
			rt, err := New(es)
			if err != nil {
				b.Fatal(err)
			}
			methods := make([][]byte, len(reqs))
			paths := make([][]byte, len(reqs))
			for i, q := range reqs {
				methods[i], paths[i] = []byte(q.method), []byte(q.path)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					rt.Match(methods[i], paths[i])
					i++
					if i == len(paths) {
						i = 0
					}
				}
			})
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, p := range []string{"/api/v1/products/123/reviews", "//api/v1/%2e%2e/admin/./x%20y"} {
		b.Run(p, func(b *testing.B) {
			in := []byte(p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]byte, 0, 3*len(in)+1)
				for pb.Next() {
					dst = Normalize(dst[:0], in)
				}
			})
		})
	}
}

// BenchmarkShadows is the load-time cost of the shadowing check, with a
// catch-all that every other route shadows.
func BenchmarkShadows(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			es, _ := benchRoutes(n)
			es = append(es, Entry{Paths: []string{"/*"}, Index: n})
			b.ReportAllocs()
			for b.Loop() {
				if len(Shadows(es)) < n {
					b.Fatal("every route shadows the catch-all")
				}
			}
		})
	}
}
