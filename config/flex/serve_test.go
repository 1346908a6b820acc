package flex_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy/proxytest"
)

// The tests below serve Flex resources through a real gateway, with real
// upstream servers on 127.0.0.1.

// serveFlex writes the files (name, content pairs) into a directory, loads
// it as `flexgate run --config DIR` does and serves it; it returns the base
// URL of the instances' port, 8081 as written, and the gateway. proxytest
// serves every listener on a port the kernel picks, whatever the config
// says.
func serveFlex(t *testing.T, pairs ...string) (string, *proxytest.Gateway) {
	t.Helper()
	dir := writeDir(t, pairs...)
	cfg, err := config.Load([]string{dir})
	if err != nil {
		t.Fatalf("load:\n%s", strip(err.Error(), dir))
	}
	gw := proxytest.StartConfig(t, cfg, dir)
	return gw.URLs["flex-8081"], gw
}

// named starts an upstream that answers with its name and the path it was
// sent.
func named(t *testing.T, name string) *proxytest.Upstream {
	up := proxytest.StartUpstream(t)
	up.Record = false
	up.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(name + " " + string(ctx.Path())) }
	return up
}

func get(t *testing.T, url string) (status int, reason, body string) {
	t.Helper()
	resp := proxytest.Do(t, "GET", url, nil, nil)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode(), string(resp.Header.Peek("X-Flexgate-Error")), string(resp.Body())
}

// metric sums the series of the gateway's /metrics that start with prefix.
func metric(t *testing.T, gw *proxytest.Gateway, prefix string) float64 {
	t.Helper()
	_, _, body := get(t, gw.AdminURL+"/metrics")
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += f
		}
	}
	return sum
}

// TestServeRouteWeighted: route-weighted, written as Flex writes it, sends
// each destination its share of the requests (weight ÷ the sum of the
// weights, within 3 points over 6,000 requests), each under its
// destinationPath.
func TestServeRouteWeighted(t *testing.T) {
	a, b, c := named(t, "a"), named(t, "b"), named(t, "c")
	base, _ := serveFlex(t,
		"api.yaml", doc("ApiInstance", "shop")+"  address: http://127.0.0.1:8081\n",
		"services.yaml", service("a", a.URL)+"---\n"+service("b", b.URL+"/base")+"---\n"+service("c", c.URL),
		"split.yaml", doc("PolicyBinding", "split")+`  targetRef: {name: shop}
  policyRef: {name: route-weighted}
  config:
    routes:
      - {weight: 50, destinationPath: /v1/, destinationRef: {name: a}}
      - {weight: 30, destinationPath: /v2, destinationRef: {name: b}}
      - {weight: 20, destinationRef: {name: c}}
`)
	want := map[string]float64{"a /v1/x": 0.5, "b /base/v2/x": 0.3, "c /x": 0.2}
	const n, clients = 6000, 4
	var mu sync.Mutex
	counts := map[string]int{}
	var left atomic.Int64
	left.Store(n)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := proxytest.Client()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for left.Add(-1) >= 0 {
				req.SetRequestURI(base + "/x")
				got := ""
				if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
					got = "error " + err.Error()
				} else if resp.StatusCode() != 200 {
					got = "status " + strconv.Itoa(resp.StatusCode())
				} else {
					got = string(resp.Body())
				}
				mu.Lock()
				counts[got]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for answer, count := range counts {
		share, ok := want[answer]
		got := float64(count) / n
		if !ok {
			t.Errorf("%d answers %q", count, answer)
			continue
		}
		if got < share-0.03 || got > share+0.03 {
			t.Errorf("%q: %.3f of the requests, want %.2f ± 0.03", answer, got, share)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("answers: %v", counts)
	}
}

// TestServeServiceBreakerIsShared: circuit-breaker-flex bound to a Service
// limits every route to it together, as in Flex Gateway, where limits are
// shared by all the ApiInstances using a Service: with one request in
// flight through one instance, maxRequests: 1 answers another instance's
// request 503 upstream_overloaded at once, whatever their destinationPath.
// The Service names the upstream in metrics.
func TestServeServiceBreakerIsShared(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	release := make(chan struct{})
	var inside atomic.Int64
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if strings.Contains(string(ctx.Path()), "/hold") {
			inside.Add(1)
			<-release
		}
		ctx.SetBodyString(string(ctx.Path()))
	}
	route := func(name, instance, path string) string {
		return doc("PolicyBinding", name) + "  targetRef: {name: " + instance + "}\n  policyRef: {name: route}\n" +
			"  config: {destinationPath: " + path + ", destinationRef: {name: orders}}\n"
	}
	base, gw := serveFlex(t,
		"api.yaml", doc("ApiInstance", "one")+"  address: http://127.0.0.1:8081/one\n---\n"+doc("ApiInstance", "two")+"  address: http://127.0.0.1:8081/two\n",
		"service.yaml", service("orders", up.URL),
		"routes.yaml", route("r1", "one", "/v1")+"---\n"+route("r2", "two", "/v2"),
		"breaker.yaml", doc("PolicyBinding", "cb")+"  targetRef: {kind: Service, name: orders}\n  policyRef: {name: circuit-breaker-flex}\n"+
			"  config: {thresholds: {maxRequests: 1}}\n")
	held := make(chan string, 1)
	go func() {
		status, _, body := get(t, base+"/one/hold")
		held <- strconv.Itoa(status) + " " + body
	}()
	deadline := time.Now().Add(10 * time.Second)
	// In the upstream: counted in flight by the breaker since before it
	// was sent.
	for inside.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request did not reach the upstream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	status, reason, body := get(t, base+"/two/x")
	close(release)
	if status != 503 || reason != "upstream_overloaded" {
		t.Errorf("a request through the other instance while one is in flight: %d %q %s, want 503 upstream_overloaded", status, reason, body)
	}
	if got := <-held; !strings.HasPrefix(got, "200 /v1/") {
		t.Errorf("the held request: %s", got)
	}
	if status, _, body := get(t, base+"/two/x"); status != 200 || !strings.HasPrefix(body, "/v2/") {
		t.Errorf("once the first is done: %d %s", status, body)
	}
	if v := metric(t, gw, `flexgate_upstream_overloaded_total{upstream="default/orders",limit="maxRequests"}`); v != 1 {
		t.Errorf(`flexgate_upstream_overloaded_total{upstream="default/orders",limit="maxRequests"} = %v, want 1`, v)
	}
}

// TestServeTLSOutbound: tls-outbound bound to a Service makes the gateway
// trust the private CA it names and present its client certificate to an
// upstream that requires one. Services at the same address without them
// have connections of their own, and fail as they should, 502
// upstream_tls_error: one that trusts the system's CAs does not trust the
// upstream; one without a certificate is refused by it (in the handshake
// with TLS 1.2, after it with TLS 1.3).
func TestServeTLSOutbound(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) { testTLSOutbound(t, version) })
	}
}

func testTLSOutbound(t *testing.T, version uint16) {
	ca := proxytest.NewCA(t, "private-ca")
	serverCert, err := tls.X509KeyPair(ca.Issue(t, "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(ca.PEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Logger: quiet{}, Handler: func(ctx *fasthttp.RequestCtx) {
		cs := ctx.TLSConnectionState()
		if cs == nil || len(cs.PeerCertificates) == 0 {
			ctx.SetStatusCode(400)
			return
		}
		ctx.SetBodyString("client " + cs.PeerCertificates[0].Subject.CommonName)
	}}
	go func() {
		_ = srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: version, MaxVersion: version,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}))
	}()
	t.Cleanup(func() { _ = srv.Shutdown() })

	crt, key := ca.Issue(t, "gateway")
	t.Setenv("FLEX_TEST_UPSTREAM_CA", string(ca.PEM))
	t.Setenv("FLEX_TEST_GATEWAY_CRT", string(crt))
	t.Setenv("FLEX_TEST_GATEWAY_KEY", string(key))
	address := "https://" + ln.Addr().String()
	var apis, services, routes []string
	for _, name := range []string{"secure", "system", "nocert"} {
		apis = append(apis, doc("ApiInstance", name)+"  address: http://127.0.0.1:8081/"+name+"\n")
		services = append(services, service(name, address))
		routes = append(routes, doc("PolicyBinding", name+"-route")+"  targetRef: {name: "+name+"}\n  policyRef: {name: route}\n"+
			"  config: {destinationRef: {name: "+name+"}}\n")
	}
	outbound := func(svc, config string) string {
		return doc("PolicyBinding", svc+"-tls") + "  targetRef: {kind: Service, name: " + svc + "}\n  policyRef: {name: tls-outbound}\n  config:\n" + config
	}
	base, gw := serveFlex(t,
		"api.yaml", strings.Join(apis, "---\n"),
		"services.yaml", strings.Join(services, "---\n"),
		"routes.yaml", strings.Join(routes, "---\n"),
		"tls.yaml", outbound("secure", "    trustedCA: $FLEX_TEST_UPSTREAM_CA\n    certificate: {crt: $FLEX_TEST_GATEWAY_CRT, key: $FLEX_TEST_GATEWAY_KEY}\n")+
			"---\n"+outbound("nocert", "    trustedCA: $FLEX_TEST_UPSTREAM_CA\n"))
	for _, c := range []struct{ path, want string }{
		{"/secure/x", "200  client gateway"},
		{"/system/x", "502 upstream_tls_error "},
		{"/nocert/x", "502 upstream_tls_error "},
		{"/secure/x", "200  client gateway"},
	} {
		status, reason, body := get(t, base+c.path)
		if got := fmt.Sprintf("%d %s %s", status, reason, body); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s, want %s\n%s", c.path, got, c.want, gw.Logs.String())
		}
	}
	// /config names the Service's upstream, its CAs and its certificate,
	// never the key.
	_, _, view := get(t, gw.AdminURL+"/config")
	keyBody := strings.Split(string(key), "\n")[1]
	for _, want := range []string{`"name": "default/secure"`, `"trustedCA": [` + "\n" + `            "CN=private-ca"`,
		`"clientCertificate": {` + "\n" + `            "subject": "CN=gateway",` + "\n" + `            "key": "[redacted]"`} {
		if !strings.Contains(view, want) {
			t.Errorf("/config lacks %s", want)
		}
	}
	if strings.Contains(view, keyBody) {
		t.Error("/config shows the client certificate's key")
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// TestServeHeaderInjectionOutbound: header-injection-flex evaluates
// outboundHeaders on the response, as Flex Gateway does:
// attributes.headers there are the upstream's response headers and
// attributes.statusCode its status, while inboundHeaders read the
// request's.
func TestServeHeaderInjectionOutbound(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(201)
		ctx.SetContentType("text/resp")
		ctx.SetBodyString("in-ct=" + string(ctx.Request.Header.Peek("X-In-Ct")))
	}
	base, _ := serveFlex(t, "api.yaml", doc("ApiInstance", "shop")+`  address: http://127.0.0.1:8081
  services:
    up:
      address: `+up.URL+`
  policies:
    - policyRef: {name: header-injection-flex}
      config:
        inboundHeaders:
          - {key: x-in-ct, value: "#[attributes.headers['content-type']]"}
        outboundHeaders:
          - {key: x-out-ct, value: "#[attributes.headers['content-type']]"}
          - {key: x-out-status, value: "#[if (attributes.statusCode == 201) 'created' else 'other']"}
`)
	resp := proxytest.Do(t, "POST", base+"/x", map[string]string{"Content-Type": "text/req"}, []byte("a"))
	defer fasthttp.ReleaseResponse(resp)
	got := fmt.Sprintf("%d %s out-ct=%s out-status=%s", resp.StatusCode(), resp.Body(),
		resp.Header.Peek("X-Out-Ct"), resp.Header.Peek("X-Out-Status"))
	if want := "201 in-ct=text/req out-ct=text/resp out-status=created"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestServeIPListBehindTrustedProxy: ip-blocklist-flex without ipExpression
// checks the verified client address, which a Flex directory sets up for a
// load balancer with a kind: Gateway document holding spec.trustedProxies
// (the warning at the policy says so): from the trusted 127.0.0.1 the
// client X-Forwarded-For names is blocked; from an untrusted peer what it
// writes is not believed.
func TestServeIPListBehindTrustedProxy(t *testing.T) {
	up := named(t, "up")
	api := doc("ApiInstance", "shop") + "  address: http://127.0.0.1:8081\n  services:\n    up:\n      address: " + up.URL + "\n" +
		"  policies:\n    - policyRef: {name: ip-blocklist-flex}\n      config: {ips: [203.0.113.9]}\n"
	status := func(base, xff string) string {
		resp := proxytest.Do(t, "GET", base+"/x", map[string]string{"X-Forwarded-For": xff}, nil)
		defer fasthttp.ReleaseResponse(resp)
		return fmt.Sprintf("%d %s", resp.StatusCode(), resp.Header.Peek("X-Flexgate-Error"))
	}
	trusted, _ := serveFlex(t, "api.yaml", api, "proxies.yaml",
		"apiVersion: gateway.mulesoft.com/v1alpha1\nkind: Gateway\nmetadata: {name: proxies}\nspec: {trustedProxies: [127.0.0.1/32]}\n")
	for xff, want := range map[string]string{"203.0.113.9": "403 ip_blocked", "198.51.100.1": "200 "} {
		if got := status(trusted, xff); got != want {
			t.Errorf("behind the trusted proxy, X-Forwarded-For %s: %s, want %s", xff, got, want)
		}
	}
	untrusted, _ := serveFlex(t, "api.yaml", api)
	if got := status(untrusted, "203.0.113.9"); got != "200 " {
		t.Errorf("from an untrusted peer, X-Forwarded-For 203.0.113.9: %s, want 200 (the header is not believed)", got)
	}
}

// TestServeBreakerQueuesOverMaxConnections: circuit-breaker-flex
// maxConnections queues the requests over it, as Flex Gateway (Envoy)
// does with pending requests, up to maxPendingRequests: with the one
// connection busy, one more request waits for it and is served, and the
// next is answered 503 upstream_overloaded at once.
func TestServeBreakerQueuesOverMaxConnections(t *testing.T) {
	up := proxytest.StartUpstream(t)
	up.Record = false
	release := make(chan struct{})
	var inside atomic.Int64
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(ctx.Path()), "/hold") {
			inside.Add(1)
			<-release
		}
		ctx.SetBodyString(string(ctx.Path()))
	}
	base, gw := serveFlex(t,
		"api.yaml", doc("ApiInstance", "shop")+"  address: http://127.0.0.1:8081\n",
		"service.yaml", service("orders", up.URL),
		"route.yaml", doc("PolicyBinding", "r")+"  targetRef: {name: shop}\n  policyRef: {name: route}\n  config: {destinationRef: {name: orders}}\n",
		"breaker.yaml", doc("PolicyBinding", "cb")+"  targetRef: {kind: Service, name: orders}\n  policyRef: {name: circuit-breaker-flex}\n"+
			"  config: {thresholds: {maxConnections: 1, maxPendingRequests: 1}}\n")
	answer := func(path string, into chan<- string) {
		status, reason, body := get(t, base+path)
		into <- fmt.Sprintf("%d %s %s", status, reason, body)
	}
	held := make(chan string, 1)
	go answer("/hold", held)
	deadline := time.Now().Add(10 * time.Second)
	for inside.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request did not reach the upstream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Two more while the connection is busy: one waits for it, the other
	// finds the queue full. Neither can be served before the first is.
	others := make(chan string, 2)
	go answer("/a", others)
	go answer("/b", others)
	refused := <-others
	close(release)
	if !strings.HasPrefix(refused, "503 upstream_overloaded ") {
		t.Errorf("the request over maxPendingRequests: %s, want 503 upstream_overloaded", refused)
	}
	if got := <-held; got != "200  /hold" {
		t.Errorf("the held request: %s", got)
	}
	if got := <-others; got != "200  /a" && got != "200  /b" {
		t.Errorf("the request that waited for the connection: %s, want 200", got)
	}
	if v := metric(t, gw, `flexgate_upstream_overloaded_total{upstream="default/orders",limit="maxPendingRequests"}`); v != 1 {
		t.Errorf(`flexgate_upstream_overloaded_total{limit="maxPendingRequests"} = %v, want 1`, v)
	}
}

// TestServeTLSOutboundVersions: tls-outbound minversion and maxversion
// bound the TLS versions of the connections to the Service: an upstream
// that speaks only TLS 1.2 is refused, 502 upstream_tls_error, by a
// Service with minversion 1.3, and served to one without; maxversion 1.2
// refuses one that speaks only TLS 1.3.
func TestServeTLSOutboundVersions(t *testing.T) {
	ca := proxytest.NewCA(t, "private-ca")
	serverCert, err := tls.X509KeyPair(ca.Issue(t, "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	upstream := func(version uint16, suites ...uint16) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &fasthttp.Server{Logger: quiet{}, Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyString(tls.VersionName(ctx.TLSConnectionState().Version))
		}}
		go func() {
			_ = srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: version, MaxVersion: version,
				CipherSuites: suites}))
		}()
		t.Cleanup(func() { _ = srv.Shutdown() })
		return "https://" + ln.Addr().String()
	}
	tls12, tls13 := upstream(tls.VersionTLS12), upstream(tls.VersionTLS13)
	chacha := upstream(tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
	t.Setenv("FLEX_TEST_UPSTREAM_CA", string(ca.PEM))
	var apis, services, bindings []string
	for _, s := range []struct{ name, address, versions string }{
		{"any12", tls12, ""}, {"min13", tls12, "minversion: \"1.3\""}, {"max12", tls13, "maxVersion: \"1.2\""}, {"max13", tls13, "maxversion: \"1.3\""},
		// Ciphers: the Service's only suite offered, or not.
		{"chacha", chacha, "ciphers: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]"},
		{"aes", chacha, "ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]"},
	} {
		apis = append(apis, doc("ApiInstance", s.name)+"  address: http://127.0.0.1:8081/"+s.name+"\n")
		services = append(services, service(s.name, s.address))
		bindings = append(bindings, doc("PolicyBinding", s.name+"-route")+"  targetRef: {name: "+s.name+"}\n  policyRef: {name: route}\n"+
			"  config: {destinationRef: {name: "+s.name+"}}\n",
			doc("PolicyBinding", s.name+"-tls")+"  targetRef: {kind: Service, name: "+s.name+"}\n  policyRef: {name: tls-outbound}\n"+
				"  config: {trustedCA: $FLEX_TEST_UPSTREAM_CA, "+s.versions+"}\n")
	}
	base, gw := serveFlex(t, "api.yaml", strings.Join(apis, "---\n"), "services.yaml", strings.Join(services, "---\n"),
		"bindings.yaml", strings.Join(bindings, "---\n"))
	// Each Service after one at the same address with other versions: a
	// connection pooled for one is never used for the other.
	for _, c := range []struct{ path, want string }{
		{"/any12/x", "200  TLS 1.2"}, {"/min13/x", "502 upstream_tls_error "}, {"/max13/x", "200  TLS 1.3"}, {"/max12/x", "502 upstream_tls_error "},
		{"/chacha/x", "200  TLS 1.2"}, {"/aes/x", "502 upstream_tls_error "},
	} {
		status, reason, body := get(t, base+c.path)
		if got := fmt.Sprintf("%d %s %s", status, reason, body); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s, want %s", c.path, got, c.want)
		}
	}
	_, _, view := get(t, gw.AdminURL+"/config")
	if !strings.Contains(view, `"tlsMinVersion": "1.3"`) || !strings.Contains(view, `"tlsMaxVersion": "1.2"`) ||
		!strings.Contains(view, `"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"`) {
		t.Errorf("/config does not show the versions and ciphers:\n%s", view)
	}
}
