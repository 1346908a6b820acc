package jsonthreat

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// gateway is a document with one route, "r" on /api/*, whose body limit is
// maxBody, and the policies given (the list starts on line 13, indented by
// 8 columns).
func gateway(maxBody, policies string) string {
	return `apiVersion: gateway.mulesoft.com/v1alpha1
kind: Gateway
metadata:
  name: test
spec:
  routes:
    - id: r
      path: ["/api/*"]
      upstream:
        url: "http://127.0.0.1:1"
      maxRequestBodySize: ` + maxBody + `
      policies:
` + policies
}

func mustChain(t testing.TB, maxBody, policies string) *chain.Chain {
	t.Helper()
	set, _, err := chaintest.Compile(t, gateway(maxBody, policies))
	if err != nil {
		t.Fatal(err)
	}
	return set.Chains[0]
}

// post is a POST of body with the headers (name, value pairs). With stream
// set, the body arrives as a stream of unknown length (chunked), in pieces.
func post(body string, stream bool, headers ...string) *fasthttp.RequestCtx {
	ctx := chaintest.Ctx("http://gw/api/x", headers...)
	ctx.Request.Header.SetMethod("POST")
	if stream {
		ctx.Request.SetBodyStream(&pieces{r: strings.NewReader(body)}, -1)
	} else {
		ctx.Request.SetBodyString(body)
	}
	return ctx
}

// pieces reads at most 7 bytes at a time, so that documents arrive split
// in every place.
type pieces struct{ r io.Reader }

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), 7)]) }

func run(c *chain.Chain, ctx *fasthttp.RequestCtx) (*chain.Rejection, string) {
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(c)
	rej := c.RunRequest(ctx, ex)
	return rej, string(ex.Details)
}

const allLimits = `        - json-threat-protection:
            maxContainerDepth: 3
            maxStringValueLength: 5
            maxArrayElementCount: 3
            maxObjectEntryCount: 2
            maxObjectEntryNameLength: 4
`

func TestLimits(t *testing.T) {
	for _, policy := range []string{allLimits, strings.Replace(allLimits, "json-threat-protection:", "json-threat-protection-flex:", 1)} {
		c := mustChain(t, "1MiB", policy)
		name := c.Policies[0].Name
		f := func(body, reason, param string) {
			t.Helper()
			for _, stream := range []bool{false, true} {
				rej, details := run(c, post(body, stream, "Content-Type", "application/json"))
				switch {
				case reason == "" && rej != nil:
					t.Errorf("%s %s (stream %v): refused: %v", name, body, stream, rej)
				case reason == "":
				case rej == nil:
					t.Errorf("%s %s (stream %v): passed, want %s", name, body, stream, reason)
				case rej.Status != 400 || rej.Reason != reason || rej.Policy != name:
					t.Errorf("%s %s: %d %s by %s, want 400 %s", name, body, rej.Status, rej.Reason, rej.Policy, reason)
				case param != "" && (!strings.Contains(rej.Message, param) || !strings.Contains(details, `"parameter":"`+param+`"`)):
					t.Errorf("%s %s: message %q, details %s do not name %s", name, body, rej.Message, details, param)
				}
			}
		}
		f(`{"abcd":[1,2,{"x":"12345"}],"e":null}`, "", "")
		f(`[[[[]]]]`, "json_too_deep", "maxContainerDepth")
		f(`["123456"]`, "json_string_too_long", "maxStringValueLength")
		f(`["é😀é😀é"]`, "", "")
		f(`["é😀é😀éx"]`, "json_string_too_long", "maxStringValueLength")
		f(`[1,2,3,4]`, "json_array_too_long", "maxArrayElementCount")
		f(`{"a":1,"b":2,"c":3}`, "json_object_too_long", "maxObjectEntryCount")
		f(`{"abcde":1}`, "json_name_too_long", "maxObjectEntryNameLength")
		f(`{"a":1,}`, "invalid_json", "")
		f("[\"\xff\"]", "invalid_json", "")
		f("[\"\xed\xa0\x80\"]", "invalid_json", "")
		f(`[1] [2]`, "invalid_json", "")
		f(`  `, "invalid_json", "")
	}
}

// TestDefaultsAreUnlimited: every limit defaults to -1, and -1 written is
// the same; nesting still stops at the gateway's bound.
func TestDefaultsAreUnlimited(t *testing.T) {
	for _, policy := range []string{"        - json-threat-protection\n", "        - json-threat-protection-flex\n",
		"        - json-threat-protection-flex: {maxContainerDepth: -1, maxStringValueLength: -1, maxArrayElementCount: -1, maxObjectEntryCount: -1, maxObjectEntryNameLength: -1}\n"} {
		c := mustChain(t, "1MiB", policy)
		big := `{"` + strings.Repeat("k", 5000) + `":["` + strings.Repeat("v", 50000) + `"` + strings.Repeat(",1", 5000) + `]}`
		if rej, _ := run(c, post(big, true)); rej != nil {
			t.Errorf("%s: large document refused: %v", policy, rej)
		}
		deep := strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1)
		rej, details := run(c, post(deep, true))
		if rej == nil || rej.Reason != "json_too_deep" || !strings.Contains(rej.Message, "10000 levels") || !strings.Contains(details, `"gatewayLimit":10000`) {
			t.Errorf("%s: %d levels: %v %s", policy, MaxNesting+1, rej, details)
		}
	}
}

// TestContentTypes: flexgate's name checks every body, the Flex name (and
// contentTypes: json) only JSON and untyped ones, as Flex Gateway does.
func TestContentTypes(t *testing.T) {
	strict := mustChain(t, "1MiB", "        - json-threat-protection\n")
	flexLike := mustChain(t, "1MiB", "        - json-threat-protection: {contentTypes: json}\n")
	flex := mustChain(t, "1MiB", "        - json-threat-protection-flex\n")
	f := func(c *chain.Chain, contentType string, wantChecked bool) {
		t.Helper()
		var headers []string
		if contentType != "" {
			headers = []string{"Content-Type", contentType}
		}
		rej, _ := run(c, post(`{not json`, false, headers...))
		if checked := rej != nil; checked != wantChecked {
			t.Errorf("%s, Content-Type %q: checked %v (%v), want %v", c.Policies[0].Name, contentType, checked, rej, wantChecked)
		}
	}
	for _, c := range []*chain.Chain{strict, flexLike, flex} {
		for _, ct := range []string{"", "application/json", "Application/JSON; charset=utf-8", "application/problem+json"} {
			f(c, ct, true)
		}
	}
	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"} {
		f(strict, ct, true)
		f(flexLike, ct, false)
		f(flex, ct, false)
	}
}

func TestBodiesItCannotCheck(t *testing.T) {
	c := mustChain(t, "100", "        - json-threat-protection\n")
	f := func(ctx *fasthttp.RequestCtx, status int, reason string) {
		t.Helper()
		rej, _ := run(c, ctx)
		if rej == nil || rej.Status != status || rej.Reason != reason {
			t.Errorf("%v, want %d %s", rej, status, reason)
		}
	}
	f(post(`{}`, false, "Content-Encoding", "gzip"), 415, "unsupported_content_encoding")
	f(post(`[`+strings.Repeat(`1,`, 60)+`1]`, true), 413, "body_too_large")
	f(post(`[`+strings.Repeat(`1,`, 60)+`1]`, false), 413, "body_too_large")
	// Exactly at the limit passes, and the body is kept for the upstream.
	atLimit := `[` + strings.Repeat(" ", 98) + `]`
	ctx := post(atLimit, true)
	if rej, _ := run(c, ctx); rej != nil {
		t.Fatalf("a body at the limit: %v", rej)
	}
	if got := string(ctx.Request.Body()); got != atLimit {
		t.Errorf("body kept for the upstream: %q", got)
	}
	for _, ctx := range []*fasthttp.RequestCtx{post("", false), post("", true), post(`{}`, false, "Content-Encoding", "identity")} {
		if rej, _ := run(c, ctx); rej != nil {
			t.Errorf("%v", rej)
		}
	}
	broken := chaintest.Ctx("http://gw/api/x")
	broken.Request.Header.SetMethod("POST")
	broken.Request.SetBodyStream(io.MultiReader(strings.NewReader(`[1,`), errReader{}), -1)
	f(broken, 400, "client_body_incomplete")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestStopsAtFirstViolation: the rest of a refused body is not read.
func TestStopsAtFirstViolation(t *testing.T) {
	c := mustChain(t, "1GiB", "        - json-threat-protection: {maxArrayElementCount: 2}\n")
	counting := &countingReader{r: &endless{prefix: []byte("[1,2,3"), fill: []byte(",4")}}
	ctx := chaintest.Ctx("http://gw/api/x")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetBodyStream(counting, -1)
	if rej, _ := run(c, ctx); rej == nil || rej.Reason != "json_array_too_long" {
		t.Fatalf("%v", rej)
	}
	if counting.n > 64<<10 {
		t.Errorf("read %d bytes of an endless body after its third element", counting.n)
	}
}

type endless struct {
	prefix, fill []byte
	off          int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if e.off < len(e.prefix) {
			k := copy(p[n:], e.prefix[e.off:])
			e.off += k
			n += k
			continue
		}
		n += copy(p[n:], e.fill)
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestValidate(t *testing.T) {
	f := func(policy, want string) {
		t.Helper()
		_, _, err := chaintest.Compile(t, gateway("1MiB", policy))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", policy, err, want)
		}
	}
	f("        - json-threat-protection: {maxContainerDepth: -2}\n",
		"gw.yaml:13:55: json-threat-protection: maxContainerDepth must be a whole number from -1 to 10000 (-1: no limit, but the gateway reads no body nested deeper than 10000), not -2")
	f("        - json-threat-protection-flex: {maxStringValueLength: 3000000000}\n",
		"gw.yaml:13:63: json-threat-protection-flex: maxStringValueLength must be a whole number from -1 to 2147483647 (-1: no limit), not 3000000000")
	// The tag's bound is the scanner's.
	f(fmt.Sprintf("        - json-threat-protection: {maxContainerDepth: %d}\n", MaxNesting+1),
		fmt.Sprintf("maxContainerDepth must be a whole number from -1 to %d (-1: no limit, but the gateway reads no body nested deeper than %[1]d), not %d", MaxNesting, MaxNesting+1))
	f("        - json-threat-protection: {contentTypes: xml}\n", `gw.yaml:13:50: json-threat-protection: contentTypes "xml" is unknown`)
	f("        - json-threat-protection-flex: {contentTypes: json}\n", `unknown parameter "contentTypes"`)
	f("        - json-threat-protection-flex: {maxDepth: 3}\n", `unknown parameter "maxDepth"; known parameters: maxArrayElementCount, maxContainerDepth, maxObjectEntryCount, maxObjectEntryNameLength, maxStringValueLength`)
	f("        - json-threat-protection-flex: {maxContainerDepth: three}\n",
		`gw.yaml:13:60: json-threat-protection-flex: maxContainerDepth must be a whole number from -1 to 10000 (-1: no limit, but the gateway reads no body nested deeper than 10000), not "three"`)
}

// TestLargeBodyStreamsThroughTheCheck: of a body larger than holdMax the
// policy holds only the first holdMax bytes; the rest is checked as the
// gateway reads it for the upstream. A valid body reads back byte for
// byte; one that breaks a limit, or ends mid-document, past holdMax ends
// the stream with the policy's rejection (a chain.BodyRejection) before
// the offending piece, and a body-reading policy after it answers with
// that rejection.
func TestLargeBodyStreamsThroughTheCheck(t *testing.T) {
	cfg, _ := chaintest.Load(t, gateway("1GiB", "        - json-threat-protection: {maxArrayElementCount: 100000}\n"))
	set, err := chain.CompileAll(cfg, nil, chain.Options{Provision: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	c := set.Chains[0]
	valid := "[" + strings.Repeat(`"abcdefghij",`, 20000) + "0]"
	f := func(body string) (passed *chain.Rejection, read, details string, end error) {
		t.Helper()
		ctx := post(body, true)
		ex := chain.AcquireExchange()
		defer chain.ReleaseExchange(ex)
		ex.Prepare(c)
		if rej := c.RunRequest(ctx, ex); rej != nil {
			return rej, "", "", nil
		}
		var b bytes.Buffer
		_, end = io.Copy(&b, ctx.Request.BodyStream())
		return nil, b.String(), string(ex.Details), end
	}
	if rej, read, _, end := f(valid); rej != nil || end != nil || read != valid {
		t.Fatalf("a valid body of %d bytes: %v, %v, read %d bytes", len(valid), rej, end, len(read))
	}
	for _, tc := range []struct{ body, reason, details string }{
		{valid[:len(valid)-1] + "," + strings.Repeat("[", 10001), "json_too_deep", `{"parameter":"maxContainerDepth","value":-1,"gatewayLimit":10000}`},
		{strings.Replace(valid, "0]", strings.Repeat("1,", 80001)+"0]", 1), "json_array_too_long", `{"parameter":"maxArrayElementCount","value":100000}`},
		{valid[:len(valid)-1], "invalid_json", ""},
		{valid[:len(valid)-2] + "\xff]", "invalid_json", ""},
	} {
		rej, read, details, end := f(tc.body)
		br, ok := end.(chain.BodyRejection)
		if rej != nil || !ok || br.Rejection().Reason != tc.reason || br.Rejection().Policy != "json-threat-protection" || details != tc.details {
			t.Errorf("%s: %v, %v, details %s", tc.reason, rej, end, details)
			continue
		}
		if len(read) < holdMax || len(read) >= len(tc.body) || !strings.HasPrefix(tc.body, read) {
			t.Errorf("%s: %d of %d bytes passed on", tc.reason, len(read), len(tc.body))
		}
	}

	// A policy after it that reads the body answers with its rejection.
	c = mustChain(t, "1GiB", "        - json-threat-protection: {maxContainerDepth: 3}\n        - request-validation: {schema: '{\"type\":\"array\"}', maxBodySize: 10000000}\n")
	deep := valid[:len(valid)-1] + ",[[[[1]]]]]"
	ctx := post(deep, true, "Content-Type", "application/json")
	if rej, details := run(c, ctx); rej == nil || rej.Reason != "json_too_deep" || rej.Policy != "json-threat-protection" ||
		details != `{"parameter":"maxContainerDepth","value":3}` {
		t.Errorf("request-validation after it: %v %s", rej, details)
	}
}

func TestSuccessDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	c := mustChain(t, "1MiB", allLimits)
	body := []byte(`{"abcd":[1,2,{"x":"12345"}],"e":null}`)
	for _, stream := range []bool{false, true} {
		ctx := post("", false, "Content-Type", "application/json")
		ex := chain.AcquireExchange()
		ex.Prepare(c)
		r := bytes.NewReader(nil)
		allocs := testing.AllocsPerRun(500, func() {
			if stream {
				r.Reset(body)
				ctx.Request.SetBodyStream(r, -1)
			} else {
				ctx.Request.SetBody(body)
			}
			if rej := c.RunRequest(ctx, ex); rej != nil {
				t.Fatal(rej)
			}
		})
		chain.ReleaseExchange(ex)
		if allocs != 0 {
			t.Errorf("stream %v: %v allocations per request, want 0", stream, allocs)
		}
	}
}
