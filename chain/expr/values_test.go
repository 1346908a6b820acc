package expr

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// Test policies: test-provider hands on test.user and the JSON object
// test.claims from request headers, test-other provides test.user too, and
// test-consumer expands its `value` into the X-Out request header.
var (
	testUser   chain.Value
	testClaims chain.Value
)

func init() {
	chain.Register(chain.Registration{Name: "test-provider", New: func() chain.Policy { return new(testProvider) },
		Provides: []chain.ValueSpec{{Name: "test.user"}, {Name: "test.claims", Object: true}}})
	chain.Register(chain.Registration{Name: "test-other", New: func() chain.Policy { return new(testOther) },
		Provides: []chain.ValueSpec{{Name: "test.user"}}})
	chain.Register(chain.Registration{Name: "test-consumer", New: func() chain.Policy { return new(testConsumer) }})
	// Registered before the value it stands for would be, as another
	// package's init may do.
	chain.RegisterAlias("test.props.claims", "test.claims")
	chain.RegisterAlias("test.principal", "test.user")
	// Flex names, as flex.go gives the values of flexgate's policies.
	chain.RegisterAlias("authentication.testUser", "test.user")
	chain.RegisterAlias("vars.testClaims", "test.claims")
	testUser = chain.MustValue("test.user")
	testClaims = chain.MustValue("test.claims")
}

type testProvider struct{}

func (*testProvider) Validate(*chain.Env) error  { return nil }
func (*testProvider) Provision(*chain.Env) error { return nil }
func (*testProvider) Close() error               { return nil }
func (*testProvider) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ex.SetValue(testUser, ctx.Request.Header.Peek("X-User"))
	ex.SetValue(testClaims, ctx.Request.Header.Peek("X-Claims"))
	return nil
}

type testOther struct{}

func (*testOther) Validate(*chain.Env) error  { return nil }
func (*testOther) Provision(*chain.Env) error { return nil }
func (*testOther) Close() error               { return nil }
func (*testOther) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	ex.SetValue(testUser, ctx.Request.Header.Peek("X-Other-User"))
	return nil
}

type testConsumer struct {
	Value string `yaml:"value"`
	tmpl  *Template
}

func (c *testConsumer) Validate(env *chain.Env) error {
	var err error
	c.tmpl, err = Compile(c.Value, env)
	return err
}
func (*testConsumer) Provision(*chain.Env) error { return nil }
func (*testConsumer) Close() error               { return nil }
func (c *testConsumer) HandleRequest(ctx *fasthttp.RequestCtx, ex *chain.Exchange) *chain.Rejection {
	s := ex.Slot()
	s.Buf = c.tmpl.Append(s.Buf[:0], ctx, ex)
	ctx.Request.Header.SetBytesV("X-Out", s.Buf)
	return nil
}

const testClaimsJSON = `{"email":"ann@example.com","address":{"country":"NZ","city":"Wellington"},` +
	`"a.b":"dotted","roles":["r0","r1"],"n":42,"ok":true,"nul":null,"esc":"\u0041\"\/b",` +
	`"x":{"email":"nested, not top-level","inner":"x"},"list":[{"item":"in an array"}]}`

// consume runs a request with the given headers through policies and
// returns the X-Out header test-consumer set.
func consume(t *testing.T, policies string, headers ...string) string {
	t.Helper()
	c := chaintest.MustChain(t, policies)
	ctx := chaintest.Ctx("http://gw/api/x", headers...)
	if rej := chaintest.Run(c, ctx); rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	return string(ctx.Request.Header.Peek("X-Out"))
}

func consumer(value string) string {
	return "        - test-consumer: {value: '" + strings.ReplaceAll(value, "'", "''") + "'}\n"
}

// TestProvidedValues: a value a policy provides, and members of a JSON
// object value, expand in the expressions of a later policy.
func TestProvidedValues(t *testing.T) {
	const provider = "        - test-provider\n"
	f := func(value, want string) {
		t.Helper()
		got := consume(t, provider+consumer(value), "X-User", "ann", "X-Claims", testClaimsJSON)
		if got != want {
			t.Errorf("%s = %q, want %q", value, got, want)
		}
	}
	f("$test.user", "ann")
	f("$test.principal", "ann")
	f("$test.claims.email", "ann@example.com")
	f("$test.props.claims.email", "ann@example.com")
	f("$test.claims.address.country/$test.claims.address.city", "NZ/Wellington")
	f(`${test.claims["a.b"]}`, "dotted")
	f(`${test.claims['a.b']}-${test.claims.roles[1]}`, "dotted-r1")
	f("$test.claims.n $test.claims.ok", "42 true")
	f("[${test.claims.nul}${test.claims.missing}${test.claims.address.missing}]", "[]")
	f("$test.claims.esc", `A"/b`)
	f("$test.claims.roles", `["r0","r1"]`)
	f("$test.claims.address", `{"country":"NZ","city":"Wellington"}`)
	f("${test.claims.x.email}", "nested, not top-level")
	// A member is looked up at its own level only.
	f("[$test.claims.inner$test.claims.item$test.claims.country]", "[]")
	f("u=$test.user.", "u=ann.")
	f("$test.user[0]", "ann[0]")

	// Nothing provided: the values expand to nothing.
	if got := consume(t, provider+consumer("[$test.user$test.claims.email]")); got != "[]" {
		t.Errorf("without the headers: %q", got)
	}
}

// TestTwoProviders: several policies may provide one value; any of them
// before the consumer will do, and the last to run before it wins.
func TestTwoProviders(t *testing.T) {
	if got := consume(t, "        - test-other\n"+consumer("$test.user"), "X-Other-User", "bob"); got != "bob" {
		t.Errorf("after test-other: %q", got)
	}
	got := consume(t, "        - test-provider\n        - test-other\n"+consumer("$test.user"),
		"X-User", "ann", "X-Other-User", "bob")
	if got != "bob" {
		t.Errorf("after test-provider then test-other: %q, want the last one's", got)
	}
	info, _ := chain.LookupValue("test.user")
	if !slices.Equal(info.Providers, []string{"test-other", "test-provider"}) {
		t.Errorf("providers of test.user: %q", info.Providers)
	}
}

// TestAliasesShareValue: an alias resolves to the value it names, in the
// registry and in an Exchange.
func TestAliasesShareValue(t *testing.T) {
	user, ok1 := chain.LookupValue("test.user")
	principal, ok2 := chain.LookupValue("test.principal")
	if !ok1 || !ok2 || user.Value != principal.Value || principal.Name != "test.user" {
		t.Fatalf("test.principal = %+v, test.user = %+v", principal, user)
	}
	if !slices.Equal(user.Aliases, []string{"authentication.testUser", "test.principal"}) {
		t.Errorf("aliases of test.user: %q", user.Aliases)
	}
	if chain.MustValue("test.props.claims") != testClaims {
		t.Error("test.props.claims is not test.claims")
	}
	known := strings.Join(Known(), ", ")
	for _, want := range []string{"$request.remoteAddress", "$test.user", "$test.claims.NAME", "$env.NAME"} {
		if !strings.Contains(known, want) {
			t.Errorf("Known() = %s, lacks %s", known, want)
		}
	}
}

// TestProviderMustRunFirst: an expression that reads a provided value is a
// load-time error unless a policy that provides it runs before, and the
// error says which policies provide it and how to order them.
func TestProviderMustRunFirst(t *testing.T) {
	f := func(policies, want string) {
		t.Helper()
		_, _, err := chaintest.Compile(t, chaintest.Gateway(policies))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %v, want one containing %q", policies, err, want)
		}
		if !strings.Contains(err.Error(), "gw.yaml:") {
			t.Errorf("error without a position: %v", err)
		}
	}
	f(consumer("$test.claims.email"),
		"$test.claims.email is only known after test-provider: put test-provider before test-consumer in the route's policies")
	f(consumer("$test.user"),
		"$test.user is only known after test-other or test-provider: put one of them before test-consumer in the route's policies")
	f(consumer("$test.principal")+"        - test-provider\n",
		"$test.principal (another name for $test.user) is only known after test-other or test-provider, "+
			"but test-provider runs after test-consumer on this route: move test-provider before test-consumer in the route's policies")
	f("        - test-other\n"+consumer("$test.props.claims.email")+"        - test-provider\n",
		"$test.props.claims.email (another name for $test.claims.email) is only known after test-provider, but test-provider runs after")
	f("        - test-other\n"+consumer("${test.claims.roles[0]}"),
		"$test.claims.roles[0] is only known after test-provider: put test-provider before test-consumer")
}

func TestMemberErrors(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		_, err := Compile(src, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Compile(%q) = %v, want an error containing %q", src, err, want)
		}
	}
	f("$test.claims.roles[0]", "write ${test.claims.roles[...]}")
	f("$test.claims[x", "for text write ${test.claims}[")
	f("${test.claims..a}", "member name is empty")
	f("${test.claims[x]}", "write [N] for the element N")
	f("${test.claims[]}", "write [N]")
	f(`${test.claims["a.b}`, "is not closed")
	f(`${test.claims["[0]"]}`, "cannot be read")
	f("$test.user-x", "use ${test.user}-x")
	f("$test.users", "unknown expression $test.users")
	f("$test.user.x", "use ${test.user}.x")
}

// TestMembersOfBrokenJSON: a provider that sets something other than a
// JSON object gets empty members, never a panic.
func TestMembersOfBrokenJSON(t *testing.T) {
	ctx := newCtx("http://gw/api/x")
	ex := &chain.Exchange{}
	tmpl := MustCompile(`$test.claims.email|$test.claims.address.country|${test.claims.roles[1]}|${test.claims["a.b"]}|$test.claims.esc`)
	for _, obj := range []string{"", "null", "[1,2]", `"str"`, "{", `{"email":`, `{"email":"x\`, `{"roles":[`, `{"esc":"\u00"}`, `{]`} {
		ex.SetValue(testClaims, []byte(obj))
		_ = tmpl.Append(nil, ctx, ex)
	}
	for i := range len(testClaimsJSON) {
		ex.SetValue(testClaims, []byte(testClaimsJSON[:i]))
		_ = tmpl.Append(nil, ctx, ex)
	}
}

// TestMembersDoNotAllocate: reading members, with an escaped string, an
// array element and a nested object, costs no allocation.
func TestMembersDoNotAllocate(t *testing.T) {
	ctx := newCtx("http://gw/api/x")
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.SetValue(testUser, []byte("ann"))
	ex.SetValue(testClaims, []byte(testClaimsJSON))
	tmpl := MustCompile(`$test.user $test.principal $test.claims.email $test.claims.esc ${test.claims.roles[1]} $test.claims.address.country ${test.claims["a.b"]} $test.claims.n $test.claims.address`)
	buf := tmpl.Append(nil, ctx, ex)
	want := `ann ann ann@example.com A"/b r1 NZ dotted 42 {"country":"NZ","city":"Wellington"}`
	if string(buf) != want {
		t.Fatalf("expanded to %q, want %q", buf, want)
	}
	if n := testing.AllocsPerRun(1000, func() { buf = tmpl.Append(buf[:0], ctx, ex) }); n != 0 {
		t.Fatalf("allocations per Append = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		ex.Reset()
		ex.SetValue(testUser, []byte("ann"))
		ex.SetValue(testClaims, []byte(testClaimsJSON))
	}); n != 0 {
		t.Fatalf("allocations per Reset and SetValue = %v, want 0", n)
	}
}

// TestFlexInChain: Flex expressions read the values policies provide by
// their Flex names, with the same check that a provider runs first, and
// their errors point at the exact line and column of the config, however
// the value is quoted.
func TestFlexInChain(t *testing.T) {
	const provider = "        - test-provider\n"
	got := consume(t, provider+consumer("#[authentication.testUser ++ '/' ++ upper(vars.testClaims.address.country)]"),
		"X-User", "ann", "X-Claims", testClaimsJSON)
	if got != "ann/NZ" {
		t.Errorf("Flex names of provided values: %q", got)
	}
	_, _, err := chaintest.Compile(t, chaintest.Gateway(consumer("#['x' ++ vars.testClaims.email]")+provider))
	if err == nil || !strings.Contains(err.Error(), "vars.testClaims (another name for test.claims) is only known after test-provider, "+
		"but test-provider runs after test-consumer on this route: move test-provider before test-consumer") {
		t.Errorf("a Flex expression before its provider: %v", err)
	}

	// The value as written in YAML (after `value: `), and the text whose
	// first character the error must point at.
	for _, c := range []struct{ yaml, at, want string }{
		{`"#[attributes.headers[\"x-a\"] ++ attributes.methd]"`, "methd", `attributes has no member "methd"`},
		{`"#[\u0027\t\u00e9\u0027 ++ attributes.methd]"`, "methd", `attributes has no member "methd"`},
		{`'#[attributes.headers[''x-a''] ++ attributes.methd]'`, "methd", `attributes has no member "methd"`},
		{"\"#[attributes.headers['x-a']\n              ++ attributes.methd]\"", "methd", `attributes has no member "methd"`},
		{"|-\n              #[attributes.method\n                == 200]", "==", "compares text with a number"},
		{`"pre-$request.nope"`, "$request.nope", "unknown expression $request.nope"},
		{`"#[attributes.method ++ 'x'"`, `"` + "\n", "must make up the whole value"},
	} {
		doc := chaintest.Gateway("        - test-consumer:\n            value: " + c.yaml + "\n")
		_, path, err := chaintest.Compile(t, doc)
		i := strings.Index(doc, "value: ") + strings.Index(doc[strings.Index(doc, "value: "):], c.at)
		line := strings.Count(doc[:i], "\n") + 1
		col := utf8.RuneCountInString(doc[strings.LastIndexByte(doc[:i], '\n')+1:i]) + 1
		pos := fmt.Sprintf("%s:%d:%d: test-consumer: ", path, line, col)
		if err == nil || !strings.HasPrefix(err.Error(), pos) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("value %s: error\n%v\nwant it at %s with %q", c.yaml, err, pos, c.want)
		}
		if !strings.Contains(err.Error(), "\n    ") || !strings.HasSuffix(err.Error(), "^") {
			t.Errorf("value %s: no caret under the place:\n%v", c.yaml, err)
		}
	}
}

// TestFlexNotWholeValueWarns: a value with #[ after other text is literal,
// as in Flex, and the config says so in a warning.
func TestFlexNotWholeValueWarns(t *testing.T) {
	cfg, path := chaintest.Load(t, chaintest.Gateway(consumer("v1-#[attributes.method]")))
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatal(err)
	}
	want := path + ":12:11: warning: test-consumer: a value holds #[ after other text, so it is literal text"
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0].String(), want) {
		t.Errorf("warnings %v, want one beginning %q", cfg.Warnings, want)
	}
}
