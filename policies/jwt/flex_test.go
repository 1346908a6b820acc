package jwt

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

func flexPolicy(params string) string {
	return "- jwt-validation-flex:\n" + indentLines(params, "    ")
}

// TestFlexDocumentedExample is the working local-mode example Flex
// Gateway's users run (hmac, 32-character textKey, exp mandatory), with
// Flex's answers.
func TestFlexDocumentedExample(t *testing.T) {
	f := setup(t, flexPolicy(`signingMethod: hmac
signingKeyLength: 256
jwtKeyOrigin: text
textKey: "12345678901234567890123456789012"
jwtOrigin: httpBearerAuthenticationHeader
validateAudClaim: false
mandatoryExpClaim: true
skipClientIdValidation: true`))
	secret := []byte("12345678901234567890123456789012")
	r := f.wantOK("HS256", sign(t, "HS256", secret, hdr("HS256", ""), claims("client_id", `"c1"`)))
	if r.value("client.id") != "c1" || r.value("token.sub") != "alice" {
		t.Errorf("values: client %q sub %q", r.value("client.id"), r.value("token.sub"))
	}
	r = f.wantRefused("no token", "", 400, "missing_token")
	if r.rej != nil && r.rej.Message != FlexTokenRequired {
		t.Errorf("400 message %q, want Flex's %q", r.rej.Message, FlexTokenRequired)
	}
	for name, tok := range map[string]string{
		"no exp":    sign(t, "HS256", secret, hdr("HS256", ""), `{"sub":"a"}`),
		"HS384":     sign(t, "HS384", []byte(strings.Repeat("x", 48)), hdr("HS384", ""), claims()),
		"bad sig":   sign(t, "HS256", []byte(strings.Repeat("y", 32)), hdr("HS256", ""), claims()),
		"malformed": "abc",
	} {
		r := f.wantRefused(name, tok, 401, "invalid_token")
		if r.rej != nil && r.rej.Message != FlexInvalidToken {
			t.Errorf("%s: message %q, want Flex's %q", name, r.rej.Message, FlexInvalidToken)
		}
	}
}

func TestFlexSigningMethods(t *testing.T) {
	k := keysOnce()
	body := func(pub any) string {
		p := pemOf(t, pub)
		p = strings.TrimPrefix(p, "-----BEGIN PUBLIC KEY-----\n")
		p = strings.TrimSuffix(p, "-----END PUBLIC KEY-----\n")
		return strings.ReplaceAll(p, "\n", "")
	}
	// rsa, the default, with the PEM body alone as Flex's textKey takes it.
	f := setup(t, flexPolicy(fmt.Sprintf("textKey: %q", body(&k.rsa.PublicKey))))
	f.wantOK("RS256", sign(t, "RS256", k.rsa, hdr("RS256", ""), claims()))
	f.wantOK("PS256", sign(t, "PS256", k.rsa, hdr("PS256", ""), claims()))
	f.wantRefused("RS384 with length 256", sign(t, "RS384", k.rsa, hdr("RS384", ""), claims()), 401, "invalid_token")
	f.wantRefused("HS256 with the RSA key", sign(t, "HS256", []byte(body(&k.rsa.PublicKey)), hdr("HS256", ""), claims()), 401, "invalid_token")

	f = setup(t, flexPolicy(fmt.Sprintf("signingMethod: rsa\nsigningKeyLength: 512\ntextKey: |\n%s", indentLines(pemOf(t, &k.rsa.PublicKey), "  "))))
	f.wantOK("RS512 with a full PEM", sign(t, "RS512", k.rsa, hdr("RS512", ""), claims()))

	f = setup(t, flexPolicy(fmt.Sprintf("signingMethod: es\nsigningKeyLength: 384\ntextKey: %q", body(&k.ec384.PublicKey))))
	f.wantOK("ES384", sign(t, "ES384", k.ec384, hdr("ES384", ""), claims()))
	f.wantRefused("ES256", sign(t, "ES256", k.ec256, hdr("ES256", ""), claims()), 401, "invalid_token")

	f = setup(t, flexPolicy(fmt.Sprintf("signingMethod: hmac\nsigningKeyLength: 512\ntextKey: %q", k.secret)))
	f.wantOK("HS512", sign(t, "HS512", k.secret, hdr("HS512", ""), claims()))
	f.wantRefused("HS256", sign(t, "HS256", k.secret, hdr("HS256", ""), claims()), 401, "invalid_token")
}

func TestFlexJWKS(t *testing.T) {
	k := keysOnce()
	a := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa.PublicKey, kid: "a"}))
	b := newIdP(t, jwksOf(t, jwkEntry{pub: &k.rsa2.PublicKey, kid: "b"}))
	f := setup(t, flexPolicy(fmt.Sprintf(`jwtKeyOrigin: jwks
jwksUrl: "%s, %s"
jwksServiceTimeToLive: 30
jwksServiceConnectionTimeout: 2000`, a.url(), b.url())))
	f.waitKeys()
	f.wantOK("first set", sign(t, "RS256", k.rsa, hdr("RS256", "a"), claims()))
	f.wantOK("second set", sign(t, "RS256", k.rsa2, hdr("RS256", "b"), claims()))
	s := f.v.rt.keys.sources
	if len(s) != 2 || s[0].spec.ttl.Minutes() != 30 || s[1].spec.timeout.Milliseconds() != 2000 {
		t.Errorf("sources %+v", s)
	}
}

func TestFlexOriginsAndClientID(t *testing.T) {
	k := keysOnce()
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims("client_id", `"c1"`, "azp", `"a1"`, "cid", `"x1"`))
	base := fmt.Sprintf("signingMethod: hmac\ntextKey: %q\n", k.secret)
	for _, c := range []struct {
		name, params string
		headers      []string
		uri          string
		client       string
	}{
		{"default expression: header jwt", "jwtOrigin: customExpression", []string{"jwt", tok}, "", "c1"},
		{"header in quotes", `jwtOrigin: customExpression` + "\n" + `jwtExpression: "#[attributes.headers['x-token']]"`, []string{"X-Token", tok}, "", "c1"},
		{"header by dot", `jwtOrigin: customExpression` + "\n" + `jwtExpression: "#[attributes.headers.token]"`, []string{"Token", tok}, "", "c1"},
		{"query", "jwtOrigin: customExpression\njwtExpression: \"#[attributes.queryParams.token]\"", nil, "/orders/1?token=" + tok, "c1"},
		{"clientIdExpression azp", `clientIdExpression: "#[vars.claimSet.azp]"`, []string{"Authorization", "Bearer " + tok}, "", "a1"},
		{"clientIdExpression properties", `clientIdExpression: "#[authentication.properties.claims['cid']]"`, []string{"Authorization", "Bearer " + tok}, "", "x1"},
		{"clientIdExpression $", `clientIdExpression: "${token.claims.cid}-$request.method"`, []string{"Authorization", "Bearer " + tok}, "", "x1-GET"},
		{"clientIdExpression joined", `clientIdExpression: "#[vars.claimSet.azp ++ '/' ++ authentication.properties.claims.cid]"`, []string{"Authorization", "Bearer " + tok}, "", "a1/x1"},
	} {
		f := setup(t, flexPolicy(base+c.params))
		uri := c.uri
		if uri == "" {
			uri = "/orders/1"
		}
		r := f.doURI(uri, c.headers...)
		if r.rej != nil {
			t.Errorf("%s: %v", c.name, r.rej)
			continue
		}
		if got := r.value("client.id"); got != c.client {
			t.Errorf("%s: client.id %q, want %q", c.name, got, c.client)
		}
	}
	// With a custom expression, Authorization is not read.
	f := setup(t, flexPolicy(base+"jwtOrigin: customExpression"))
	if r := f.do(tok); r.rej == nil || r.rej.Status != 400 {
		t.Errorf("customExpression with the token in Authorization: %v", r.rej)
	}
}

func TestFlexClaims(t *testing.T) {
	k := keysOnce()
	base := fmt.Sprintf("signingMethod: hmac\ntextKey: %q\n", k.secret)
	tok := func(c string) string { return sign(t, "HS256", k.secret, hdr("HS256", ""), c) }
	exp := fmt.Sprintf(`"exp":%d`, start.Unix()+60)

	f := setup(t, flexPolicy(base+"validateAudClaim: true\nsupportedAudiences: 'https://a.example.com, https://b.example.com'"))
	f.wantOK("aud b", tok(`{"aud":"https://b.example.com",`+exp+`}`))
	f.wantOK("no aud, not mandatory", tok(`{`+exp+`}`))
	f.wantRefused("aud c", tok(`{"aud":["https://c.example.com"],`+exp+`}`), 401, "invalid_token")
	f = setup(t, flexPolicy(base+"validateAudClaim: true\nmandatoryAudClaim: true\nsupportedAudiences: https://a.example.com"))
	f.wantRefused("no aud, mandatory", tok(`{`+exp+`}`), 401, "invalid_token")

	f = setup(t, flexPolicy(base))
	f.wantOK("no exp: not mandatory by default", tok(`{"sub":"a"}`))
	f.wantRefused("expired", tok(fmt.Sprintf(`{"exp":%d}`, start.Unix()-3600)), 401, "invalid_token")
	f.wantRefused("not yet", tok(fmt.Sprintf(`{"nbf":%d}`, start.Unix()+3600)), 401, "invalid_token")
	f = setup(t, flexPolicy(base+"mandatoryNbfClaim: true"))
	f.wantRefused("no nbf", tok(`{`+exp+`}`), 401, "invalid_token")

	f = setup(t, flexPolicy(base+`validateCustomClaim: true
mandatoryCustomClaims:
  - {key: tier, value: gold}
  - {key: admin, value: "true"}
nonMandatoryCustomClaims:
  - {key: region, value: eu}
  - {key: groups, value: ops}`))
	f.wantOK("mandatory present", tok(`{"tier":"gold","admin":true,`+exp+`}`))
	f.wantOK("non-mandatory right", tok(`{"tier":"gold","admin":true,"region":"eu","groups":["dev","ops"],`+exp+`}`))
	f.wantRefused("non-mandatory wrong", tok(`{"tier":"gold","admin":true,"region":"us",`+exp+`}`), 401, "invalid_token")
	f.wantRefused("array without the value", tok(`{"tier":"gold","admin":true,"groups":["dev"],`+exp+`}`), 401, "invalid_token")
	f.wantRefused("mandatory missing", tok(`{"tier":"gold",`+exp+`}`), 401, "invalid_token")
	f.wantRefused("mandatory wrong", tok(`{"tier":"silver","admin":true,`+exp+`}`), 401, "invalid_token")

	// Expressions: decided on every request, the cached token too.
	f = setup(t, flexPolicy(base+`validateCustomClaim: true
mandatoryCustomClaims:
  - {key: scope, value: "#[vars.claimSet.scope contains 'read']"}
nonMandatoryCustomClaims:
  - {key: tenant, value: "#[vars.claimSet.tenant == attributes.headers['x-tenant']]"}`))
	withTenant := tok(`{"scope":"read write","tenant":"t1",` + exp + `}`)
	if r := f.doHeaders("Authorization", "Bearer "+withTenant, "X-Tenant", "t1"); r.rej != nil {
		t.Errorf("tenant t1 for t1: %v", r.rej)
	}
	r := f.doHeaders("Authorization", "Bearer "+withTenant, "X-Tenant", "t2")
	if r.rej == nil || r.rej.Status != 401 || r.value("token.sub") != "" || r.value("token.claims") != "" {
		t.Errorf("cached token of tenant t1 for t2: %v, values left %q", r.rej, r.value("token.claims"))
	}
	f.wantOK("no tenant", tok(`{"scope":"read",`+exp+`}`))
	f.wantRefused("scope without read", tok(`{"scope":"write",`+exp+`}`), 401, "invalid_token")
	f.wantRefused("no scope", tok(`{`+exp+`}`), 401, "invalid_token")

	// The documented form {key: scope, value: "#[vars.claimSet.scope]"}:
	// the claim's own value, which passes when there is one.
	f = setup(t, flexPolicy(base+`validateCustomClaim: true
mandatoryCustomClaims:
  - {key: scope, value: "#[vars.claimSet.scope]"}
nonMandatoryCustomClaims:
  - {key: tier, value: "#[authentication.properties.claims['tier']]"}`))
	f.wantOK("scope present", tok(`{"scope":"read",`+exp+`}`))
	f.wantOK("scope an array, tier present", tok(`{"scope":["read"],"tier":"gold",`+exp+`}`))
	f.wantOK("scope true", tok(`{"scope":true,`+exp+`}`))
	for name, claims := range map[string]string{
		"no scope": `{`, "scope null": `{"scope":null,`, "scope empty": `{"scope":"",`, "scope []": `{"scope":[ ],`,
		"scope {}": `{"scope":{},`, "scope false": `{"scope":false,`, "tier empty": `{"scope":"read","tier":"",`,
	} {
		f.wantRefused(name, tok(claims+exp+`}`), 401, "invalid_token")
	}

	// validateCustomClaim false: as in Flex Gateway, the claims are not
	// checked (and the config says so).
	f = setup(t, flexPolicy(base+"mandatoryCustomClaims: [{key: tier, value: gold}]"))
	f.wantOK("custom claims off", tok(`{"tier":"silver"}`))
}

func TestFlexConfig(t *testing.T) {
	k := keysOnce()
	hm := fmt.Sprintf("signingMethod: hmac\ntextKey: %q\n", k.secret)
	for _, c := range []struct{ name, params, want string }{
		{"none", "signingMethod: none", "signingMethod none accepts unsigned tokens"},
		{"unknown method", "signingMethod: dsa\ntextKey: x", `signingMethod "dsa" is unknown`},
		{"length", hm + "signingKeyLength: 128", "signingKeyLength must be a whole number from 256 to 512 (256, 384 or 512), not 128"},
		{"length between", hm + "signingKeyLength: 300", "signingKeyLength must be 256, 384 or 512, not 300"},
		{"no textKey", "signingMethod: hmac", "textKey is required"},
		{"short hmac", "signingMethod: hmac\ntextKey: abc", "textKey does not fit signingMethod hmac"},
		{"short for 512", fmt.Sprintf("signingMethod: hmac\nsigningKeyLength: 512\ntextKey: %q", k.secret[:32]), "HS256"},
		{"EC key for rsa", fmt.Sprintf("textKey: %q", base64.StdEncoding.EncodeToString([]byte("junk"))), "textKey"},
		{"key origin", "jwtKeyOrigin: customKeyExpression", `jwtKeyOrigin "customKeyExpression" is not supported`},
		{"no jwksUrl", "jwtKeyOrigin: jwks", "jwksUrl is required"},
		{"bad jwksUrl", "jwtKeyOrigin: jwks\njwksUrl: 'https://a/jwks, nope'", `"nope" is not an http(s) URL`},
		{"ttl", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceTimeToLive: 0", "jwksServiceTimeToLive must be a whole number from 1 to 10080 (minutes), not 0"},
		{"timeout", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceConnectionTimeout: 0", "jwksServiceConnectionTimeout must be a whole number from 1 to 60000 (milliseconds), not 0"},
		{"ttl negative", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceTimeToLive: -60", "jwksServiceTimeToLive must be a whole number from 1 to 10080 (minutes), not -60"},
		{"ttl huge", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceTimeToLive: 99999999999999999999", "jwksServiceTimeToLive must be a whole number from 1 to 10080 (minutes), not 99999999999999999999"},
		{"timeout negative", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceConnectionTimeout: -1", "jwksServiceConnectionTimeout must be a whole number from 1 to 60000 (milliseconds), not -1"},
		{"timeout huge", "jwtKeyOrigin: jwks\njwksUrl: https://a/jwks\njwksServiceConnectionTimeout: 99999999999999999999", "jwksServiceConnectionTimeout must be a whole number from 1 to 60000 (milliseconds), not 99999999999999999999"},
		{"boolean as on", hm + "mandatoryExpClaim: on", `mandatoryExpClaim must be true or false, not "on"`},
		{"origin", hm + "jwtOrigin: header", `jwtOrigin "header" is unknown`},
		{"jwtExpression", hm + "jwtOrigin: customExpression\njwtExpression: \"#[payload.token]\"", "jwtExpression: payload (the message body) is not available"},
		{"aud without audiences", hm + "validateAudClaim: true", "supportedAudiences is empty"},
		{"custom claim not a condition", hm + "validateCustomClaim: true\nmandatoryCustomClaims: [{key: a, value: \"#['x']\"}]", "a condition must be true or false"},
		{"custom claim without key", hm + "validateCustomClaim: true\nmandatoryCustomClaims: [{value: x}]", "a claim needs a key"},
		// Forms that would load and refuse tokens they were not meant to:
		// refused at load, saying what to write.
		{"custom claim reads another claim", hm + "validateCustomClaim: true\nmandatoryCustomClaims: [{key: scope, value: \"#[vars.claimSet.scp]\"}]",
			`mandatoryCustomClaims: the value of claim scope, #[vars.claimSet.scp], is claim scp: write key: scp to require that claim, ` +
				`or compare the two, e.g. "#[vars.claimSet.scope == vars.claimSet.scp]"`},
		{"custom claim of unknown type", hm + "validateCustomClaim: true\nnonMandatoryCustomClaims: [{key: roles, value: \"#[vars.claimSet.roles[0]]\"}]",
			`nonMandatoryCustomClaims: the value of claim roles, #[vars.claimSet.roles[0]], is true or false only when what it reads is, ` +
				`and a token is accepted only when it is true: compare it, e.g. "#[vars.claimSet.roles == 'gold']"`},
		{"custom claim with text", hm + "validateCustomClaim: true\nmandatoryCustomClaims: [{key: tier, value: \"#[vars.claimSet.tier default 'x']\"}]",
			`write "#[vars.claimSet.tier]" alone to require the claim to have a value, or text alone for the claim to equal it`},
		{"clientIdExpression", hm + "clientIdExpression: \"#['fixed']\"", "is the same for every token"},
		{"claimsToHeaders", hm + "claimsToHeaders: []", `unknown parameter "claimsToHeaders"`},
	} {
		_, err := trySetup(t, flexPolicy(c.params))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), string(k.secret)) {
			t.Errorf("%s: the error shows the secret", c.name)
		}
	}
}

func TestFlexWarnings(t *testing.T) {
	k := keysOnce()
	cfg, _ := chaintest.Load(t, chaintest.Gateway(flexPolicy(fmt.Sprintf(`signingMethod: hmac
textKey: %q
jwksUrl: https://idp/jwks
skipClientIdValidation: false
supportedAudiences: a
jwtExpression: "#[attributes.headers['x']]"
mandatoryCustomClaims: [{key: tier, value: gold}]`, k.secret))))
	if _, err := chain.CompileAll(cfg, nil, chain.Options{}); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range cfg.Warnings {
		all = append(all, w.Message)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"jwksUrl is used only with jwtKeyOrigin: jwks", "skipClientIdValidation: true",
		"supportedAudiences is checked only with validateAudClaim", "jwtExpression is used only with jwtOrigin: customExpression",
		"custom claims are checked only with validateCustomClaim: true"} {
		if !strings.Contains(text, want) {
			t.Errorf("no warning containing %q in:\n%s", want, text)
		}
	}
}
