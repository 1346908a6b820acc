package main

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestBodiesAreJSONOfPromisedSize(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     []byte
		min, max int
	}{
		{"small", SmallBody, 80, 120},
		{"large", LargeBody, 1024, 1024},
		{"introspect", introspectBody, 20, 200},
	} {
		if n := len(tc.body); n < tc.min || n > tc.max {
			t.Errorf("%s body is %d bytes, want %d..%d", tc.name, n, tc.min, tc.max)
		}
		if !json.Valid(tc.body) {
			t.Errorf("%s body is not valid JSON: %s", tc.name, tc.body)
		}
	}
}

func TestServesByPath(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: Handler}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	t.Cleanup(func() { _ = srv.Shutdown() })

	get := func(method, path string) (int, []byte, string) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(method)
		req.SetRequestURI("http://" + ln.Addr().String() + path)
		if err := fasthttp.Do(req, resp); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode(), append([]byte(nil), resp.Body()...), string(resp.Header.ContentType())
	}

	if code, body, ct := get("GET", "/api/products/small?productId=PRD-42"); code != 200 || string(body) != string(SmallBody) || ct != "application/json" {
		t.Errorf("small: %d %q %q", code, body, ct)
	}
	if _, body, _ := get("GET", "/api/products/large"); len(body) != 1024 {
		t.Errorf("large: got %d bytes, want 1024", len(body))
	}
	if code, _, _ := get("GET", "/jwks"); code != 404 {
		t.Errorf("/jwks without a set: %d, want 404", code)
	}
	JWKSBody = []byte(`{"keys":[]}`)
	t.Cleanup(func() { JWKSBody = nil })
	if code, body, _ := get("GET", "/jwks"); code != 200 || string(body) != `{"keys":[]}` {
		t.Errorf("/jwks: %d %s", code, body)
	}
	_, body, _ := get("POST", "/introspect")
	var ans struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || !ans.Active {
		t.Errorf("introspect: %s (%v), want active:true", body, err)
	}
}

func TestHandlerDoesNotAllocate(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/api/products/large")
	if n := testing.AllocsPerRun(100, func() {
		ctx.Response.Reset()
		Handler(&ctx)
	}); n != 0 {
		t.Errorf("Handler allocates %.1f times per request, want 0", n)
	}
}
