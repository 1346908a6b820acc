package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexgate/flexgate/examples"
)

// The tests below serve the files of examples/flex as their opening
// comments say, through the binary, with the example's ports and upstream
// addresses rewritten to ones the test holds (rewrite pairs).

// startExample writes the example with its addresses rewritten into a
// directory and runs the gateway on it.
func startExample(t *testing.T, name string, env []string, rewrite ...string) *gateway {
	t.Helper()
	text, err := os.ReadFile(examples.Path(t, "flex/"+name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(text)
	for i := 0; i+1 < len(rewrite); i += 2 {
		if !strings.Contains(s, rewrite[i]) {
			t.Fatalf("%s does not contain %q", name, rewrite[i])
		}
		s = strings.ReplaceAll(s, rewrite[i], rewrite[i+1])
	}
	dir := t.TempDir()
	writeIn(t, filepath.Join(dir, name), s)
	return startGateway(t, env, "--config", dir)
}

// holds stops the test when ok is false, naming what the gateway failed
// to do.
func holds(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Fatalf("the gateway does not apply %s", what)
	}
}

func echoOf(t *testing.T, resp *http.Response, body []byte) echoed {
	t.Helper()
	var e echoed
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	return e
}

// TestFlexExampleInline serves 01-inline-api.yaml.
func TestFlexExampleInline(t *testing.T) {
	up := startHeaderEcho(t)
	// A longer window than the example's 6 s, whose refill (a token every
	// 2 s) a slow machine could see during the test.
	g := startExample(t, "01-inline-api.yaml", nil, "0.0.0.0:8081", "127.0.0.1:0", "127.0.0.1:9001", up,
		"timePeriodInMilliseconds: 6000", "timePeriodInMilliseconds: 600000")
	base := g.url("flex-0")
	resp, body := call(t, "GET", base+"/api/users/7")
	if resp.StatusCode == 200 && resp.Header.Get("X-Served-By") != "flexgate" {
		t.Errorf("x-served-by: %v", resp.Header)
	}
	holds(t, resp.StatusCode == 200 && echoOf(t, resp, body).Path == "/v1/apps/users/7", "the router's Flex rules (capture groups form the upstream path)")
	if resp, body := call(t, "GET", base+"/api/comments/3"); echoOf(t, resp, body).Path != "/v1/apps/comments/3" {
		t.Errorf("comments: %s", body)
	}
	if resp, _ := call(t, "GET", base+"/api/other"); resp.StatusCode != 404 || resp.Header.Get("X-Flexgate-Error") != "no_route" {
		t.Errorf("/api/other: %d", resp.StatusCode)
	}
	// The 404 ran no policy: two GETs have used the method's budget of
	// three; the third passes and the fourth is refused.
	if resp, _ := call(t, "GET", base+"/api/users/8"); resp.StatusCode != 200 {
		t.Errorf("3rd counted GET: %d", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", base+"/api/users/8"); resp.StatusCode != 429 {
		t.Errorf("4th counted GET: %d", resp.StatusCode)
	}
	resp, body = call(t, "POST", base+"/api/users/8")
	holds(t, resp.StatusCode == 200, "the #[...] expressions (keySelector #[attributes.method])")
	if e := echoOf(t, resp, body); e.Headers["x-request-path"] != "/api/users/8" {
		t.Errorf("x-request-path = %q", e.Headers["x-request-path"])
	}
}

// startIdP starts an introspection endpoint that finds the token "good"
// active.
func startIdP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Header.Get("Authorization") != "Basic Z2F0ZXdheTpzZWNyZXQ=" {
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(`{"active":` + map[bool]string{true: "true", false: "false"}[r.PostForm.Get("token") == "good"] + `,"scope":"orders:write"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestFlexExampleResourceBased serves 02-resource-based.yaml.
func TestFlexExampleResourceBased(t *testing.T) {
	up, idp := startHeaderEcho(t), startIdP(t)
	g := startExample(t, "02-resource-based.yaml", []string{"INTROSPECTION_AUTH=Basic Z2F0ZXdheTpzZWNyZXQ="},
		"0.0.0.0:8082", "127.0.0.1:0", "127.0.0.1:9002", up, "127.0.0.1:9099", idp)
	base := g.url("flex-0")
	resp, body := call(t, "GET", base+"/shop/orders/42", "X-Internal-Trace", "1")
	holds(t, resp.StatusCode == 200 && echoOf(t, resp, body).Path == "/api/v2/42", "the router's base paths and Flex rules")
	e := echoOf(t, resp, body)
	if e.Headers["x-internal-trace"] != "" || resp.Header.Get("Server") == "upstream-server" {
		t.Errorf("header-removal-flex: upstream saw %v; response %v", e.Headers, resp.Header)
	}
	resp, _ = call(t, "POST", base+"/shop/orders/42")
	holds(t, resp.StatusCode == 401, "policy rules (PolicySpec.When)")
	if resp, _ := call(t, "POST", base+"/shop/orders/42", "Authorization", "Bearer good"); resp.StatusCode != 200 {
		t.Errorf("POST with a token: %d", resp.StatusCode)
	}
}

// TestFlexExampleRouteWeighted serves 03-route-weighted.yaml.
func TestFlexExampleRouteWeighted(t *testing.T) {
	up := startHeaderEcho(t)
	g := startExample(t, "03-route-weighted.yaml", nil, "0.0.0.0:8083", "127.0.0.1:0", "127.0.0.1:9003", up, "127.0.0.1:9004", up)
	base := g.url("flex-0")
	resp, _ := call(t, "GET", base+"/x", "Host", "test.com", "X-Test", "true")
	holds(t, resp.StatusCode == 404, "the router's Flex rules (methods, host and headers)")
	if resp, _ := call(t, "POST", base+"/x", "X-Test", "true"); resp.StatusCode != 404 {
		t.Errorf("POST to another host: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/x", nil)
	req.Host = "test.com"
	req.Header.Set("X-Test", "true")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var e echoed
	if r.StatusCode != 200 || json.NewDecoder(r.Body).Decode(&e) != nil || e.Path != "/posts/x" {
		t.Errorf("POST test.com /x: %d %+v", r.StatusCode, e)
	}
}

// TestFlexExampleSelector serves 04-selector-binding.yaml, its two ports
// made one (the instances' base paths tell them apart).
func TestFlexExampleSelector(t *testing.T) {
	up := startHeaderEcho(t)
	g := startExample(t, "04-selector-binding.yaml", nil, "0.0.0.0:8084", "127.0.0.1:0", "0.0.0.0:8085", "127.0.0.1:0", "127.0.0.1:9005", up)
	base := g.url("flex-0")
	resp, body := call(t, "GET", base+"/b/x")
	holds(t, resp.StatusCode == 200 && echoOf(t, resp, body).Path == "/x", "the router's base paths")
	if e := echoOf(t, resp, body); e.Headers["x-api"] != "b" {
		t.Errorf("/b: x-api = %q", e.Headers["x-api"])
	}
	for i, want := range []int{200, 200, 429} {
		if resp, _ := call(t, "GET", base+"/a/x"); resp.StatusCode != want {
			t.Errorf("/a request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp, _ := call(t, "GET", base+"/b/x"); resp.StatusCode != 200 {
		t.Errorf("/b has its own budget: %d", resp.StatusCode)
	}
	for i := 0; i < 3; i++ {
		if resp, _ := call(t, "GET", base+"/c/x"); resp.StatusCode != 200 {
			t.Errorf("/c is not limited: %d", resp.StatusCode)
		}
	}
}

// TestFlexExampleTLS serves 06-tls.yaml.
func TestFlexExampleTLS(t *testing.T) {
	up := startHeaderEcho(t)
	cert, key := testCert(t)
	env := []string{"TLS_CERT_PEM=" + cert, "TLS_KEY_PEM=" + key}
	out, code := runBinary(t, env, "validate", examples.Path(t, "flex/06-tls.yaml"))
	holds(t, code == 0, "serving certificates written inline (Certificate.CertPEM)")
	g := startExample(t, "06-tls.yaml", env, "0.0.0.0:8443", "127.0.0.1:0", "127.0.0.1:9007", up)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test certificate
	resp, err := client.Get(strings.Replace(g.url("flex-0"), "http://", "https://", 1) + "/x")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "" && resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("%d %+v", resp.StatusCode, resp.TLS)
	}
}

// testCert returns a self-signed certificate for localhost and its key, as
// PEM.
func testCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// TestFlexExampleTraffic serves 07-traffic.yaml: the cache answers a
// repeated GET without the upstream, keeps queries apart, and lets a
// client invalidate an entry; spike control's headers are exposed.
func TestFlexExampleTraffic(t *testing.T) {
	var calls atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		_, _ = w.Write([]byte("answer " + strconv.FormatInt(n, 10) + " for " + r.URL.RequestURI()))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	g := startExample(t, "07-traffic.yaml", nil, "0.0.0.0:8087", "127.0.0.1:0", "127.0.0.1:9008", ln.Addr().String())
	base := g.url("flex-0") + "/catalog"
	first, body1 := call(t, "GET", base+"/items?page=1")
	second, body2 := call(t, "GET", base+"/items?page=1")
	if first.StatusCode != 200 || string(body2) != string(body1) || second.Header.Get("Age") == "" || calls.Load() != 1 {
		t.Fatalf("second GET: %d %q (first %q), Age %q, upstream calls %d", second.StatusCode, body2, body1, second.Header.Get("Age"), calls.Load())
	}
	if first.Header.Get("X-Ratelimit-Limit") != "20" {
		t.Errorf("spike control headers: %v", first.Header)
	}
	if _, body := call(t, "GET", base+"/items?page=2"); string(body) == string(body1) || calls.Load() != 2 {
		t.Errorf("?page=2: %q", body)
	}
	if _, body := call(t, "GET", base+"/items?page=1", "Cache-Control-Invalidate", "invalidate"); string(body) == string(body1) || calls.Load() != 3 {
		t.Errorf("invalidated: %q, upstream calls %d", body, calls.Load())
	}
}
