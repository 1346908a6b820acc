package expr

import (
	"testing"

	"github.com/flexgate/flexgate/chain"
)

func BenchmarkAppend(b *testing.B) {
	tmpl := MustCompile("v1-$request.method $request.header.X-Api-Key $datetime")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx("http://gw/api/x", "X-Api-Key", "k1")
		ex := &chain.Exchange{}
		buf := make([]byte, 0, 128)
		for pb.Next() {
			buf = tmpl.Append(buf[:0], ctx, ex)
		}
	})
}

func BenchmarkAppendValues(b *testing.B) {
	tmpl := MustCompile(`$test.user/$test.claims.email/${test.claims.roles[1]}/$test.claims.address.country`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx("http://gw/api/x")
		ex := &chain.Exchange{}
		ex.SetValue(testUser, []byte("ann"))
		ex.SetValue(testClaims, []byte(testClaimsJSON))
		buf := make([]byte, 0, 128)
		for pb.Next() {
			buf = tmpl.Append(buf[:0], ctx, ex)
		}
	})
}

// benchAppend expands src for one request after another.
func benchAppend(b *testing.B, src string) {
	tmpl := MustCompile(src)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, ex := flexCtx()
		buf := make([]byte, 0, 128)
		for pb.Next() {
			buf = tmpl.Append(buf[:0], ctx, ex)
		}
	})
}

// BenchmarkBinding: one header, as a $-expression and as a Flex
// expression: the same evaluator.
func BenchmarkBinding(b *testing.B) {
	b.Run("dollar", func(b *testing.B) { benchAppend(b, "$request.header.X-Api-Key") })
	b.Run("flex", func(b *testing.B) { benchAppend(b, "#[attributes.headers['x-api-key']]") })
	b.Run("flex-claim", func(b *testing.B) { benchAppend(b, "#[vars.testClaims.address.country]") })
}

// BenchmarkFlexFunctions: text computed on the request's scratch space.
func BenchmarkFlexFunctions(b *testing.B) {
	benchAppend(b, "#[upper(dw::core::Strings::substringAfter(attributes.headers['authorization'], 'Bearer ')) ++ '-' ++ "+
		"(attributes.headers['x-forwarded-for'] splitBy ', ')[0] default 'none']")
}

// BenchmarkCondition: http-caching's default request and response
// expressions.
func BenchmarkCondition(b *testing.B) {
	for _, c := range []struct {
		name, src string
		phase     Phase
	}{
		{"method", "#[attributes.method == 'GET' or attributes.method == 'HEAD']", Request},
		{"status", "#[[200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501] contains attributes.statusCode]", Response},
	} {
		b.Run(c.name, func(b *testing.B) {
			cond, err := CompileBool(c.src, nil, c.phase)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx, ex := flexCtx()
				ctx.Response.SetStatusCode(404)
				for pb.Next() {
					cond.Eval(ctx, ex)
				}
			})
		})
	}
}
