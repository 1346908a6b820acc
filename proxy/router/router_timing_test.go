package router

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/internal/match"
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

// BenchmarkRoute is BenchmarkMatch through Route, as the gateway calls it:
// a request and a Match per request, made once.
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			es, reqs := benchRoutes(n)
			rt, err := New(es)
			if err != nil {
				b.Fatal(err)
			}
			qs := make([]*match.Request, len(reqs))
			for i, q := range reqs {
				qs[i] = benchReq("http", q.method, q.path, "gw")
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var m Match
				i := 0
				for pb.Next() {
					rt.Route(qs[i], &m)
					i++
					if i == len(qs) {
						i = 0
					}
				}
			})
		})
	}
}

// flexShapes names the shapes of flexRoutes, by route index modulo 5.
var flexShapes = []string{"literal", "prefix", "capture", "regex", "host"}

// flexRoutes builds n routes as ApiInstances of mixed shapes produce them,
// spread over four listeners: base paths with a literal rule, a prefix
// rule, a capture rule and a rule that needs a regular expression, and
// virtual hosts (kind: Gateway hosts) — most on paths of their own, some
// serving a whole host from "/*". It returns them with requests by shape
// ("404" for one that no route takes).
func flexRoutes(n int) ([]Entry, map[string][]*match.Request) {
	var es []Entry
	reqs := map[string][]*match.Request{}
	listener := func(i int) string { return fmt.Sprintf("port-%d", 8080+i%4) }
	for i := range n {
		base := fmt.Sprintf("/svc%d", i)
		e := Entry{Index: i, Paths: []string{base + "/*"},
			Cond: match.Spec{Listeners: []string{listener(i)}, StripPrefix: base}}
		var q *match.Request
		switch i % 5 {
		case 0:
			e.Cond.Rules = []match.Rule{{Path: "/health"}, {Path: "/ready"}}
			q = benchReq(listener(i), "GET", base+"/ready", "gw")
		case 1:
			e.Cond.Rules = []match.Rule{{Path: "/orders/.*", Methods: "GET|POST"}}
			q = benchReq(listener(i), "POST", base+"/orders/42/items", "gw")
		case 2:
			e.Cond.Rules = []match.Rule{{Path: "/api(/.*)"}, {Path: "(.*)", Headers: []match.Header{{Name: "x-test", Value: "true"}}}}
			q = benchReq(listener(i), "GET", base+"/api/products/123", "gw")
		case 3:
			e.Cond.Rules = []match.Rule{{Path: "/users/([0-9]+)(/.*)?", Host: `.*\.example\.com`}}
			q = benchReq(listener(i), "GET", base+"/users/8172/orders", "api.example.com")
		case 4:
			host := fmt.Sprintf("app%d.example.com", i)
			if i%50 == 4 {
				e = Entry{Index: i, Paths: []string{"/*"}, Cond: match.Spec{Hosts: []string{host}}}
				q = benchReq(listener(i), "GET", "/index.html", host)
			} else {
				e = Entry{Index: i, Paths: []string{base + "/*"}, Cond: match.Spec{Hosts: []string{host, "*." + host}}}
				q = benchReq(listener(i), "GET", base+"/static/app.js", "www."+host)
			}
		}
		es = append(es, e)
		shape := flexShapes[i%5]
		if len(reqs[shape]) < 8 || i%(n/40+1) == 0 {
			reqs[shape] = append(reqs[shape], q)
		}
	}
	reqs["404"] = []*match.Request{benchReq("port-8080", "GET", "/no/such/route", "gw")}
	return es, reqs
}

func benchReq(listener, method, path, host string, headers ...string) *match.Request {
	h := new(fasthttp.RequestHeader)
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &match.Request{Listener: listener, Method: []byte(method), Path: []byte(path), Host: []byte(host), Header: h}
}

// BenchmarkRouteFlex routes requests among 1,000 ApiInstance-like routes,
// by shape and all shapes mixed; BenchmarkRoute is the same router
// without conditions.
func BenchmarkRouteFlex(b *testing.B) {
	es, reqs := flexRoutes(1000)
	rt, err := New(es)
	if err != nil {
		b.Fatal(err)
	}
	var mixed []*match.Request
	for _, shape := range append(flexShapes, "404") {
		mixed = append(mixed, reqs[shape]...)
	}
	for _, shape := range append(flexShapes, "404", "mixed") {
		qs := reqs[shape]
		if shape == "mixed" {
			qs = mixed
		}
		b.Run(shape, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var m Match
				var dst []byte
				i := 0
				for pb.Next() {
					if rt.Route(qs[i], &m) == Found {
						dst = m.AppendPath(dst[:0], nil)
					}
					i++
					if i == len(qs) {
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
