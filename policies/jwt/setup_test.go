package jwt

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain/chaintest"
)

// TestConfigErrors: each parameter's bad values are errors at the value's
// file:line:col that say what to write.
func TestConfigErrors(t *testing.T) {
	k := keysOnce()
	priv := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOf8Xk1eD5HoM1f0z9+LmHNy6JkGM1qv0xwBn1bHr3zW\n-----END PRIVATE KEY-----"
	secret := fmt.Sprintf("keys: [{secret: %q}]\n", k.secret)
	for _, c := range []struct{ name, params, want string }{
		{"no keys", "leeway: 5s", "keys or jwks is required"},
		{"alg none", secret + "algorithms: [HS256, none]", `gw.yaml:14:33: jwt-validation: algorithm "none" accepts unsigned tokens`},
		{"unknown alg", secret + "algorithms: [HS257]", `algorithm "HS257" is unknown`},
		{"short secret", `keys: [{secret: "short"}]`, "gw.yaml:13:29: jwt-validation: secret: the HMAC secret has 5 bytes; HS256 needs at least 32"},
		{"secret not allowed", secret + "algorithms: [RS256]", "none of which the policy allows"},
		{"two kinds in one key", fmt.Sprintf("keys: [{secret: %q, pem: x}]", k.secret), "a key is one of pem"},
		{"private PEM", "keys:\n  - pem: |\n" + indentLines(priv, "      "), "it is a private key"},
		{"not PEM", `keys: [{pem: "-----BEGIN FOO-----\nAAAA\n-----END FOO-----"}]`, `"FOO" is not a public key`},
		{"garbage PEM", `keys: [{pem: "hello"}]`, "pem:"},
		{"JWK private", fmt.Sprintf("keys: [{jwk: '%s'}]", jwksOf(t, jwkEntry{pub: k.ec256})), "private key"},
		{"JWK secret", fmt.Sprintf("keys: [{jwk: '%s'}]", jwksOf(t, jwkEntry{pub: k.secret})), "symmetric"},
		{"key alg mismatch", fmt.Sprintf("keys: [{jwk: '%s', alg: RS256}]", jwkJSON(t, &k.ec256.PublicKey)), "cannot verify"},
		{"jwks without url", "jwks: {ttl: 1m}", "jwks: url is required"},
		{"jwks bad url", "jwks: {url: ftp://idp/jwks}", "is not an http(s) URL"},
		{"jwks url credentials", "jwks: {url: 'https://u:p@idp/jwks'}", "must not carry credentials"},
		{"jwks ttl", "jwks: {url: https://idp/jwks, ttl: 10}", `gw.yaml:13:48: jwt-validation: ttl must be a duration with a unit like 500ms, 2s or 1m, not "10"`},
		{"jwks ttl empty", "jwks: {url: https://idp/jwks, ttl: ''}", `ttl must be a duration with a unit like 500ms, 2s or 1m, not ""`},
		{"jwks ttl negative", "jwks: {url: https://idp/jwks, ttl: -1h}", `gw.yaml:13:48: jwt-validation: ttl "-1h" is out of range: use 1s to 168h`},
		{"jwks ttl huge", "jwks: {url: https://idp/jwks, ttl: 99999999999h}", `ttl "99999999999h" is out of range: use 1s to 168h`},
		{"jwks timeout", "jwks: {url: https://idp/jwks, timeout: 5m}", `gw.yaml:13:52: jwt-validation: timeout "5m" is out of range: use 1ms to 1m`},
		{"jwks timeout negative", "jwks: {url: https://idp/jwks, timeout: -1s}", `timeout "-1s" is out of range: use 1ms to 1m`},
		{"jwks timeout huge", "jwks: {url: https://idp/jwks, timeout: 99999999999h}", `timeout "99999999999h" is out of range: use 1ms to 1m`},
		{"jwks caFile over http", "jwks: {url: http://idp/jwks, caFile: /nope}", "caFile is set but http://idp/jwks is plain http"},
		{"jwks caFile missing", "jwks: {url: https://idp/jwks, caFile: /nope/ca.pem}", "/nope/ca.pem"},
		{"leeway", secret + "leeway: 1h", `gw.yaml:14:21: jwt-validation: leeway "1h" is out of range: use 0s to 10m`},
		{"leeway negative", secret + "leeway: -5s", `leeway "-5s" is out of range: use 0s to 10m`},
		{"leeway huge", secret + "leeway: 99999999999h", `leeway "99999999999h" is out of range: use 0s to 10m`},
		{"leeway without a unit", secret + "leeway: 30", `leeway must be a duration with a unit like 500ms, 2s or 1m, not "30"`},
		{"requireNbf yes", secret + "requireNbf: yes", `gw.yaml:14:25: jwt-validation: requireNbf must be true or false, not "yes"`},
		{"empty issuer", secret + "issuer: ['']", "issuer must not be empty"},
		{"empty audience", secret + "audiences: ['']", "an audience must not be empty"},
		{"claim without name", secret + "claims: [{equals: x}]", "a claim needs a name"},
		{"claim equals a mapping", secret + "claims: [{name: x, equals: {a: 1}}]", "equals must be a value or a list of values, not a mapping"},
		{"claim that checks nothing", secret + "claims: [{name: x, required: false}]", "neither required nor checked"},
		{"cache", secret + "maxCacheEntries: -1", fmt.Sprintf("maxCacheEntries must be a whole number from 0 to 2147483647 (0: the default, %d), not -1", DefaultMaxCacheEntries)},
		{"from constant", secret + "from: abc", "is the same for every request"},
		{"from constant flex", secret + "from: \"#['abc']\"", "is the same for every request"},
		{"from unknown", secret + "from: $request.nope", "unknown expression $request.nope"},
		{"unknown parameter", secret + "audience: x", `unknown parameter "audience"`},
	} {
		_, err := trySetup(t, policy(c.params))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestClaimRequirements(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf(`keys: [{secret: %q}]
claims:
  - {name: scope, contains: [orders:read]}
  - {name: roles, contains: [admin]}
  - {name: tier, equals: [gold, platinum], required: false}
  - {name: email_verified, equals: true}
  - {name: tenant}
`, k.secret)))
	tok := func(kv ...string) string {
		return sign(t, "HS256", k.secret, hdr("HS256", ""), claims(kv...))
	}
	base := []string{"scope", `"orders:write orders:read"`, "roles", `["user","admin"]`, "email_verified", "true", "tenant", `"t1"`}
	with := func(kv ...string) []string {
		out := append([]string(nil), base...)
		for i := 0; i+1 < len(kv); i += 2 {
			for j := 0; j+1 < len(out); j += 2 {
				if out[j] == kv[i] {
					out = append(out[:j], out[j+2:]...)
					break
				}
			}
			if kv[i+1] != "" {
				out = append(out, kv[i], kv[i+1])
			}
		}
		return out
	}
	f.wantOK("all", tok(base...))
	f.wantOK("tier gold", tok(with("tier", `"gold"`)...))
	f.wantRefused("tier bronze", tok(with("tier", `"bronze"`)...), 401, "invalid_token")
	f.wantRefused("scope a prefix", tok(with("scope", `"orders:reader"`)...), 401, "invalid_token")
	f.wantRefused("scope missing", tok(with("scope", "")...), 401, "invalid_token")
	f.wantRefused("roles without admin", tok(with("roles", `["user"]`)...), 401, "invalid_token")
	f.wantRefused("email_verified false", tok(with("email_verified", "false")...), 401, "invalid_token")
	f.wantRefused("email_verified as text", tok(with("email_verified", `"yes"`)...), 401, "invalid_token")
	f.wantRefused("no tenant", tok(with("tenant", "")...), 401, "invalid_token")
	f.wantOK("tenant null is absent, required", tok(with("tenant", `"x"`)...))
	if n := f.result("claim"); n != 7 {
		t.Errorf("%d refusals counted as claim, want 7", n)
	}
}

func TestRequireExpAndNbf(t *testing.T) {
	k := keysOnce()
	noExp := sign(t, "HS256", k.secret, hdr("HS256", ""), `{"sub":"a"}`)
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nrequireExp: false", k.secret)))
	f.wantOK("no exp allowed", noExp)
	f = setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nrequireNbf: true", k.secret)))
	f.wantRefused("no nbf", sign(t, "HS256", k.secret, hdr("HS256", ""), claims()), 401, "invalid_token")
	f.wantOK("nbf", sign(t, "HS256", k.secret, hdr("HS256", ""), claims("nbf", fmt.Sprint(start.Unix()))))
}

func TestKeysRestrictions(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf(`keys:
  - {secret: %q, kid: a, alg: HS384}
  - jwk: %s
    kid: r
algorithms: [HS384, PS256]
`, k.secret, jwkJSON(t, &k.rsa.PublicKey))))
	f.wantOK("HS384", sign(t, "HS384", k.secret, hdr("HS384", "a"), claims()))
	f.wantRefused("HS256: the key's alg is HS384", sign(t, "HS256", k.secret, hdr("HS256", "a"), claims()), 401, "invalid_token")
	f.wantOK("PS256", sign(t, "PS256", k.rsa, hdr("PS256", "r"), claims()))
	f.wantRefused("RS256: not among algorithms", sign(t, "RS256", k.rsa, hdr("RS256", "r"), claims()), 401, "invalid_token")
	f.wantRefused("HS384 with kid r", sign(t, "HS384", k.secret, hdr("HS384", "r"), claims()), 401, "invalid_token")
}

func TestFromExpression(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nfrom: $request.header.X-Jwt", k.secret)))
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims())
	if r := f.doHeaders("X-Jwt", tok); r.rej != nil {
		t.Errorf("token in X-Jwt: %v", r.rej)
	}
	if r := f.doHeaders("Authorization", "Bearer "+tok); r.rej == nil || r.rej.Status != 400 || !strings.Contains(r.rej.Message, "$request.header.X-Jwt") {
		t.Errorf("token in Authorization only: %v", r.rej)
	}
	if r := f.doHeaders("X-Jwt", tok, "X_Jwt", tok); r.rej == nil || r.rej.Reason != "duplicate_credentials" {
		t.Errorf("X-Jwt twice: %v", r.rej)
	}
}

// TestFromReadsEveryName: from reads its header in the spelling the request
// sends (X_Jwt: an upstream reads it as X-Jwt) and its query parameter in
// any name an upstream reads as it; a token where an upstream may read
// another, unchecked, is refused: the header's name in the query, the
// query parameter's name as a header, and (RFC 6750) Authorization: Bearer
// beside access_token.
func TestFromReadsEveryName(t *testing.T) {
	k := keysOnce()
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims())
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nfrom: $request.header.X-Jwt", k.secret)))
	if r := f.doHeaders("X_Jwt", tok); r.rej != nil {
		t.Errorf("token in X_Jwt: %v", r.rej)
	}
	if r := f.doURI("/orders/1?x-jwt=other", "X-Jwt", tok); r.rej == nil || r.rej.Reason != "duplicate_credentials" ||
		!strings.Contains(r.rej.Message, "X-Jwt as a query parameter") {
		t.Errorf("X-Jwt in the query too: %v", r.rej)
	}
	f = setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nfrom: \"#[attributes.queryParams.access_token]\"", k.secret)))
	for _, uri := range []string{"/orders/1?access_token=", "/orders/1?ACCESS_TOKEN=", "/orders/1?access.token="} {
		if r := f.doURI(uri + tok); r.rej != nil {
			t.Errorf("%s: %v", uri, r.rej)
		}
	}
	for _, h := range [][]string{{"Authorization", "Bearer other"}, {"Access-Token", "other"}} {
		if r := f.doURI("/orders/1?access_token="+tok, h...); r.rej == nil || r.rej.Reason != "duplicate_credentials" {
			t.Errorf("access_token and %s: %v", h[0], r.rej)
		} else if h[0] == "Authorization" && r.rej.Message != "the request carries a token in the access_token query parameter and in Authorization; send it only in access_token" {
			t.Errorf("access_token and Authorization: message %q", r.rej.Message)
		}
	}
}

// TestClientIDExpressionReadsEveryName: a clientIdExpression that reads a
// header or a query parameter names the client ($client.id, which a rate
// limit after may count by) as from does the token: in any name an
// upstream reads as it, and a request that sends it twice, or in the other
// place, is refused, lest the gateway name one client and the upstream
// serve another.
func TestClientIDExpressionReadsEveryName(t *testing.T) {
	k := keysOnce()
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims())
	f := setup(t, flexPolicy(fmt.Sprintf("signingMethod: hmac\ntextKey: %q\nclientIdExpression: \"#[attributes.headers['x-client-id'] default attributes.queryParams.app]\"", k.secret)))
	bearer := []string{"Authorization", "Bearer " + tok}
	for _, c := range []struct {
		uri     string
		headers []string
		client  string
	}{
		{"/orders/1", []string{"X-Client-Id", "app1"}, "app1"},
		{"/orders/1", []string{"X_Client_Id", "app2"}, "app2"},
		{"/orders/1?APP=app3", nil, "app3"},
		{"/orders/1?a.pp=x&app=app4", nil, "app4"},
	} {
		r := f.doURI(c.uri, append(slices.Clone(bearer), c.headers...)...)
		if r.rej != nil {
			t.Errorf("%s %q: %v", c.uri, c.headers, r.rej)
		} else if got := r.value("client.id"); got != c.client {
			t.Errorf("%s %q: client.id %q, want %q", c.uri, c.headers, got, c.client)
		}
	}
	for _, c := range []struct {
		uri     string
		headers []string
	}{
		{"/orders/1", []string{"X-Client-Id", "app1", "X_Client_Id", "app2"}},
		{"/orders/1", []string{"X-Client-Id", "app1", "X-Client-Id", "app2"}},
		{"/orders/1?x-client-id=app2", []string{"X-Client-Id", "app1"}},
		{"/orders/1?app=app1&APP=app2", nil},
		{"/orders/1?app=app1", []string{"App", "app2"}},
	} {
		if r := f.doURI(c.uri, append(slices.Clone(bearer), c.headers...)...); r.rej == nil || r.rej.Reason != "duplicate_credentials" {
			t.Errorf("%s %q: %v, want duplicate_credentials", c.uri, c.headers, r.rej)
		}
	}
}

// TestClaimConditionReadsEveryName: a custom claim's condition that ties
// the token to the request (the token's tenant must be the X-Tenant the
// upstream serves) reads the header and the parameter as the upstream may:
// in any spelling, and a request sending X_Tenant: t2 beside X-Tenant: t1,
// or ?tenant=t1&tenant=t2, or ?tenant=t1&x=1;tenant=t2, which the
// condition read as t1 while a CGI, PHP or Rack upstream serves t2, is
// refused.
func TestClaimConditionReadsEveryName(t *testing.T) {
	k := keysOnce()
	tok := "Bearer " + sign(t, "HS256", k.secret, hdr("HS256", ""), claims("tenant", `"t1"`))
	f := setup(t, flexPolicy(fmt.Sprintf(`signingMethod: hmac
textKey: %q
validateCustomClaim: true
mandatoryCustomClaims:
  - {key: tenant, value: "#[vars.claimSet.tenant == (attributes.headers['x-tenant'] default attributes.queryParams.tenant)]"}`, k.secret)))
	for _, c := range []struct {
		uri     string
		headers []string
		want    string // the rejection's reason; "": passes
	}{
		{"/orders/1", []string{"X-Tenant", "t1"}, ""},
		{"/orders/1", []string{"X_Tenant", "t1"}, ""},
		{"/orders/1?TENANT=t1", nil, ""},
		{"/orders/1", []string{"X_Tenant", "t2"}, "invalid_token"},
		{"/orders/1", []string{"X-Tenant", "t1", "X_Tenant", "t2"}, "duplicate_credentials"},
		{"/orders/1", []string{"X-Tenant", "t1", "X-Tenant", "t2"}, "duplicate_credentials"},
		{"/orders/1?x_tenant=t2", []string{"X-Tenant", "t1"}, "duplicate_credentials"},
		{"/orders/1?tenant=t1&tenant=t2", nil, "duplicate_credentials"},
		{"/orders/1?tenant=t1&Tenant.=t2", nil, ""},
		{"/orders/1?tenant=t1&TENANT=t2", nil, "duplicate_credentials"},
		// The header and the query are read in turn: the header checked,
		// an upstream that reads the query would serve t2.
		{"/orders/1?tenant=t2", []string{"X-Tenant", "t1"}, "duplicate_credentials"},
		{"/orders/1?TENANT=t2", []string{"X_Tenant", "t1"}, "duplicate_credentials"},
		// Rack 2 and Python before 3.9.2 split the query at ';' too.
		{"/orders/1?tenant=t1&x=1;tenant=t2", nil, "duplicate_credentials"},
		{"/orders/1?x=1;tenant=t2", []string{"X-Tenant", "t1"}, "duplicate_credentials"},
		{"/orders/1?x;x_tenant=t2", []string{"X-Tenant", "t1"}, "duplicate_credentials"},
		{"/orders/1?tenant=t1&q=a;b&ids=1;2;3", nil, ""},
	} {
		r := f.doURI(c.uri, append([]string{"Authorization", tok}, c.headers...)...)
		switch {
		case c.want == "" && r.rej != nil:
			t.Errorf("%s %q: %v", c.uri, c.headers, r.rej)
		case c.want != "" && (r.rej == nil || r.rej.Reason != c.want):
			t.Errorf("%s %q: %v, want %s", c.uri, c.headers, r.rej, c.want)
		}
	}
}

func TestValidateOnlyDoesNotFetch(t *testing.T) {
	p := newIdP(t, nil)
	_, _, err := chaintest.CompileWith(t, chaintest.Gateway(jwksPolicy(p.url(), "")), chaintest.Options{ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.calls.Load() != 0 {
		t.Error("validation fetched the JWK set")
	}
}

// TestWithoutSecretsPlaceholder: `flexgate validate --without-secrets`
// reads an unset variable as placeholder-NAME; a key written as that
// variable is then not checked.
func TestWithoutSecretsPlaceholder(t *testing.T) {
	t.Setenv("JWT_TEST_SECRET", "placeholder-JWT_TEST_SECRET")
	t.Setenv("JWT_TEST_PEM", "placeholder-JWT_TEST_PEM")
	_, _, err := chaintest.CompileWith(t, chaintest.Gateway(policy("keys: [{secret: $env.JWT_TEST_SECRET}, {pem: $env.JWT_TEST_PEM}]")), chaintest.Options{ValidateOnly: true})
	if err != nil {
		t.Errorf("placeholders: %v", err)
	}
	t.Setenv("JWT_TEST_SECRET", "short")
	_, _, err = chaintest.CompileWith(t, chaintest.Gateway(policy("keys: [{secret: $env.JWT_TEST_SECRET}]")), chaintest.Options{ValidateOnly: true})
	if err == nil || !strings.Contains(err.Error(), "5 bytes") || strings.Contains(err.Error(), "short") {
		t.Errorf("a short secret from the environment: %v", err)
	}
}

// TestSecretsRedacted: the admin /config view hides HMAC secrets, in
// flexgate's keys and in Flex's textKey.
func TestSecretsRedacted(t *testing.T) {
	k := keysOnce()
	cfg, _ := chaintest.Load(t, chaintest.Gateway(policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret))+
		flexPolicy(fmt.Sprintf("signingMethod: hmac\ntextKey: %q", k.secret))))
	b, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), string(k.secret)) || strings.Count(string(b), `"[redacted]"`) < 2 {
		t.Errorf("the view shows a secret: %s", b)
	}
}
