package flex_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// TestServeFlexLiteralValues: a Flex policy's value that is not one #[...]
// expression reaches the upstream as written, `$` and all, as in Flex
// Gateway; flexgate's $-expressions are not read there, and one that looks
// like it was meant as one is warned of. A variable's value is text too,
// even when it is written like an expression, which is warned of.
func TestServeFlexLiteralValues(t *testing.T) {
	t.Setenv("FLEX_TEST_EXPR", "#[attributes.method]")
	up := proxytest.StartUpstream(t)
	base, gw := serveFlex(t, "api.yaml", doc("ApiInstance", "a")+"  address: http://127.0.0.1:8081\n  services: {up: {address: "+up.URL+"}}\n",
		"headers.yaml", doc("PolicyBinding", "headers")+`  targetRef: {name: a}
  policyRef: {name: header-injection-flex}
  config:
    inboundHeaders:
      - {key: x-password, value: "pa$$word"}
      - {key: x-id, value: "id-$requestId"}
      - {key: x-price, value: "costs $price now"}
      - {key: x-braced, value: "${request.method}"}
      - {key: x-env, value: $FLEX_TEST_EXPR}
      - {key: x-method, value: "#[attributes.method]"}
`)
	if status, reason, body := get(t, base+"/x"); status != 200 {
		t.Fatalf("answer %d %s: %s", status, reason, body)
	}
	got := up.Last(t).Header
	for name, want := range map[string]string{"X-Password": "pa$$word", "X-Id": "id-$requestId", "X-Price": "costs $price now",
		"X-Braced": "${request.method}", "X-Env": "#[attributes.method]", "X-Method": "GET"} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	var warned []string
	for _, w := range gw.GW.Config().Warnings {
		warned = append(warned, w.Message)
	}
	want := []string{
		"header-injection-flex: $$ in a value of header-injection-flex is two dollar signs, as in Flex Gateway: its values are text unless the whole value " +
			"is one #[...] expression (flexgate releases before this one read $$ there as one $); write a single $ if one is meant",
		"header-injection-flex: $requestId in a value is text, not an expression: header-injection-flex reads its values as Flex Gateway does, " +
			"as text unless the whole value is one #[...] expression",
		"header-injection-flex: $request.method in a value is text, not an expression: header-injection-flex reads its values as Flex Gateway does, " +
			"as text unless the whole value is one #[...] expression; to read what it reads, write #[attributes.method]",
		"header-injection-flex: environment variable FLEX_TEST_EXPR holds a Flex expression, #[...], which is read here as text, not evaluated: " +
			"write the expression in the config itself",
	}
	if strings.Join(warned, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warned, "\n"), strings.Join(want, "\n"))
	}
}

// TestServeFlexKeySelectorFromEnv: `keySelector: $NAME` whose variable
// holds #[attributes.method] is that text, one budget for every request,
// as REFERENCE §9 documents only the substitution of a whole value: the
// load warns that it is not evaluated. A flexgate $-expression written as
// a keySelector, text in a Flex policy, would put every client in one
// budget meant per client: a config error that says how to write it.
func TestServeFlexKeySelectorFromEnv(t *testing.T) {
	t.Setenv("FLEX_TEST_KS", "#[attributes.method]")
	up := proxytest.StartUpstream(t)
	limit := func(name, key string) string {
		return doc("PolicyBinding", name) + "  targetRef: {name: " + name + "}\n  policyRef: {name: rate-limiting-flex}\n" +
			"  config: {rateLimits: [{maximumRequests: 1, timePeriodInMilliseconds: 60000}], keySelector: " + key + "}\n"
	}
	api := func(name, path string) string {
		return doc("ApiInstance", name) + "  address: http://127.0.0.1:8081/" + path + "\n  services: {up: {address: " + up.URL + "}}\n"
	}
	base, gw := serveFlex(t, "api.yaml", api("env", "env"), "limits.yaml", limit("env", "$FLEX_TEST_KS"))
	first := proxytest.Do(t, "GET", base+"/env/x", map[string]string{"X-Key": "a"}, nil)
	second := proxytest.Do(t, "POST", base+"/env/x", map[string]string{"X-Key": "b"}, nil)
	if first.StatusCode() != 200 || second.StatusCode() != 429 {
		t.Errorf("%d then %d; want one budget for both requests: 200 then 429", first.StatusCode(), second.StatusCode())
	}
	fasthttp.ReleaseResponse(first)
	fasthttp.ReleaseResponse(second)
	var warned []string
	for _, w := range gw.GW.Config().Warnings {
		warned = append(warned, w.Message)
	}
	want := "rate-limiting-flex: environment variable FLEX_TEST_KS holds a Flex expression, #[...], which is read here as text, not evaluated: " +
		"write the expression in the config itself"
	if strings.Join(warned, "\n") != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warned, "\n"), want)
	}

	cfg := load(t, "api.yaml", api("dollar", "dollar"), "limits.yaml", limit("dollar", `"$request.header.X-Key"`))
	_, err := chain.CompileAll(cfg, nil, chain.Options{})
	if err == nil || !strings.Contains(err.Error(), `keySelector "$request.header.X-Key" is text in rate-limiting-flex`) ||
		!strings.Contains(err.Error(), "#[attributes.headers['x-api-key']]") {
		t.Errorf("a $-expression as keySelector: %v; want an error that says it is text and how to write it", err)
	}
}
