package jwt

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	_ "github.com/flexgate/flexgate/policies/headers"
)

// keysYAML writes every test key as a `keys` list: the RSA, EC and Ed25519
// public keys as PEM, the HMAC secret as secret.
func keysYAML(t *testing.T) string {
	k := keysOnce()
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, pub := range []any{&k.rsa.PublicKey, &k.ec256.PublicKey, &k.ec384.PublicKey, &k.ec521.PublicKey, k.ed.Public()} {
		fmt.Fprintf(&b, "  - pem: |\n%s", indentLines(pemOf(t, pub), "      "))
	}
	fmt.Fprintf(&b, "  - secret: %q\n", k.secret)
	return b.String()
}

func indentLines(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(pre + l + "\n")
	}
	return b.String()
}

// policy renders a jwt-validation entry with params (a YAML block of
// parameters at column 0).
func policy(params string) string {
	return "- jwt-validation:\n" + indentLines(params, "    ")
}

func TestEveryAlgorithmVerifies(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(keysYAML(t)))
	for _, c := range []struct {
		alg string
		key any
	}{
		{"RS256", k.rsa}, {"RS384", k.rsa}, {"RS512", k.rsa},
		{"PS256", k.rsa}, {"PS384", k.rsa}, {"PS512", k.rsa},
		{"ES256", k.ec256}, {"ES384", k.ec384}, {"ES512", k.ec521},
		{"EdDSA", k.ed}, {"Ed25519", k.ed},
		{"HS256", k.secret}, {"HS384", k.secret}, {"HS512", k.secret},
	} {
		tok := sign(t, c.alg, c.key, hdr(c.alg, ""), claims("client_id", `"shop-app"`, "scope", `"a b"`))
		r := f.wantOK(c.alg, tok)
		if r.rej == nil && (r.value("token.sub") != "alice" || r.value("client.id") != "shop-app" || r.value("token.scope") != "a b") {
			t.Errorf("%s: values sub %q client %q scope %q", c.alg, r.value("token.sub"), r.value("client.id"), r.value("token.scope"))
		}
	}
	// An EC key verifies only the algorithm of its curve.
	f.wantRefused("ES384 with a P-256 key", sign(t, "ES256", k.ec256, hdr("ES384", ""), claims()), 401, "invalid_token")
}

func TestAttacks(t *testing.T) {
	k := keysOnce()
	rsaPEM := pemOf(t, &k.rsa.PublicKey)
	f := setup(t, policy(fmt.Sprintf("keys:\n  - pem: |\n%s    kid: rsa1\n  - secret: %q\n    kid: hmac1\nissuer: https://idp.example.com\naudiences: [orders-api]",
		indentLines(rsaPEM, "      "), k.secret)))
	good := claims("iss", `"https://idp.example.com"`, "aud", `["other","orders-api"]`)
	f.wantOK("good RS256", sign(t, "RS256", k.rsa, hdr("RS256", "rsa1"), good))
	f.wantOK("good HS256", sign(t, "HS256", k.secret, hdr("HS256", "hmac1"), good))
	// The header's alg is JSON text: an escape spells the same name.
	f.wantOK("alg RS256 with an escape", sign(t, "RS256", k.rsa, `{"alg":"RS\u0032\u0035\u0036","kid":"rsa1"}`, good))

	unsigned := func(header string) string { return enc(header) + "." + enc(good) + "." }
	der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	exp := func(d time.Duration) string {
		return fmt.Sprintf(`{"iss":"https://idp.example.com","aud":"orders-api","exp":%d}`, start.Add(d).Unix())
	}
	nbf := func(d time.Duration) string {
		return fmt.Sprintf(`{"iss":"https://idp.example.com","aud":"orders-api","exp":%d,"nbf":%d}`, start.Unix()+3600, start.Add(d).Unix())
	}
	rs := func(header, claims string) string { return sign(t, "RS256", k.rsa, header, claims) }
	good1 := rs(hdr("RS256", "rsa1"), good)
	parts := strings.Split(good1, ".")
	for _, c := range []struct{ name, tok, result string }{
		{"alg none, no signature", unsigned(`{"alg":"none","kid":"rsa1"}`), "malformed"},
		{"alg NONE", unsigned(`{"alg":"NONE"}`) + "x", "algorithm"},
		{"alg none with a signature", enc(`{"alg":"none"}`) + "." + enc(good) + "." + parts[2], "algorithm"},
		{"no alg", rs(`{"kid":"rsa1"}`, good), "algorithm"},
		{"alg none escaped", unsigned(`{"alg":"\u006eone"}`) + "x", "algorithm"},
		{"alg HS256 escaped, RSA public key as secret", sign(t, "HS256", []byte(rsaPEM), `{"alg":"H\u0053256","kid":"rsa1"}`, good), "algorithm"},
		// The RSA public key used as an HMAC secret: the classic
		// confusion; the key's type fixes RS/PS.
		{"HS256 signed with the RSA public key (PEM)", sign(t, "HS256", []byte(rsaPEM), hdr("HS256", "rsa1"), good), "algorithm"},
		{"HS256 signed with the RSA public key (DER)", sign(t, "HS256", der, hdr("HS256", "rsa1"), good), "algorithm"},
		{"HS256 with the RSA key, no kid", sign(t, "HS256", []byte(rsaPEM), hdr("HS256", ""), good), "signature"},
		{"RS256 claiming the HMAC kid", rs(hdr("RS256", "hmac1"), good), "algorithm"},
		{"another RSA key", sign(t, "RS256", k.rsa2, hdr("RS256", "rsa1"), good), "signature"},
		{"key in a jwk header", sign(t, "RS256", k.rsa2, fmt.Sprintf(`{"alg":"RS256","jwk":%s}`, jwkJSON(t, &k.rsa2.PublicKey)), good), "signature"},
		{"jku to the attacker", sign(t, "RS256", k.rsa2, `{"alg":"RS256","jku":"http://127.0.0.1:1/jwks"}`, good), "signature"},
		{"payload tampered", parts[0] + "." + enc(strings.Replace(good, "alice", "admin", 1)) + "." + parts[2], "signature"},
		{"signature tampered", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA", "signature"},
		{"expired", rs(hdr("RS256", "rsa1"), exp(-2*time.Minute)), "expired"},
		{"not yet valid", rs(hdr("RS256", "rsa1"), nbf(2*time.Minute)), "not_yet_valid"},
		{"exp not a number", rs(hdr("RS256", "rsa1"), `{"iss":"https://idp.example.com","aud":"orders-api","exp":"tomorrow"}`), "malformed"},
		{"no exp", rs(hdr("RS256", "rsa1"), `{"iss":"https://idp.example.com","aud":"orders-api"}`), "missing_exp"},
		{"wrong audience", rs(hdr("RS256", "rsa1"), claims("iss", `"https://idp.example.com"`, "aud", `"billing-api"`)), "audience"},
		{"no audience", rs(hdr("RS256", "rsa1"), claims("iss", `"https://idp.example.com"`)), "audience"},
		{"wrong issuer", rs(hdr("RS256", "rsa1"), claims("iss", `"https://evil.example.com"`, "aud", `"orders-api"`)), "issuer"},
		{"issuer a prefix", rs(hdr("RS256", "rsa1"), claims("iss", `"https://idp.example.com.evil"`, "aud", `"orders-api"`)), "issuer"},
		{"no issuer", rs(hdr("RS256", "rsa1"), claims("aud", `"orders-api"`)), "issuer"},
		{"crit header", rs(`{"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1}`, good), "malformed"},
		{"b64 false", rs(`{"alg":"RS256","kid":"rsa1","b64":false,"crit":["b64"]}`, good), "malformed"},
		{"nested token", rs(`{"alg":"RS256","kid":"rsa1","cty":"JWT"}`, good), "malformed"},
		{"logout token", rs(`{"alg":"RS256","kid":"rsa1","typ":"logout+jwt"}`, good), "malformed"},
		{"duplicate claim", rs(hdr("RS256", "rsa1"), `{"sub":"alice","sub":"admin","iss":"https://idp.example.com","aud":"orders-api","exp":1700003600}`), "malformed"},
		{"duplicate claim, escaped", rs(hdr("RS256", "rsa1"), `{"sub":"alice","s\u0075b":"admin","iss":"https://idp.example.com","aud":"orders-api","exp":1700003600}`), "malformed"},
		{"duplicate header member", rs(`{"alg":"RS256","alg":"HS256","kid":"rsa1"}`, good), "malformed"},
		{"claims not an object", rs(hdr("RS256", "rsa1"), `["alice"]`), "malformed"},
		{"claims invalid UTF-8", rs(hdr("RS256", "rsa1"), "{\"sub\":\"\xff\",\"exp\":1700003600}"), "malformed"},
		{"two parts", parts[0] + "." + parts[1], "malformed"},
		{"four parts", good1 + ".x", "malformed"},
		{"JWE (five parts)", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "malformed"},
		{"empty payload", parts[0] + ".." + parts[2], "malformed"},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], "malformed"},
		{"standard base64 alphabet", rs(hdr("RS256", "rsa1"), good)[:0] + base64.StdEncoding.EncodeToString([]byte(hdr("RS256", "rsa1"))) + "." + parts[1] + "." + parts[2], "malformed"},
		{"oversized", parts[0] + "." + strings.Repeat("A", MaxTokenSize) + "." + parts[2], "too_large"},
		{"unknown kid", rs(hdr("RS256", "rsa9"), good), "unknown_key"},
	} {
		before := f.result(c.result)
		r := f.wantRefused(c.name, c.tok, 401, "invalid_token")
		if f.result(c.result) != before+1 {
			t.Errorf("%s: not counted as %s", c.name, c.result)
		}
		if r.challenge != `Bearer realm="flexgate", error="invalid_token"` {
			t.Errorf("%s: WWW-Authenticate %q", c.name, r.challenge)
		}
		if r.value("token.sub") != "" || r.value("client.id") != "" {
			t.Errorf("%s: values were set for a refused token", c.name)
		}
	}
}

func TestLeeway(t *testing.T) {
	k := keysOnce()
	tok := func(exp, nbf time.Duration) string {
		return sign(t, "HS256", k.secret, hdr("HS256", ""), fmt.Sprintf(`{"exp":%d,"nbf":%d}`, start.Add(exp).Unix(), start.Add(nbf).Unix()))
	}
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret)))
	f.wantOK("expired 59s ago, default leeway 60s", tok(-59*time.Second, -time.Hour))
	f.wantRefused("expired 61s ago", tok(-61*time.Second, -time.Hour), 401, "invalid_token")
	f.wantOK("valid in 59s", tok(time.Hour, 59*time.Second))
	f.wantRefused("valid in 61s", tok(time.Hour, 61*time.Second), 401, "invalid_token")

	f = setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nleeway: 0s", k.secret)))
	f.wantRefused("expired 1s ago, no leeway", tok(-time.Second, -time.Hour), 401, "invalid_token")
	f = setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nleeway: 5m", k.secret)))
	f.wantOK("expired 4m ago, leeway 5m", tok(-4*time.Minute, -time.Hour))
}

func TestMissingToken(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret)))
	for _, c := range []struct {
		name    string
		headers []string
		status  int
		reason  string
	}{
		{"no header", nil, 400, "missing_token"},
		{"Basic", []string{"Authorization", "Basic YTpi"}, 400, "missing_token"},
		{"Bearer without token", []string{"Authorization", "Bearer"}, 401, "invalid_token"},
		{"Bearer with a space in the token", []string{"Authorization", "Bearer a b"}, 401, "invalid_token"},
		{"two Authorization headers", []string{"Authorization", "Bearer a.b.c", "Authorization", "Bearer d.e.f"}, 400, "duplicate_credentials"},
	} {
		r := f.doHeaders(c.headers...)
		if r.rej == nil || r.rej.Status != c.status || r.rej.Reason != c.reason {
			t.Errorf("%s: %v, want %d %s", c.name, r.rej, c.status, c.reason)
		}
	}
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims())
	// PHP reads access.token and access[token as access_token too, ASP.NET
	// ACCESS_TOKEN, Rack 2 a parameter after a ';'.
	for _, uri := range []string{"/orders/1?access_token=x", "/orders/1?access.token=x", "/orders/1?access[token=x", "/orders/1?ACCESS_TOKEN=x",
		"/orders/1?a=1;access_token=x", "/orders/1?a;access_token=x"} {
		if r := f.doURI(uri, "Authorization", "Bearer "+tok); r.rej == nil || r.rej.Reason != "duplicate_credentials" {
			t.Errorf("%s: token in the query too: %v", uri, r.rej)
		}
	}
	if r := f.do(""); r.challenge != `Bearer realm="flexgate"` {
		t.Errorf("challenge without a token: %q", r.challenge)
	}
}

func TestClaimsReachLaterPolicies(t *testing.T) {
	k := keysOnce()
	f := setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]", k.secret))+`- request-headers-set:
    headers:
      X-Sub: $token.sub
      X-Client: $client.id
      X-Tier: $token.claims.tier
      X-Country: $token.claims.address.country
      X-Role: ${token.claims.roles[1]}
      X-Flex-Tier: "#[vars.claimSet.tier]"
      X-Flex-Country: "#[authentication.properties.claims.address.country]"
      X-Flex-Role: "#[authentication.properties.claims['roles'][1]]"
      X-Flex-Sub: "#[authentication.principal]"
      X-Flex-Client: "#[authentication.clientId]"
`)
	tok := sign(t, "HS256", k.secret, hdr("HS256", ""), claims("azp", `"web-app"`, "tier", `"gold"`, "address", `{"country":"NZ"}`, "roles", `["a","admin"]`))
	ctx := chainCtx("Bearer " + tok)
	ex := chain.AcquireExchange()
	defer chain.ReleaseExchange(ex)
	ex.Prepare(f.c)
	if rej := f.c.RunRequest(ctx, ex); rej != nil {
		t.Fatal(rej)
	}
	for h, want := range map[string]string{"X-Sub": "alice", "X-Client": "web-app", "X-Tier": "gold", "X-Country": "NZ", "X-Role": "admin",
		"X-Flex-Tier": "gold", "X-Flex-Country": "NZ", "X-Flex-Role": "admin", "X-Flex-Sub": "alice", "X-Flex-Client": "web-app"} {
		if got := string(ctx.Request.Header.Peek(h)); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// client_id wins over azp.
	tok = sign(t, "HS256", k.secret, hdr("HS256", ""), claims("azp", `"web-app"`, "client_id", `"shop-app"`))
	if r := f.wantOK("client_id and azp", tok); r.value("client.id") != "shop-app" || r.value("token.client_id") != "shop-app" {
		t.Errorf("client.id %q", r.value("client.id"))
	}
	f = setup(t, policy(fmt.Sprintf("keys: [{secret: %q}]\nclientIdClaim: cid", k.secret)))
	if r := f.wantOK("clientIdClaim", sign(t, "HS256", k.secret, hdr("HS256", ""), claims("cid", `"c-1"`, "client_id", `"x"`))); r.value("client.id") != "c-1" {
		t.Errorf("clientIdClaim: client.id %q", r.value("client.id"))
	}
}

func chainCtx(authorization string) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI("/orders/1")
	ctx.Request.Header.Set("Authorization", authorization)
	return ctx
}
