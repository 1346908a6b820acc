package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/chain"
	"github.com/flexgate/flexgate/chain/chaintest"
)

// testKeys are generated once per test binary: RSA keys take a while.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec256     *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ec521     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	secret    []byte // 64 bytes: every HS algorithm
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{secret: []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.ec521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sign makes a compact JWS of the header and claims JSON as written, so
// that tests can send what no well-behaved library would.
func sign(t testing.TB, alg string, key any, header, claims string) string {
	t.Helper()
	input := enc(header) + "." + enc(claims)
	sig, err := jwsbb.Sign(key, alg, []byte(input), nil)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hdr is a header with alg and, when not empty, kid.
func hdr(alg, kid string) string {
	if kid == "" {
		return fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, alg)
	}
	return fmt.Sprintf(`{"alg":%q,"typ":"JWT","kid":%q}`, alg, kid)
}

// clock is the test's time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start is the test clock's start: claims are written relative to it.
var start = time.Unix(1_700_000_000, 0)

// claims is a JSON object with exp an hour after start and the members
// given (name, raw JSON value pairs).
func claims(kv ...string) string {
	parts := []string{`"sub":"alice"`, fmt.Sprintf(`"exp":%d`, start.Unix()+3600)}
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, fmt.Sprintf("%q:%s", kv[i], kv[i+1]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func pemOf(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// jwkEntry is one key of a test JWK set.
type jwkEntry struct {
	pub      any
	kid, alg string
	extra    map[string]any
}

func jwksOf(t testing.TB, entries ...jwkEntry) []byte {
	t.Helper()
	var keys []json.RawMessage
	for _, e := range entries {
		k, err := jwk.Import(e.pub)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if e.kid != "" {
			m["kid"] = e.kid
		}
		if e.alg != "" {
			m["alg"] = e.alg
		}
		for k, v := range e.extra {
			m[k] = v
		}
		b, _ = json.Marshal(m)
		keys = append(keys, b)
	}
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}

// jwkJSON is one public key as a JWK.
func jwkJSON(t testing.TB, pub any) string {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// idp serves a JWK set and counts its calls; it can answer an error
// status instead, or hold calls.
type idp struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	body  []byte
	code  int
	hold  chan struct{}
}

func newIdP(t testing.TB, body []byte) *idp {
	p := &idp{body: body}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		p.mu.Lock()
		body, code, hold := p.body, p.code, p.hold
		p.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if code != 0 {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(body []byte, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body, p.code = body, code
}

func (p *idp) url() string { return p.srv.URL + "/.well-known/jwks.json" }

type fixture struct {
	t     testing.TB
	c     *chain.Chain
	v     *Validator
	set   *metrics.Set
	clock *clock
}

// setup provisions the policy of the YAML line (e.g. "- jwt-validation:
// {...}") on a route /orders/*, with the test clock.
func setup(t testing.TB, policy string) *fixture {
	t.Helper()
	f, err := trySetup(t, policy)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func trySetup(t testing.TB, policy string) (*fixture, error) {
	t.Helper()
	clk := &clock{t: start}
	old := timeNow
	timeNow = clk.now
	defer func() { timeNow = old }()
	set := metrics.NewSet()
	c, _, err := chaintest.CompileRoute(t, chaintest.Doc{RouteID: "orders", Path: "/orders/*", Policies: policy},
		chaintest.Options{Metrics: set, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	f := &fixture{t: t, c: c, set: set, clock: clk}
	switch p := c.Policies[0].Policy.(type) {
	case *Validator:
		f.v = p
	case *FlexValidator:
		f.v = &p.Validator
	}
	return f, nil
}

// waitKeys waits for the first fetch of the JWK sets.
func (f *fixture) waitKeys() { f.v.rt.keys.refresh() }

func (f *fixture) counter(name string) uint64 { return f.set.GetOrCreateCounter(name).Get() }

func (f *fixture) result(r string) uint64 {
	return f.counter(`flexgate_jwt_verifications_total{route="orders",result="` + r + `"}`)
}

type result struct {
	rej       *chain.Rejection
	challenge string
	ex        *chain.Exchange
}

func (r result) value(name string) string { return string(r.ex.Value(chain.MustValue(name))) }

// do sends a request with Authorization: Bearer tok ("" sends none).
func (f *fixture) do(tok string) result {
	if tok == "" {
		return f.doHeaders()
	}
	return f.doHeaders("Authorization", "Bearer "+tok)
}

func (f *fixture) doHeaders(headers ...string) result {
	return f.doURI("/orders/1", headers...)
}

func (f *fixture) doURI(uri string, headers ...string) result {
	ctx := chaintest.Ctx(uri, headers...)
	ex := chain.AcquireExchange()
	f.t.(interface{ Cleanup(func()) }).Cleanup(func() { chain.ReleaseExchange(ex) })
	ex.Prepare(f.c)
	rej := f.c.RunRequest(ctx, ex)
	return result{rej: rej, challenge: string(ctx.Response.Header.Peek("WWW-Authenticate")), ex: ex}
}

// wantOK fails unless the token passed.
func (f *fixture) wantOK(name, tok string) result {
	f.t.Helper()
	r := f.do(tok)
	if r.rej != nil {
		f.t.Errorf("%s: refused: %v", name, r.rej)
	}
	return r
}

// wantRefused fails unless the token is refused with status and reason.
func (f *fixture) wantRefused(name, tok string, status int, reason string) result {
	f.t.Helper()
	r := f.do(tok)
	switch {
	case r.rej == nil:
		f.t.Errorf("%s: passed, want %d %s", name, status, reason)
	case r.rej.Status != status || r.rej.Reason != reason:
		f.t.Errorf("%s: %d %s (%s), want %d %s", name, r.rej.Status, r.rej.Reason, r.rej.Message, status, reason)
	}
	return r
}

var _ = fasthttp.StatusOK
