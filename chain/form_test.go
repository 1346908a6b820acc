package chain

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
)

func TestIsFormType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-www-form-urlencoded":                true,
		"Application/X-WWW-Form-URLEncoded":                true,
		"application/x-www-form-urlencoded; charset=UTF-8": true,
		"application/x-www-form-urlencoded;charset=utf-8":  true,
		"application/x-www-form-urlencoded ;charset=utf-8": true,
		"application/x-www-form-urlencoded,text/plain":     true,
		"application/x-www-form-urlencodedx":               false,
		"application/x-www-form-urlencode":                 false,
		"application/json":                                 false,
		"multipart/form-data; boundary=x":                  false,
		"text/plain":                                       false,
		"":                                                 false,
	} {
		if got := IsFormType([]byte(ct)); got != want {
			t.Errorf("IsFormType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// formRequest builds a POST to uri with a body of type ct; streamed, the
// body comes as a stream of unknown length, as a large or chunked one does.
func formRequest(uri, ct, body string, streamed bool, headers ...string) *fasthttp.RequestCtx {
	ctx := request(uri, headers...)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.SetContentType(ct)
	if streamed {
		ctx.Request.SetBodyStream(strings.NewReader(body), -1)
	} else {
		ctx.Request.SetBodyString(body)
	}
	return ctx
}

const form = "application/x-www-form-urlencoded"

// testFormCheck returns the form check of a policy "p" reading the
// client_id and Authorization headers and the api_key query parameter,
// refusing access_token in a form body, on a route with maxBodySize.
func testFormCheck(t *testing.T, maxBodySize int64) *formCheck {
	t.Helper()
	env := &Env{Name: "p", Route: &config.Route{ID: "r", MaxRequestBodySize: maxBodySize}}
	c, err := env.Credentials([]string{"client_id", "Authorization", "Origin"}, []string{"api_key"})
	if err != nil {
		t.Fatal(err)
	}
	c.RefuseInForm(env, "access_token", "the request carries a token in Authorization and an access_token in the form body")
	f := newFormCheck(env, env.credentials, nil, env.Route)
	if f == nil {
		t.Fatal("no form check")
	}
	return f
}

// TestFormCheck: a form body that carries a credential the policy reads
// from a header or the query, under any name an upstream reads as it, is
// refused with a message that names it and the form body; other forms,
// other types of body, pass.
func TestFormCheck(t *testing.T) {
	f := testFormCheck(t, 0)
	check := func(want, ct, body string, headers ...string) {
		t.Helper()
		for _, streamed := range []bool{false, true} {
			ctx := formRequest("/x?api_key=k", ct, body, streamed, headers...)
			r := f.check(ctx, nil)
			switch {
			case want == "" && r != nil:
				t.Errorf("%s %q (streamed %v): refused: %v", ct, body, streamed, r)
			case want == "":
			case r == nil:
				t.Errorf("%s %q (streamed %v): passed, want %q", ct, body, streamed, want)
			case r.Status != 400 || r.Reason != "duplicate_credentials" || r.Policy != "p" || !strings.Contains(r.Message, want):
				t.Errorf("%s %q (streamed %v): got %d %s %q, want duplicate_credentials %q", ct, body, streamed, r.Status, r.Reason, r.Message, want)
			}
			if got := string(ctx.Request.Body()); got != body {
				t.Errorf("%s %q (streamed %v): body is %q after the check", ct, body, streamed, got)
			}
		}
	}
	const idInForm = "the request carries client_id in the form body, and p reads it from the client_id header"
	const keyInForm = "the request carries api_key in the form body, and p reads it from the query"
	check("", form, "")
	check("", form, "name=a&amount=3&client_ids=x&xclient_id=y&api_keys=z&origin=JFK")
	check(idInForm, form, "client_id=victim", "client_id", "mine")
	check(idInForm, form+"; charset=utf-8", "a=1&client_id=victim")
	for _, name := range []string{"CLIENT_ID", "client.id", "client-id", "client+id", "client%20id", "client_id[]", "client_id%00x"} {
		check(idInForm, "Application/X-WWW-Form-Urlencoded", "a=1&"+name+"=victim")
	}
	check(idInForm, form, "a=1;client_id=victim")
	// Go's form binders (Echo's Bind, gorilla/schema) read ſ and K as s
	// and k, Java's equalsIgnoreCase ı as i too.
	check(idInForm, form, "a=1&client_%C4%B1d=victim")
	check(keyInForm, form, "api_%E2%84%AAey=other")
	check("", form, "a=1&client_%C4%B1ds=x&%C3%A1pi_key=y")
	check(keyInForm, form, "api_key=other")
	check(keyInForm, form, "API.KEY=other")
	check(keyInForm, form, "[api_key]=other")
	check("carries Authorization in the form body", form, "authorization=Bearer+x")
	check("an access_token in the form body", form, "access_token=forged", "Authorization", "Bearer t")
	check("an access_token in the form body", form, "ACCESS.TOKEN=forged", "Authorization", "Bearer t")
	// Not a form: an upstream does not read its parameters.
	check("", "application/json", `{"client_id":"victim"}`)
	check("", "text/plain", "client_id=victim")
	check("", "application/x-www-form-urlencodedx", "client_id=victim")
	// A charset that does not write ASCII as ASCII: ASP.NET decodes the
	// names, the check could not read them.
	for _, ct := range []string{form + "; charset=ibm037", form + ";charset=UTF-16", form + `; charset="utf-32"`} {
		if r := f.check(formRequest("/x", ct, "a=1", false), nil); r == nil || r.Status != 415 || r.Reason != "unsupported_charset" {
			t.Errorf("%s: %v, want 415 unsupported_charset", ct, r)
		}
	}
	check("", form+"; charset=UTF-8", "a=1")
	check("", form+`; charset="iso-8859-1"`, "a=1")
	// A POST without a Content-Type is a form to Rack (Rails params,
	// Sinatra).
	check(idInForm, "", "client_id=victim")
	check("", "", "name=a&amount=3")
	put := formRequest("/x", "", "client_id=victim", false)
	put.Request.Header.SetMethod("PUT")
	if r := f.check(put, nil); r != nil {
		t.Errorf("a PUT without a Content-Type, which no upstream reads as a form, is refused: %v", r)
	}
}

// TestFormCheckBounds: a form body larger than what the check reads (the
// limit, or the route's smaller maxRequestBodySize) is refused with 413,
// announced or streamed; one the client cuts short with 400; a refusal by
// a policy that passed the stream on is that policy's. A streamed body
// within the bound is read once and is the request's body afterwards.
func TestFormCheckBounds(t *testing.T) {
	big := "a=" + strings.Repeat("x", MaxFormBodySize)
	f := testFormCheck(t, 0)
	ctx := formRequest("/x", form, big, false)
	if r := f.check(ctx, nil); r == nil || r.Status != 413 || r.Reason != "body_too_large" ||
		!strings.Contains(r.Message, "larger than 1048576 bytes, the most the gateway reads on route \"r\"") {
		t.Errorf("body over the limit: %v", r)
	}
	ctx = formRequest("/x", form, big, true)
	if r := f.check(ctx, nil); r == nil || r.Status != 413 {
		t.Errorf("streamed body over the limit: %v", r)
	}
	ctx = formRequest("/x", form, "", false)
	ctx.Request.Header.SetContentLength(MaxFormBodySize + 1)
	ctx.Request.SetBodyStream(strings.NewReader("client_id=x"), MaxFormBodySize+1)
	if r := f.check(ctx, nil); r == nil || r.Status != 413 || !ctx.Request.IsBodyStream() {
		t.Errorf("announced body over the limit: %v, or it was read", r)
	}

	small := testFormCheck(t, 100)
	ctx = formRequest("/x", form, "a="+strings.Repeat("x", 100), true)
	if r := small.check(ctx, nil); r == nil || r.Status != 413 || !strings.Contains(r.Message, "larger than 100 bytes") {
		t.Errorf("body over the route's limit: %v", r)
	}

	ctx = formRequest("/x", form, "", false)
	ctx.Request.SetBodyStream(io.MultiReader(strings.NewReader("a=1&b="), errReader{errors.New("reset")}), -1)
	if r := f.check(ctx, nil); r == nil || r.Status != 400 || r.Reason != ClientBodyIncomplete {
		t.Errorf("broken stream: %v", r)
	}
	before := &Rejection{Status: 400, Reason: "json_too_deep", Policy: "json-threat-protection"}
	ctx.Request.SetBodyStream(errReader{bodyRejection{before}}, -1)
	if r := f.check(ctx, nil); r != before {
		t.Errorf("stream refused by an earlier policy: %v, want its rejection", r)
	}

	body := "note=" + strings.Repeat("y", 200<<10) + "&z=1"
	ctx = formRequest("/x", form, body, true)
	if r := f.check(ctx, nil); r != nil {
		t.Fatalf("streamed form without credentials: %v", r)
	}
	if ctx.Request.IsBodyStream() || !bytes.Equal(ctx.Request.Body(), []byte(body)) {
		t.Error("the streamed body is not the request's body after the check")
	}
	// A second policy's check finds it read.
	if r := f.check(ctx, nil); r != nil || !bytes.Equal(ctx.Request.Body(), []byte(body)) {
		t.Errorf("second check: %v", r)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

type bodyRejection struct{ r *Rejection }

func (b bodyRejection) Error() string         { return b.r.Message }
func (b bodyRejection) Rejection() *Rejection { return b.r }

// TestFormCheckDoesNotAllocate: a request that is no form costs no
// allocation, nor does a form body in memory.
func TestFormCheckDoesNotAllocate(t *testing.T) {
	f := testFormCheck(t, 0)
	ctxs := []*fasthttp.RequestCtx{
		formRequest("/x?api_key=k", "application/json", `{"a":1}`, false),
		request("/x?api_key=k"),
		formRequest("/x?api_key=k", form, "a=1&b=2;c=3&"+strings.Repeat("name=value&", 50), false),
		formRequest("/x?api_key=k", form, "client_%C4%B1ds=1&api_%E2%84%AAeys=2&%C3%A1pi_key=3", false),
		formRequest("/x?api_key=k", form+"; charset=UTF-8", "a=1", false),
	}
	if !raceOn {
		// An untyped POST's arguments come from fasthttp's pool, from
		// which the race detector drops items at random.
		ctxs = append(ctxs, formRequest("/x?api_key=k", "", "a=1&b=2&"+strings.Repeat("name=value&", 50), false))
	}
	for _, ctx := range ctxs {
		if n := testing.AllocsPerRun(100, func() {
			if f.check(ctx, nil) != nil {
				t.Fatal("refused")
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations, want 0", ctx.Request.Header.ContentType(), n)
		}
	}
}

// TestNoFormCheckWithoutCredentials: a policy whose credentials cannot be
// in a form body (a header of its own purpose) gets no form check.
func TestNoFormCheckWithoutCredentials(t *testing.T) {
	env := &Env{Name: "p", Route: &config.Route{ID: "r"}}
	if _, err := env.Credentials([]string{"Origin"}, nil); err != nil {
		t.Fatal(err)
	}
	if f := newFormCheck(env, env.credentials, nil, env.Route); f != nil {
		t.Error("a form check for Origin")
	}
}
