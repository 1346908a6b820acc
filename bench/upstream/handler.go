package main

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// SmallBody is the ~100-byte JSON answer, the size of a typical API reply.
var SmallBody = []byte(`{"id":"PRD-42","name":"Benchmark widget","price":19.99,"currency":"EUR","inStock":true,"qty":2}`)

// LargeBody is the 1 KiB JSON answer.
var LargeBody = makeLarge(1024)

// introspectBody is what an authorization server says about a valid token.
var introspectBody = []byte(`{"active":true,"client_id":"bench-client","scope":"products:read","sub":"bench","exp":4102444800}`)

// JWKSBody is the JWK set served at /jwks (main reads it from -jwks), for
// flexgate's jwt-validation; empty, /jwks answers 404.
var JWKSBody []byte

var (
	pathLarge      = []byte("/large")
	pathIntrospect = []byte("/introspect")
	pathJWKS       = []byte("/jwks")
	contentJSON    = []byte("application/json")
)

// makeLarge builds a JSON document of exactly n bytes: an "items" array of
// small objects padded with a filler string, so that the body looks like
// what an API returns rather than one long string.
func makeLarge(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-120; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"PRD-`)
		b.WriteString(strings.Repeat("7", 3))
		b.WriteString(`","qty":2,"ok":true}`)
	}
	b.WriteString(`],"pad":"`)
	for b.Len() < n-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// Handler answers every request from the fixed bodies above. It does not
// allocate and is safe for concurrent use.
func Handler(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	path := ctx.Path()
	switch {
	case bytes.HasPrefix(path, pathIntrospect):
		ctx.SetBody(introspectBody)
	case bytes.Equal(path, pathJWKS):
		if len(JWKSBody) == 0 {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		ctx.SetBody(JWKSBody)
	case bytes.HasSuffix(path, pathLarge):
		ctx.SetBody(LargeBody)
	default:
		ctx.SetBody(SmallBody)
	}
}
